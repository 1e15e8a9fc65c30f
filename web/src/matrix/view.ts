// What the timeline shows: messages with their edits, reactions and
// redactions applied, as the events themselves say (no server aggregation).
import type { MatrixEvent, TimelineItem } from "./types";

export interface Reaction {
  key: string;
  count: number;
  senders: string[];
  /** Event id of my own reaction with this key, to take it back. */
  mine?: string | undefined;
}

export interface ViewItem {
  item: TimelineItem;
  event: MatrixEvent;
  /** Content after the latest edit by the original sender. */
  content: Record<string, unknown>;
  edited: boolean;
  redacted: boolean;
  reactions: Reaction[];
  replyTo?: string | undefined;
}

function relatesTo(ev: MatrixEvent): Record<string, unknown> | undefined {
  const r = ev.content["m.relates_to"];
  return r && typeof r === "object" ? (r as Record<string, unknown>) : undefined;
}

function redactsOf(ev: MatrixEvent): string | undefined {
  if (ev.type !== "m.room.redaction") return undefined;
  const r = ev.redacts ?? ev.content["redacts"];
  return typeof r === "string" ? r : undefined;
}

/** Events shown as their own rows (not edits, reactions or redactions). */
export function isShown(ev: MatrixEvent): boolean {
  if (ev.type === "m.reaction" || ev.type === "m.room.redaction") return false;
  if (relatesTo(ev)?.["rel_type"] === "m.replace") return false;
  return (
    ev.type === "m.room.message" ||
    ev.type === "m.room.encrypted" ||
    ev.type === "m.sticker" ||
    ev.type === "m.room.member" ||
    ev.type === "m.room.name" ||
    ev.type === "m.room.topic" ||
    ev.type === "m.room.create" ||
    ev.type === "m.room.encryption"
  );
}

export function buildView(timeline: TimelineItem[], me: string): ViewItem[] {
  const redacted = new Set<string>();
  for (const t of timeline) {
    const target = redactsOf(t.event);
    if (target) redacted.add(target);
    if (t.event.unsigned?.redacted_because) redacted.add(t.event.event_id);
  }
  const edits = new Map<string, MatrixEvent>();
  const reactions = new Map<string, Map<string, Reaction>>();
  const byId = new Map<string, MatrixEvent>();
  for (const t of timeline) byId.set(t.event.event_id, t.event);
  for (const t of timeline) {
    const ev = t.event;
    if (redacted.has(ev.event_id)) continue;
    const rel = relatesTo(ev);
    const target = typeof rel?.["event_id"] === "string" ? rel["event_id"] : undefined;
    if (!target) continue;
    if (rel?.["rel_type"] === "m.replace" && ev.type === "m.room.message") {
      // Only the original sender may edit (spec: event replacements).
      if (byId.get(target)?.sender === ev.sender) edits.set(target, ev);
    } else if (rel?.["rel_type"] === "m.annotation" && ev.type === "m.reaction") {
      const key = typeof rel["key"] === "string" ? rel["key"] : "";
      if (!key) continue;
      const forTarget = reactions.get(target) ?? new Map<string, Reaction>();
      reactions.set(target, forTarget);
      const r = forTarget.get(key) ?? { key, count: 0, senders: [] };
      if (r.senders.includes(ev.sender)) continue;
      r.count += 1;
      r.senders.push(ev.sender);
      if (ev.sender === me) r.mine = ev.event_id;
      forTarget.set(key, r);
    }
  }
  const out: ViewItem[] = [];
  for (const t of timeline) {
    const ev = t.event;
    if (!isShown(ev)) continue;
    const isRedacted = redacted.has(ev.event_id);
    const edit = edits.get(ev.event_id);
    const newContent = edit?.content["m.new_content"];
    const content =
      isRedacted ? {} : newContent && typeof newContent === "object" ? (newContent as Record<string, unknown>) : ev.content;
    const inReply = relatesTo(ev)?.["m.in_reply_to"] as Record<string, unknown> | undefined;
    out.push({
      item: t,
      event: ev,
      content,
      edited: edit !== undefined && !isRedacted,
      redacted: isRedacted,
      reactions: isRedacted ? [] : [...(reactions.get(ev.event_id)?.values() ?? [])],
      replyTo: typeof inReply?.["event_id"] === "string" ? inReply["event_id"] : undefined,
    });
  }
  return out;
}

/** The body without a reply fallback (`> <@user> quoted` lines then a blank line). */
export function stripReplyFallback(body: string): string {
  if (!body.startsWith("> ")) return body;
  const lines = body.split("\n");
  let i = 0;
  while (i < lines.length && lines[i]!.startsWith(">")) i++;
  if (i < lines.length && lines[i] === "") i++;
  return lines.slice(i).join("\n");
}
