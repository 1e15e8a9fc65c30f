import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { liveSync, liveTransport, notifyState, showNotice, toggleNotifications, useLive } from "../live";
import { applyJoinedRoom } from "../matrix/rooms";
import { useStore } from "../store";
import { App } from "./App";
import { NotifyToggle, PresenceDot } from "./Live";

const ME = "@me:s";

class FakeNotification {
  static permission = "default";
  static asked = 0;
  static shown: FakeNotification[] = [];
  static answer = "granted";
  static requestPermission = vi.fn(async () => {
    FakeNotification.asked += 1;
    FakeNotification.permission = FakeNotification.answer;
    return FakeNotification.answer;
  });
  onclick: ((ev: unknown) => void) | null = null;
  closed = false;
  constructor(
    public title: string,
    public options: { body?: string; tag?: string } = {},
  ) {
    FakeNotification.shown.push(this);
  }
  close(): void {
    this.closed = true;
  }
}

function setVisibility(v: "visible" | "hidden") {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => v });
}

beforeEach(() => {
  FakeNotification.permission = "default";
  FakeNotification.asked = 0;
  FakeNotification.shown = [];
  FakeNotification.answer = "granted";
  vi.stubGlobal("Notification", FakeNotification);
  localStorage.clear();
  useLive.setState({ notify: notifyState(), presence: {}, transport: undefined });
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  setVisibility("visible");
});

describe("PresenceDot", () => {
  it("shows what sync said, offline when unknown", () => {
    render(
      <>
        <PresenceDot userId="@bob:s" />
        <PresenceDot userId="@nobody:s" withLabel />
      </>,
    );
    const [bob, nobody] = screen.getAllByTestId("presence");
    expect(bob!.dataset["presence"]).toBe("offline");
    expect(nobody!.textContent).toBe("Offline");
    act(() =>
      liveSync(
        { next_batch: "s1", presence: { events: [{ type: "m.presence", sender: "@bob:s", content: { presence: "online" } }] } } as never,
        false,
        { rooms: {}, direct: {}, me: ME, myName: undefined },
      ),
    );
    expect(bob!.dataset["presence"]).toBe("online");
    expect(bob!.getAttribute("title")).toBe("Online");
  });
});

describe("notifications", () => {
  it("asks for permission once, at the click, and remembers the choice", async () => {
    render(<NotifyToggle />);
    const bell = screen.getByTestId("notify-toggle");
    expect(bell.getAttribute("aria-pressed")).toBe("false");
    expect(FakeNotification.asked).toBe(0); // never without a gesture
    await act(async () => fireEvent.click(bell));
    expect(FakeNotification.asked).toBe(1);
    expect(useLive.getState().notify).toBe("on");
    expect(localStorage.getItem("plait.notifications")).toBe("on");
    await act(async () => fireEvent.click(bell)); // off, without asking again
    expect(useLive.getState().notify).toBe("off");
    await act(async () => fireEvent.click(bell));
    expect(useLive.getState().notify).toBe("on");
    expect(FakeNotification.asked).toBe(1);
  });

  it("shows a refusal as blocked", async () => {
    FakeNotification.answer = "denied";
    render(<NotifyToggle />);
    await act(async () => fireEvent.click(screen.getByTestId("notify-toggle")));
    expect(useLive.getState().notify).toBe("denied");
    expect(screen.getByTestId("notify-toggle").getAttribute("aria-disabled")).toBe("true");
    await act(async () => fireEvent.click(screen.getByTestId("notify-toggle"))); // asks no more
    expect(FakeNotification.asked).toBe(1);
  });

  it("notifies only while the tab is hidden, and a click opens the room", async () => {
    await toggleNotifications();
    const notice = { roomId: "!dm:s", eventId: "$1", title: "Bob", body: "hi", highlight: false };
    setVisibility("visible");
    expect(showNotice(notice)).toBe(false);
    setVisibility("hidden");
    const opened: string[] = [];
    const { liveStart } = await import("../live");
    liveStart({ presence: "online", setPresence: () => {}, getPresence: () => Promise.resolve({ presence: "online" }) } as never, (id) => opened.push(id));
    useLive.setState({ notify: "on" });
    const focus = vi.fn();
    vi.stubGlobal("focus", focus);
    expect(showNotice(notice)).toBe(true);
    const shown = FakeNotification.shown.at(-1)!;
    expect(shown.title).toBe("Bob");
    expect(shown.options).toEqual({ body: "hi", tag: "!dm:s" });
    shown.onclick?.({});
    expect(opened).toEqual(["!dm:s"]);
    expect(focus).toHaveBeenCalled();
    expect(shown.closed).toBe(true);
  });

  it("a DM message arriving in a hidden tab becomes a notification", async () => {
    await toggleNotifications();
    setVisibility("hidden");
    const dm = { ...applyJoinedRoom(undefined, "!dm:s", {}, ME, false), isDirect: true };
    const ev = { event_id: "$d1", type: "m.room.message", sender: "@bob:s", origin_server_ts: 1, content: { msgtype: "m.text", body: "psst" } };
    liveSync({ next_batch: "s2", rooms: { join: { "!dm:s": { timeline: { events: [ev] } } } } }, false, {
      rooms: { "!dm:s": dm },
      direct: {},
      me: ME,
      myName: undefined,
    });
    expect(FakeNotification.shown.map((n) => [n.title, n.options.body])).toEqual([["@bob:s", "psst"]]);
  });
});

describe("own presence", () => {
  it("is online while the tab is visible and unavailable while hidden", async () => {
    const { liveStart } = await import("../live");
    const said: string[] = [];
    const client = { presence: "online", setPresence: (p: string) => void said.push(p), getPresence: () => Promise.resolve({}) };
    setVisibility("hidden");
    liveStart(client as never, () => {});
    expect(client.presence).toBe("unavailable"); // what the client says first
    setVisibility("visible");
    document.dispatchEvent(new Event("visibilitychange"));
    setVisibility("hidden");
    document.dispatchEvent(new Event("visibilitychange"));
    expect(said).toEqual(["online", "unavailable"]);
  });
});

describe("App", () => {
  it("exposes the sync transport for tests and debugging", () => {
    act(() =>
      useStore.setState({
        phase: "ready",
        session: { userId: ME, deviceId: "D", accessToken: "a" },
        rooms: {},
        direct: {},
        currentRoomId: undefined,
        connected: true,
      }),
    );
    render(<App />);
    expect(screen.getByTestId("shell").dataset["transport"]).toBe("none");
    act(() => liveTransport("websocket"));
    expect(screen.getByTestId("shell").dataset["transport"]).toBe("websocket");
  });

  it("puts a presence dot on a DM partner in the sidebar", () => {
    const dm = { ...applyJoinedRoom(undefined, "!dm:s", { summary: { "m.heroes": ["@bob:s"] } }, ME, false), isDirect: true };
    act(() =>
      useStore.setState({
        phase: "ready",
        session: { userId: ME, deviceId: "D", accessToken: "a" },
        rooms: { "!dm:s": dm },
        direct: {},
        currentRoomId: "!dm:s",
        connected: true,
      }),
    );
    act(() => useLive.setState({ presence: { "@bob:s": { presence: "unavailable", currentlyActive: false } } }));
    render(<App />);
    const dots = screen.getAllByTestId("presence");
    expect(dots.length).toBeGreaterThanOrEqual(2); // the sidebar row and the room header
    expect(dots.every((d) => d.dataset["presence"] === "unavailable")).toBe(true);
    expect(document.querySelector(".room-title .presence-label")?.textContent).toBe("Away");
  });
});

describe("Members", () => {
  it("lists joined members online first, invited last, each with a dot", async () => {
    const { MembersButton, sortMembers } = await import("./Members");
    const members = {
      "@zed:s": { userId: "@zed:s", displayName: "Zed", membership: "join" },
      "@amy:s": { userId: "@amy:s", displayName: "Amy", membership: "join" },
      "@bob:s": { userId: "@bob:s", displayName: "Bob", membership: "join" },
      "@inv:s": { userId: "@inv:s", membership: "invite" },
      "@old:s": { userId: "@old:s", membership: "leave" },
    };
    const presence = { "@zed:s": { presence: "online" as const, currentlyActive: true }, "@bob:s": { presence: "unavailable" as const, currentlyActive: false } };
    expect(sortMembers(Object.values(members), presence).map((m) => m.userId)).toEqual(["@zed:s", "@bob:s", "@amy:s", "@inv:s"]);
    useLive.setState({ presence });
    const room = { ...applyJoinedRoom(undefined, "!g:s", {}, ME, false), members };
    render(<MembersButton room={room} />);
    fireEvent.click(screen.getByRole("button", { name: "Members (3)" }));
    const rows = [...screen.getByTestId("members").querySelectorAll("li")];
    expect(rows.map((r) => [r.dataset["user"], r.querySelector<HTMLElement>("[data-presence]")!.dataset["presence"]])).toEqual([
      ["@zed:s", "online"],
      ["@bob:s", "unavailable"],
      ["@amy:s", "offline"],
      ["@inv:s", "offline"],
    ]);
  });
});
