// Which new events deserve a browser notification: mentions of me (the
// server's push rules, through a rising `highlight_count`, or m.mentions and
// my display name in the body) and every message in a DM. Pure.
import { displayName, isMessageLike, roomName } from "./rooms";
import type { MatrixEvent, Room, SyncResponse } from "./types";

export interface Notice {
  roomId: string;
  eventId: string;
  title: string;
  body: string;
  highlight: boolean;
}

export interface NoticeContext {
  /** Rooms after this sync was folded in (names, members). */
  rooms: Record<string, Room>;
  direct: Record<string, string[]>;
  me: string;
  myName: string | undefined;
  /** roomId -> the highlight_count last seen; updated in place. */
  highlights: Map<string, number>;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Does this event mention me: m.mentions, or my user id or display name as a word in the body? */
export function mentionsMe(ev: MatrixEvent, me: string, myName: string | undefined): boolean {
  const mentions = ev.content["m.mentions"] as { user_ids?: unknown } | undefined;
  if (Array.isArray(mentions?.user_ids) && mentions.user_ids.includes(me)) return true;
  const body = typeof ev.content["body"] === "string" ? ev.content["body"] : "";
  if (!body) return false;
  const names = [me, myName].filter((n): n is string => typeof n === "string" && n.trim().length >= 2);
  return names.some((n) => new RegExp(`(^|[^\\p{L}\\p{N}_])${escapeRe(n.trim())}($|[^\\p{L}\\p{N}_])`, "iu").test(body));
}

function isEdit(ev: MatrixEvent): boolean {
  const rel = ev.content["m.relates_to"] as { rel_type?: unknown } | undefined;
  return rel?.rel_type === "m.replace";
}

function summary(ev: MatrixEvent): string {
  const body = typeof ev.content["body"] === "string" ? ev.content["body"] : "";
  switch (ev.content["msgtype"]) {
    case "m.image":
      return "sent an image";
    case "m.file":
      return "sent a file";
    case "m.emote":
      return `* ${body}`;
  }
  if (ev.type === "m.room.encrypted") return "sent an encrypted message";
  return body.length > 140 ? body.slice(0, 139) + "…" : body;
}

export function isDirectRoom(room: Room, direct: Record<string, string[]>): boolean {
  return room.isDirect || Object.values(direct).some((ids) => ids.includes(room.roomId));
}

/**
 * The notices for one sync body: at most one per room (its latest qualifying
 * event). The initial sync never notifies; it only records the counts.
 */
export function noticesFor(resp: SyncResponse, initial: boolean, ctx: NoticeContext): Notice[] {
  const out: Notice[] = [];
  for (const [roomId, data] of Object.entries(resp.rooms?.join ?? {})) {
    const counts = data.unread_notifications as { highlight_count?: number } | undefined;
    const before = ctx.highlights.get(roomId) ?? 0;
    const highlightCount = counts?.highlight_count;
    if (highlightCount !== undefined) ctx.highlights.set(roomId, highlightCount);
    if (initial) continue;
    const room = ctx.rooms[roomId];
    if (!room) continue;
    const serverHighlight = highlightCount !== undefined && highlightCount > before;
    const dm = isDirectRoom(room, ctx.direct);
    const fresh = (data.timeline?.events ?? []).filter(
      (ev) => ev.sender !== ctx.me && isMessageLike(ev) && !isEdit(ev) && ev.unsigned?.["redacted_because"] === undefined,
    );
    let pick: { ev: MatrixEvent; highlight: boolean } | undefined;
    for (const ev of fresh) {
      const highlight = mentionsMe(ev, ctx.me, ctx.myName);
      if (highlight || dm) pick = { ev, highlight };
    }
    if (!pick && serverHighlight && fresh.length) pick = { ev: fresh[fresh.length - 1]!, highlight: true };
    if (!pick) continue;
    const sender = displayName(room, pick.ev.sender);
    out.push({
      roomId,
      eventId: pick.ev.event_id,
      title: dm ? sender : `${sender} in ${roomName(room, ctx.me)}`,
      body: summary(pick.ev),
      highlight: pick.highlight || serverHighlight,
    });
  }
  return out;
}
