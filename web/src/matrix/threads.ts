// Threads as the events say (m.relates_to rel_type m.thread), plus the
// server's bundled summary (unsigned["m.relations"]["m.thread"]) when present.
import type { MatrixEvent, TimelineItem } from "./types";

export interface ThreadSummary {
  rootId: string;
  count: number;
  latest: MatrixEvent | undefined;
}

function relation(ev: MatrixEvent): Record<string, unknown> | undefined {
  const r = ev.content["m.relates_to"];
  return r && typeof r === "object" ? (r as Record<string, unknown>) : undefined;
}

/** The thread root an event replies in, if it is a thread reply. */
export function threadRootOf(ev: MatrixEvent): string | undefined {
  const rel = relation(ev);
  return rel?.["rel_type"] === "m.thread" && typeof rel["event_id"] === "string" ? rel["event_id"] : undefined;
}

/** Is it a thread reply (kept out of the main timeline)? */
export function isThreadReply(ev: MatrixEvent): boolean {
  return threadRootOf(ev) !== undefined;
}

function isCountable(ev: MatrixEvent): boolean {
  return ev.type === "m.room.message" || ev.type === "m.room.encrypted" || ev.type === "m.sticker";
}

function bundled(ev: MatrixEvent): { count: number; latest: MatrixEvent | undefined } | undefined {
  const rels = ev.unsigned?.["m.relations"];
  const t = rels && typeof rels === "object" ? (rels as Record<string, unknown>)["m.thread"] : undefined;
  if (!t || typeof t !== "object") return undefined;
  const s = t as Record<string, unknown>;
  const latest = s["latest_event"];
  return {
    count: typeof s["count"] === "number" ? s["count"] : 0,
    latest: latest && typeof latest === "object" ? (latest as MatrixEvent) : undefined,
  };
}

/**
 * Thread summaries by root id: replies counted from the timeline, or the
 * server's bundled count when it knows of more (older replies not loaded).
 */
export function threadSummaries(timeline: TimelineItem[]): Map<string, ThreadSummary> {
  const redacted = new Set<string>();
  for (const t of timeline) {
    if (t.event.type === "m.room.redaction") {
      const r = t.event.redacts ?? t.event.content["redacts"];
      if (typeof r === "string") redacted.add(r);
    }
  }
  const out = new Map<string, ThreadSummary>();
  for (const t of timeline) {
    const ev = t.event;
    const root = threadRootOf(ev);
    if (!root || !isCountable(ev) || redacted.has(ev.event_id) || ev.unsigned?.redacted_because) continue;
    const s = out.get(root) ?? { rootId: root, count: 0, latest: undefined };
    s.count += 1;
    if (!s.latest || ev.origin_server_ts >= s.latest.origin_server_ts) s.latest = ev;
    out.set(root, s);
  }
  // The latest reply as edited by its sender.
  const latestIds = new Map([...out.values()].map((s) => [s.latest?.event_id, s] as const));
  for (const t of timeline) {
    const rel = relation(t.event);
    const s = rel?.["rel_type"] === "m.replace" ? latestIds.get(String(rel["event_id"])) : undefined;
    const nc = t.event.content["m.new_content"];
    if (s?.latest && t.event.sender === s.latest.sender && nc && typeof nc === "object") {
      s.latest = { ...s.latest, content: nc as Record<string, unknown> };
    }
  }
  for (const t of timeline) {
    const b = bundled(t.event);
    if (!b) continue;
    const local = out.get(t.event.event_id);
    if (!local) out.set(t.event.event_id, { rootId: t.event.event_id, count: b.count, latest: b.latest });
    else if (b.count > local.count) local.count = b.count;
  }
  return out;
}

/**
 * The events of one thread: the root first, then its replies (and the edits,
 * reactions and redactions that touch them) in timeline order. `extra` are
 * older replies fetched from /relations; duplicates are dropped.
 */
export function threadItems(timeline: TimelineItem[], rootId: string, extra: MatrixEvent[] = []): TimelineItem[] {
  const known = new Set(timeline.map((t) => t.event.event_id));
  const older = extra.filter((e) => !known.has(e.event_id)).map((e): TimelineItem => ({ id: e.event_id, event: e }));
  const all = [...older, ...timeline];
  const members = new Set<string>([rootId]);
  for (const t of all) if (threadRootOf(t.event) === rootId) members.add(t.event.event_id);
  const rootItem = all.find((t) => t.event.event_id === rootId);
  const out: TimelineItem[] = rootItem ? [rootItem] : [];
  for (const t of all) {
    const ev = t.event;
    if (ev.event_id === rootId || ev.type === "m.room.redaction") continue;
    // Replies, and the edits and reactions of the root and replies.
    const target = relation(ev)?.["event_id"];
    if (threadRootOf(ev) === rootId || (typeof target === "string" && members.has(target))) out.push(t);
  }
  // Redactions of anything shown (a message, or a reaction taken back).
  const shown = new Set(out.map((t) => t.event.event_id));
  for (const t of all) {
    const ev = t.event;
    const redacts = ev.type === "m.room.redaction" ? (ev.redacts ?? ev.content["redacts"]) : undefined;
    if (typeof redacts === "string" && shown.has(redacts)) out.push(t);
  }
  return out;
}

/** Content of a reply in a thread: a fallback reply to the latest event for clients without threads. */
export function threadReplyContent(body: Record<string, unknown>, rootId: string, latestId: string | undefined): Record<string, unknown> {
  return {
    ...body,
    "m.relates_to": {
      rel_type: "m.thread",
      event_id: rootId,
      is_falling_back: true,
      "m.in_reply_to": { event_id: latestId ?? rootId },
    },
  };
}
