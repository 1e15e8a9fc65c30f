import { describe, expect, it } from "vitest";
import { isThreadReply, threadItems, threadReplyContent, threadSummaries } from "./threads";
import type { MatrixEvent, TimelineItem } from "./types";
import { buildView } from "./view";

let n = 0;
function ev(partial: Partial<MatrixEvent> = {}): MatrixEvent {
  n += 1;
  return { event_id: `$t${n}`, type: "m.room.message", sender: "@bob:s", origin_server_ts: n, content: { msgtype: "m.text", body: `m${n}` }, ...partial };
}
const item = (e: MatrixEvent): TimelineItem => ({ id: e.event_id, event: e });
const reply = (root: string, body: string, extra: Partial<MatrixEvent> = {}) =>
  ev({ content: threadReplyContent({ msgtype: "m.text", body }, root, root), ...extra });

describe("threads", () => {
  it("builds thread reply content with a fallback reply", () => {
    expect(threadReplyContent({ msgtype: "m.text", body: "hi" }, "$root", "$last")).toEqual({
      msgtype: "m.text",
      body: "hi",
      "m.relates_to": { rel_type: "m.thread", event_id: "$root", is_falling_back: true, "m.in_reply_to": { event_id: "$last" } },
    });
    expect(threadReplyContent({ body: "x" }, "$root", undefined)["m.relates_to"]).toMatchObject({ "m.in_reply_to": { event_id: "$root" } });
  });

  it("groups replies under their root and counts them, not redacted ones", () => {
    const root = ev({ event_id: "$root" });
    const other = ev({ event_id: "$other" });
    const r1 = reply("$root", "one");
    const r2 = reply("$root", "two");
    const r3 = reply("$other", "elsewhere");
    const gone = reply("$root", "gone");
    const redaction = ev({ type: "m.room.redaction", redacts: gone.event_id, content: {} });
    const reaction = ev({ type: "m.reaction", content: { "m.relates_to": { rel_type: "m.annotation", event_id: r1.event_id, key: "👍" } } });
    const timeline = [root, other, r1, r2, r3, gone, redaction, reaction].map(item);
    const sums = threadSummaries(timeline);
    expect(sums.get("$root")).toMatchObject({ count: 2, latest: r2 });
    expect(sums.get("$other")?.count).toBe(1);
    // The main timeline keeps the roots and drops the replies.
    const main = buildView(timeline, "@me:s").filter((v) => !isThreadReply(v.event));
    expect(main.map((v) => v.event.event_id)).toEqual(["$root", "$other"]);
    // The thread: root first, then its replies with their reactions applied.
    const thread = threadItems(timeline, "$root");
    const view = buildView(thread, "@me:s");
    expect(view.map((v) => v.event.event_id)).toEqual(["$root", r1.event_id, r2.event_id, gone.event_id]);
    expect(view[1]!.reactions).toMatchObject([{ key: "👍", count: 1 }]);
    expect(view[3]!.redacted).toBe(true);
  });

  it("summarises the latest reply as edited", () => {
    const root = ev({ event_id: "$er" });
    const r = reply("$er", "typo");
    const edit = ev({ content: { body: "* fixed", "m.new_content": { body: "fixed" }, "m.relates_to": { rel_type: "m.replace", event_id: r.event_id } } });
    const forged = ev({ sender: "@mallory:s", content: { body: "* evil", "m.new_content": { body: "evil" }, "m.relates_to": { rel_type: "m.replace", event_id: r.event_id } } });
    const s = threadSummaries([root, r, edit, forged].map(item)).get("$er")!;
    expect(s.count).toBe(1);
    expect(s.latest?.content["body"]).toBe("fixed");
  });

  it("takes the server's bundled count when it knows of more replies", () => {
    const root = ev({
      event_id: "$bundled",
      unsigned: { "m.relations": { "m.thread": { count: 7, latest_event: ev({ content: { body: "late" } }), current_user_participated: false } } },
    });
    const r = reply("$bundled", "new");
    expect(threadSummaries([item(root)]).get("$bundled")?.count).toBe(7);
    expect(threadSummaries([item(root), item(r)]).get("$bundled")?.count).toBe(7);
  });

  it("merges older replies from /relations without duplicates, oldest first", () => {
    const root = ev({ event_id: "$r" });
    const old1 = reply("$r", "old one");
    const live = reply("$r", "live");
    const thread = threadItems([item(root), item(live)], "$r", [old1, live]);
    expect(thread.map((t) => t.event.event_id)).toEqual(["$r", old1.event_id, live.event_id]);
  });
});
