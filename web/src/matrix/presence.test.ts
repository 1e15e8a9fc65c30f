import { describe, expect, it } from "vitest";
import { applyPresence, dmPartner } from "./presence";
import { emptyRoom } from "./types";

describe("presence from sync", () => {
  it("folds m.presence events in, newest wins, and ignores junk", () => {
    const before = {};
    const after = applyPresence(
      before,
      {
        next_batch: "s1",
        presence: {
          events: [
            { type: "m.presence", sender: "@bob:s", content: { presence: "online", currently_active: true, last_active_ago: 1000 } },
            { type: "m.presence", sender: "@cy:s", content: { presence: "online" } },
            { type: "m.presence", sender: "@cy:s", content: { presence: "unavailable" } },
            { type: "m.presence", sender: "@dan:s", content: { presence: "sleeping" } },
            { type: "m.typing", sender: "@eve:s", content: { presence: "online" } },
          ],
        },
      } as never,
      10000,
    );
    expect(after).toEqual({
      "@bob:s": { presence: "online", currentlyActive: true, lastActive: 9000 },
      "@cy:s": { presence: "unavailable", currentlyActive: false, lastActive: undefined },
    });
    expect(before).toEqual({});
  });

  it("returns the same object when nothing changed (no re-render)", () => {
    const prev = { "@bob:s": { presence: "offline" as const, currentlyActive: false } };
    expect(applyPresence(prev, { next_batch: "s2" })).toBe(prev);
  });
});

describe("DM partner", () => {
  it("comes from m.direct first, then heroes, then members", () => {
    const room = { ...emptyRoom("!dm:s"), heroes: ["@me:s", "@hero:s"] };
    expect(dmPartner(room, "@me:s", { "@al:s": ["!dm:s"] })).toBe("@al:s");
    expect(dmPartner(room, "@me:s", {})).toBe("@hero:s");
    const members = {
      ...emptyRoom("!dm:s"),
      members: {
        "@me:s": { userId: "@me:s", membership: "join" },
        "@gone:s": { userId: "@gone:s", membership: "leave" },
        "@bo:s": { userId: "@bo:s", membership: "invite" },
      },
    };
    expect(dmPartner(members, "@me:s", {})).toBe("@bo:s");
  });
});
