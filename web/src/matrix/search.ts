// Server-side search (POST /search, room_events), /context and /relations:
// requests built here, answers turned into plain values. No React.
import { MatrixError, type Http } from "./http";
import type { MatrixEvent } from "./types";

const C = "/_matrix/client/v3";

export interface SearchHit {
  rank: number;
  roomId: string;
  event: MatrixEvent;
  /** The event to jump to: the original message for an edit, else the hit itself. */
  targetId: string;
  /** The text to show: an edit's new body, else the body. */
  text: string;
}

export interface SearchPage {
  hits: SearchHit[];
  count: number | undefined;
  highlights: string[];
  nextBatch: string | undefined;
}

interface RawResult {
  rank?: number;
  result?: MatrixEvent;
}

interface RawResponse {
  search_categories?: {
    room_events?: {
      results?: RawResult[];
      count?: number;
      highlights?: unknown[];
      next_batch?: string;
    };
  };
}

/** The request body: one room, or every room the user is in. */
export function searchBody(term: string, roomId: string | undefined, limit = 20): Record<string, unknown> {
  const filter: Record<string, unknown> = { limit };
  if (roomId) filter["rooms"] = [roomId];
  return {
    search_categories: {
      room_events: { search_term: term, keys: ["content.body"], order_by: "recent", filter },
    },
  };
}

function relation(ev: MatrixEvent): Record<string, unknown> | undefined {
  const r = ev.content["m.relates_to"];
  return r && typeof r === "object" ? (r as Record<string, unknown>) : undefined;
}

export function toHit(raw: RawResult): SearchHit | undefined {
  const ev = raw.result;
  if (!ev || typeof ev.event_id !== "string" || !ev.content || typeof ev.content !== "object") return undefined;
  const rel = relation(ev);
  const newContent = ev.content["m.new_content"];
  const isEdit = rel?.["rel_type"] === "m.replace" && typeof rel["event_id"] === "string";
  const body =
    isEdit && newContent && typeof newContent === "object"
      ? (newContent as Record<string, unknown>)["body"]
      : ev.content["body"];
  const roomId = (ev as { room_id?: unknown }).room_id;
  if (typeof roomId !== "string") return undefined;
  return {
    rank: typeof raw.rank === "number" ? raw.rank : 0,
    roomId,
    event: ev,
    targetId: isEdit ? String(rel["event_id"]) : ev.event_id,
    text: typeof body === "string" ? body : "",
  };
}

export function parseSearch(resp: RawResponse): SearchPage {
  const cat = resp.search_categories?.room_events ?? {};
  return {
    hits: (cat.results ?? []).map(toHit).filter((h): h is SearchHit => h !== undefined),
    count: typeof cat.count === "number" ? cat.count : undefined,
    highlights: (cat.highlights ?? []).filter((h): h is string => typeof h === "string" && h.length > 0),
    nextBatch: typeof cat.next_batch === "string" ? cat.next_batch : undefined,
  };
}

export async function search(http: Http, term: string, roomId: string | undefined, nextBatch?: string): Promise<SearchPage> {
  const resp = await http.request<RawResponse>("POST", `${C}/search`, {
    query: { next_batch: nextBatch },
    body: searchBody(term, roomId),
  });
  return parseSearch(resp);
}

export interface Segment {
  text: string;
  hit: boolean;
}

/**
 * Split `text` into plain and highlighted runs, for rendering as text nodes
 * and <mark> elements (never as HTML). Highlights are matched case-insensitively;
 * the server's highlight words and the user's own terms both count.
 */
export function highlightSegments(text: string, highlights: string[]): Segment[] {
  const words = [...new Set(highlights.map((h) => h.trim()).filter((h) => h.length > 0))].sort((a, b) => b.length - a.length);
  if (!words.length || !text) return text ? [{ text, hit: false }] : [];
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(escaped.join("|"), "giu");
  const out: Segment[] = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    const start = m.index ?? 0;
    if (m[0].length === 0) continue;
    if (start > last) out.push({ text: text.slice(last, start), hit: false });
    out.push({ text: m[0], hit: true });
    last = start + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last), hit: false });
  return out;
}

/** The words of a search term, for highlighting when the server names none. */
export function termWords(term: string): string[] {
  return term.split(/\s+/u).map((w) => w.replace(/^["'(]+|["')]+$/gu, "")).filter((w) => w.length > 0);
}

// ---- /context ------------------------------------------------------------------

export interface EventContext {
  event: MatrixEvent;
  before: MatrixEvent[];
  after: MatrixEvent[];
}

export async function eventContext(http: Http, roomId: string, eventId: string, limit = 10): Promise<EventContext> {
  const r = await http.request<{ event: MatrixEvent; events_before?: MatrixEvent[]; events_after?: MatrixEvent[] }>(
    "GET",
    `${C}/rooms/${encodeURIComponent(roomId)}/context/${encodeURIComponent(eventId)}`,
    { query: { limit } },
  );
  // events_before is newest first.
  return { event: r.event, before: [...(r.events_before ?? [])].reverse(), after: r.events_after ?? [] };
}

/** One event (GET /rooms/{roomId}/event/{eventId}). */
export async function fetchEvent(http: Http, roomId: string, eventId: string): Promise<MatrixEvent> {
  return http.request<MatrixEvent>("GET", `${C}/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`);
}

// ---- /relations (threads) ------------------------------------------------------

/**
 * A page of a thread's replies known to the server, newest page first (events
 * oldest first within it; `nextBatch` reaches further back), or undefined when
 * the server does not serve /relations (404 M_UNRECOGNIZED, or 404/405 at all).
 */
export async function threadRelations(
  http: Http,
  roomId: string,
  rootId: string,
  from?: string,
  limit = 50,
): Promise<{ events: MatrixEvent[]; nextBatch: string | undefined } | undefined> {
  try {
    const r = await http.request<{ chunk?: MatrixEvent[]; next_batch?: string }>(
      "GET",
      `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(rootId)}/m.thread`,
      { query: { limit, dir: "b", from } },
    );
    return { events: [...(r.chunk ?? [])].reverse(), nextBatch: typeof r.next_batch === "string" ? r.next_batch : undefined };
  } catch (e) {
    if (e instanceof MatrixError && (e.status === 404 || e.status === 405 || e.errcode === "M_UNRECOGNIZED")) return undefined;
    throw e;
  }
}
