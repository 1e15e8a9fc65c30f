// The live side of the app: which sync transport is in use, everyone's
// presence, my own presence (online while the tab is visible, unavailable
// while hidden) and browser notifications for mentions and DMs while hidden.
import { create } from "zustand";
import type { MatrixClient, Transport } from "./matrix/client";
import { noticesFor, type Notice } from "./matrix/notify";
import { applyPresence, type UserPresence } from "./matrix/presence";
import type { Room, SyncResponse } from "./matrix/types";

const NOTIFY_KEY = "plait.notifications";

/** default: never asked; on/off: the user's choice; denied/unsupported: the browser's. */
export type NotifyState = "default" | "on" | "off" | "denied" | "unsupported";

export interface LiveState {
  transport: Transport | undefined;
  presence: Record<string, UserPresence>;
  notify: NotifyState;
}

interface NotificationLike {
  onclick: ((ev: unknown) => void) | null;
  close(): void;
}
interface NotificationApi {
  permission: string;
  requestPermission(): Promise<string>;
  new (title: string, options?: { body?: string; tag?: string }): NotificationLike;
}

function notificationApi(): NotificationApi | undefined {
  const api = (globalThis as { Notification?: NotificationApi }).Notification;
  return typeof api === "function" ? api : undefined;
}

function storedChoice(): string | null {
  try {
    return globalThis.localStorage?.getItem(NOTIFY_KEY) ?? null;
  } catch {
    return null;
  }
}

/** The notification state from the browser's permission and the remembered choice. */
export function notifyState(): NotifyState {
  const api = notificationApi();
  if (!api) return "unsupported";
  if (api.permission === "denied") return "denied";
  const choice = storedChoice();
  if (api.permission === "granted") return choice === "off" ? "off" : "on";
  return choice === "off" ? "off" : "default";
}

export const useLive = create<LiveState>(() => ({
  transport: undefined,
  presence: {},
  notify: notifyState(),
}));

/**
 * The bell: asks the browser once (this runs in a click handler, a user
 * gesture), remembers the answer, and afterwards toggles on and off.
 */
export async function toggleNotifications(): Promise<void> {
  const api = notificationApi();
  const state = notifyState(); // afresh: site settings may have changed since
  const remember = (v: "on" | "off") => {
    try {
      globalThis.localStorage?.setItem(NOTIFY_KEY, v);
    } catch {
      /* storage disabled: the browser's permission still holds */
    }
  };
  if (!api || state === "denied" || state === "unsupported") {
    useLive.setState({ notify: state });
    return;
  }
  if (state === "on") {
    remember("off");
  } else if (api.permission === "granted") {
    remember("on");
  } else {
    const answer = await api.requestPermission();
    if (answer === "granted") remember("on");
    else if (answer === "denied") remember("off");
  }
  useLive.setState({ notify: notifyState() });
}

const highlights = new Map<string, number>();
let openRoom: (roomId: string) => void = () => {};

function hidden(): boolean {
  return globalThis.document?.visibilityState === "hidden";
}

/** Show a notice as a browser notification; a click focuses the tab and opens the room. */
export function showNotice(n: Notice): boolean {
  const api = notificationApi();
  if (!api || api.permission !== "granted" || useLive.getState().notify !== "on" || !hidden()) return false;
  try {
    const shown = new api(n.title, { body: n.body, tag: n.roomId });
    shown.onclick = () => {
      globalThis.focus?.();
      openRoom(n.roomId);
      shown.close();
    };
    return true;
  } catch {
    return false; // e.g. a browser that only allows notifications from a service worker
  }
}

export interface SyncContext {
  rooms: Record<string, Room>;
  direct: Record<string, string[]>;
  me: string;
  myName: string | undefined;
}

/** Called for every sync body, after it has been folded into the rooms. */
export function liveSync(resp: SyncResponse, initial: boolean, ctx: SyncContext): void {
  const prev = useLive.getState().presence;
  const presence = applyPresence(prev, resp);
  if (presence !== prev) useLive.setState({ presence });
  try {
    for (const n of noticesFor(resp, initial, { ...ctx, highlights })) showNotice(n);
  } catch {
    /* a notification is never worth failing a sync for */
  }
}

let current: MatrixClient | null = null;
let listening = false;
const asked = new Set<string>();

/**
 * Sync brings presence *changes*; someone we just started sharing a room
 * with may have none to report, so ask the server once.
 */
export function ensurePresence(userId: string): void {
  const client = current;
  if (!client || asked.has(userId) || useLive.getState().presence[userId]) return;
  asked.add(userId);
  client
    .getPresence(userId)
    .then((r) => {
      if (current !== client || useLive.getState().presence[userId]) return;
      const resp = { next_batch: "", presence: { events: [{ type: "m.presence", sender: userId, content: r }] } };
      useLive.setState({ presence: applyPresence(useLive.getState().presence, resp as SyncResponse) });
    })
    .catch(() => asked.delete(userId));
}

function visibilityChanged(): void {
  current?.setPresence(hidden() ? "unavailable" : "online");
}

/** Wire a freshly started client: transport reporting, presence by visibility, notification clicks. */
export function liveStart(client: MatrixClient, open: (roomId: string) => void): void {
  current = client;
  openRoom = open;
  highlights.clear();
  asked.clear();
  useLive.setState({ transport: undefined, presence: {}, notify: notifyState() });
  client.presence = hidden() ? "unavailable" : "online";
  if (!listening) {
    listening = true;
    globalThis.document?.addEventListener?.("visibilitychange", visibilityChanged);
  }
}

export function liveTransport(transport: Transport): void {
  useLive.setState({ transport });
}
