// One connection of the WebSocket sync transport (spec/websocket.md): the
// first frame authenticates, `subscribe` starts the stream of /sync bodies,
// and an expired access token is refreshed in-band. The caller keeps the
// `next_batch` of the last frame it applied and resumes from it on the next
// connection, or over long-poll /sync: the tokens are the same.
import type { SyncResponse } from "./types";

export const WS_PATH = "/_plait/client/v1/ws";

/** The slice of the browser WebSocket this module uses (mockable in tests). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

export interface Tokens {
  access_token: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

export interface SocketOptions {
  url: string;
  accessToken: string;
  since: string | undefined;
  filter: Record<string, unknown>;
  presence: string;
  /** Apply one /sync body; throwing closes the connection without moving the token. */
  onSync(body: SyncResponse): void;
  /** Authenticated and subscribed: the transport is live. */
  onLive(): void;
  /**
   * Refresh the session through `exchange` (which sends our `refresh` frame),
   * once for everybody: refresh tokens are single use. Resolves to the new
   * access token, or undefined when it could not.
   */
  refresh(exchange: (refreshToken: string) => Promise<Tokens>): Promise<string | undefined>;
  signal?: AbortSignal | undefined;
  /** No open + auth_ok within this long: give up (ms). */
  connectTimeoutMs?: number;
  /** Our own ping interval and how long its pong may take (ms). */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
}

export interface SocketResult {
  /** The server accepted our token. */
  authed: boolean;
  /** Subscribed: the stream was running. */
  live: boolean;
  /** At least one sync frame was applied. */
  synced: boolean;
  /** The close code (ours or the server's); 0 when the socket never opened. */
  code: number;
  /** The auth/error frame's errcode when the server refused us. */
  errcode?: string | undefined;
  softLogout?: boolean | undefined;
  /** The last `next_batch` applied on this connection. */
  since: string | undefined;
}

/** Local close codes (4000-4999 is the application range; these never go on the wire as server codes). */
export const CLOSE_STOPPED = 4100;
export const CLOSE_TIMEOUT = 4101;
export const CLOSE_APPLY_FAILED = 4102;

interface Frame {
  type?: string;
  id?: string | number;
  body?: SyncResponse;
  result?: Record<string, unknown>;
  errcode?: string;
  error?: string;
  soft_logout?: boolean;
}

/** ws:// or wss:// for an http(s) base URL. */
export function socketUrl(baseUrl: string): string {
  const base = baseUrl || globalThis.location?.origin || "";
  return base.replace(/^http/, "ws") + WS_PATH;
}

/** Run one connection until it ends; never rejects. */
export function runSocket(factory: SocketFactory, o: SocketOptions): Promise<SocketResult> {
  return new Promise((resolve) => {
    const result: SocketResult = { authed: false, live: false, synced: false, code: 0, since: o.since };
    let ws: SocketLike;
    try {
      ws = factory(o.url);
    } catch {
      resolve(result);
      return;
    }
    let done = false;
    let nextId = 1;
    const waiting = new Map<string | number, { ok(r: Record<string, unknown>): void; fail(f: Frame): void }>();
    let connectTimer: ReturnType<typeof setTimeout> | undefined = setTimeout(
      () => finish(CLOSE_TIMEOUT),
      o.connectTimeoutMs ?? 10000,
    );
    let pingTimer: ReturnType<typeof setInterval> | undefined;
    let pongTimer: ReturnType<typeof setTimeout> | undefined;
    let refreshing = false;

    const send = (frame: Record<string, unknown>): void => {
      if (!done && ws.readyState === 1) ws.send(JSON.stringify(frame));
    };

    function finish(code: number): void {
      if (done) return;
      done = true;
      result.code = code;
      clearTimeout(connectTimer);
      clearInterval(pingTimer);
      clearTimeout(pongTimer);
      o.signal?.removeEventListener("abort", stop);
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      for (const w of waiting.values()) w.fail({ errcode: "NETWORK", error: "connection closed" });
      waiting.clear();
      // Ours to close unless the server already did. A socket still
      // connecting is closed once open (closing it earlier makes browsers log
      // an error for nothing).
      const close = () => {
        try {
          ws.close(1000);
        } catch {
          /* already closing */
        }
      };
      if (ws.readyState === 1) close();
      else if (ws.readyState === 0) ws.onopen = close;
      resolve(result);
    }
    const stop = (): void => finish(CLOSE_STOPPED);
    if (o.signal?.aborted) {
      stop();
      return;
    }
    o.signal?.addEventListener("abort", stop);

    function command(frame: Record<string, unknown>): Promise<Record<string, unknown>> {
      const id = `c${nextId++}`;
      return new Promise((ok, fail) => {
        waiting.set(id, { ok, fail: (f) => fail(Object.assign(new Error(f.error ?? f.errcode ?? "error"), { frame: f })) });
        send({ ...frame, id });
      });
    }

    async function refreshInBand(): Promise<void> {
      if (refreshing) return;
      refreshing = true;
      try {
        const token = await o.refresh(async (refreshToken) => {
          const r = await command({ type: "refresh", refresh_token: refreshToken });
          return r as unknown as Tokens;
        });
        // The refresh went over HTTP (someone else's): this connection still
        // holds the expired token, so reconnect with the new one.
        if (token === undefined) finish(4003);
      } catch {
        finish(4003);
      } finally {
        refreshing = false;
      }
    }

    ws.onopen = () => send({ type: "auth", id: "auth", access_token: o.accessToken });
    ws.onerror = () => {
      /* a close event follows */
    };
    ws.onclose = (ev) => finish(ev.code || 1006);
    ws.onmessage = (ev) => {
      if (done) return;
      let frame: Frame;
      try {
        frame = JSON.parse(String(ev.data)) as Frame;
      } catch {
        return;
      }
      switch (frame.type) {
        case "auth_ok":
          result.authed = true;
          send({
            type: "subscribe",
            id: "sub",
            since: result.since ?? null,
            filter: o.filter,
            set_presence: o.presence,
          });
          return;
        case "ack": {
          if (frame.id === "sub") {
            clearTimeout(connectTimer);
            connectTimer = undefined;
            result.live = true;
            o.onLive();
            startPings();
            return;
          }
          const w = frame.id !== undefined ? waiting.get(frame.id) : undefined;
          if (w && frame.id !== undefined) {
            waiting.delete(frame.id);
            w.ok(frame.result ?? {});
          }
          return;
        }
        case "pong":
          clearTimeout(pongTimer);
          return;
        case "sync": {
          const body = frame.body;
          if (!body || typeof body.next_batch !== "string") return;
          try {
            o.onSync(body);
          } catch {
            finish(CLOSE_APPLY_FAILED);
            return;
          }
          result.since = body.next_batch;
          result.synced = true;
          return;
        }
        case "error": {
          if (frame.id === "auth" || (!result.authed && frame.id === undefined)) {
            result.errcode = frame.errcode;
            result.softLogout = frame.soft_logout === true;
            return; // the server closes with 4001
          }
          if (frame.id === "sub") {
            result.errcode = frame.errcode;
            finish(CLOSE_APPLY_FAILED);
            return;
          }
          const w = frame.id !== undefined ? waiting.get(frame.id) : undefined;
          if (w && frame.id !== undefined) {
            waiting.delete(frame.id);
            w.fail(frame);
            return;
          }
          if (frame.errcode === "M_UNKNOWN_TOKEN" && frame.soft_logout === true) void refreshInBand();
          return;
        }
        default:
          return;
      }
    };

    function startPings(): void {
      const every = o.pingIntervalMs ?? 25000;
      pingTimer = setInterval(() => {
        send({ type: "ping" });
        clearTimeout(pongTimer);
        pongTimer = setTimeout(() => finish(CLOSE_TIMEOUT), o.pongTimeoutMs ?? 10000);
      }, every);
    }
  });
}
