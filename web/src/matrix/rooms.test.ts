import { describe, expect, it } from "vitest";
import { applyInvitedRoom, applyJoinedRoom, mergeTimeline, prependHistory, roomName } from "./rooms";
import type { MatrixEvent, TimelineItem } from "./types";

const ME = "@me:s";
let n = 0;
function ev(partial: Partial<MatrixEvent> = {}): MatrixEvent {
  n += 1;
  return {
    event_id: `$e${n}`,
    type: "m.room.message",
    sender: "@bob:s",
    origin_server_ts: 1000 + n,
    content: { msgtype: "m.text", body: `m${n}` },
    ...partial,
  };
}
function echo(txnId: string, status: TimelineItem["status"] = "sending", id = `~${txnId}`): TimelineItem {
  return { id, txnId, status, event: { ...ev({ sender: ME }), event_id: id } };
}

describe("local echo reconciliation", () => {
  it("replaces the echo with the server event carrying its transaction id", () => {
    const before = [{ id: "$a", event: ev({ event_id: "$a" }) }, echo("t1")];
    const remote = ev({ sender: ME, unsigned: { transaction_id: "t1" } });
    const after = mergeTimeline(before, [remote], false);
    expect(after.map((t) => t.id)).toEqual(["$a", remote.event_id]);
    expect(after[1]!.status).toBeUndefined();
  });

  it("replaces a sent echo by event id when the sync has no transaction id", () => {
    const after = mergeTimeline([echo("t1", "sent", "$x")], [ev({ event_id: "$x", sender: ME })], false);
    expect(after).toHaveLength(1);
    expect(after[0]!.status).toBeUndefined();
  });

  it("keeps pending echoes after newer remote events, and failed ones too", () => {
    const after = mergeTimeline([echo("t1"), echo("t2", "failed")], [ev({ event_id: "$r" })], false);
    expect(after.map((t) => t.id)).toEqual(["$r", "~t1", "~t2"]);
  });

  it("never duplicates an event it already has", () => {
    const e = ev();
    const once = mergeTimeline([], [e], false);
    expect(mergeTimeline(once, [e], false)).toHaveLength(1);
  });

  it("a limited timeline drops old events but keeps what is still being sent", () => {
    const after = mergeTimeline([{ id: "$old", event: ev({ event_id: "$old" }) }, echo("t1")], [ev({ event_id: "$new" })], true);
    expect(after.map((t) => t.id)).toEqual(["$new", "~t1"]);
  });
});

describe("rooms from /sync", () => {
  it("builds state, counts unread from others while not viewing, and clears when viewing", () => {
    let room = applyJoinedRoom(undefined, "!r:s", {
      state: { events: [ev({ type: "m.room.name", state_key: "", content: { name: "Tea" } })] },
      timeline: { events: [ev()], prev_batch: "p1" },
      unread_notifications: { notification_count: 1 },
    }, ME, false);
    expect(room.name).toBe("Tea");
    expect(room.unread).toBe(1);
    expect(room.prevBatch).toBe("p1");
    room = applyJoinedRoom(room, "!r:s", { timeline: { events: [ev(), ev({ sender: ME })] } }, ME, false);
    expect(room.unread).toBe(2);
    room = applyJoinedRoom(room, "!r:s", { timeline: { events: [ev()] } }, ME, true);
    expect(room.unread).toBe(0);
    expect(room.prevBatch).toBe("p1");
  });

  it("takes the server's unread count whenever it gives one (reads on other devices)", () => {
    let room = applyJoinedRoom(undefined, "!r:s", { timeline: { events: [ev(), ev()] }, unread_notifications: { notification_count: 2 } }, ME, false);
    room = applyJoinedRoom(room, "!r:s", { ephemeral: { events: [] }, unread_notifications: { notification_count: 0 } }, ME, false);
    expect(room.unread).toBe(0);
    room = applyJoinedRoom(room, "!r:s", { timeline: { events: [ev()] }, unread_notifications: { notification_count: 1 } }, ME, true);
    expect(room.unread).toBe(0);
  });

  it("reads typing and receipts from ephemeral events", () => {
    const room = applyJoinedRoom(undefined, "!r:s", {
      ephemeral: {
        events: [
          { type: "m.typing", content: { user_ids: ["@bob:s", ME] } },
          { type: "m.receipt", content: { $e1: { "m.read": { "@bob:s": { ts: 1 } } } } },
        ],
      },
    }, ME, false);
    expect(room.typing).toEqual(["@bob:s"]);
    expect(room.receipts).toEqual({ "@bob:s": "$e1" });
  });

  it("names rooms from their members when they have no name", () => {
    const room = applyJoinedRoom(undefined, "!r:s", {
      state: {
        events: [
          ev({ type: "m.room.member", state_key: ME, sender: ME, content: { membership: "join" } }),
          ev({ type: "m.room.member", state_key: "@bob:s", content: { membership: "join", displayname: "Bob" } }),
        ],
      },
    }, ME, false);
    expect(roomName(room, ME)).toBe("Bob");
  });

  it("invites carry the inviter and is_direct", () => {
    const room = applyInvitedRoom(undefined, "!r:s", {
      invite_state: {
        events: [ev({ type: "m.room.member", state_key: ME, content: { membership: "invite", is_direct: true } })],
      },
    }, ME);
    expect(room.membership).toBe("invite");
    expect(room.inviter).toBe("@bob:s");
    expect(room.isDirect).toBe(true);
  });

  it("a joined invite takes its history token from its first joined sync", () => {
    const invited = applyInvitedRoom(undefined, "!r:s", { invite_state: { events: [] } }, ME);
    const joined = applyJoinedRoom(invited, "!r:s", { timeline: { events: [ev()], prev_batch: "p0" } }, ME, false);
    expect(joined.membership).toBe("join");
    expect(joined.prevBatch).toBe("p0");
  });

  it("prepends history oldest first and stops at the start", () => {
    const room = applyJoinedRoom(undefined, "!r:s", { timeline: { events: [ev({ event_id: "$3" })], prev_batch: "p" } }, ME, true);
    const more = prependHistory(room, [ev({ event_id: "$2" }), ev({ event_id: "$1" }), ev({ event_id: "$3" })], "q");
    expect(more.timeline.map((t) => t.id)).toEqual(["$1", "$2", "$3"]);
    expect(more.moreHistory).toBe(true);
    expect(prependHistory(more, [], undefined).moreHistory).toBe(false);
  });
});
