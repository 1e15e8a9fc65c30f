import { describe, expect, it } from "vitest";
import { mentionsMe, noticesFor, type NoticeContext } from "./notify";
import { applyJoinedRoom } from "./rooms";
import type { MatrixEvent, Room, SyncResponse } from "./types";

const ME = "@me:s";
let n = 0;
function msg(body: string, extra: Partial<MatrixEvent> = {}, content: Record<string, unknown> = {}): MatrixEvent {
  n += 1;
  return { event_id: `$n${n}`, type: "m.room.message", sender: "@bob:s", origin_server_ts: n, content: { msgtype: "m.text", body, ...content }, ...extra };
}

function ctx(rooms: Room[], direct: Record<string, string[]> = {}): NoticeContext {
  return { rooms: Object.fromEntries(rooms.map((r) => [r.roomId, r])), direct, me: ME, myName: "Marie Curie", highlights: new Map() };
}

function group(): Room {
  const r = applyJoinedRoom(undefined, "!g:s", {
    state: { events: [{ event_id: "$s", type: "m.room.name", state_key: "", sender: "@bob:s", origin_server_ts: 0, content: { name: "Lab" } }] },
  }, ME, false);
  return { ...r, members: { "@bob:s": { userId: "@bob:s", displayName: "Bob", membership: "join" } } };
}

function sync(roomId: string, events: MatrixEvent[], highlight?: number): SyncResponse {
  return {
    next_batch: "s",
    rooms: { join: { [roomId]: { timeline: { events }, ...(highlight !== undefined ? { unread_notifications: { notification_count: 1, highlight_count: highlight } as never } : {}) } } },
  };
}

describe("mention detection", () => {
  it("finds m.mentions, my user id, and my display name as words", () => {
    expect(mentionsMe(msg("hey", {}, { "m.mentions": { user_ids: [ME] } }), ME, undefined)).toBe(true);
    expect(mentionsMe(msg("ping @me:s please"), ME, undefined)).toBe(true);
    expect(mentionsMe(msg("thanks marie curie!"), ME, "Marie Curie")).toBe(true);
    expect(mentionsMe(msg("Marie Curies are many"), ME, "Marie Curie")).toBe(false);
    expect(mentionsMe(msg("nothing here"), ME, "Marie Curie")).toBe(false);
    expect(mentionsMe(msg("a+b (x)"), ME, "a+b")).toBe(true); // names are not regexes
  });
});

describe("which events notify", () => {
  it("notifies a mention in a group room, titled with sender and room", () => {
    const room = group();
    const out = noticesFor(sync("!g:s", [msg("just chatting"), msg("Marie Curie, look")]), false, ctx([room]));
    expect(out).toEqual([{ roomId: "!g:s", eventId: expect.any(String), title: "Bob in Lab", body: "Marie Curie, look", highlight: true }]);
  });

  it("does not notify ordinary group messages, my own, edits, or the initial sync", () => {
    const room = group();
    expect(noticesFor(sync("!g:s", [msg("hello all")]), false, ctx([room]))).toEqual([]);
    expect(noticesFor(sync("!g:s", [msg("Marie Curie", { sender: ME })]), false, ctx([room]))).toEqual([]);
    const edit = msg("* Marie Curie", {}, { "m.relates_to": { rel_type: "m.replace", event_id: "$x" } });
    expect(noticesFor(sync("!g:s", [edit]), false, ctx([room]))).toEqual([]);
    expect(noticesFor(sync("!g:s", [msg("Marie Curie!")]), true, ctx([room]))).toEqual([]);
  });

  it("always notifies a DM, one notice per room for its latest message", () => {
    const dm = { ...group(), roomId: "!dm:s", name: undefined, isDirect: true };
    const out = noticesFor(sync("!dm:s", [msg("one"), msg("two", {}, { msgtype: "m.image" })]), false, ctx([dm]));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ roomId: "!dm:s", title: "Bob", body: "sent an image", highlight: false });
    const viaDirect = { ...dm, isDirect: false };
    expect(noticesFor(sync("!dm:s", [msg("hi")]), false, ctx([viaDirect], { "@bob:s": ["!dm:s"] }))).toHaveLength(1);
  });

  it("follows the server's push rules when highlight_count rises", () => {
    const room = group();
    const c = ctx([room]);
    noticesFor(sync("!g:s", [], 2), true, c); // initial: remembered, not shown
    expect(noticesFor(sync("!g:s", [msg("keyword alert")], 2), false, c)).toEqual([]);
    expect(noticesFor(sync("!g:s", [msg("keyword alert")], 3), false, c)).toMatchObject([{ highlight: true, body: "keyword alert" }]);
  });
});
