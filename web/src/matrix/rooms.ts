// Pure room-state arithmetic: folding /sync and /messages answers into Room
// values, and reconciling local echoes with the events the server sends back.
import type { MatrixEvent, Room, SyncRoom, TimelineItem } from "./types";
import { emptyRoom } from "./types";

export function applyStateEvent(room: Room, ev: MatrixEvent): Room {
  if (ev.state_key === undefined) return room;
  const c = ev.content;
  switch (ev.type) {
    case "m.room.name":
      return { ...room, name: str(c["name"]) || undefined };
    case "m.room.topic":
      return { ...room, topic: str(c["topic"]) || undefined };
    case "m.room.canonical_alias":
      return { ...room, canonicalAlias: str(c["alias"]) || undefined };
    case "m.room.encryption":
      return { ...room, encrypted: true };
    case "m.room.member": {
      const membership = str(c["membership"]) || "leave";
      const prev = room.members[ev.state_key];
      const displayName = str(c["displayname"]) || (membership === "leave" ? prev?.displayName : undefined);
      return {
        ...room,
        members: { ...room.members, [ev.state_key]: { userId: ev.state_key, displayName, membership } },
      };
    }
    default:
      return room;
  }
}

/** Merge new timeline events, replacing the local echoes they confirm. */
export function mergeTimeline(
  timeline: TimelineItem[],
  events: MatrixEvent[],
  limited: boolean,
): TimelineItem[] {
  // Local echoes (sending, failed, or sent but not yet seen in /sync) stay last.
  const pending = timeline.filter((t) => t.status !== undefined);
  const confirmed = limited ? [] : timeline.filter((t) => !pending.includes(t));
  const seen = new Set(confirmed.map((t) => t.id));
  let stillPending = pending;
  for (const ev of events) {
    const txn = ev.unsigned?.transaction_id;
    const echo = stillPending.find((p) => (txn !== undefined && p.txnId === txn) || p.id === ev.event_id);
    if (echo) stillPending = stillPending.filter((p) => p !== echo);
    if (seen.has(ev.event_id)) continue;
    seen.add(ev.event_id);
    confirmed.push(echo?.localUrl ? { id: ev.event_id, event: ev, localUrl: echo.localUrl } : { id: ev.event_id, event: ev });
  }
  // A local echo whose send already answered keeps its event id; drop it if
  // the server event is already in the timeline (it came in an earlier sync).
  stillPending = stillPending.filter((p) => !seen.has(p.id));
  return [...confirmed, ...stillPending];
}

export function isMessageLike(ev: MatrixEvent): boolean {
  return ev.type === "m.room.message" || ev.type === "m.room.encrypted" || ev.type === "m.sticker";
}

/** Fold one room of a /sync answer into the room. */
export function applyJoinedRoom(
  prev: Room | undefined,
  roomId: string,
  data: SyncRoom,
  me: string,
  viewing: boolean,
): Room {
  // A room seen only as an invite so far starts its timeline here.
  const fresh = !prev || prev.membership !== "join";
  let room: Room = prev ?? emptyRoom(roomId);
  room = { ...room, membership: "join", inviter: undefined };
  for (const ev of data.state?.events ?? []) room = applyStateEvent(room, ev);
  const events = data.timeline?.events ?? [];
  for (const ev of events) room = applyStateEvent(room, ev);
  const limited = data.timeline?.limited === true;
  if (events.length || limited) {
    room = { ...room, timeline: mergeTimeline(room.timeline, events, limited) };
  }
  if (fresh || limited) {
    room = { ...room, prevBatch: data.timeline?.prev_batch, moreHistory: data.timeline?.prev_batch !== undefined };
  }
  if (data.summary?.["m.heroes"]) room = { ...room, heroes: data.summary["m.heroes"] };
  const last = events[events.length - 1];
  if (last) room = { ...room, lastActivity: Math.max(room.lastActivity, last.origin_server_ts) };
  // The server's count knows about receipts from our other devices; count
  // locally only when it says nothing.
  const serverCount = data.unread_notifications?.notification_count;
  if (serverCount !== undefined) {
    room = { ...room, unread: serverCount };
  } else if (prev && !viewing) {
    const fresh = events.filter((e) => isMessageLike(e) && e.sender !== me).length;
    if (fresh) room = { ...room, unread: room.unread + fresh };
  }
  if (viewing) room = { ...room, unread: 0 };
  for (const ev of data.ephemeral?.events ?? []) {
    if (ev.type === "m.typing") {
      const ids = ev.content["user_ids"];
      room = { ...room, typing: Array.isArray(ids) ? ids.filter((u): u is string => typeof u === "string" && u !== me) : [] };
    } else if (ev.type === "m.receipt") {
      const receipts = { ...room.receipts };
      for (const [eventId, byType] of Object.entries(ev.content)) {
        const reads = (byType as Record<string, Record<string, unknown>>)["m.read"] ?? {};
        for (const userId of Object.keys(reads)) receipts[userId] = eventId;
      }
      room = { ...room, receipts };
    }
  }
  return room;
}

export function applyInvitedRoom(prev: Room | undefined, roomId: string, data: SyncRoom, me: string): Room {
  let room: Room = { ...(prev ?? emptyRoom(roomId)), membership: "invite" };
  for (const ev of data.invite_state?.events ?? []) {
    room = applyStateEvent(room, ev);
    if (ev.type === "m.room.member" && ev.state_key === me) {
      room = { ...room, inviter: ev.sender, isDirect: ev.content["is_direct"] === true };
      if (ev.origin_server_ts) room = { ...room, lastActivity: ev.origin_server_ts };
    }
  }
  if (!room.lastActivity) room = { ...room, lastActivity: Date.now() };
  return room;
}

/** Older events from /messages (dir=b): `chunk` is newest first. */
export function prependHistory(room: Room, chunk: MatrixEvent[], end: string | undefined): Room {
  const have = new Set(room.timeline.map((t) => t.id));
  const older = [...chunk].reverse().filter((e) => !have.has(e.event_id));
  return {
    ...room,
    timeline: [...older.map((e) => ({ id: e.event_id, event: e })), ...room.timeline],
    prevBatch: end,
    moreHistory: end !== undefined && chunk.length > 0,
  };
}

export function displayName(room: Room, userId: string): string {
  return room.members[userId]?.displayName || userId;
}

export function roomName(room: Room, me: string): string {
  if (room.name) return room.name;
  if (room.canonicalAlias) return room.canonicalAlias;
  const others = (room.heroes.length ? room.heroes : Object.keys(room.members)).filter(
    (u) => u !== me && (room.heroes.length > 0 || room.members[u]?.membership === "join" || room.members[u]?.membership === "invite"),
  );
  if (others.length) return others.slice(0, 3).map((u) => displayName(room, u)).join(", ");
  if (room.inviter) return displayName(room, room.inviter);
  return "Empty room";
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}
