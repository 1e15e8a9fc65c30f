// Message search (POST /search): this room or every room, highlights as
// <mark> elements around text nodes (never HTML), "Load more" through
// next_batch, and a click that jumps to the message (its thread, or /context
// when the timeline cannot reach it).
import { useState, type FormEvent } from "react";
import { displayName, roomName } from "../matrix/rooms";
import { eventContext, highlightSegments, search, termWords, type EventContext, type SearchHit } from "../matrix/search";
import { threadRootOf } from "../matrix/threads";
import type { MatrixEvent, Room } from "../matrix/types";
import { usePanels, type SearchState } from "../panels";
import { getClient, useStore } from "../store";

export function Highlighted({ text, words }: { text: string; words: string[] }) {
  return (
    <>
      {highlightSegments(text, words).map((s, i) => (s.hit ? <mark key={i}>{s.text}</mark> : <span key={i}>{s.text}</span>))}
    </>
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function inTimeline(roomId: string, eventId: string): boolean {
  return useStore.getState().rooms[roomId]?.timeline.some((t) => t.event.event_id === eventId) ?? false;
}

/** Load history (a few pages at most) until the event is in the room's timeline. */
async function reach(roomId: string, eventId: string): Promise<boolean> {
  for (let i = 0; i < 8 && !inTimeline(roomId, eventId); i++) {
    const room = useStore.getState().rooms[roomId];
    if (!room?.moreHistory) break;
    await useStore.getState().paginate(roomId);
    await sleep(30);
  }
  return inTimeline(roomId, eventId);
}

export function SearchPanel() {
  const s = usePanels((p) => p.search);
  const currentRoomId = useStore((st) => st.currentRoomId);
  const rooms = useStore((st) => st.rooms);
  const me = useStore((st) => st.session?.userId ?? "");
  const [term, setTerm] = useState(s.term);
  const [context, setContext] = useState<{ roomId: string; ctx: EventContext } | undefined>();
  const scopeRoom = s.roomId ? rooms[s.roomId] : undefined;
  const words = s.highlights.length ? [...s.highlights, ...termWords(s.term)] : termWords(s.term);

  async function run(more: boolean) {
    const client = getClient();
    const cur0: SearchState = usePanels.getState().search;
    const q = more ? cur0.term : term.trim();
    if (!client || !q) return;
    const { setSearch } = usePanels.getState();
    setSearch({ busy: true, error: undefined, ...(more ? {} : { term: q, hits: [], nextBatch: undefined, count: undefined, done: false }) });
    try {
      const page = await search(client.http, q, cur0.roomId, more ? cur0.nextBatch : undefined);
      const cur = usePanels.getState().search;
      setSearch({
        busy: false,
        done: true,
        hits: more ? [...cur.hits, ...page.hits] : page.hits,
        count: page.count ?? cur.count,
        highlights: [...new Set([...(more ? cur.highlights : []), ...page.highlights])],
        nextBatch: page.nextBatch,
      });
    } catch (e) {
      setSearch({ busy: false, error: e instanceof Error ? e.message : String(e) });
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    setContext(undefined);
    void run(false);
  }

  async function open(hit: SearchHit) {
    const panels = usePanels.getState();
    const store = useStore.getState();
    if (!store.rooms[hit.roomId] || store.rooms[hit.roomId]?.membership !== "join") {
      // A room we left: show the message in its context here.
      await showContext(hit);
      return;
    }
    if (store.currentRoomId !== hit.roomId) store.openRoom(hit.roomId);
    const root = threadRootOf(hit.event);
    if (root) {
      panels.openThread(hit.roomId, root);
      panels.focusEvent(hit.roomId, hit.targetId);
      return;
    }
    if (await reach(hit.roomId, hit.targetId)) {
      panels.leftForResult();
      panels.focusEvent(hit.roomId, hit.targetId);
    } else {
      await showContext(hit);
    }
  }

  async function showContext(hit: SearchHit) {
    const client = getClient();
    if (!client) return;
    try {
      setContext({ roomId: hit.roomId, ctx: await eventContext(client.http, hit.roomId, hit.targetId) });
    } catch (e) {
      useStore.getState().setError(`Could not load the message: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  return (
    <aside className="side-panel search-panel" aria-label="Search">
      <header className="panel-header">
        <button className="icon" aria-label="Close search" title="Close search" onClick={() => usePanels.getState().closeSearch()}>
          ←
        </button>
        <h2>Search</h2>
      </header>
      <form className="search-form" onSubmit={submit} role="search">
        <input
          type="search"
          aria-label="Search messages"
          placeholder={scopeRoom ? `Search ${roomName(scopeRoom, me)}` : "Search all rooms"}
          value={term}
          maxLength={1000}
          onChange={(e) => setTerm(e.target.value)}
          autoFocus
        />
        <button type="submit" className="primary" disabled={s.busy || !term.trim()}>
          Search
        </button>
      </form>
      <div className="search-scope" role="radiogroup" aria-label="Where to search">
        <label className="check">
          <input
            type="radio"
            name="scope"
            checked={s.roomId !== undefined}
            disabled={!currentRoomId}
            onChange={() => {
              if (!currentRoomId) return;
              usePanels.getState().openSearch(currentRoomId);
              if (term.trim()) void run(false);
            }}
          />
          {scopeRoom ? roomName(scopeRoom, me) : "This room"}
        </label>
        <label className="check">
          <input
            type="radio"
            name="scope"
            checked={s.roomId === undefined}
            onChange={() => {
              usePanels.getState().openSearch(undefined);
              if (term.trim()) void run(false);
            }}
          />
          All rooms
        </label>
      </div>
      <div className="panel-body">
        {context ? (
          <ContextView room={rooms[context.roomId]} roomId={context.roomId} ctx={context.ctx} words={words} onBack={() => setContext(undefined)} />
        ) : (
          <>
            {s.error && <p className="error">{s.error}</p>}
            {s.done && (
              <p className="muted" data-testid="search-count">
                {s.hits.length === 0
                  ? "No messages found."
                  : `${s.count ?? s.hits.length} ${(s.count ?? s.hits.length) === 1 ? "result" : "results"}`}
              </p>
            )}
            <ul className="search-results">
              {s.hits.map((hit) => {
                const room = rooms[hit.roomId];
                return (
                  <li key={`${hit.roomId}/${hit.event.event_id}`}>
                    <button className="search-hit" onClick={() => void open(hit)}>
                      <span className="hit-meta">
                        <strong>{room ? displayName(room, hit.event.sender) : hit.event.sender}</strong>
                        {s.roomId === undefined && <span className="hit-room"> in {room ? roomName(room, me) : hit.roomId}</span>}
                        <time dateTime={new Date(hit.event.origin_server_ts).toISOString()}>
                          {new Date(hit.event.origin_server_ts).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" })}
                        </time>
                      </span>
                      <span className="hit-text">
                        <Highlighted text={hit.text} words={words} />
                      </span>
                    </button>
                  </li>
                );
              })}
            </ul>
            {s.busy && <p className="muted">Searching…</p>}
            {s.nextBatch && !s.busy && (
              <button className="load-more" onClick={() => void run(true)}>
                Load more
              </button>
            )}
          </>
        )}
      </div>
    </aside>
  );
}

function bodyOf(ev: MatrixEvent): string {
  const b = ev.content["body"];
  return typeof b === "string" ? b : ev.type;
}

function ContextView({
  room,
  roomId,
  ctx,
  words,
  onBack,
}: {
  room: Room | undefined;
  roomId: string;
  ctx: EventContext;
  words: string[];
  onBack: () => void;
}) {
  const me = useStore((st) => st.session?.userId ?? "");
  const rows = [...ctx.before, ctx.event, ...ctx.after].filter((e) => e.type === "m.room.message");
  return (
    <div className="context-view">
      <button className="link" onClick={onBack}>
        ← Back to results
      </button>
      <p className="muted">Around this message{room ? ` in ${roomName(room, me)}` : ` in ${roomId}`}:</p>
      <ol className="context-events">
        {rows.map((e) => (
          <li key={e.event_id} className={e.event_id === ctx.event.event_id ? "context-hit" : undefined}>
            <strong>{room ? displayName(room, e.sender) : e.sender}</strong>{" "}
            {e.event_id === ctx.event.event_id ? <Highlighted text={bodyOf(e)} words={words} /> : bodyOf(e)}
          </li>
        ))}
      </ol>
    </div>
  );
}
