// A thread: its root and replies from the room's timeline (plus older replies
// from /relations when the server serves it), and a composer that replies in
// the thread.
import { useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import { fetchEvent, threadRelations } from "../matrix/search";
import { threadItems, threadSummaries } from "../matrix/threads";
import type { MatrixEvent } from "../matrix/types";
import { buildView } from "../matrix/view";
import { usePanels } from "../panels";
import { getClient, useStore } from "../store";
import { Message } from "./Timeline";

export function ThreadPanel({ roomId, rootId }: { roomId: string; rootId: string }) {
  const room = useStore((s) => s.rooms[roomId]);
  const me = useStore((s) => s.session?.userId ?? "");
  const focus = usePanels((s) => s.focus);
  const [older, setOlder] = useState<MatrixEvent[]>([]);
  /** /relations token for earlier replies, while there are more. */
  const [earlier, setEarlier] = useState<string | undefined>();
  const [loadingEarlier, setLoadingEarlier] = useState(false);
  const [text, setText] = useState("");
  const [editing, setEditing] = useState<string | undefined>();
  const list = useRef<HTMLDivElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const rootLoaded = room?.timeline.some((t) => t.event.event_id === rootId) ?? false;

  // Older replies (and the root, when the timeline does not reach it).
  useEffect(() => {
    const client = getClient();
    if (!client) return;
    let live = true;
    setOlder([]);
    setEarlier(undefined);
    void (async () => {
      const got: MatrixEvent[] = [];
      if (!rootLoaded) {
        try {
          got.push(await fetchEvent(client.http, roomId, rootId));
        } catch {
          /* shown as "earlier message" */
        }
      }
      try {
        const page = await threadRelations(client.http, roomId, rootId);
        got.push(...(page?.events ?? []));
        if (live) setEarlier(page?.nextBatch);
      } catch {
        /* the timeline's replies are still shown */
      }
      if (live && got.length) setOlder(got);
    })();
    return () => {
      live = false;
    };
  }, [roomId, rootId]);

  const items = useMemo(() => threadItems(room?.timeline ?? [], rootId, older), [room?.timeline, rootId, older]);
  const view = useMemo(() => buildView(items, me), [items, me]);
  const root = view.find((v) => v.event.event_id === rootId);
  const replies = view.filter((v) => v.event.event_id !== rootId);
  const summary = useMemo(() => threadSummaries(room?.timeline ?? []).get(rootId), [room?.timeline, rootId]);
  const total = Math.max(replies.length, summary?.count ?? 0);

  // Follow new replies (not earlier ones loaded above).
  const lastReply = replies.at(-1)?.item.id;
  useLayoutEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lastReply]);

  useEffect(() => {
    input.current?.focus();
  }, [rootId]);

  useEffect(() => {
    if (!focus || focus.roomId !== roomId) return;
    const el = list.current?.querySelector<HTMLElement>(`[data-event-id="${CSS.escape(focus.eventId)}"]`);
    if (!el) return;
    el.scrollIntoView({ block: "center" });
    el.classList.add("focused");
    const t = setTimeout(() => el.classList.remove("focused"), 2500);
    return () => clearTimeout(t);
  }, [focus, roomId, view]);

  async function loadEarlier() {
    const client = getClient();
    if (!client || !earlier || loadingEarlier) return;
    setLoadingEarlier(true);
    try {
      const page = await threadRelations(client.http, roomId, rootId, earlier);
      setOlder((cur) => [...(page?.events ?? []), ...cur]);
      setEarlier(page?.nextBatch);
    } catch (e) {
      useStore.getState().setError(`Could not load earlier replies: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      setLoadingEarlier(false);
    }
  }

  function startEdit(eventId: string) {
    const v = view.find((x) => x.event.event_id === eventId);
    setEditing(eventId);
    setText(typeof v?.content["body"] === "string" ? v.content["body"] : "");
    input.current?.focus();
  }

  function cancelEdit() {
    setEditing(undefined);
    setText("");
  }

  function submit() {
    const body = text.trim();
    if (!body) return;
    if (editing) useStore.getState().editMessage(roomId, editing, body);
    else useStore.getState().sendThreadReply(roomId, rootId, body);
    setEditing(undefined);
    setText("");
  }

  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === "Escape") {
      if (editing) cancelEdit();
      else usePanels.getState().close();
    }
  }

  if (!room) return null;
  return (
    <aside className="side-panel thread-panel" aria-label="Thread">
      <header className="panel-header">
        <button className="icon" aria-label="Close thread" title="Close thread" onClick={() => usePanels.getState().close()}>
          ←
        </button>
        <h2>Thread</h2>
      </header>
      <div className="panel-body thread-list" ref={list} role="log" aria-label="Thread messages">
        {root ? (
          <Message v={root} room={room} me={me} grouped={false} replyEvent={undefined} inThread onEdit={startEdit} />
        ) : (
          <p className="muted">The first message is not available.</p>
        )}
        <div className="thread-count" role="separator">
          <span>
            {total} {total === 1 ? "reply" : "replies"}
          </span>
        </div>
        {earlier && (
          <button className="load-more" onClick={() => void loadEarlier()} disabled={loadingEarlier}>
            {loadingEarlier ? "Loading…" : "Load earlier replies"}
          </button>
        )}
        {replies.map((v, i) => (
          <Message
            key={v.item.id}
            v={v}
            room={room}
            me={me}
            grouped={i > 0 && replies[i - 1]!.event.sender === v.event.sender}
            replyEvent={undefined}
            inThread
            onEdit={startEdit}
          />
        ))}
      </div>
      {!room.encrypted && (
        <div className="composer">
          {editing && (
            <div className="composing-context">
              <span>Editing message</span>
              <button className="link" onClick={cancelEdit}>
                Cancel
              </button>
            </div>
          )}
          <div className="composer-row">
            <textarea
              ref={input}
              rows={1}
              aria-label="Reply in thread"
              placeholder="Reply in thread"
              value={text}
              onChange={(e) => setText(e.target.value)}
              onKeyDown={onKey}
            />
            <button className="primary" onClick={submit} aria-label="Send reply">
              Send
            </button>
          </div>
        </div>
      )}
    </aside>
  );
}
