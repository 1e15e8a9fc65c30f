// The side panel (search or a thread) and the event the timeline should
// scroll to: kept apart from the main store so the two grow independently.
import { create } from "zustand";
import type { SearchHit } from "./matrix/search";
import { useStore } from "./store";

export type Panel =
  | { kind: "search" }
  | { kind: "thread"; roomId: string; rootId: string };

export interface SearchState {
  term: string;
  /** The room searched, or undefined for every room. */
  roomId: string | undefined;
  hits: SearchHit[];
  count: number | undefined;
  highlights: string[];
  nextBatch: string | undefined;
  busy: boolean;
  error: string | undefined;
  /** True once a search has been answered. */
  done: boolean;
}

export interface PanelState {
  panel: Panel | null;
  search: SearchState;
  /** The timeline scrolls to and marks this event; `seq` repeats a jump. */
  focus: { roomId: string; eventId: string; seq: number } | undefined;
  /** Where search was opened (narrow screens close back to it). */
  searchFrom: "list" | "room";
  /** A search result was opened on a narrow screen: the room's Back returns to the results. */
  fromResults: boolean;
  openSearch(roomId: string | undefined, from?: "list" | "room"): void;
  /** Close search; on a narrow screen opened from the room list, back to the list. */
  closeSearch(): void;
  /** The room's Back button: true when it went back to search results. */
  backFromRoom(): boolean;
  /** A result was opened: on a narrow screen the room takes the screen. */
  leftForResult(): void;
  openThread(roomId: string, rootId: string): void;
  close(): void;
  setSearch(patch: Partial<SearchState>): void;
  focusEvent(roomId: string, eventId: string): void;
}

export const emptySearch: SearchState = {
  term: "",
  roomId: undefined,
  hits: [],
  count: undefined,
  highlights: [],
  nextBatch: undefined,
  busy: false,
  error: undefined,
  done: false,
};

export const usePanels = create<PanelState>((set, get) => ({
  panel: null,
  search: emptySearch,
  focus: undefined,
  searchFrom: "room",
  fromResults: false,
  openSearch(roomId, from) {
    const s = get().search;
    // A new scope starts afresh; the same scope keeps its results.
    set({
      panel: { kind: "search" },
      search: s.roomId === roomId ? s : { ...emptySearch, term: s.term, roomId },
      fromResults: false,
      ...(from ? { searchFrom: from } : {}),
    });
  },
  closeSearch() {
    if (isNarrow() && get().searchFrom === "list") useStore.getState().openRoom(undefined);
    set({ panel: null, fromResults: false });
  },
  backFromRoom() {
    if (!get().fromResults || !isNarrow()) return false;
    set({ panel: { kind: "search" }, fromResults: false });
    return true;
  },
  leftForResult() {
    if (isNarrow()) set({ panel: null, fromResults: true });
  },
  openThread: (roomId, rootId) => set({ panel: { kind: "thread", roomId, rootId } }),
  close: () => set({ panel: null }),
  setSearch: (patch) => set((s) => ({ search: { ...s.search, ...patch } })),
  focusEvent: (roomId, eventId) => set((s) => ({ focus: { roomId, eventId, seq: (s.focus?.seq ?? 0) + 1 } })),
}));

export function isNarrow(): boolean {
  return globalThis.matchMedia?.("(max-width: 700px)").matches ?? false;
}
