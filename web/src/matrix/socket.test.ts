import { afterEach, describe, expect, it, vi } from "vitest";
import { MatrixClient, type ClientHooks, type Transport } from "./client";
import { Http } from "./http";
import { mockSockets, type Frame, type MockSocket } from "./mocksocket";
import { CLOSE_APPLY_FAILED, runSocket, socketUrl, type SocketOptions } from "./socket";
import type { MatrixEvent, SyncResponse } from "./types";

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/**
 * A homeserver with one room whose timeline is a list of events; batch token
 * `sN` means "the first N events seen". Both transports read the same list,
 * so a client that resumes correctly sees every event exactly once.
 */
class FakeServer {
  events: MatrixEvent[] = [];
  accessTokens = new Set(["a1"]);
  refreshTokens = new Map([["r1", "a2"]]);
  longPolls: (string | null)[] = [];
  subscribes: Frame[] = [];
  auths: string[] = [];
  /** The live subscriptions: a new event is pushed to them. */
  live = new Set<{ ws: MockSocket; since: number }>();

  add(body: string): void {
    const n = this.events.length + 1;
    this.events.push({
      event_id: `$e${n}`,
      type: "m.room.message",
      sender: "@bob:s",
      origin_server_ts: n,
      content: { msgtype: "m.text", body },
    });
    for (const sub of this.live) this.pushTo(sub);
  }

  body(since: number): SyncResponse {
    const events = this.events.slice(since);
    return {
      next_batch: `s${this.events.length}`,
      rooms: events.length ? { join: { "!r:s": { timeline: { events } } } } : {},
    };
  }

  private pushTo(sub: { ws: MockSocket; since: number }): void {
    if (sub.ws.readyState !== 1) {
      this.live.delete(sub);
      return;
    }
    if (sub.since === this.events.length) return;
    sub.ws.push({ type: "sync", body: this.body(sub.since) });
    sub.since = this.events.length;
  }

  /** The WebSocket endpoint. */
  socket = (frame: Frame, ws: MockSocket): void => {
    if (frame.type === "auth") {
      const token = String(frame["access_token"]);
      this.auths.push(token);
      if (!this.accessTokens.has(token)) {
        ws.push({ type: "error", id: frame.id, errcode: "M_UNKNOWN_TOKEN", error: "expired", soft_logout: true });
        ws.drop(4001);
        return;
      }
      ws.push({ type: "auth_ok", id: frame.id, user_id: "@me:s", device_id: "D" });
    } else if (frame.type === "subscribe") {
      this.subscribes.push(frame);
      ws.push({ type: "ack", id: frame.id, result: {} });
      const since = typeof frame["since"] === "string" ? Number(frame["since"].slice(1)) : 0;
      const sub = { ws, since };
      this.live.add(sub);
      if (frame["since"] === null) {
        ws.push({ type: "sync", body: this.body(0) });
        sub.since = this.events.length;
      } else this.pushTo(sub);
    } else if (frame.type === "refresh") {
      const access = this.refreshTokens.get(String(frame["refresh_token"]));
      if (!access) {
        ws.push({ type: "error", id: frame.id, errcode: "M_UNKNOWN_TOKEN", error: "bad refresh token" });
        return;
      }
      this.refreshTokens.delete(String(frame["refresh_token"]));
      this.accessTokens.add(access);
      ws.push({ type: "ack", id: frame.id, result: { access_token: access, refresh_token: `${access}-r`, expires_in_ms: 60000 } });
    } else if (frame.type === "ping") {
      ws.push({ type: "pong", id: frame.id });
    }
  };

  /** The HTTP endpoints: /sync (answers at once) and /refresh. */
  fetch = (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(String(input));
    if (url.pathname.endsWith("/refresh")) {
      const { refresh_token } = JSON.parse(String(init.body)) as { refresh_token: string };
      const access = this.refreshTokens.get(refresh_token);
      if (!access) return Promise.resolve(json(401, { errcode: "M_UNKNOWN_TOKEN" }));
      this.refreshTokens.delete(refresh_token);
      this.accessTokens.add(access);
      return Promise.resolve(json(200, { access_token: access, refresh_token: `${access}-r` }));
    }
    const auth = (init.headers as Record<string, string>)["Authorization"]?.replace("Bearer ", "") ?? "";
    if (!this.accessTokens.has(auth)) return Promise.resolve(json(401, { errcode: "M_UNKNOWN_TOKEN", soft_logout: true }));
    if (url.pathname.endsWith("/sync")) {
      const since = url.searchParams.get("since");
      this.longPolls.push(since);
      const from = since ? Number(since.slice(1)) : 0;
      const timeout = Number(url.searchParams.get("timeout") ?? 0);
      // A long-poll waits (briefly, here) when there is nothing new.
      const wait = since && from === this.events.length && timeout > 0 ? Math.min(timeout, 30) : 0;
      return new Promise((resolve) => setTimeout(() => resolve(json(200, this.body(from))), wait));
    }
    return Promise.resolve(json(200, {}));
  };
}

function setup(opts: { refuse?: boolean } = {}) {
  const server = new FakeServer();
  const sockets = mockSockets(server.socket);
  sockets.state.refuse = opts.refuse ?? false;
  const http = new Http("http://hs.test", ((i: RequestInfo | URL, init?: RequestInit) => server.fetch(i, init)) as typeof fetch);
  http.session = { userId: "@me:s", deviceId: "D", accessToken: "a1", refreshToken: "r1" };
  const seen: string[] = [];
  const transports: Transport[] = [];
  const hooks: ClientHooks = {
    onSync: (r: SyncResponse) => {
      for (const room of Object.values(r.rooms?.join ?? {})) for (const e of room.timeline?.events ?? []) seen.push(e.event_id);
    },
    onConnection: () => {},
    onSent: () => {},
    onSendFailed: () => {},
    onLoggedOut: () => {},
    onSession: () => {},
    onTransport: (t) => void transports.push(t),
  };
  const client = new MatrixClient(http, hooks, null, {
    socket: sockets.factory,
    socketUrl: "ws://hs.test/_plait/client/v1/ws",
    socketRetryMs: 20,
  });
  return { server, sockets, http, client, seen, transports };
}

let stopAll: (() => void)[] = [];
afterEach(() => {
  for (const f of stopAll) f();
  stopAll = [];
  vi.useRealTimers();
});

describe("socket URL", () => {
  it("maps http(s) to ws(s) and adds the path", () => {
    expect(socketUrl("https://chat.example.org")).toBe("wss://chat.example.org/_plait/client/v1/ws");
    expect(socketUrl("http://127.0.0.1:8008")).toBe("ws://127.0.0.1:8008/_plait/client/v1/ws");
  });
});

describe("one connection (runSocket)", () => {
  function options(over: Partial<SocketOptions> = {}): SocketOptions {
    return {
      url: "ws://x",
      accessToken: "a1",
      since: undefined,
      filter: { room: { timeline: { limit: 30 } } },
      presence: "online",
      onSync: () => {},
      onLive: () => {},
      refresh: () => Promise.resolve(undefined),
      ...over,
    };
  }

  it("authenticates with the first frame, then subscribes with since and filter", async () => {
    const server = new FakeServer();
    server.add("one");
    const { factory, sockets } = mockSockets(server.socket);
    const ctl = new AbortController();
    const bodies: SyncResponse[] = [];
    const done = runSocket(factory, options({ since: "s0", signal: ctl.signal, onSync: (b) => void bodies.push(b) }));
    await vi.waitFor(() => expect(bodies).toHaveLength(1));
    const sent = sockets[0]!.sent;
    expect(sent[0]).toEqual({ type: "auth", id: "auth", access_token: "a1" });
    expect(sent[1]).toMatchObject({ type: "subscribe", since: "s0", filter: { room: { timeline: { limit: 30 } } }, set_presence: "online" });
    ctl.abort();
    const r = await done;
    expect(r).toMatchObject({ authed: true, live: true, synced: true, since: "s1" });
  });

  it("reports a refused token and the server's close", async () => {
    const server = new FakeServer();
    const { factory } = mockSockets(server.socket);
    const r = await runSocket(factory, options({ accessToken: "old" }));
    expect(r).toMatchObject({ authed: false, live: false, code: 4001, errcode: "M_UNKNOWN_TOKEN", softLogout: true });
  });

  it("does not move the token past a frame it could not apply", async () => {
    const server = new FakeServer();
    server.add("one");
    const { factory, sockets } = mockSockets(server.socket);
    const r = await runSocket(
      factory,
      options({
        since: "s0",
        onSync: () => {
          throw new Error("bug");
        },
      }),
    );
    expect(r).toMatchObject({ code: CLOSE_APPLY_FAILED, synced: false, since: "s0" });
    expect(sockets[0]!.closedWith).toBe(1000);
  });

  it("gives up when nothing answers in time", async () => {
    const { factory } = mockSockets(() => {}); // never answers auth
    const r = await runSocket(factory, options({ connectTimeoutMs: 30 }));
    expect(r).toMatchObject({ authed: false, live: false });
  });

  it("closes a socket stopped while connecting only once it is open", async () => {
    const { factory, sockets } = mockSockets(() => {});
    const ctl = new AbortController();
    const done = runSocket(
      (url) => {
        const ws = factory(url);
        ctl.abort(); // e.g. the browser went offline right away
        return ws;
      },
      options({ signal: ctl.signal }),
    );
    await done;
    const ws = sockets[0]!;
    await vi.waitFor(() => expect(ws.readyState).toBe(3));
    expect(ws.closedWith).toBe(1000);
    expect(ws.sent).toEqual([]); // no auth on a connection we gave up
  });

  it("closes a connection whose pongs stop", async () => {
    const server = new FakeServer();
    let pongs = true;
    const { factory } = mockSockets((f, ws) => (f.type === "ping" && !pongs ? undefined : server.socket(f, ws)));
    const ctl = new AbortController();
    const done = runSocket(factory, options({ since: "s0", pingIntervalMs: 20, pongTimeoutMs: 15, signal: ctl.signal }));
    await new Promise((r) => setTimeout(r, 70));
    pongs = false;
    const r = await done;
    expect(r.live).toBe(true);
    expect(r.code).not.toBe(0);
  });
});

describe("in-band token refresh", () => {
  it("answers an expiry error with a refresh frame and keeps the stream", async () => {
    const { server, sockets, http, client, seen } = setup();
    client.start();
    stopAll.push(() => client.stop());
    await vi.waitFor(() => expect(server.subscribes).toHaveLength(1));
    const ws = sockets.sockets[0]!;
    ws.push({ type: "error", errcode: "M_UNKNOWN_TOKEN", error: "Access token has expired", soft_logout: true });
    await vi.waitFor(() => expect(http.session?.accessToken).toBe("a2"));
    expect(ws.sentOf("refresh")).toEqual([{ type: "refresh", id: expect.any(String), refresh_token: "r1" }]);
    expect(http.session?.refreshToken).toBe("a2-r");
    expect(http.session?.expiresAt).toBeGreaterThan(Date.now());
    // Same connection, still streaming.
    server.add("after refresh");
    await vi.waitFor(() => expect(seen).toEqual(["$e1"]));
    expect(sockets.sockets).toHaveLength(1);
  });

  it("waits for a refresh already under way over HTTP, then uses the newest refresh token", async () => {
    const { server, sockets, http, client } = setup();
    server.refreshTokens.set("a2-r", "a3");
    client.start();
    stopAll.push(() => client.stop());
    await vi.waitFor(() => expect(server.subscribes).toHaveLength(1));
    const overHttp = http.refresh("a1");
    sockets.sockets[0]!.push({ type: "error", errcode: "M_UNKNOWN_TOKEN", error: "expired", soft_logout: true });
    await overHttp;
    await vi.waitFor(() => expect(http.session?.accessToken).toBe("a3"));
    expect(sockets.sockets[0]!.sentOf("refresh")[0]).toMatchObject({ refresh_token: "a2-r" });
  });

  it("connects with a token refreshed ahead of expiry", async () => {
    const { server, http, client } = setup();
    http.session = { ...http.session!, expiresAt: Date.now() + 500, lifetimeMs: 60000 };
    client.start();
    stopAll.push(() => client.stop());
    await vi.waitFor(() => expect(server.subscribes).toHaveLength(1));
    expect(server.auths).toEqual(["a2"]);
  });

  it("after a refused auth, refreshes over HTTP and goes back to the socket", async () => {
    const { server, http, client, transports } = setup();
    server.accessTokens.delete("a1"); // expired, but the client does not know
    client.start();
    stopAll.push(() => client.stop());
    await vi.waitFor(() => expect(server.subscribes).toHaveLength(1));
    expect(server.auths).toEqual(["a1", "a2"]);
    expect(http.session?.accessToken).toBe("a2");
    expect(transports.at(-1)).toBe("websocket");
  });
});

describe("presence", () => {
  it("says where we are once connected, and again on each change", async () => {
    const { server, client } = setup();
    const puts: unknown[] = [];
    const fetch = server.fetch;
    server.fetch = (input, init = {}) => {
      if (String(input).includes("/presence/")) puts.push([init.method, new URL(String(input)).pathname, JSON.parse(String(init.body))]);
      return fetch(input, init);
    };
    client.presence = "unavailable";
    client.start();
    stopAll.push(() => client.stop());
    await vi.waitFor(() => expect(puts).toHaveLength(1));
    expect(puts[0]).toEqual(["PUT", "/_matrix/client/v3/presence/%40me%3As/status", { presence: "unavailable" }]);
    client.setPresence("unavailable"); // no change: nothing sent
    client.setPresence("online");
    await vi.waitFor(() => expect(puts).toHaveLength(2));
    expect((puts[1] as unknown[])[2]).toEqual({ presence: "online" });
  });
});

describe("transport fallback and resume", () => {
  it("uses the socket and resumes from the last next_batch after a drop", async () => {
    const { server, sockets, client, seen, transports } = setup();
    server.add("before");
    client.start();
    stopAll.push(() => client.stop());
    await vi.waitFor(() => expect(seen).toEqual(["$e1"]));
    expect(server.subscribes[0]!["since"]).toBeNull();
    expect(server.longPolls).toEqual([]);
    sockets.sockets[0]!.drop(4008); // too slow: resume
    server.add("while away");
    await vi.waitFor(() => expect(server.subscribes).toHaveLength(2));
    expect(server.subscribes[1]!["since"]).toBe("s1");
    server.add("after");
    await vi.waitFor(() => expect(seen).toEqual(["$e1", "$e2", "$e3"]));
    expect(transports).toEqual(["websocket"]);
    expect(client.transport).toBe("websocket");
  });

  it("falls back to long-poll when the socket cannot connect, then returns to it", async () => {
    const { server, sockets, client, seen, transports } = setup({ refuse: true });
    server.add("one");
    client.start();
    stopAll.push(() => client.stop());
    await vi.waitFor(() => expect(transports).toContain("longpoll"));
    await vi.waitFor(() => expect(seen).toEqual(["$e1"]));
    expect(server.longPolls[0]).toBeNull();
    server.add("two");
    await vi.waitFor(() => expect(seen).toEqual(["$e1", "$e2"]));
    expect(server.longPolls).toContain("s1");
    // The socket comes back: the stream continues from the last long-poll token.
    sockets.state.refuse = false;
    await vi.waitFor(() => expect(server.subscribes).toHaveLength(1), { timeout: 3000 });
    const since = server.subscribes[0]!["since"];
    expect(since).toBe(client.since);
    server.add("three");
    await vi.waitFor(() => expect(seen).toEqual(["$e1", "$e2", "$e3"]));
    expect(transports.at(-1)).toBe("websocket");
    const before = server.longPolls.length;
    server.add("four");
    await vi.waitFor(() => expect(seen).toHaveLength(4));
    expect(server.longPolls.length).toBe(before); // one transport at a time
  });

  it("long-polls for a while when it keeps losing the socket right after connecting", async () => {
    const { server, client, seen, transports } = setup();
    const socket = server.socket;
    // A proxy that lets the stream start, then cuts every connection at once.
    server.socket = (frame, ws) => {
      socket(frame, ws);
      if (frame.type === "subscribe") setTimeout(() => ws.drop(1006), 5);
    };
    const factory = mockSockets((f, ws) => server.socket(f, ws));
    (client as unknown as { options: { socket: unknown } }).options.socket = factory.factory;
    client.start();
    stopAll.push(() => client.stop());
    await vi.waitFor(() => expect(transports).toContain("longpoll"), { timeout: 5000 });
    expect(factory.sockets.length).toBeGreaterThanOrEqual(3); // three brief lives, then long-poll
    expect(server.longPolls.length).toBeGreaterThan(0);
    const socketsBefore = factory.sockets.length;
    server.add("still arrives");
    await vi.waitFor(() => expect(seen).toEqual(["$e1"]));
    expect(factory.sockets.length).toBe(socketsBefore); // over long-poll, the socket resting
  });

  it("tries the socket less and less often while it keeps failing", () => {
    const { client } = setup();
    expect(client.socketRetryDelay(1)).toBe(0);
    expect(client.socketRetryDelay(2)).toBe(20);
    expect(client.socketRetryDelay(3)).toBe(40);
    expect(client.socketRetryDelay(40)).toBe(300000);
  });

  it("goes offline with the browser and resumes over the socket when it is back", async () => {
    const { server, sockets, client, seen } = setup();
    const connection: boolean[] = [];
    (client as unknown as { hooks: ClientHooks }).hooks.onConnection = (c) => void connection.push(c);
    client.start();
    stopAll.push(() => client.stop());
    await vi.waitFor(() => expect(server.subscribes).toHaveLength(1));
    const online = vi.spyOn(navigator, "onLine", "get").mockReturnValue(false);
    server.fetch = () => Promise.reject(new TypeError("Failed to fetch"));
    globalThis.dispatchEvent(new Event("offline"));
    await vi.waitFor(() => expect(connection).toEqual([false]));
    expect(sockets.sockets[0]!.readyState).toBe(3);
    server.add("sent meanwhile");
    online.mockReturnValue(true);
    globalThis.dispatchEvent(new Event("online"));
    await vi.waitFor(() => expect(seen).toEqual(["$e1"]));
    expect(connection).toEqual([false, true]);
    expect(server.subscribes.at(-1)!["since"]).toBe("s0");
    online.mockRestore();
  });
});
