// Shared fixtures of the component tests: events, rooms and a signed-in store.
import { act } from "@testing-library/react";
import { applyJoinedRoom } from "../matrix/rooms";
import type { MatrixEvent, Room } from "../matrix/types";
import { useStore } from "../store";

export const ME = "@me:s";

let n = 0;
/** A text message from @bob with a fresh event ID (`$<prefix><n>`) and body `m<n>`. */
export function ev(partial: Partial<MatrixEvent> = {}, prefix = "c"): MatrixEvent {
  n += 1;
  return { event_id: `$${prefix}${n}`, type: "m.room.message", sender: "@bob:s", origin_server_ts: Date.UTC(2026, 0, 1, 12) + n, content: { msgtype: "m.text", body: `m${n}` }, ...partial };
}

export function room(roomId: string, events: MatrixEvent[], extra: Partial<Room> = {}): Room {
  const r = applyJoinedRoom(undefined, roomId, { timeline: { events } }, ME, false);
  return { ...r, moreHistory: false, ...extra };
}

/** The store as after sign-in and a first sync holding `rooms`. */
export function ready(rooms: Room[], current?: string, myName = "Me Myself") {
  act(() =>
    useStore.setState({
      phase: "ready",
      session: { userId: ME, deviceId: "D", accessToken: "a" },
      myName,
      rooms: Object.fromEntries(rooms.map((r) => [r.roomId, r])),
      direct: {},
      currentRoomId: current,
      connected: true,
      error: undefined,
    }),
  );
}
