// The room's members with their presence: a header button and a dialog.
import { useState } from "react";
import { useLive } from "../live";
import type { PresenceState, UserPresence } from "../matrix/presence";
import type { Member, Room } from "../matrix/types";
import { Dialog } from "./Dialogs";
import { PresenceDot } from "./Live";

const ORDER: Record<PresenceState, number> = { online: 0, unavailable: 1, offline: 2 };

/** Joined then invited; within each, online first, then by name. */
export function sortMembers(members: Member[], presence: Record<string, UserPresence>): Member[] {
  const name = (m: Member) => (m.displayName || m.userId).toLowerCase();
  return members
    .filter((m) => m.membership === "join" || m.membership === "invite")
    .sort(
      (a, b) =>
        Number(a.membership === "invite") - Number(b.membership === "invite") ||
        ORDER[presence[a.userId]?.presence ?? "offline"] - ORDER[presence[b.userId]?.presence ?? "offline"] ||
        name(a).localeCompare(name(b)),
    );
}

export function MembersButton({ room }: { room: Room }) {
  const [open, setOpen] = useState(false);
  const joined = Object.values(room.members).filter((m) => m.membership === "join").length;
  const label = `Members (${joined})`;
  return (
    <>
      <button className="icon members-button" title={label} aria-label={label} onClick={() => setOpen(true)}>
        <svg width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
          <circle cx="9" cy="8" r="3.5" />
          <path d="M2.5 20a6.5 6.5 0 0 1 13 0" />
          <path d="M16 4.5a3.5 3.5 0 0 1 0 7M18 14a6.5 6.5 0 0 1 3.5 6" />
        </svg>
        <small>{joined}</small>
      </button>
      {open && <MembersDialog room={room} onClose={() => setOpen(false)} />}
    </>
  );
}

export function MembersDialog({ room, onClose }: { room: Room; onClose: () => void }) {
  const presence = useLive((s) => s.presence);
  const members = sortMembers(Object.values(room.members), presence);
  // Sync brings presence changes; ask the server about the rest, in small rooms only.
  const ask = members.length <= 50;
  return (
    <Dialog title="Members" onClose={onClose}>
      <ul className="directory members" data-testid="members">
        {members.map((m) => (
          <li key={m.userId} data-user={m.userId}>
            <PresenceDot userId={m.userId} ask={ask} />
            <div>
              <strong>{m.displayName || m.userId}</strong>
              <p>
                {m.userId}
                {m.membership === "invite" ? " · invited" : ""}
              </p>
            </div>
          </li>
        ))}
      </ul>
      <div className="buttons">
        <button onClick={onClose}>Close</button>
      </div>
    </Dialog>
  );
}
