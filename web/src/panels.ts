// The side panel (search or a thread) and the event the timeline should
// scroll to: kept apart from the main store so the two grow independently.
import { create } from "zustand";
import type { SearchHit } from "./matrix/search";

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
  openSearch(roomId: string | undefined): void;
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
  openSearch(roomId) {
    const s = get().search;
    // A new scope starts afresh; the same scope keeps its results.
    set({ panel: { kind: "search" }, search: s.roomId === roomId ? s : { ...emptySearch, term: s.term, roomId } });
  },
  openThread: (roomId, rootId) => set({ panel: { kind: "thread", roomId, rootId } }),
  close: () => set({ panel: null }),
  setSearch: (patch) => set((s) => ({ search: { ...s.search, ...patch } })),
  focusEvent: (roomId, eventId) => set((s) => ({ focus: { roomId, eventId, seq: (s.focus?.seq ?? 0) + 1 } })),
}));
