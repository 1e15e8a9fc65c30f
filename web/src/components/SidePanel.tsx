// The right-hand pane (its own screen below 700 px): search or a thread.
import { usePanels } from "../panels";
import { useStore } from "../store";
import { SearchPanel } from "./SearchPanel";
import { ThreadPanel } from "./ThreadPanel";

/** Is a panel showing? A thread shows only with its room open. */
export function useSidePanelOpen(): boolean {
  const panel = usePanels((s) => s.panel);
  const currentRoomId = useStore((s) => s.currentRoomId);
  return panel !== null && (panel.kind === "search" || panel.roomId === currentRoomId);
}

export function SidePanel() {
  const panel = usePanels((s) => s.panel);
  const open = useSidePanelOpen();
  if (!open || !panel) return null;
  return panel.kind === "search" ? <SearchPanel /> : <ThreadPanel key={panel.rootId} roomId={panel.roomId} rootId={panel.rootId} />;
}
