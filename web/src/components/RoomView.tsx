import { useEffect, useRef, useState, type KeyboardEvent } from "react";
import { displayName, roomName } from "../matrix/rooms";
import type { Room } from "../matrix/types";
import { usePanels } from "../panels";
import { getClient, useStore } from "../store";
import { InviteDialog } from "./Dialogs";
import { Timeline } from "./Timeline";
import { DmPresence } from "./Live";
import { dmPartner } from "../matrix/presence";
import { isDirectRoom } from "../matrix/notify";
import { MembersButton } from "./Members";

export function RoomView({ roomId }: { roomId: string }) {
  const room = useStore((s) => s.rooms[roomId]);
  const me = useStore((s) => s.session?.userId ?? "");
  const direct = useStore((s) => s.direct);
  const [inviting, setInviting] = useState(false);
  const back = () => {
    if (!usePanels.getState().backFromRoom()) useStore.getState().openRoom(undefined);
  };
  if (!room) {
    return (
      <section className="room">
        <header className="room-header">
          <button className="icon back" aria-label="Back to rooms" onClick={back}>
            ←
          </button>
          <h1>Joining…</h1>
        </header>
      </section>
    );
  }
  const name = roomName(room, me);
  async function leave() {
    if (!(globalThis.confirm?.(`Leave ${name}?`) ?? true)) return;
    try {
      await getClient()?.leave(roomId);
      useStore.getState().openRoom(undefined);
    } catch (e) {
      useStore.getState().setError(e instanceof Error ? e.message : String(e));
    }
  }
  return (
    <section className="room" aria-label={name}>
      <header className="room-header">
        <button className="icon back" aria-label="Back to rooms" onClick={back}>
          ←
        </button>
        <div className="room-title">
          <h1>{name}</h1>
          {room.topic && <p className="topic">{room.topic}</p>}
          {isDirectRoom(room, direct) && <DmPresence userId={dmPartner(room, me, direct)} />}
        </div>
        <button className="icon" title="Search this room" aria-label="Search this room" onClick={() => usePanels.getState().openSearch(roomId, "room")}>
          <svg width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
            <circle cx="11" cy="11" r="7" />
            <path d="M20 20l-4-4" />
          </svg>
        </button>
        <MembersButton room={room} />
        <button onClick={() => setInviting(true)}>Invite</button>
        <button onClick={() => void leave()}>Leave</button>
      </header>
      {room.encrypted && (
        <div className="notice" role="note">
          🔒 This room is end-to-end encrypted. This client cannot read or send encrypted messages yet.
        </div>
      )}
      <Timeline room={room} me={me} />
      <TypingLine room={room} />
      {!room.encrypted && <Composer room={room} />}
      {inviting && <InviteDialog roomId={roomId} onClose={() => setInviting(false)} />}
    </section>
  );
}

function TypingLine({ room }: { room: Room }) {
  const names = room.typing.map((u) => displayName(room, u));
  const text =
    names.length === 0
      ? ""
      : names.length === 1
        ? `${names[0]} is typing…`
        : names.length === 2
          ? `${names[0]} and ${names[1]} are typing…`
          : "Several people are typing…";
  return (
    <div className="typing" aria-live="polite" data-testid="typing">
      {text}
    </div>
  );
}

function Composer({ room }: { room: Room }) {
  const [text, setText] = useState("");
  const replyTo = useStore((s) => s.replyTo);
  const editing = useStore((s) => s.editing);
  const input = useRef<HTMLTextAreaElement>(null);
  const file = useRef<HTMLInputElement>(null);
  const anyFile = useRef<HTMLInputElement>(null);
  const typingSent = useRef(0);
  const replyEvent = replyTo ? room.timeline.find((t) => t.event.event_id === replyTo)?.event : undefined;

  useEffect(() => {
    if (!editing) return;
    const ev = room.timeline.find((t) => t.event.event_id === editing)?.event;
    const latest = [...room.timeline]
      .reverse()
      .find((t) => {
        const rel = t.event.content["m.relates_to"] as Record<string, unknown> | undefined;
        return rel?.["rel_type"] === "m.replace" && rel["event_id"] === editing && t.event.sender === ev?.sender;
      })?.event.content["m.new_content"] as Record<string, unknown> | undefined;
    setText(String(latest?.["body"] ?? ev?.content["body"] ?? ""));
    input.current?.focus();
  }, [editing]); // only when editing starts: later edits must not reset the text

  useEffect(() => {
    input.current?.focus();
  }, [room.roomId, replyTo]);

  // Stop the typing notification when leaving the room.
  useEffect(() => {
    const roomId = room.roomId;
    return () => {
      if (typingSent.current) void getClient()?.typing(roomId, false).catch(() => {});
      typingSent.current = 0;
    };
  }, [room.roomId]);

  function notifyTyping(value: string) {
    const c = getClient();
    if (!c) return;
    const now = Date.now();
    if (value && now - typingSent.current > 5000) {
      typingSent.current = now;
      c.typing(room.roomId, true).catch(() => {});
    } else if (!value && typingSent.current) {
      typingSent.current = 0;
      c.typing(room.roomId, false).catch(() => {});
    }
  }

  function submit() {
    const body = text.trim();
    if (!body) return;
    if (editing) useStore.getState().editMessage(room.roomId, editing, body);
    else useStore.getState().sendText(room.roomId, body);
    setText("");
    notifyTyping("");
  }

  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === "Escape") {
      useStore.getState().setReplyTo(undefined);
      if (editing) {
        useStore.getState().setEditing(undefined);
        setText("");
      }
    }
  }

  return (
    <div className="composer">
      {(replyTo || editing) && (
        <div className="composing-context">
          <span>
            {editing
              ? "Editing message"
              : `Replying to ${replyEvent ? displayName(room, replyEvent.sender) : "a message"}`}
          </span>
          <button
            className="link"
            onClick={() => {
              useStore.getState().setReplyTo(undefined);
              if (editing) setText("");
            }}
          >
            Cancel
          </button>
        </div>
      )}
      <div className="composer-row">
        <button className="icon" title="Send an image" aria-label="Send an image" onClick={() => file.current?.click()}>
          <svg width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
            <rect x="3" y="4" width="18" height="16" rx="2" />
            <circle cx="9" cy="10" r="2" />
            <path d="M21 17l-5-5-8 8" />
          </svg>
        </button>
        <input
          ref={file}
          type="file"
          accept="image/*"
          hidden
          data-testid="image-input"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) void useStore.getState().sendImage(room.roomId, f);
            e.target.value = "";
          }}
        />
        <button className="icon" title="Attach a file" aria-label="Attach a file" onClick={() => anyFile.current?.click()}>
          <svg width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
            <path d="M21 12l-8.5 8.5a5 5 0 0 1-7-7L14 5a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 8" />
          </svg>
        </button>
        <input
          ref={anyFile}
          type="file"
          hidden
          data-testid="file-input"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) {
              const st = useStore.getState();
              void (f.type.startsWith("image/") ? st.sendImage(room.roomId, f) : st.sendFile(room.roomId, f));
            }
            e.target.value = "";
          }}
        />
        <textarea
          ref={input}
          rows={1}
          aria-label="Message"
          placeholder={`Message ${roomName(room, useStore.getState().session?.userId ?? "")}`}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            notifyTyping(e.target.value);
          }}
          onKeyDown={onKey}
        />
        <button className="primary" onClick={submit} aria-label="Send">
          Send
        </button>
      </div>
    </div>
  );
}
