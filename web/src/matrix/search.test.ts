import { describe, expect, it } from "vitest";
import { Http } from "./http";
import { eventContext, highlightSegments, parseSearch, search, searchBody, termWords, threadRelations } from "./search";

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function http(handler: (url: URL, init: RequestInit) => Response) {
  const calls: { url: URL; init: RequestInit }[] = [];
  const h = new Http("http://hs.test", ((input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    calls.push({ url, init });
    return Promise.resolve(handler(url, init));
  }) as typeof fetch);
  h.session = { userId: "@me:s", deviceId: "D", accessToken: "tok" };
  return { h, calls };
}

const hit = (id: string, body: string, extra: Record<string, unknown> = {}) => ({
  rank: 1,
  result: { event_id: id, room_id: "!r:s", type: "m.room.message", sender: "@bob:s", origin_server_ts: 5, content: { msgtype: "m.text", body, ...extra } },
});

describe("search", () => {
  it("builds a room_events body, one room or all", () => {
    expect(searchBody("tea", "!r:s")).toEqual({
      search_categories: {
        room_events: { search_term: "tea", keys: ["content.body"], order_by: "recent", filter: { limit: 20, rooms: ["!r:s"] } },
      },
    });
    const all = searchBody("tea", undefined) as { search_categories: { room_events: { filter: Record<string, unknown> } } };
    expect(all.search_categories.room_events.filter).toEqual({ limit: 20 });
  });

  it("parses results; an edit jumps to its original and shows its new text", () => {
    const page = parseSearch({
      search_categories: {
        room_events: {
          count: 3,
          highlights: ["tea", 7],
          next_batch: "nb1",
          results: [
            hit("$a", "green tea"),
            hit("$e", "* black tea", { "m.new_content": { body: "black tea" }, "m.relates_to": { rel_type: "m.replace", event_id: "$a" } }),
            { rank: 1 }, // no event: skipped
          ],
        },
      },
    });
    expect(page.count).toBe(3);
    expect(page.highlights).toEqual(["tea"]);
    expect(page.nextBatch).toBe("nb1");
    expect(page.hits.map((h) => [h.targetId, h.text, h.roomId])).toEqual([
      ["$a", "green tea", "!r:s"],
      ["$a", "black tea", "!r:s"],
    ]);
  });

  it("pages with next_batch in the query", async () => {
    const { h, calls } = http(() => json(200, { search_categories: { room_events: { results: [hit("$b", "x")], count: 1 } } }));
    const page = await search(h, "x", "!r:s", "nb1");
    expect(calls[0]!.url.pathname).toBe("/_matrix/client/v3/search");
    expect(calls[0]!.url.searchParams.get("next_batch")).toBe("nb1");
    expect(calls[0]!.init.method).toBe("POST");
    expect(page.hits).toHaveLength(1);
    expect(page.nextBatch).toBeUndefined();
  });
});

describe("highlightSegments", () => {
  it("marks every match case-insensitively, longest word first", () => {
    expect(highlightSegments("Tea and teapots", ["tea", "teapot"])).toEqual([
      { text: "Tea", hit: true },
      { text: " and ", hit: false },
      { text: "teapot", hit: true },
      { text: "s", hit: false },
    ]);
  });

  it("treats highlight words as text, not patterns", () => {
    expect(highlightSegments("a.b axb (c)", ["a.b", "(c)"])).toEqual([
      { text: "a.b", hit: true },
      { text: " axb ", hit: false },
      { text: "(c)", hit: true },
    ]);
    expect(highlightSegments("plain", [])).toEqual([{ text: "plain", hit: false }]);
    expect(highlightSegments("", ["x"])).toEqual([]);
  });

  it("splits a search term into words", () => {
    expect(termWords(' "green tea"  pot ')).toEqual(["green", "tea", "pot"]);
  });
});

describe("context and relations", () => {
  it("orders /context events oldest first", async () => {
    const e = (id: string) => ({ event_id: id, type: "m.room.message", sender: "@b:s", origin_server_ts: 1, content: {} });
    const { h, calls } = http(() => json(200, { event: e("$x"), events_before: [e("$b2"), e("$b1")], events_after: [e("$a1")] }));
    const ctx = await eventContext(h, "!r:s", "$x");
    expect(calls[0]!.url.pathname).toBe("/_matrix/client/v3/rooms/!r%3As/context/%24x");
    expect([...ctx.before, ctx.event, ...ctx.after].map((ev) => ev.event_id)).toEqual(["$b1", "$b2", "$x", "$a1"]);
  });

  it("reads thread replies from /relations, and copes with a server without it", async () => {
    const { h, calls } = http(() => json(200, { chunk: [{ event_id: "$r2" }, { event_id: "$r1" }], next_batch: "older" }));
    const page = (await threadRelations(h, "!r:s", "$root"))!;
    expect(page.events.map((e) => e.event_id)).toEqual(["$r1", "$r2"]);
    expect(page.nextBatch).toBe("older");
    expect(calls[0]!.url.pathname).toBe("/_matrix/client/v1/rooms/!r%3As/relations/%24root/m.thread");
    expect(calls[0]!.url.searchParams.get("dir")).toBe("b");
    await threadRelations(h, "!r:s", "$root", "older");
    expect(calls[1]!.url.searchParams.get("from")).toBe("older");
    const missing = http(() => json(404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" }));
    expect(await threadRelations(missing.h, "!r:s", "$root")).toBeUndefined();
    const broken = http(() => json(403, { errcode: "M_FORBIDDEN", error: "no" }));
    await expect(threadRelations(broken.h, "!r:s", "$root")).rejects.toThrow("no");
  });
});
