import { useState } from "react";
import { roomName } from "../matrix/rooms";
import type { Room } from "../matrix/types";
import { usePanels } from "../panels";
import { getClient, useStore, type Theme } from "../store";
import { CreateRoomDialog, DirectoryDialog, ProfileDialog, StartDmDialog } from "./Dialogs";
import { NotifyToggle, PresenceDot } from "./Live";
import { dmPartner } from "../matrix/presence";

export function isDm(room: Room, direct: Record<string, string[]>): boolean {
  return room.isDirect || Object.values(direct).some((ids) => ids.includes(room.roomId));
}

export function sortRooms(rooms: Room[]): Room[] {
  return [...rooms].sort((a, b) => b.lastActivity - a.lastActivity || a.roomId.localeCompare(b.roomId));
}

const NEXT_THEME: Record<Theme, Theme> = { system: "light", light: "dark", dark: "system" };

export function Sidebar() {
  const rooms = useStore((s) => s.rooms);
  const direct = useStore((s) => s.direct);
  const current = useStore((s) => s.currentRoomId);
  const session = useStore((s) => s.session);
  const myName = useStore((s) => s.myName);
  const theme = useStore((s) => s.theme);
  const [dialog, setDialog] = useState<"create" | "directory" | "dm" | "profile" | null>(null);
  const me = session?.userId ?? "";
  const all = sortRooms(Object.values(rooms));
  const invites = all.filter((r) => r.membership === "invite");
  const joined = all.filter((r) => r.membership === "join");
  const dms = joined.filter((r) => isDm(r, direct));
  const groups = joined.filter((r) => !isDm(r, direct));

  return (
    <nav className="sidebar" aria-label="Rooms">
      <header className="me">
        <button className="me-name" title="Change display name" onClick={() => setDialog("profile")}>
          <strong data-testid="my-name">{myName || me}</strong>
          <small>{me}</small>
        </button>
        <button
          className="icon"
          title={`Theme: ${theme}`}
          aria-label={`Theme: ${theme}`}
          onClick={() => useStore.getState().setTheme(NEXT_THEME[theme])}
        >
          {theme === "dark" ? "☾" : theme === "light" ? "☀" : "◐"}
        </button>
        <NotifyToggle />
        <button className="icon" title="Log out" aria-label="Log out" onClick={() => void useStore.getState().logout()}>
          ⎋
        </button>
      </header>
      <div className="actions">
        <button onClick={() => setDialog("create")}>New room</button>
        <button onClick={() => setDialog("directory")}>Browse</button>
        <button onClick={() => setDialog("dm")}>New DM</button>
        <button onClick={() => usePanels.getState().openSearch(undefined, "list")}>Search</button>
      </div>
      <div className="room-lists">
        {invites.length > 0 && (
          <Section title="Invites">
            {invites.map((r) => (
              <InviteRow key={r.roomId} room={r} me={me} />
            ))}
          </Section>
        )}
        <Section title="People">
          {dms.length === 0 && <p className="empty">No direct messages</p>}
          {dms.map((r) => (
            <RoomRow key={r.roomId} room={r} me={me} active={r.roomId === current} partner={dmPartner(r, me, direct)} />
          ))}
        </Section>
        <Section title="Rooms">
          {groups.length === 0 && <p className="empty">No rooms yet</p>}
          {groups.map((r) => (
            <RoomRow key={r.roomId} room={r} me={me} active={r.roomId === current} />
          ))}
        </Section>
      </div>
      {dialog === "create" && <CreateRoomDialog onClose={() => setDialog(null)} />}
      {dialog === "directory" && <DirectoryDialog onClose={() => setDialog(null)} />}
      {dialog === "dm" && <StartDmDialog onClose={() => setDialog(null)} />}
      {dialog === "profile" && <ProfileDialog onClose={() => setDialog(null)} />}
    </nav>
  );
}

function Section({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <section>
      <h2>{title}</h2>
      <ul>{children}</ul>
    </section>
  );
}

function RoomRow({ room, me, active, partner }: { room: Room; me: string; active: boolean; partner?: string | undefined }) {
  const name = roomName(room, me);
  return (
    <li>
      <button
        className={"room-row" + (active ? " active" : "")}
        aria-current={active ? "true" : undefined}
        onClick={() => useStore.getState().openRoom(room.roomId)}
      >
        <span className="avatar" aria-hidden="true">
          {initial(name)}
          {partner && <PresenceDot userId={partner} />}
        </span>
        <span className="room-name">{name}</span>
        {room.unread > 0 && (
          <span className="badge" aria-label={`${room.unread} unread`}>
            {room.unread > 99 ? "99+" : room.unread}
          </span>
        )}
      </button>
    </li>
  );
}

function InviteRow({ room, me }: { room: Room; me: string }) {
  const [busy, setBusy] = useState(false);
  const name = roomName(room, me);
  async function act(join: boolean) {
    const c = getClient();
    if (!c) return;
    setBusy(true);
    try {
      if (join) {
        await c.join(room.roomId);
        useStore.getState().openRoom(room.roomId);
        if (room.isDirect && room.inviter) await markDirect(room.inviter, room.roomId);
      } else await c.leave(room.roomId);
    } catch (e) {
      useStore.getState().setError(e instanceof Error ? e.message : String(e));
    }
    setBusy(false);
  }
  return (
    <li className="invite-row">
      <span className="room-name">{name}</span>
      <small>from {room.inviter ?? "someone"}</small>
      <span className="invite-actions">
        <button className="primary" disabled={busy} onClick={() => void act(true)}>
          Accept
        </button>
        <button disabled={busy} onClick={() => void act(false)}>
          Decline
        </button>
      </span>
    </li>
  );
}

/** Record a DM in m.direct account data (the list other clients read too). */
export async function markDirect(userId: string, roomId: string): Promise<void> {
  const c = getClient();
  if (!c) return;
  const direct = { ...useStore.getState().direct };
  const ids = direct[userId] ?? [];
  if (ids.includes(roomId)) return;
  direct[userId] = [...ids, roomId];
  useStore.setState({ direct });
  await c.setAccountData("m.direct", direct);
}

export function initial(name: string): string {
  const ch = name.replace(/^[@#!]/, "").trim()[0];
  return (ch ?? "?").toUpperCase();
}
