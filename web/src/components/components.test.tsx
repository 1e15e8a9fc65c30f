import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { useStore } from "../store";
import { App } from "./App";
import { Markdown } from "./Markdown";
import { RoomView } from "./RoomView";
import { Sidebar, sortRooms } from "./Sidebar";
import { dayLabel } from "./Timeline";
import { ME, ev, ready, room } from "./testFixtures";

afterEach(cleanup);

describe("Markdown", () => {
  it("renders markup as elements and HTML in bodies as plain text", () => {
    const { container } = render(<Markdown text={'**hi** <img src=x onerror="alert(1)"> <script>alert(2)</script> [x](javascript:alert(3))'} />);
    expect(container.querySelector("strong")?.textContent).toBe("hi");
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("script")).toBeNull();
    expect(container.querySelector("a")).toBeNull();
    expect(container.textContent).toContain('<img src=x onerror="alert(1)">');
  });

  it("links only http(s) URLs, opening safely", () => {
    const { container } = render(<Markdown text="go https://example.org now" />);
    const a = container.querySelector("a")!;
    expect(a.getAttribute("href")).toBe("https://example.org");
    expect(a.getAttribute("rel")).toContain("noopener");
  });
});

describe("App", () => {
  it("shows the login form when logged out", () => {
    act(() => useStore.setState({ phase: "login", session: null }));
    render(<App />);
    expect(screen.getByRole("button", { name: "Log in" })).toBeTruthy();
    fireEvent.click(screen.getByRole("tab", { name: "Register" }));
    expect(screen.getByRole("button", { name: "Create account" })).toBeTruthy();
  });

  it("shows an offline banner while disconnected", () => {
    ready([]);
    act(() => useStore.setState({ connected: false }));
    render(<App />);
    expect(screen.getByTestId("offline-banner").textContent).toMatch(/Offline/);
  });
});

describe("Sidebar", () => {
  it("sorts rooms by activity, keeps DMs apart and shows unread badges", () => {
    const quiet = room("!quiet:s", [ev({ origin_server_ts: 10 })], { name: "Quiet" });
    const busy = room("!busy:s", [ev({ origin_server_ts: 20 })], { name: "Busy", unread: 3 });
    const dm = room("!dm:s", [ev({ origin_server_ts: 30 })], { name: "Bob", isDirect: true });
    expect(sortRooms([quiet, busy, dm]).map((r) => r.roomId)).toEqual(["!dm:s", "!busy:s", "!quiet:s"]);
    ready([quiet, busy, dm]);
    render(<Sidebar />);
    expect(screen.getByTestId("my-name").textContent).toBe("Me Myself");
    const sections = screen.getAllByRole("heading", { level: 2 }).map((h) => h.textContent);
    expect(sections).toEqual(["People", "Rooms"]);
    const rows = Array.from(document.querySelectorAll("section")).map((s) =>
      Array.from(s.querySelectorAll(".room-name")).map((e) => e.textContent),
    );
    expect(rows).toEqual([["Bob"], ["Busy", "Quiet"]]);
    expect(screen.getByLabelText("3 unread").textContent).toBe("3");
  });
});

describe("RoomView", () => {
  it("shows senders, day separators, deleted and encrypted messages", () => {
    const day1 = Date.UTC(2025, 5, 1, 12);
    const day2 = Date.UTC(2025, 5, 2, 12);
    const events = [
      ev({ type: "m.room.member", state_key: "@bob:s", content: { membership: "join", displayname: "Bob" }, origin_server_ts: day1 }),
      ev({ content: { msgtype: "m.text", body: "first" }, origin_server_ts: day1 + 1 }),
      ev({ event_id: "$gone", content: { msgtype: "m.text", body: "secret" }, origin_server_ts: day2 }),
      ev({ type: "m.room.redaction", redacts: "$gone", content: {}, origin_server_ts: day2 + 1 }),
      ev({ type: "m.room.encrypted", content: { algorithm: "m.megolm.v1.aes-sha2" }, origin_server_ts: day2 + 2 }),
    ];
    ready([room("!r:s", events, { name: "Tea" })], "!r:s");
    render(<RoomView roomId="!r:s" />);
    expect(screen.getByRole("heading", { name: "Tea" })).toBeTruthy();
    expect(screen.getAllByRole("separator").map((s) => s.textContent)).toEqual([dayLabel(day1), dayLabel(day2)]);
    expect(screen.getAllByText("Bob").length).toBeGreaterThan(0);
    expect(screen.getByText("first")).toBeTruthy();
    expect(screen.queryByText("secret")).toBeNull();
    expect(screen.getByText("Message deleted")).toBeTruthy();
    expect(screen.getByText(/cannot read it yet/)).toBeTruthy();
  });

  it("Enter sends with a local echo, Shift+Enter does not", () => {
    ready([room("!r:s", [ev()], { name: "Tea" })], "!r:s");
    render(<RoomView roomId="!r:s" />);
    const box = screen.getByRole("textbox", { name: "Message" });
    fireEvent.change(box, { target: { value: "line one" } });
    fireEvent.keyDown(box, { key: "Enter", shiftKey: true });
    expect(useStore.getState().rooms["!r:s"]!.timeline).toHaveLength(1);
    fireEvent.keyDown(box, { key: "Enter" });
    const timeline = useStore.getState().rooms["!r:s"]!.timeline;
    expect(timeline).toHaveLength(2);
    expect(timeline[1]).toMatchObject({ status: "sending", event: { sender: ME, content: { body: "line one" } } });
    expect(screen.getByText("line one")).toBeTruthy();
    expect((box as HTMLTextAreaElement).value).toBe("");
  });

  it("an encrypted room says so and offers no composer", () => {
    ready([room("!e:s", [], { name: "Secret", encrypted: true })], "!e:s");
    render(<RoomView roomId="!e:s" />);
    expect(screen.getByRole("note").textContent).toMatch(/end-to-end encrypted/);
    expect(screen.queryByRole("textbox", { name: "Message" })).toBeNull();
  });

  it("shows who is typing", () => {
    const r = room("!r:s", [ev({ type: "m.room.member", state_key: "@bob:s", content: { membership: "join", displayname: "Bob" } })], { name: "Tea", typing: ["@bob:s"] });
    ready([r], "!r:s");
    render(<RoomView roomId="!r:s" />);
    expect(screen.getByTestId("typing").textContent).toBe("Bob is typing…");
  });
});
