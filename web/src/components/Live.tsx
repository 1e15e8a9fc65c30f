// Presence dots and the notifications bell (state in ../live.ts).
import { useEffect } from "react";
import { ensurePresence, useLive, toggleNotifications, type NotifyState } from "../live";
import { PRESENCE_LABEL } from "../matrix/presence";

/** A dot for a user's presence: green online, amber away, grey offline or unknown. */
export function PresenceDot({ userId, withLabel = false, ask = true }: { userId: string; withLabel?: boolean; ask?: boolean }) {
  const p = useLive((s) => s.presence[userId]);
  useEffect(() => {
    if (ask) ensurePresence(userId);
  }, [userId, ask]);
  const state = p?.presence ?? "offline";
  const label = PRESENCE_LABEL[state];
  return (
    <span className="presence" data-presence={state} data-testid="presence" title={label}>
      <span className="presence-dot" aria-hidden="true" />
      {withLabel ? <span className="presence-label">{label}</span> : <span className="sr-only">{label}</span>}
    </span>
  );
}

const BELL_TITLE: Record<NotifyState, string> = {
  default: "Enable notifications for mentions and direct messages",
  on: "Notifications: on (mentions and direct messages)",
  off: "Notifications: off",
  denied: "Notifications are blocked in the browser's site settings",
  unsupported: "This browser cannot show notifications",
};

/** A bell, struck through unless notifications are on (SVG: no emoji font needed). */
function Bell({ on }: { on: boolean }) {
  return (
    <svg width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
      <path d="M6 16V11a6 6 0 0 1 12 0v5l2 2H4z" />
      <path d="M10 20a2 2 0 0 0 4 0" />
      {!on && <path d="M3 3l18 18" />}
    </svg>
  );
}

export function NotifyToggle() {
  const state = useLive((s) => s.notify);
  if (state === "unsupported") return null;
  const title = BELL_TITLE[state];
  return (
    <button
      className="icon"
      title={title}
      aria-label={title}
      aria-pressed={state === "on"}
      aria-disabled={state === "denied"}
      data-testid="notify-toggle"
      data-state={state}
      onClick={() => void toggleNotifications()}
    >
      <Bell on={state === "on"} />
    </button>
  );
}

/** "● Online" under a DM's title. */
export function DmPresence({ userId }: { userId: string | undefined }) {
  if (!userId) return null;
  return <PresenceDot userId={userId} withLabel />;
}
