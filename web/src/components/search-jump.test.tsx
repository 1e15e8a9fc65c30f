import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Http } from "../matrix/http";
import { applyJoinedRoom } from "../matrix/rooms";
import type { SearchHit } from "../matrix/search";
import type { MatrixEvent } from "../matrix/types";
import { emptySearch, usePanels } from "../panels";
import { useStore } from "../store";
import { SearchPanel } from "./SearchPanel";
import { ThreadPanel } from "./ThreadPanel";

// A client whose HTTP answers /context and /search from here.
const calls: string[] = [];
const http = new Http("http://hs.test", ((input: RequestInfo | URL) => {
  const url = new URL(String(input));
  calls.push(url.pathname + url.search);
  const e = (id: string, body: string): MatrixEvent => ({ event_id: id, type: "m.room.message", sender: "@bob:s", origin_server_ts: 1, content: { msgtype: "m.text", body } });
  if (url.pathname.includes("/relations/")) {
    const reply = (id: string, body: string): MatrixEvent => ({
      ...e(id, body),
      content: { msgtype: "m.text", body, "m.relates_to": { rel_type: "m.thread", event_id: "$root", is_falling_back: true } },
    });
    const page = url.searchParams.get("from")
      ? { chunk: [reply("$r0", "the very first reply")] }
      : { chunk: [reply("$r2", "a live reply"), reply("$r1", "an older reply")], next_batch: "p2" };
    return Promise.resolve(new Response(JSON.stringify(page)));
  }
  if (url.pathname.includes("/context/")) {
    return Promise.resolve(
      new Response(JSON.stringify({ event: e("$old", "an old <b>kettle</b>"), events_before: [e("$before", "before it")], events_after: [e("$after", "after it")] })),
    );
  }
  return Promise.resolve(new Response(JSON.stringify({ search_categories: { room_events: { results: [], count: 0 } } })));
}) as typeof fetch);
http.session = { userId: "@me:s", deviceId: "D", accessToken: "tok" };

vi.mock("../store", async (importOriginal) => {
  const real = await importOriginal<typeof import("../store")>();
  return { ...real, getClient: () => ({ http }) };
});

afterEach(() => {
  cleanup();
  calls.length = 0;
  act(() => usePanels.setState({ panel: null, search: emptySearch, focus: undefined }));
});

function hit(id: string, body: string): SearchHit {
  const event = { event_id: id, room_id: "!r:s", type: "m.room.message", sender: "@bob:s", origin_server_ts: 1, content: { msgtype: "m.text", body } } as MatrixEvent;
  return { rank: 0, roomId: "!r:s", event, targetId: id, text: body };
}

function setup(hits: SearchHit[]) {
  const live: MatrixEvent = { event_id: "$live", type: "m.room.message", sender: "@bob:s", origin_server_ts: 2, content: { msgtype: "m.text", body: "a live kettle" } };
  const room = { ...applyJoinedRoom(undefined, "!r:s", { timeline: { events: [live] } }, "@me:s", false), moreHistory: false, name: "Tea" };
  act(() => {
    useStore.setState({ phase: "ready", session: http.session, rooms: { "!r:s": room }, currentRoomId: undefined, error: undefined });
    usePanels.setState({ panel: { kind: "search" }, search: { ...emptySearch, term: "kettle", done: true, hits, count: hits.length } });
  });
  render(<SearchPanel />);
}

describe("opening a search result", () => {
  it("a message in the timeline: opens the room and focuses the event", async () => {
    setup([hit("$live", "a live kettle")]);
    fireEvent.click(screen.getByRole("button", { name: /a live kettle/ }));
    await waitFor(() => expect(usePanels.getState().focus).toMatchObject({ roomId: "!r:s", eventId: "$live" }));
    expect(useStore.getState().currentRoomId).toBe("!r:s");
    expect(calls).toEqual([]);
  });

  it("a message the timeline cannot reach: shown in its /context, as text", async () => {
    setup([hit("$old", "an old <b>kettle</b>")]);
    fireEvent.click(screen.getByRole("button", { name: /an old/ }));
    await screen.findByText(/Around this message in Tea/);
    expect(calls[0]).toMatch(/^\/_matrix\/client\/v3\/rooms\/!r%3As\/context\/%24old/);
    const items = Array.from(document.querySelectorAll(".context-events li")).map((li) => li.textContent);
    expect(items).toEqual(["@bob:s before it", "@bob:s an old <b>kettle</b>", "@bob:s after it"]);
    expect(document.querySelector(".context-hit mark")?.textContent).toBe("kettle");
    expect(document.querySelector(".context-events b")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: /Back to results/ }));
    expect(screen.getByRole("button", { name: /an old/ })).toBeTruthy();
  });
});

describe("thread panel history", () => {
  it("adds replies from /relations and loads earlier pages on demand", async () => {
    const root: MatrixEvent = { event_id: "$root", type: "m.room.message", sender: "@bob:s", origin_server_ts: 1, content: { msgtype: "m.text", body: "the root" } };
    const live: MatrixEvent = {
      event_id: "$r2",
      type: "m.room.message",
      sender: "@bob:s",
      origin_server_ts: 5,
      content: { msgtype: "m.text", body: "a live reply", "m.relates_to": { rel_type: "m.thread", event_id: "$root", is_falling_back: true } },
    };
    const room = { ...applyJoinedRoom(undefined, "!r:s", { timeline: { events: [root, live] } }, "@me:s", false), moreHistory: false, name: "Tea" };
    act(() => useStore.setState({ phase: "ready", session: http.session, rooms: { "!r:s": room }, currentRoomId: "!r:s" }));
    render(<ThreadPanel roomId="!r:s" rootId="$root" />);
    await screen.findByText("an older reply");
    expect(screen.getAllByText("a live reply")).toHaveLength(1);
    fireEvent.click(screen.getByRole("button", { name: "Load earlier replies" }));
    await screen.findByText("the very first reply");
    const order = Array.from(document.querySelectorAll(".thread-list .msg .body")).map((b) => b.textContent);
    expect(order).toEqual(["the root", "the very first reply", "an older reply", "a live reply"]);
    expect(screen.queryByRole("button", { name: "Load earlier replies" })).toBeNull();
    expect(calls.filter((c) => c.includes("/relations/"))).toHaveLength(2);
  });
});
