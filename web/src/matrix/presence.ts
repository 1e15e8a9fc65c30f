// Presence as /sync reports it (`presence.events`, m.presence), and whom a DM
// is with, so the UI can put a dot next to them. Pure: no React, no I/O.
import type { Room, SyncResponse } from "./types";

export type PresenceState = "online" | "unavailable" | "offline";

export interface UserPresence {
  presence: PresenceState;
  currentlyActive: boolean;
  /** When the user was last active (ms since the epoch), if the server said. */
  lastActive?: number | undefined;
}

interface PresenceEvent {
  type?: string;
  sender?: string;
  content?: { presence?: unknown; last_active_ago?: unknown; currently_active?: unknown };
}

/** Fold a sync body's presence events in; unchanged input gives the same object back. */
export function applyPresence(
  prev: Record<string, UserPresence>,
  resp: SyncResponse,
  now: number = Date.now(),
): Record<string, UserPresence> {
  const events = (resp as { presence?: { events?: PresenceEvent[] } }).presence?.events ?? [];
  let next = prev;
  for (const ev of events) {
    if (ev.type !== "m.presence" || typeof ev.sender !== "string") continue;
    const p = ev.content?.presence;
    if (p !== "online" && p !== "unavailable" && p !== "offline") continue;
    const ago = ev.content?.last_active_ago;
    const value: UserPresence = {
      presence: p,
      currentlyActive: ev.content?.currently_active === true,
      lastActive: typeof ago === "number" ? now - ago : undefined,
    };
    if (next === prev) next = { ...prev };
    next[ev.sender] = value;
  }
  return next;
}

/** The other person of a DM: from m.direct, else the room's heroes or members. */
export function dmPartner(room: Room, me: string, direct: Record<string, string[]>): string | undefined {
  for (const [userId, ids] of Object.entries(direct)) {
    if (userId !== me && ids.includes(room.roomId)) return userId;
  }
  const hero = room.heroes.find((u) => u !== me);
  if (hero) return hero;
  const member = Object.values(room.members).find(
    (m) => m.userId !== me && (m.membership === "join" || m.membership === "invite"),
  );
  return member?.userId ?? room.inviter;
}

export const PRESENCE_LABEL: Record<PresenceState, string> = {
  online: "Online",
  unavailable: "Away",
  offline: "Offline",
};
