import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import type { PublicRoom } from "../matrix/client";
import { getClient, useStore } from "../store";
import { markDirect } from "./Sidebar";

export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    document.addEventListener("keydown", onKey);
    ref.current?.querySelector<HTMLElement>("input, button")?.focus();
    return () => document.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className="dialog card" role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <h2>{title}</h2>
        {children}
      </div>
    </div>
  );
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function CreateRoomDialog({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState("");
  const [topic, setTopic] = useState("");
  const [isPublic, setPublic] = useState(false);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const c = getClient();
    if (!c) return;
    setBusy(true);
    try {
      const roomId = await c.createRoom({ name: name.trim(), topic: topic.trim(), isPublic });
      useStore.getState().openRoom(roomId);
      onClose();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  }
  return (
    <Dialog title="Create a room" onClose={onClose}>
      <form onSubmit={submit}>
        <label>
          Name
          <input name="room-name" value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label>
          Topic
          <input name="room-topic" value={topic} onChange={(e) => setTopic(e.target.value)} />
        </label>
        <label className="check">
          <input type="checkbox" name="public" checked={isPublic} onChange={(e) => setPublic(e.target.checked)} />
          Public: anyone can find and join it
        </label>
        {error && <p className="error">{error}</p>}
        <div className="buttons">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            Create
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function DirectoryDialog({ onClose }: { onClose: () => void }) {
  const [rooms, setRooms] = useState<PublicRoom[] | null>(null);
  const [search, setSearch] = useState("");
  const [error, setError] = useState<string>();
  const [target, setTarget] = useState("");
  const joined = useStore((s) => s.rooms);

  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      getClient()
        ?.publicRooms(search.trim() || undefined)
        .then((r) => live && setRooms(r))
        .catch((e: unknown) => live && setError(errorText(e)));
    }, 200);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [search]);

  async function join(idOrAlias: string) {
    try {
      const roomId = await getClient()!.join(idOrAlias);
      useStore.getState().openRoom(roomId);
      onClose();
    } catch (e) {
      setError(errorText(e));
    }
  }

  return (
    <Dialog title="Public rooms" onClose={onClose}>
      <input placeholder="Search" aria-label="Search public rooms" value={search} onChange={(e) => setSearch(e.target.value)} />
      {error && <p className="error">{error}</p>}
      <ul className="directory">
        {rooms === null && <li className="empty">Loading…</li>}
        {rooms?.length === 0 && <li className="empty">No public rooms</li>}
        {rooms?.map((r) => (
          <li key={r.room_id}>
            <div>
              <strong>{r.name || r.canonical_alias || r.room_id}</strong>
              {r.topic && <p>{r.topic}</p>}
              <small>{r.num_joined_members} members</small>
            </div>
            {joined[r.room_id]?.membership === "join" ? (
              <button
                onClick={() => {
                  useStore.getState().openRoom(r.room_id);
                  onClose();
                }}
              >
                Open
              </button>
            ) : (
              <button className="primary" onClick={() => void join(r.room_id)}>
                Join
              </button>
            )}
          </li>
        ))}
      </ul>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          if (target.trim()) void join(target.trim());
        }}
      >
        <input placeholder="#alias:server or !id:server" aria-label="Room alias or ID" value={target} onChange={(e) => setTarget(e.target.value)} />
        <button type="submit">Join</button>
      </form>
      <div className="buttons">
        <button onClick={onClose}>Close</button>
      </div>
    </Dialog>
  );
}

export function StartDmDialog({ onClose }: { onClose: () => void }) {
  const [userId, setUserId] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const c = getClient();
    const target = userId.trim();
    if (!c || !/^@[^:]+:.+$/.test(target)) {
      setError("A user ID looks like @name:server");
      return;
    }
    setBusy(true);
    try {
      const roomId = await c.createRoom({ isPublic: false, isDirect: true, invite: [target] });
      await markDirect(target, roomId);
      useStore.getState().openRoom(roomId);
      onClose();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  }
  return (
    <Dialog title="Direct message" onClose={onClose}>
      <form onSubmit={submit}>
        <label>
          User ID
          <input name="user-id" placeholder="@name:server" value={userId} onChange={(e) => setUserId(e.target.value)} />
        </label>
        {error && <p className="error">{error}</p>}
        <div className="buttons">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            Start
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function InviteDialog({ roomId, onClose }: { roomId: string; onClose: () => void }) {
  const [userId, setUserId] = useState("");
  const [error, setError] = useState<string>();
  async function submit(e: FormEvent) {
    e.preventDefault();
    try {
      await getClient()!.invite(roomId, userId.trim());
      onClose();
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <Dialog title="Invite someone" onClose={onClose}>
      <form onSubmit={submit}>
        <label>
          User ID
          <input name="invite-user" placeholder="@name:server" value={userId} onChange={(e) => setUserId(e.target.value)} required />
        </label>
        {error && <p className="error">{error}</p>}
        <div className="buttons">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary">
            Invite
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function ProfileDialog({ onClose }: { onClose: () => void }) {
  const current = useStore((s) => s.myName ?? "");
  const [name, setName] = useState(current);
  const [error, setError] = useState<string>();
  async function submit(e: FormEvent) {
    e.preventDefault();
    try {
      await getClient()!.setDisplayName(name.trim());
      useStore.setState({ myName: name.trim() });
      onClose();
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <Dialog title="Your profile" onClose={onClose}>
      <form onSubmit={submit}>
        <label>
          Display name
          <input name="display-name" value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        {error && <p className="error">{error}</p>}
        <div className="buttons">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary">
            Save
          </button>
        </div>
      </form>
    </Dialog>
  );
}
