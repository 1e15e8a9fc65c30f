// The app state (zustand), fed by the Matrix client module.
import { create } from "zustand";
import { MatrixClient, newTxnId, login, register, type Outgoing, type Session } from "./matrix/client";
import { Http } from "./matrix/http";
import { parse, toHtml, hasMarkup } from "./matrix/markdown";
import { threadReplyContent, threadRootOf } from "./matrix/threads";
import { applyInvitedRoom, applyJoinedRoom, prependHistory } from "./matrix/rooms";
import type { MatrixEvent, Room, SyncResponse, TimelineItem } from "./matrix/types";
import { browserSocket } from "./matrix/client";
import { liveStart, liveSync, liveTransport } from "./live";

const SESSION_KEY = "plait.session";
export type Theme = "system" | "light" | "dark";

export interface AppState {
  phase: "login" | "syncing" | "ready";
  session: Session | null;
  myName: string | undefined;
  rooms: Record<string, Room>;
  /** m.direct: userId -> DM room ids. */
  direct: Record<string, string[]>;
  currentRoomId: string | undefined;
  connected: boolean;
  theme: Theme;
  error: string | undefined;
  replyTo: string | undefined;
  editing: string | undefined;

  login(user: string, password: string): Promise<void>;
  register(user: string, password: string): Promise<void>;
  logout(): Promise<void>;
  openRoom(roomId: string | undefined): void;
  sendText(roomId: string, text: string): void;
  sendImage(roomId: string, file: File): Promise<void>;
  /** Any other file: an m.file message with a download link. */
  sendFile(roomId: string, file: File): Promise<void>;
  sendThreadReply(roomId: string, rootId: string, text: string): void;
  editMessage(roomId: string, eventId: string, text: string): void;
  redact(roomId: string, eventId: string): void;
  react(roomId: string, eventId: string, key: string): void;
  retry(roomId: string, txnId: string): void;
  paginate(roomId: string): Promise<void>;
  setTheme(theme: Theme): void;
  setReplyTo(eventId: string | undefined): void;
  setEditing(eventId: string | undefined): void;
  setError(error: string | undefined): void;
}

let client: MatrixClient | null = null;
const paginating = new Set<string>();
/** txnId -> the event we queued, so a failed send can be retried. */
const queued = new Map<string, Outgoing>();
/** txnId -> the image file of an upload that has not finished, for a retry. */
const files = new Map<string, File>();

export function getClient(): MatrixClient | null {
  return client;
}

function loadTheme(): Theme {
  const t = globalThis.localStorage?.getItem("plait.theme");
  return t === "light" || t === "dark" ? t : "system";
}

/** An m.text content for `body`, with an HTML rendering when the markdown-lite markup asks for one. */
function textContent(body: string): Record<string, unknown> {
  const content: Record<string, unknown> = { msgtype: "m.text", body };
  const tokens = parse(body);
  if (hasMarkup(tokens)) {
    content["format"] = "org.matrix.custom.html";
    content["formatted_body"] = toHtml(tokens);
  }
  return content;
}

export const useStore = create<AppState>((set, get) => {
  function updateRoom(roomId: string, f: (r: Room) => Room): void {
    set((s) => {
      const room = s.rooms[roomId];
      return room ? { rooms: { ...s.rooms, [roomId]: f(room) } } : {};
    });
  }

  function patchItem(txnId: string, f: (t: TimelineItem) => TimelineItem): void {
    set((s) => {
      const rooms = { ...s.rooms };
      for (const [id, room] of Object.entries(rooms)) {
        if (room.timeline.some((t) => t.txnId === txnId)) {
          rooms[id] = { ...room, timeline: room.timeline.map((t) => (t.txnId === txnId ? f(t) : t)) };
        }
      }
      return { rooms };
    });
  }

  function onSync(resp: SyncResponse, initial: boolean): void {
    const s = get();
    const me = s.session?.userId ?? "";
    const rooms = { ...s.rooms };
    let direct = s.direct;
    for (const ev of resp.account_data?.events ?? []) {
      if (ev.type === "m.direct") direct = ev.content as Record<string, string[]>;
    }
    for (const [roomId, data] of Object.entries(resp.rooms?.join ?? {})) {
      rooms[roomId] = applyJoinedRoom(rooms[roomId], roomId, data, me, roomId === s.currentRoomId && isVisible());
    }
    for (const [roomId, data] of Object.entries(resp.rooms?.invite ?? {})) {
      rooms[roomId] = applyInvitedRoom(rooms[roomId], roomId, data, me);
    }
    let currentRoomId = s.currentRoomId;
    for (const roomId of Object.keys(resp.rooms?.leave ?? {})) {
      delete rooms[roomId];
      if (roomId === currentRoomId) currentRoomId = undefined;
    }
    set({ rooms, direct, currentRoomId, phase: "ready" });
    liveSync(resp, initial, { rooms, direct, me, myName: s.myName });
    if (initial) restoreOutbox();
    if (currentRoomId) markRead(currentRoomId);
  }

  function restoreOutbox(): void {
    if (!client) return;
    for (const out of client.savedOutbox()) {
      queued.set(out.txnId, out);
      addEcho(out);
      client.send(out);
    }
  }

  function addEcho(out: Outgoing, extra: Partial<TimelineItem> = {}): void {
    const me = get().session?.userId ?? "";
    const event: MatrixEvent = {
      event_id: `~${out.txnId}`,
      type: out.type,
      sender: me,
      origin_server_ts: Date.now(),
      content: out.content,
      ...(out.type === "m.room.redaction" ? { redacts: String(out.content["redacts"]) } : {}),
    };
    updateRoom(out.roomId, (r) => ({
      ...r,
      lastActivity: Date.now(),
      timeline: [...r.timeline, { id: event.event_id, event, txnId: out.txnId, status: "sending", ...extra }],
    }));
  }

  function enqueue(roomId: string, type: string, content: Record<string, unknown>, extra: Partial<TimelineItem> = {}): string {
    const out: Outgoing = { txnId: newTxnId(), roomId, type, content };
    queued.set(out.txnId, out);
    addEcho(out, extra);
    client?.send(out);
    return out.txnId;
  }

  /** Upload an image (with progress on its echo), then queue the event that shows it. */
  async function uploadThenSend(out: Outgoing, file: File): Promise<void> {
    const { txnId } = out;
    try {
      if (!client) throw new Error("not logged in");
      const url = await client.upload(file, file.name, (p) => patchItem(txnId, (t) => ({ ...t, progress: p })));
      const ready = { ...out, content: { ...out.content, url } };
      patchItem(txnId, (t) => ({ ...t, progress: 1, event: { ...t.event, content: ready.content } }));
      queued.set(txnId, ready);
      files.delete(txnId);
      client.send(ready);
    } catch (e) {
      patchItem(txnId, (t) => ({ ...t, status: "failed" }));
      set({ error: `Upload failed: ${e instanceof Error ? e.message : String(e)}` });
    }
  }

  const lastReceipt = new Map<string, string>();
  function markRead(roomId: string): void {
    const room = get().rooms[roomId];
    if (!room || !client || !isVisible()) return;
    const me = client.userId;
    const last = [...room.timeline].reverse().find((t) => !t.status && !t.id.startsWith("~"));
    if (!last || last.event.sender === me || lastReceipt.get(roomId) === last.id) return;
    lastReceipt.set(roomId, last.id);
    client.readReceipt(roomId, last.id).catch(() => lastReceipt.delete(roomId));
  }

  function startClient(session: Session): void {
    const http = new Http(globalThis.location?.origin ?? "");
    http.session = session;
    client = new MatrixClient(http, {
      onSync,
      onConnection: (connected) => set({ connected }),
      onTransport: liveTransport,
      onSent: (txnId, eventId) => {
        queued.delete(txnId);
        patchItem(txnId, (t) => (t.status === "sending" ? { ...t, id: eventId, status: "sent", event: { ...t.event, event_id: eventId } } : t));
        // The server event may have come down /sync first: then the echo goes.
        set((s) => {
          const rooms = { ...s.rooms };
          for (const [id, room] of Object.entries(rooms)) {
            if (room.timeline.some((t) => t.id === eventId && t.status === undefined)) {
              rooms[id] = { ...room, timeline: room.timeline.filter((t) => !(t.txnId === txnId && t.status !== undefined)) };
            }
          }
          return { rooms };
        });
      },
      onSendFailed: (txnId, err) => {
        patchItem(txnId, (t) => ({ ...t, status: "failed" }));
        set({ error: `Not sent: ${err.message}` });
      },
      onLoggedOut: () => {
        globalThis.localStorage?.removeItem(SESSION_KEY);
        client = null;
        set({ phase: "login", session: null, rooms: {}, currentRoomId: undefined, error: "You were logged out." });
      },
      onSession: (s) => {
        globalThis.localStorage?.setItem(SESSION_KEY, JSON.stringify(s));
        set({ session: s });
      },
    }, undefined, { socket: browserSocket() });
    set({ session, phase: "syncing", error: undefined, connected: true });
    liveStart(client, (roomId) => get().openRoom(roomId));
    client.start();
    void client.displayName(session.userId).then((name) => set({ myName: name }));
  }

  async function begin(p: Promise<Session>): Promise<void> {
    try {
      const session = await p;
      globalThis.localStorage?.setItem(SESSION_KEY, JSON.stringify(session));
      startClient(session);
    } catch (e) {
      set({ error: e instanceof Error ? e.message : String(e) });
    }
  }

  // Resume a saved session.
  let saved: Session | null = null;
  try {
    const raw = globalThis.localStorage?.getItem(SESSION_KEY);
    saved = raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    saved = null;
  }
  if (saved) queueMicrotask(() => startClient(saved));

  globalThis.document?.addEventListener?.("visibilitychange", () => {
    const id = get().currentRoomId;
    if (id && isVisible()) {
      updateRoom(id, (r) => ({ ...r, unread: 0 }));
      markRead(id);
    }
  });

  return {
    phase: saved ? "syncing" : "login",
    session: saved,
    myName: undefined,
    rooms: {},
    direct: {},
    currentRoomId: undefined,
    connected: true,
    theme: loadTheme(),
    error: undefined,
    replyTo: undefined,
    editing: undefined,

    login: (user, password) => begin(login(new Http(globalThis.location?.origin ?? ""), user, password)),
    register: (user, password) => begin(register(new Http(globalThis.location?.origin ?? ""), user, password)),
    async logout() {
      const c = client;
      client = null;
      await c?.logout();
      globalThis.localStorage?.removeItem(SESSION_KEY);
      set({ phase: "login", session: null, rooms: {}, currentRoomId: undefined, myName: undefined, error: undefined });
    },
    openRoom(roomId) {
      set({ currentRoomId: roomId, replyTo: undefined, editing: undefined });
      if (roomId) {
        updateRoom(roomId, (r) => ({ ...r, unread: 0 }));
        markRead(roomId);
      }
    },
    sendText(roomId, text) {
      const body = text.trim();
      if (!body) return;
      const content = textContent(body);
      const replyTo = get().replyTo;
      if (replyTo) content["m.relates_to"] = { "m.in_reply_to": { event_id: replyTo } };
      set({ replyTo: undefined });
      enqueue(roomId, "m.room.message", content);
    },
    async sendImage(roomId, file) {
      const localUrl = URL.createObjectURL(file);
      const dims = await imageSize(localUrl);
      const txnId = newTxnId();
      const content: Record<string, unknown> = {
        msgtype: "m.image",
        body: file.name,
        info: { mimetype: file.type, size: file.size, ...dims },
      };
      const out: Outgoing = { txnId, roomId, type: "m.room.message", content };
      queued.set(txnId, out);
      files.set(txnId, file);
      addEcho(out, { localUrl, progress: 0 });
      await uploadThenSend(out, file);
    },
    async sendFile(roomId, file) {
      const txnId = newTxnId();
      const content: Record<string, unknown> = {
        msgtype: "m.file",
        body: file.name,
        filename: file.name,
        info: { mimetype: file.type || "application/octet-stream", size: file.size },
      };
      const out: Outgoing = { txnId, roomId, type: "m.room.message", content };
      queued.set(txnId, out);
      files.set(txnId, file);
      addEcho(out, { progress: 0 });
      await uploadThenSend(out, file);
    },
    sendThreadReply(roomId, rootId, text) {
      const body = text.trim();
      if (!body) return;
      const content = textContent(body);
      // The fallback reply points at the thread's latest event (spec: threading).
      const timeline = get().rooms[roomId]?.timeline ?? [];
      const latest = [...timeline].reverse().find((t) => !t.id.startsWith("~") && threadRootOf(t.event) === rootId);
      enqueue(roomId, "m.room.message", threadReplyContent(content, rootId, latest?.event.event_id));
    },
    editMessage(roomId, eventId, text) {
      const body = text.trim();
      if (!body) return;
      const newContent = textContent(body);
      set({ editing: undefined });
      enqueue(roomId, "m.room.message", {
        msgtype: "m.text",
        body: `* ${body}`,
        "m.new_content": newContent,
        "m.relates_to": { rel_type: "m.replace", event_id: eventId },
      });
    },
    redact(roomId, eventId) {
      enqueue(roomId, "m.room.redaction", { redacts: eventId });
    },
    react(roomId, eventId, key) {
      enqueue(roomId, "m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: eventId, key } });
    },
    retry(roomId, txnId) {
      const out = queued.get(txnId);
      if (!out) return;
      updateRoom(roomId, (r) => ({
        ...r,
        timeline: r.timeline.map((t) => (t.txnId === txnId ? { ...t, status: "sending" } : t)),
      }));
      const file = files.get(txnId);
      if ((out.content["msgtype"] === "m.image" || out.content["msgtype"] === "m.file") && !out.content["url"] && file)
        void uploadThenSend(out, file);
      else client?.send(out);
    },
    async paginate(roomId) {
      const room = get().rooms[roomId];
      if (!client || !room || !room.moreHistory || paginating.has(roomId)) return;
      paginating.add(roomId);
      try {
        const r = await client.messages(roomId, room.prevBatch);
        updateRoom(roomId, (cur) => prependHistory(cur, r.chunk, r.end));
      } catch (e) {
        set({ error: `Could not load history: ${e instanceof Error ? e.message : String(e)}` });
      } finally {
        paginating.delete(roomId);
      }
    },
    setTheme(theme) {
      globalThis.localStorage?.setItem("plait.theme", theme);
      set({ theme });
    },
    setReplyTo: (replyTo) => set({ replyTo, editing: undefined }),
    setEditing: (editing) => set({ editing, replyTo: undefined }),
    setError: (error) => set({ error }),
  };
});

function isVisible(): boolean {
  return globalThis.document?.visibilityState !== "hidden";
}

function imageSize(url: string): Promise<{ w?: number; h?: number }> {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve({ w: img.naturalWidth, h: img.naturalHeight });
    img.onerror = () => resolve({});
    img.src = url;
    setTimeout(() => resolve({}), 3000);
  });
}
