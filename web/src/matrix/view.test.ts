import { describe, expect, it } from "vitest";
import type { MatrixEvent, TimelineItem } from "./types";
import { buildView, stripReplyFallback } from "./view";

const ME = "@me:s";
function item(e: Partial<MatrixEvent> & { event_id: string }): TimelineItem {
  return {
    id: e.event_id,
    event: { type: "m.room.message", sender: ME, origin_server_ts: 1, content: { msgtype: "m.text", body: "x" }, ...e },
  };
}

describe("buildView", () => {
  it("applies the original sender's edits only", () => {
    const view = buildView(
      [
        item({ event_id: "$m", content: { msgtype: "m.text", body: "helo" } }),
        item({ event_id: "$bad", sender: "@eve:s", content: { body: "* pwned", "m.new_content": { body: "pwned" }, "m.relates_to": { rel_type: "m.replace", event_id: "$m" } } }),
        item({ event_id: "$e", content: { body: "* hello", "m.new_content": { msgtype: "m.text", body: "hello" }, "m.relates_to": { rel_type: "m.replace", event_id: "$m" } } }),
      ],
      ME,
    );
    expect(view).toHaveLength(1);
    expect(view[0]!.content["body"]).toBe("hello");
    expect(view[0]!.edited).toBe(true);
  });

  it("counts reactions per key, one per sender, and knows mine", () => {
    const react = (id: string, sender: string, key: string): TimelineItem =>
      item({ event_id: id, type: "m.reaction", sender, content: { "m.relates_to": { rel_type: "m.annotation", event_id: "$m", key } } });
    const view = buildView(
      [item({ event_id: "$m" }), react("$r1", "@bob:s", "👍"), react("$r2", ME, "👍"), react("$r3", "@bob:s", "👍"), react("$r4", "@bob:s", "🎉")],
      ME,
    );
    expect(view[0]!.reactions).toEqual([
      { key: "👍", count: 2, senders: ["@bob:s", ME], mine: "$r2" },
      { key: "🎉", count: 1, senders: ["@bob:s"] },
    ]);
  });

  it("shows redacted messages as deleted and drops redacted reactions", () => {
    const view = buildView(
      [
        item({ event_id: "$m" }),
        item({ event_id: "$r", type: "m.reaction", content: { "m.relates_to": { rel_type: "m.annotation", event_id: "$m", key: "x" } } }),
        item({ event_id: "$d1", type: "m.room.redaction", redacts: "$r", content: {} }),
        item({ event_id: "$n" }),
        item({ event_id: "$d2", type: "m.room.redaction", content: { redacts: "$n" } }),
      ],
      ME,
    );
    expect(view.map((v) => [v.event.event_id, v.redacted, v.reactions.length])).toEqual([
      ["$m", false, 0],
      ["$n", true, 0],
    ]);
  });

  it("finds the replied-to event and strips the fallback", () => {
    const view = buildView([item({ event_id: "$m", content: { body: "> <@a:s> hi\n\nyo", "m.relates_to": { "m.in_reply_to": { event_id: "$0" } } } })], ME);
    expect(view[0]!.replyTo).toBe("$0");
    expect(stripReplyFallback("> <@a:s> hi\n> there\n\nyo")).toBe("yo");
    expect(stripReplyFallback("no quote")).toBe("no quote");
  });
});
