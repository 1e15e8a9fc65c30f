import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { displayName } from "../matrix/rooms";
import type { MatrixEvent, Room } from "../matrix/types";
import { buildView, stripReplyFallback, type ViewItem } from "../matrix/view";
import { isThreadReply, threadSummaries, type ThreadSummary } from "../matrix/threads";
import { usePanels } from "../panels";
import { getClient, useStore } from "../store";
import { FileBody, FullImageLink } from "./Files";
import { Markdown } from "./Markdown";

const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉"];

export function dayLabel(ts: number, now = Date.now()): string {
  const d = new Date(ts);
  const today = new Date(now);
  const sameDay = (a: Date, b: Date) => a.toDateString() === b.toDateString();
  if (sameDay(d, today)) return "Today";
  const yesterday = new Date(now - 86400000);
  if (sameDay(d, yesterday)) return "Yesterday";
  return d.toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

function timeLabel(ts: number): string {
  return new Date(ts).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export function Timeline({ room, me }: { room: Room; me: string }) {
  // Thread replies live in the thread panel; their roots show a summary here.
  const view = useMemo(() => buildView(room.timeline, me).filter((v) => !isThreadReply(v.event)), [room.timeline, me]);
  const threads = useMemo(() => threadSummaries(room.timeline), [room.timeline]);
  const focus = usePanels((s) => s.focus);
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const [showJump, setShowJump] = useState(false);
  const prevHeight = useRef<{ first: string | undefined; height: number }>({ first: undefined, height: 0 });
  const paginate = useStore((s) => s.paginate);

  // Keep the view still when history is prepended, and follow new messages at the bottom.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const first = view[0]?.item.id;
    if (prevHeight.current.first !== undefined && first !== prevHeight.current.first && !atBottom.current) {
      el.scrollTop += el.scrollHeight - prevHeight.current.height;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
    prevHeight.current = { first, height: el.scrollHeight };
  }, [view]);

  // Jump to an event (a search result): scroll it into view and mark it.
  const focused = useRef(0);
  useEffect(() => {
    const el = scroller.current;
    if (!el || !focus || focus.roomId !== room.roomId || focused.current === focus.seq) return;
    const target = el.querySelector<HTMLElement>(`[data-event-id="${CSS.escape(focus.eventId)}"]`);
    if (!target) return;
    focused.current = focus.seq;
    target.scrollIntoView({ block: "center" });
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    setShowJump(!atBottom.current);
    target.classList.add("focused");
    const t = setTimeout(() => target.classList.remove("focused"), 2500);
    return () => clearTimeout(t);
  }, [focus, view, room.roomId]);

  // Fill the screen: fetch history until it scrolls or the room's start is reached.
  useEffect(() => {
    const el = scroller.current;
    if (el && room.moreHistory && el.scrollHeight <= el.clientHeight + 40) void paginate(room.roomId);
  }, [view, room.moreHistory, room.roomId, paginate]);

  function onScroll() {
    const el = scroller.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    setShowJump(!atBottom.current);
    prevHeight.current.height = el.scrollHeight;
    if (el.scrollTop < 200 && room.moreHistory) void paginate(room.roomId);
  }

  function jump() {
    const el = scroller.current;
    if (!el) return;
    el.scrollTop = el.scrollHeight;
    atBottom.current = true;
    setShowJump(false);
  }

  const byId = useMemo(() => new Map(room.timeline.map((t) => [t.event.event_id, t.event])), [room.timeline]);
  const readers = useMemo(() => {
    const out = new Map<string, string[]>();
    for (const [userId, eventId] of Object.entries(room.receipts)) {
      if (userId === me) continue;
      out.set(eventId, [...(out.get(eventId) ?? []), userId]);
    }
    return out;
  }, [room.receipts, me]);

  let lastDay = "";
  let lastSender = "";
  return (
    <div className="timeline-wrap">
      <div className="timeline" ref={scroller} onScroll={onScroll} role="log" aria-label="Messages" aria-live="polite">
        {room.moreHistory ? (
          <p className="history-note">Loading history…</p>
        ) : (
          <p className="history-note">This is the start of the room.</p>
        )}
        {view.map((v) => {
          const day = dayLabel(v.event.origin_server_ts);
          const newDay = day !== lastDay;
          lastDay = day;
          const grouped = !newDay && lastSender === v.event.sender && isMessage(v.event);
          lastSender = isMessage(v.event) ? v.event.sender : "";
          const seenBy = readers.get(v.event.event_id);
          return (
            <div key={v.item.id}>
              {newDay && (
                <div className="day" role="separator">
                  <span>{day}</span>
                </div>
              )}
              {isMessage(v.event) ? (
                <Message
                  v={v}
                  room={room}
                  me={me}
                  grouped={grouped}
                  replyEvent={v.replyTo ? byId.get(v.replyTo) : undefined}
                  thread={threads.get(v.event.event_id)}
                />
              ) : (
                <StateRow ev={v.event} room={room} />
              )}
              {seenBy && (
                <div className="seen" data-testid="seen-by">
                  Seen by {seenBy.map((u) => displayName(room, u)).join(", ")}
                </div>
              )}
            </div>
          );
        })}
      </div>
      {showJump && (
        <button className="jump" onClick={jump}>
          Jump to latest ↓
        </button>
      )}
    </div>
  );
}

function isMessage(ev: MatrixEvent): boolean {
  return ev.type === "m.room.message" || ev.type === "m.room.encrypted" || ev.type === "m.sticker";
}

function StateRow({ ev, room }: { ev: MatrixEvent; room: Room }) {
  const who = displayName(room, ev.sender);
  const c = ev.content;
  let text = "";
  switch (ev.type) {
    case "m.room.create":
      text = `${who} created the room`;
      break;
    case "m.room.name":
      text = `${who} named the room "${String(c["name"] ?? "")}"`;
      break;
    case "m.room.topic":
      text = `${who} set the topic: ${String(c["topic"] ?? "")}`;
      break;
    case "m.room.encryption":
      text = `${who} turned on end-to-end encryption`;
      break;
    case "m.room.member": {
      const target = String(c["displayname"] ?? ev.state_key ?? "");
      const m = c["membership"];
      text =
        m === "join"
          ? `${target} joined`
          : m === "invite"
            ? `${who} invited ${target}`
            : m === "leave"
              ? ev.sender === ev.state_key
                ? `${who} left`
                : `${who} removed ${ev.state_key ?? ""}`
              : m === "ban"
                ? `${who} banned ${ev.state_key ?? ""}`
                : `${target}: ${String(m)}`;
      break;
    }
  }
  return <div className="state-row">{text}</div>;
}

export function Message({
  v,
  room,
  me,
  grouped,
  replyEvent,
  thread,
  inThread = false,
  onEdit,
}: {
  v: ViewItem;
  room: Room;
  me: string;
  grouped: boolean;
  replyEvent: MatrixEvent | undefined;
  thread?: ThreadSummary | undefined;
  /** Shown in the thread panel: no reply, edit or thread actions there. */
  inThread?: boolean;
  /** In the thread panel: edit with the panel's composer. */
  onEdit?: ((eventId: string) => void) | undefined;
}) {
  const { event: ev, item } = v;
  const mine = ev.sender === me;
  const local = item.status !== undefined && item.status !== "sent";
  const { setReplyTo, setEditing, redact, react, retry } = useStore.getState();
  const editing = useStore((s) => s.editing === ev.event_id);
  return (
    <article
      className={"msg" + (grouped ? " grouped" : "") + (mine ? " mine" : "") + (local ? " local" : "")}
      data-event-id={ev.event_id}
      data-status={item.status ?? "remote"}
      tabIndex={0}
    >
      {!grouped && (
        <header>
          <span className="sender">{displayName(room, ev.sender)}</span>
          <time dateTime={new Date(ev.origin_server_ts).toISOString()}>{timeLabel(ev.origin_server_ts)}</time>
        </header>
      )}
      {v.replyTo && !isFallback(ev) && (
        <blockquote className="reply-quote">
          {replyEvent ? (
            <>
              <strong>{displayName(room, replyEvent.sender)}</strong> {String(replyEvent.content["body"] ?? "")}
            </>
          ) : (
            "In reply to an earlier message"
          )}
        </blockquote>
      )}
      <div className="body">
        <Body v={v} />
        {v.edited && <span className="edited"> (edited)</span>}
      </div>
      {v.reactions.length > 0 && (
        <div className="reactions">
          {v.reactions.map((r) => (
            <button
              key={r.key}
              className={"reaction" + (r.mine ? " mine" : "")}
              title={r.senders.map((u) => displayName(room, u)).join(", ")}
              onClick={() => (r.mine ? redact(room.roomId, r.mine) : react(room.roomId, ev.event_id, r.key))}
            >
              {r.key} <span className="count">{r.count}</span>
            </button>
          ))}
        </div>
      )}
      {thread && thread.count > 0 && !inThread && !v.redacted && (
        <button
          className="thread-summary link"
          onClick={() => usePanels.getState().openThread(room.roomId, ev.event_id)}
          aria-label={`${thread.count} ${thread.count === 1 ? "reply" : "replies"} in thread`}
        >
          {thread.count} {thread.count === 1 ? "reply" : "replies"}
          {thread.latest && (
            <span className="thread-latest">
              {" "}
              · {displayName(room, thread.latest.sender)}: {String(thread.latest.content["body"] ?? "")}
            </span>
          )}
        </button>
      )}
      {item.status === "sending" && <span className="status">Sending…</span>}
      {item.status === "failed" && (
        <span className="status failed">
          Not sent.{" "}
          <button className="link" onClick={() => item.txnId && retry(room.roomId, item.txnId)}>
            Retry
          </button>
        </span>
      )}
      {!local && !v.redacted && !ev.event_id.startsWith("~") && ev.type === "m.room.message" && (
        <div className="tools" role="toolbar" aria-label="Message actions">
          {QUICK_REACTIONS.map((k) => (
            <button key={k} title={`React ${k}`} onClick={() => react(room.roomId, ev.event_id, k)}>
              {k}
            </button>
          ))}
          {!inThread && (
            <button title="Reply" onClick={() => setReplyTo(ev.event_id)}>
              ↩
            </button>
          )}
          {!inThread && !isThreadReply(ev) && (
            <button title="Reply in thread" onClick={() => usePanels.getState().openThread(room.roomId, ev.event_id)}>
              <svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
                <path d="M4 5h16v11H9l-5 4z" />
                <path d="M8 9h8M8 12h5" />
              </svg>
            </button>
          )}
          {mine && (!inThread || onEdit) && v.content["msgtype"] === "m.text" && (
            <button title="Edit" onClick={() => (onEdit ? onEdit(ev.event_id) : setEditing(editing ? undefined : ev.event_id))}>
              ✎
            </button>
          )}
          {mine && (
            <button
              title="Delete"
              onClick={() => {
                if (globalThis.confirm?.("Delete this message?") ?? true) redact(room.roomId, ev.event_id);
              }}
            >
              ✕
            </button>
          )}
        </div>
      )}
    </article>
  );
}

/** A thread reply's m.in_reply_to that only exists for clients without threads. */
function isFallback(ev: MatrixEvent): boolean {
  const rel = ev.content["m.relates_to"] as Record<string, unknown> | undefined;
  return rel?.["rel_type"] === "m.thread" && rel["is_falling_back"] === true;
}

function Body({ v }: { v: ViewItem }) {
  if (v.redacted) return <em className="muted">Message deleted</em>;
  if (v.event.type === "m.room.encrypted")
    return <em className="muted">🔒 Encrypted message: this client cannot read it yet</em>;
  const c = v.content;
  const body = typeof c["body"] === "string" ? c["body"] : "";
  if (c["msgtype"] === "m.image") return <ImageBody v={v} />;
  if (c["msgtype"] === "m.file" || c["msgtype"] === "m.audio" || c["msgtype"] === "m.video") return <FileBody v={v} />;
  if (c["msgtype"] === "m.emote") {
    return (
      <span className="emote">
        * <Markdown text={body} />
      </span>
    );
  }
  return (
    <span className={c["msgtype"] === "m.notice" ? "notice" : undefined}>
      <Markdown text={v.replyTo ? stripReplyFallback(body) : body} />
    </span>
  );
}

function ImageBody({ v }: { v: ViewItem }) {
  const url = typeof v.content["url"] === "string" ? v.content["url"] : undefined;
  const [src, setSrc] = useState<string | undefined>(v.item.localUrl);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    if (v.item.localUrl || !url) return;
    let objectUrl: string | undefined;
    let live = true;
    getClient()
      ?.thumbnail(url, 640, 480)
      .then((blob) => {
        if (!live) return;
        objectUrl = URL.createObjectURL(blob);
        setSrc(objectUrl);
      })
      .catch(() => live && setFailed(true));
    return () => {
      live = false;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [url, v.item.localUrl]);
  const alt = typeof v.content["body"] === "string" ? v.content["body"] : "image";
  return (
    <figure className="image">
      {src ? <img src={src} alt={alt} /> : <div className="image-placeholder">{failed ? "Image unavailable" : "Loading image…"}</div>}
      {v.item.progress !== undefined && v.item.progress < 1 && (
        <progress value={v.item.progress} max={1} aria-label="Upload progress" />
      )}
      {url && <FullImageLink mxc={url} name={alt} />}
    </figure>
  );
}
