import { useEffect } from "react";
import { useStore } from "../store";
import { Login } from "./Login";
import { RoomView } from "./RoomView";
import { SidePanel, useSidePanelOpen } from "./SidePanel";
import { Sidebar } from "./Sidebar";
import { useLive } from "../live";

export function App() {
  const phase = useStore((s) => s.phase);
  const theme = useStore((s) => s.theme);
  const connected = useStore((s) => s.connected);
  const currentRoomId = useStore((s) => s.currentRoomId);
  const error = useStore((s) => s.error);
  const transport = useLive((s) => s.transport);
  const panelOpen = useSidePanelOpen();

  const unread = useStore((s) => Object.values(s.rooms).reduce((n, r) => n + r.unread, 0));
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Plait` : "Plait";
  }, [unread]);

  useEffect(() => {
    if (theme === "system") delete document.documentElement.dataset["theme"];
    else document.documentElement.dataset["theme"] = theme;
  }, [theme]);

  if (phase === "login") return <Login />;
  if (phase === "syncing") {
    return (
      <main className="loading" aria-busy="true">
        <p>{connected ? "Connecting…" : "Cannot reach the server; retrying…"}</p>
      </main>
    );
  }
  return (
    <div className="shell" data-transport={transport ?? "none"} data-testid="shell">
      {!connected && (
        <div className="offline" role="status" data-testid="offline-banner">
          Offline: reconnecting… Messages you send are kept and go out when the connection is back.
        </div>
      )}
      <div className={"app" + (currentRoomId ? " has-room" : "") + (panelOpen ? " has-panel" : "")}>
      {error && (
        <div className="toast" role="alert">
          <span>{error}</span>
          <button className="link" onClick={() => useStore.getState().setError(undefined)}>
            Dismiss
          </button>
        </div>
      )}
      <Sidebar />
      {currentRoomId ? (
        <RoomView key={currentRoomId} roomId={currentRoomId} />
      ) : (
        <section className="room empty-room">
          <p>Pick a room, or create one.</p>
        </section>
      )}
      <SidePanel />
      </div>
    </div>
  );
}
