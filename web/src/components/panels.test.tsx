import { act, cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { SearchHit } from "../matrix/search";
import { threadReplyContent } from "../matrix/threads";
import type { MatrixEvent, Room } from "../matrix/types";
import { emptySearch, usePanels } from "../panels";
import { useStore } from "../store";
import { App } from "./App";
import { SearchPanel } from "./SearchPanel";
import { ME, ev as evFixture, ready as readyFixture, room } from "./testFixtures";

afterEach(() => {
  cleanup();
  act(() => usePanels.setState({ panel: null, search: emptySearch, focus: undefined, fromResults: false, searchFrom: "room" }));
});

const ev = (partial: Partial<MatrixEvent> = {}) => evFixture(partial, "p");
const ready = (rooms: Room[], current?: string) => readyFixture(rooms, current, "Me");

function searchHit(body: string): SearchHit {
  const event = { ...ev({ content: { msgtype: "m.text", body } }), room_id: "!r:s" } as MatrixEvent;
  return { rank: 1, roomId: "!r:s", event, targetId: event.event_id, text: body };
}

describe("SearchPanel", () => {
  it("marks highlights as elements and shows HTML in results as text", () => {
    ready([room("!r:s", [], { name: "Tea" })], "!r:s");
    act(() =>
      usePanels.setState({
        panel: { kind: "search" },
        search: {
          ...emptySearch,
          term: "kettle",
          roomId: undefined,
          done: true,
          count: 12,
          highlights: ["kettle"],
          nextBatch: "nb",
          hits: [searchHit('the Kettle <img src=x onerror="alert(1)"> <b>boils</b>')],
        },
      }),
    );
    const { container } = render(<SearchPanel />);
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("b")).toBeNull();
    expect(Array.from(container.querySelectorAll("mark")).map((m) => m.textContent)).toEqual(["Kettle"]);
    expect(container.querySelector(".hit-text")!.textContent).toBe('the Kettle <img src=x onerror="alert(1)"> <b>boils</b>');
    expect(screen.getByTestId("search-count").textContent).toBe("12 results");
    expect(screen.getByText(/in Tea/)).toBeTruthy();
    expect(screen.getByRole("button", { name: "Load more" })).toBeTruthy();
  });

  it("opens from the room header, scoped to the room, and closes", () => {
    ready([room("!r:s", [ev()], { name: "Tea" })], "!r:s");
    render(<App />);
    fireEvent.click(screen.getByRole("button", { name: "Search this room" }));
    expect(usePanels.getState().search.roomId).toBe("!r:s");
    expect(screen.getByRole("searchbox", { name: "Search messages" })).toBeTruthy();
    expect(document.querySelector(".app")!.classList.contains("has-panel")).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Close search" }));
    expect(screen.queryByRole("searchbox")).toBeNull();
  });
});

describe("narrow screens", () => {
  it("search from the room list closes back to it; a result's room goes back to the results", () => {
    const saved = globalThis.matchMedia;
    globalThis.matchMedia = ((q: string) => ({ matches: q.includes("max-width"), media: q })) as unknown as typeof matchMedia;
    try {
      ready([room("!r:s", [ev()], { name: "Tea" })], "!r:s");
      const p = usePanels.getState();
      p.openSearch(undefined, "list");
      p.leftForResult();
      expect(usePanels.getState().panel).toBeNull();
      expect(usePanels.getState().backFromRoom()).toBe(true);
      expect(usePanels.getState().panel).toEqual({ kind: "search" });
      expect(usePanels.getState().backFromRoom()).toBe(false);
      usePanels.getState().closeSearch();
      expect(useStore.getState().currentRoomId).toBeUndefined();
      // Opened from a room's header, closing keeps the room.
      act(() => useStore.getState().openRoom("!r:s"));
      usePanels.getState().openSearch("!r:s", "room");
      usePanels.getState().closeSearch();
      expect(useStore.getState().currentRoomId).toBe("!r:s");
    } finally {
      globalThis.matchMedia = saved;
    }
  });
});

describe("threads", () => {
  it("keeps replies out of the timeline, summarises them, and replies in the panel", () => {
    const root = ev({ event_id: "$root", content: { msgtype: "m.text", body: "which tea?" } });
    const r1 = ev({ content: threadReplyContent({ msgtype: "m.text", body: "green, please" }, "$root", "$root") });
    const r2 = ev({ sender: ME, content: threadReplyContent({ msgtype: "m.text", body: "oolong" }, "$root", r1.event_id) });
    ready([room("!r:s", [root, r1, r2], { name: "Tea" })], "!r:s");
    render(<App />);
    const log = screen.getByRole("log", { name: "Messages" });
    expect(within(log).getByText("which tea?")).toBeTruthy();
    expect(within(log).queryByText("green, please")).toBeNull();
    fireEvent.click(within(log).getByRole("button", { name: "2 replies in thread" }));
    const thread = screen.getByRole("log", { name: "Thread messages" });
    expect(within(thread).getByText("which tea?")).toBeTruthy();
    expect(within(thread).getByText("green, please")).toBeTruthy();
    expect(within(thread).getByText("oolong")).toBeTruthy();
    expect(thread.querySelector(".reply-quote")).toBeNull(); // the fallback reply is not shown as a quote
    const box = screen.getByRole("textbox", { name: "Reply in thread" });
    fireEvent.change(box, { target: { value: "sencha" } });
    fireEvent.keyDown(box, { key: "Enter" });
    const last = useStore.getState().rooms["!r:s"]!.timeline.at(-1)!;
    expect(last.status).toBe("sending");
    expect(last.event.content).toMatchObject({
      body: "sencha",
      "m.relates_to": { rel_type: "m.thread", event_id: "$root", is_falling_back: true, "m.in_reply_to": { event_id: r2.event_id } },
    });
    expect(within(screen.getByRole("log", { name: "Thread messages" })).getByText("sencha")).toBeTruthy();
    expect(within(screen.getByRole("log", { name: "Messages" })).queryByText("sencha")).toBeNull();
    expect(screen.getByRole("button", { name: "3 replies in thread" })).toBeTruthy();
  });
});

describe("thread edits", () => {
  it("edits my reply with the panel's composer", () => {
    const root = ev({ event_id: "$root2", content: { msgtype: "m.text", body: "lunch?" } });
    const mine = ev({ event_id: "$mine", sender: ME, content: threadReplyContent({ msgtype: "m.text", body: "noodels" }, "$root2", "$root2") });
    ready([room("!r:s", [root, mine], { name: "Tea" })], "!r:s");
    act(() => usePanels.getState().openThread("!r:s", "$root2"));
    render(<App />);
    const thread = screen.getByRole("log", { name: "Thread messages" });
    fireEvent.click(within(thread).getByTitle("Edit", { exact: true }));
    const box = screen.getByRole("textbox", { name: "Reply in thread" }) as HTMLTextAreaElement;
    expect(box.value).toBe("noodels");
    fireEvent.change(box, { target: { value: "noodles" } });
    fireEvent.keyDown(box, { key: "Enter" });
    const last = useStore.getState().rooms["!r:s"]!.timeline.at(-1)!;
    expect(last.event.content).toMatchObject({ "m.new_content": { body: "noodles" }, "m.relates_to": { rel_type: "m.replace", event_id: "$mine" } });
    const updated = screen.getByRole("log", { name: "Thread messages" });
    expect(within(updated).getByText("noodles")).toBeTruthy();
    expect(within(updated).getByText("(edited)")).toBeTruthy();
    expect(screen.getByRole("button", { name: "1 reply in thread" })).toBeTruthy();
  });
});

describe("files", () => {
  it("shows a file with its size and a download button, and a full-image link under images", () => {
    const file = ev({ content: { msgtype: "m.file", body: "notes.txt", info: { size: 2048, mimetype: "text/plain" }, url: "mxc://s/F1" } });
    const image = ev({ content: { msgtype: "m.image", body: "cat.png", info: { w: 10, h: 10 }, url: "mxc://s/I1" } });
    ready([room("!r:s", [file, image], { name: "Tea" })], "!r:s");
    render(<App />);
    const f = screen.getByTestId("file");
    expect(f.textContent).toContain("notes.txt");
    expect(f.textContent).toContain("2.0 KB");
    expect(within(f).getByRole("button", { name: "Download notes.txt" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Full image" })).toBeTruthy();
  });
});
