import { describe, expect, it, vi } from "vitest";
import { MatrixClient, register, type ClientHooks } from "./client";
import { Http, MatrixError } from "./http";

type Handler = (url: URL, init: RequestInit) => Response | Promise<Response>;

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/** A fetch that records calls and answers with `handler`; /sync hangs until aborted unless handled. */
function fakeFetch(handler: Handler) {
  const calls: { url: URL; init: RequestInit }[] = [];
  const impl = (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    calls.push({ url, init });
    return Promise.resolve(handler(url, init));
  };
  return { calls, impl: impl as typeof fetch };
}

function hooks(): ClientHooks & { synced: unknown[]; sent: [string, string][]; failed: string[]; loggedOut: number } {
  const h = {
    synced: [] as unknown[],
    sent: [] as [string, string][],
    failed: [] as string[],
    loggedOut: 0,
    onSync: (r: unknown) => void h.synced.push(r),
    onConnection: () => {},
    onSent: (t: string, e: string) => void h.sent.push([t, e]),
    onSendFailed: (t: string) => void h.failed.push(t),
    onLoggedOut: () => void (h.loggedOut += 1),
    onSession: () => {},
  };
  return h;
}

function makeClient(handler: Handler) {
  const f = fakeFetch(handler);
  const http = new Http("http://hs.test", f.impl);
  http.session = { userId: "@me:s", deviceId: "D", accessToken: "a1", refreshToken: "r1" };
  const h = hooks();
  const client = new MatrixClient(http, h, null);
  return { client, http, calls: f.calls, h };
}

describe("sync token handling", () => {
  it("starts without since and timeout 0, then long-polls from next_batch", async () => {
    let n = 0;
    const { client, calls } = makeClient(() => json(200, { next_batch: `s${++n}` }));
    await client.syncOnce(30000);
    await client.syncOnce(30000);
    expect(calls[0]!.url.searchParams.get("since")).toBeNull();
    expect(calls[0]!.url.searchParams.get("timeout")).toBe("0");
    expect(calls[1]!.url.searchParams.get("since")).toBe("s1");
    expect(calls[1]!.url.searchParams.get("timeout")).toBe("30000");
    expect(client.since).toBe("s2");
  });

  it("keeps the token when a sync fails or its answer cannot be applied", async () => {
    let fail = true;
    const { client, h } = makeClient(() => (fail ? json(502, {}) : json(200, { next_batch: "s9" })));
    client.since = "s1";
    await expect(client.syncOnce(0)).rejects.toBeInstanceOf(MatrixError);
    expect(client.since).toBe("s1");
    fail = false;
    h.onSync = () => {
      throw new Error("bug");
    };
    await expect(client.syncOnce(0)).rejects.toThrow("bug");
    expect(client.since).toBe("s1");
  });
});

describe("outbox", () => {
  it("retries a send with the same transaction id until it lands", async () => {
    let attempts = 0;
    const { client, calls, h } = makeClient((url) => {
      if (url.pathname.endsWith("/sync")) return new Promise<Response>(() => {});
      attempts += 1;
      if (attempts === 1) throw new TypeError("Failed to fetch");
      if (attempts === 2) return json(503, { errcode: "M_UNKNOWN" });
      return json(200, { event_id: "$sent" });
    });
    client.start();
    client.send({ txnId: "t1", roomId: "!r:s", type: "m.room.message", content: { body: "hi" } });
    await vi.waitFor(() => expect(h.sent).toEqual([["t1", "$sent"]]), { timeout: 5000 });
    const sends = calls.filter((c) => c.init.method === "PUT").map((c) => c.url.pathname);
    expect(sends).toHaveLength(3);
    expect(new Set(sends)).toEqual(new Set(["/_matrix/client/v3/rooms/!r%3As/send/m.room.message/t1"]));
    expect(client.pendingCount()).toBe(0);
    client.stop();
  });

  it("gives up on a permanent error and reports it", async () => {
    const { client, h } = makeClient((url) =>
      url.pathname.endsWith("/sync") ? new Promise<Response>(() => {}) : json(403, { errcode: "M_FORBIDDEN", error: "no" }),
    );
    client.start();
    client.send({ txnId: "t2", roomId: "!r:s", type: "m.room.message", content: { body: "hi" } });
    await vi.waitFor(() => expect(h.failed).toEqual(["t2"]));
    client.stop();
  });

  it("sends messages in the order they were typed", async () => {
    const order: string[] = [];
    const { client, h } = makeClient((url) => {
      if (url.pathname.endsWith("/sync")) return new Promise<Response>(() => {});
      order.push(url.pathname.split("/").pop()!);
      return json(200, { event_id: `$${order.length}` });
    });
    client.start();
    for (const t of ["a", "b", "c"]) client.send({ txnId: t, roomId: "!r:s", type: "m.room.message", content: {} });
    await vi.waitFor(() => expect(h.sent).toHaveLength(3));
    expect(order).toEqual(["a", "b", "c"]);
    client.stop();
  });
});

describe("tokens", () => {
  it("refreshes once on a soft logout and retries every waiting request", async () => {
    let refreshes = 0;
    const { http, calls } = makeClient((url, init) => {
      if (url.pathname.endsWith("/refresh")) {
        refreshes += 1;
        expect(JSON.parse(String(init.body))).toEqual({ refresh_token: "r1" });
        return json(200, { access_token: "a2", refresh_token: "r2" });
      }
      const auth = (init.headers as Record<string, string>)["Authorization"];
      if (auth === "Bearer a1") return json(401, { errcode: "M_UNKNOWN_TOKEN", soft_logout: true });
      return json(200, { ok: auth });
    });
    const results = await Promise.all([
      http.request<{ ok: string }>("GET", "/x"),
      http.request<{ ok: string }>("GET", "/y"),
    ]);
    expect(results).toEqual([{ ok: "Bearer a2" }, { ok: "Bearer a2" }]);
    expect(refreshes).toBe(1);
    expect(http.session?.refreshToken).toBe("r2");
    expect(calls.filter((c) => c.url.pathname.endsWith("/refresh"))).toHaveLength(1);
  });

  it("refreshes ahead of expiry, so requests never meet a 401", async () => {
    const seen: string[] = [];
    const { http } = makeClient((url, init) => {
      if (url.pathname.endsWith("/refresh")) return json(200, { access_token: "a2", refresh_token: "r2", expires_in_ms: 60000 });
      const auth = (init.headers as Record<string, string>)["Authorization"]!;
      seen.push(auth);
      return auth === "Bearer a1" ? json(401, { errcode: "M_UNKNOWN_TOKEN", soft_logout: true }) : json(200, {});
    });
    http.session = { ...http.session!, expiresAt: Date.now() + 1000, lifetimeMs: 60000 };
    await http.request("GET", "/x");
    expect(seen).toEqual(["Bearer a2"]);
    expect(http.session?.expiresAt).toBeGreaterThan(Date.now() + 50000);
  });

  it("goes back to login when the token is revoked", async () => {
    const { http, h } = makeClient(() => json(401, { errcode: "M_UNKNOWN_TOKEN", soft_logout: false }));
    await expect(http.request("GET", "/x")).rejects.toMatchObject({ errcode: "M_UNKNOWN_TOKEN" });
    expect(h.loggedOut).toBe(1);
    expect(http.session).toBeNull();
  });

  it("goes back to login once when a fresh token is refused too", async () => {
    const { http, h } = makeClient((url) =>
      url.pathname.endsWith("/refresh")
        ? json(200, { access_token: "a2", refresh_token: "r2" })
        : json(401, { errcode: "M_UNKNOWN_TOKEN", soft_logout: true }),
    );
    await Promise.allSettled([http.request("GET", "/x"), http.request("GET", "/y")]);
    expect(h.loggedOut).toBe(1);
    expect(http.session).toBeNull();
  });

  it("goes back to login when the refresh token is refused", async () => {
    const { http, h } = makeClient((url) =>
      url.pathname.endsWith("/refresh")
        ? json(401, { errcode: "M_UNKNOWN_TOKEN", soft_logout: false })
        : json(401, { errcode: "M_UNKNOWN_TOKEN", soft_logout: true }),
    );
    await expect(http.request("GET", "/x")).rejects.toBeInstanceOf(MatrixError);
    expect(h.loggedOut).toBe(1);
  });
});

describe("register", () => {
  it("completes the dummy stage with the session the server gave", async () => {
    const bodies: Record<string, unknown>[] = [];
    const f = fakeFetch((_url, init) => {
      const body = JSON.parse(String(init.body)) as Record<string, unknown>;
      bodies.push(body);
      if (!body["auth"]) return json(401, { session: "S", flows: [{ stages: ["m.login.dummy"] }], params: {} });
      return json(200, { user_id: "@al:s", device_id: "D", access_token: "a", refresh_token: "r" });
    });
    const session = await register(new Http("http://hs.test", f.impl), "al", "pw");
    expect(session).toEqual({ userId: "@al:s", deviceId: "D", accessToken: "a", refreshToken: "r" });
    expect(bodies[0]).toMatchObject({ username: "al", refresh_token: true });
    expect(bodies[1]!["auth"]).toEqual({ type: "m.login.dummy", session: "S" });
  });
});
