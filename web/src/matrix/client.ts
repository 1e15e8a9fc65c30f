// The typed client: login and registration, the /sync loop, an outbox that
// retries sends with the same transaction id (so a dropped network loses
// nothing and duplicates nothing), history, typing, receipts and media.
import { Http, MatrixError, type Fetch, type Session } from "./http";
import { CLOSE_STOPPED, runSocket, socketUrl, type SocketFactory, type SocketLike, type SocketResult } from "./socket";
import type { MatrixEvent, SyncResponse } from "./types";

const C = "/_matrix/client/v3";
export const SYNC_FILTER = JSON.stringify({ room: { timeline: { limit: 30 } } });

export interface Outgoing {
  txnId: string;
  roomId: string;
  type: string;
  content: Record<string, unknown>;
}

export interface ClientHooks {
  onSync(resp: SyncResponse, initial: boolean): void;
  onConnection(connected: boolean): void;
  onSent(txnId: string, eventId: string): void;
  onSendFailed(txnId: string, error: MatrixError): void;
  onLoggedOut(): void;
  onSession(session: Session): void;
  onTransport?(transport: Transport): void;
}

export type LoginResult = Session;

interface AuthResponse {
  user_id: string;
  device_id: string;
  access_token: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

function toSession(r: AuthResponse): LoginResult {
  return {
    userId: r.user_id,
    deviceId: r.device_id,
    accessToken: r.access_token,
    refreshToken: r.refresh_token,
    expiresAt: r.expires_in_ms !== undefined ? Date.now() + r.expires_in_ms : undefined,
    lifetimeMs: r.expires_in_ms,
  };
}

export function newTxnId(): string {
  const rand = Math.random().toString(36).slice(2, 10);
  return `w${Date.now().toString(36)}${rand}`;
}

/** Sleep, waking early when the browser comes back online or `signal` aborts. */
export function napUntilOnline(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      globalThis.removeEventListener?.("online", done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    globalThis.addEventListener?.("online", done);
    signal?.addEventListener("abort", done);
  });
}

export async function login(http: Http, user: string, password: string): Promise<LoginResult> {
  const r = await http.request<AuthResponse>("POST", `${C}/login`, {
    auth: false,
    body: {
      type: "m.login.password",
      identifier: { type: "m.id.user", user },
      password,
      refresh_token: true,
      initial_device_display_name: "Plait web",
    },
  });
  return toSession(r);
}

/** Register with User-Interactive Auth: the dummy stage, as open registration asks. */
export async function register(http: Http, username: string, password: string): Promise<LoginResult> {
  const body: Record<string, unknown> = {
    username,
    password,
    refresh_token: true,
    initial_device_display_name: "Plait web",
  };
  try {
    return toSession(await http.request<AuthResponse>("POST", `${C}/register`, { auth: false, body }));
  } catch (e) {
    if (!(e instanceof MatrixError) || e.status !== 401 || typeof e.body["session"] !== "string") throw e;
    const flows = (e.body["flows"] as { stages?: string[] }[] | undefined) ?? [];
    if (!flows.some((f) => (f.stages ?? []).every((s) => s === "m.login.dummy"))) {
      throw new MatrixError(403, "M_FORBIDDEN", "This server needs a registration step this client does not support.");
    }
    body["auth"] = { type: "m.login.dummy", session: e.body["session"] };
    return toSession(await http.request<AuthResponse>("POST", `${C}/register`, { auth: false, body }));
  }
}

export type Transport = "websocket" | "longpoll";
export type Presence = "online" | "unavailable";

export interface ClientOptions {
  /** Opens the sync WebSocket; null or absent: long-poll only. */
  socket?: SocketFactory | null | undefined;
  socketUrl?: string | undefined;
  /** Base wait before trying a failing socket again (ms); doubles per failure, at most 5 min. */
  socketRetryMs?: number | undefined;
  socketConnectTimeoutMs?: number | undefined;
  socketPingMs?: number | undefined;
}

/**
 * The browser's WebSocket, unless long-poll is asked for
 * (`?transport=longpoll` or localStorage `plait.transport` = `longpoll`).
 */
export function browserSocket(): SocketFactory | null {
  if (typeof globalThis.WebSocket !== "function") return null;
  let forced: string | null = null;
  try {
    forced =
      new URLSearchParams(globalThis.location?.search ?? "").get("transport") ??
      globalThis.localStorage?.getItem("plait.transport") ??
      null;
  } catch {
    forced = null;
  }
  if (forced === "longpoll") return null;
  return (url) => new WebSocket(url) as unknown as SocketLike;
}

function isOnline(): boolean {
  return globalThis.navigator?.onLine !== false;
}

export class MatrixClient {
  since: string | undefined;
  connected = true;
  /** The transport that last delivered sync; undefined before the first. */
  transport: Transport | undefined;
  presence: Presence = "online";
  private socketFailures = 0;
  private presenceSaid = false;
  /** Live sockets in a row that lasted less than 10 s. */
  private socketFlaps = 0;
  private socketRetryAt = 0;
  private running = false;
  private syncAbort: AbortController | null = null;
  private outbox: Outgoing[] = [];
  private sending = false;
  private outboxWake: (() => void) | null = null;

  constructor(
    public readonly http: Http,
    private readonly hooks: ClientHooks,
    private readonly storage: Storage | null = globalThis.localStorage ?? null,
    private readonly options: ClientOptions = {},
  ) {
    http.onLoggedOut = () => {
      this.stop();
      hooks.onLoggedOut();
    };
    http.onSession = (s) => hooks.onSession(s);
  }

  get userId(): string {
    return this.http.session?.userId ?? "";
  }

  // ---- sync ------------------------------------------------------------
  //
  // One loop, one transport at a time, both reading and advancing the same
  // `since`: the WebSocket stream when it connects, long-poll /sync while it
  // cannot (the socket is tried again later, from the latest next_batch).

  start(): void {
    if (this.running) return;
    this.running = true;
    globalThis.addEventListener?.("offline", this.wentOffline);
    globalThis.addEventListener?.("online", this.cameOnline);
    void this.syncLoop();
    void this.drainOutbox();
  }

  stop(): void {
    this.running = false;
    globalThis.removeEventListener?.("offline", this.wentOffline);
    globalThis.removeEventListener?.("online", this.cameOnline);
    this.syncAbort?.abort();
    this.outboxWake?.();
  }

  private wentOffline = (): void => {
    this.setConnected(false);
    this.syncAbort?.abort();
  };

  private cameOnline = (): void => {
    // Back online: the socket first, whatever its earlier failures.
    this.socketFailures = 0;
    this.socketRetryAt = 0;
  };

  private setConnected(connected: boolean): void {
    if (this.connected === connected) return;
    this.connected = connected;
    this.hooks.onConnection(connected);
  }

  private setTransport(t: Transport): void {
    if (this.transport === t) return;
    this.transport = t;
    this.hooks.onTransport?.(t);
  }

  /** Fold one /sync body in, then (only then) advance the token. */
  private applySync(resp: SyncResponse): void {
    const initial = this.since === undefined;
    this.hooks.onSync(resp, initial);
    this.since = resp.next_batch;
    // Once connected, say whether we are here: a sync alone does not undo
    // an "unavailable" set by an earlier, hidden, tab.
    if (!this.presenceSaid) {
      this.presenceSaid = true;
      void this.putPresence();
    }
  }

  /** One /sync round trip; exposed for tests. */
  async syncOnce(timeoutMs: number): Promise<SyncResponse> {
    this.syncAbort = new AbortController();
    const initial = this.since === undefined;
    const resp = await this.http.request<SyncResponse>("GET", `${C}/sync`, {
      query: { since: this.since, timeout: initial ? 0 : timeoutMs, filter: SYNC_FILTER },
      signal: this.syncAbort.signal,
    });
    // The token advances only after the answer is applied: a failure retries
    // the same `since`, so nothing is skipped.
    this.applySync(resp);
    return resp;
  }

  /** One WebSocket connection, from `since` until it ends; exposed for tests. */
  async socketOnce(): Promise<SocketResult> {
    const factory = this.options.socket;
    if (!factory) return { authed: false, live: false, synced: false, code: 0, since: this.since };
    this.syncAbort = new AbortController();
    try {
      await this.http.refreshIfExpiring();
    } catch {
      /* the socket's auth will say */
    }
    const token = this.http.session?.accessToken;
    if (!token) return { authed: false, live: false, synced: false, code: 0, since: this.since };
    return runSocket(factory, {
      url: this.options.socketUrl ?? socketUrl(this.http.baseUrl),
      accessToken: token,
      since: this.since,
      filter: JSON.parse(SYNC_FILTER) as Record<string, unknown>,
      presence: "online",
      signal: this.syncAbort.signal,
      onSync: (body) => this.applySync(body),
      onLive: () => {
        this.socketFailures = 0;
        this.setTransport("websocket");
        this.setConnected(true);
      },
      refresh: (exchange) => this.http.refreshVia(exchange),
      connectTimeoutMs: this.options.socketConnectTimeoutMs,
      pingIntervalMs: this.options.socketPingMs,
    });
  }

  /** How long after `failures` failed attempts to try the socket again (ms). */
  socketRetryDelay(failures: number): number {
    const base = this.options.socketRetryMs ?? 2000;
    return failures <= 1 ? 0 : Math.min(base * 2 ** (failures - 2), 300000);
  }

  private async syncLoop(): Promise<void> {
    let backoff = 500;
    let liveBackoff = 250;
    while (this.running) {
      if (this.options.socket && Date.now() >= this.socketRetryAt && isOnline()) {
        const opened = Date.now();
        const r = await this.socketOnce();
        if (!this.running) return;
        if (r.code === CLOSE_STOPPED) continue; // went offline: long-poll notices, then naps
        if (r.live) {
          // It was live: reconnect and resume from the last frame applied.
          const brief = Date.now() - opened < 10000;
          liveBackoff = brief ? Math.min(liveBackoff * 2, 10000) : 250;
          this.socketFlaps = brief ? this.socketFlaps + 1 : 0;
          if (this.socketFlaps < 3) {
            if (r.code === 4003) await this.refreshAfterClose();
            // One more try before the banner: a server restart takes a moment.
            await napUntilOnline(liveBackoff);
            continue;
          }
          // It keeps losing the socket (a proxy?): long-poll for a while
          // (half a minute with the default retry base).
          this.socketFlaps = 0;
          liveBackoff = 250;
          this.socketFailures = Math.max(this.socketFailures, 5);
        }
        this.socketFailures += 1;
        this.socketRetryAt = Date.now() + this.socketRetryDelay(this.socketFailures);
      }
      try {
        const untilSocket = this.options.socket ? Math.max(0, this.socketRetryAt - Date.now()) : 30000;
        await this.syncOnce(Math.min(30000, untilSocket));
        this.setTransport("longpoll");
        this.setConnected(true);
        backoff = 500;
      } catch (e) {
        if (!this.running) return;
        if (e instanceof MatrixError && e.status === 401) return; // logged out
        if (!(e instanceof MatrixError) || e.transient || e.status === 0) this.setConnected(false);
        await napUntilOnline(backoff);
        backoff = Math.min(backoff * 2, 10000);
      }
    }
  }

  /** The server ended the socket's session (4003): refresh over HTTP if the token has expired. */
  private async refreshAfterClose(): Promise<void> {
    const s = this.http.session;
    if (s?.expiresAt !== undefined && Date.now() >= s.expiresAt - 1000) {
      try {
        await this.http.refresh(s.accessToken);
      } catch {
        /* offline: the next attempt says */
      }
    }
  }

  // ---- presence ------------------------------------------------------------

  /** Online while the tab is visible, unavailable while hidden (others see it as a dot). */
  setPresence(presence: Presence): void {
    if (this.presence === presence) return;
    this.presence = presence;
    void this.putPresence();
  }

  /** Someone's presence now (sync only says when it changes). */
  async getPresence(userId: string): Promise<{ presence?: string; last_active_ago?: number; currently_active?: boolean }> {
    return this.http.request("GET", `${C}/presence/${enc(userId)}/status`);
  }

  private async putPresence(): Promise<void> {
    if (!this.userId || !this.running) return;
    try {
      await this.http.request("PUT", `${C}/presence/${enc(this.userId)}/status`, {
        body: { presence: this.presence },
      });
    } catch {
      this.presenceSaid = false; // best effort: the next sync says it again
    }
  }

  // ---- sending -----------------------------------------------------------

  private outboxKey(): string {
    return `plait.outbox.${this.userId}`;
  }

  /** Messages typed but not yet confirmed, from an earlier page load. */
  savedOutbox(): Outgoing[] {
    try {
      const raw = this.storage?.getItem(this.outboxKey());
      return raw ? (JSON.parse(raw) as Outgoing[]) : [];
    } catch {
      return [];
    }
  }

  private saveOutbox(): void {
    try {
      if (this.outbox.length) this.storage?.setItem(this.outboxKey(), JSON.stringify(this.outbox));
      else this.storage?.removeItem(this.outboxKey());
    } catch {
      /* storage full or disabled: the in-memory outbox still retries */
    }
  }

  /** Queue an event; it is retried with the same txnId until the server answers. */
  send(out: Outgoing): void {
    if (!this.outbox.some((o) => o.txnId === out.txnId)) this.outbox.push(out);
    this.saveOutbox();
    this.outboxWake?.();
    if (this.running) void this.drainOutbox();
  }

  pendingCount(): number {
    return this.outbox.length;
  }

  private async drainOutbox(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    let backoff = 500;
    try {
      while (this.running && this.outbox.length) {
        const out = this.outbox[0]!;
        try {
          const path =
            out.type === "m.room.redaction"
              ? `${C}/rooms/${enc(out.roomId)}/redact/${enc(String(out.content["redacts"]))}/${enc(out.txnId)}`
              : `${C}/rooms/${enc(out.roomId)}/send/${enc(out.type)}/${enc(out.txnId)}`;
          const body =
            out.type === "m.room.redaction" ? { reason: out.content["reason"] } : out.content;
          const r = await this.http.request<{ event_id: string }>("PUT", path, { body });
          this.outbox.shift();
          this.saveOutbox();
          backoff = 500;
          this.hooks.onSent(out.txnId, r.event_id);
        } catch (e) {
          const err = e instanceof MatrixError ? e : new MatrixError(0, "NETWORK", String(e));
          if (err.status === 401) return;
          if (err.transient) {
            await new Promise<void>((resolve) => {
              this.outboxWake = resolve;
              void napUntilOnline(err.retryAfterMs ?? backoff).then(resolve);
            });
            this.outboxWake = null;
            backoff = Math.min(backoff * 2, 8000);
            continue;
          }
          this.outbox.shift();
          this.saveOutbox();
          this.hooks.onSendFailed(out.txnId, err);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  // ---- rooms ---------------------------------------------------------------

  async messages(roomId: string, from: string | undefined, limit = 30): Promise<{ chunk: MatrixEvent[]; end?: string }> {
    return this.http.request("GET", `${C}/rooms/${enc(roomId)}/messages`, {
      query: { dir: "b", from, limit },
    });
  }

  async createRoom(opts: {
    name?: string;
    topic?: string;
    isPublic: boolean;
    invite?: string[];
    isDirect?: boolean;
  }): Promise<string> {
    const body: Record<string, unknown> = {
      preset: opts.isPublic ? "public_chat" : opts.isDirect ? "trusted_private_chat" : "private_chat",
      visibility: opts.isPublic ? "public" : "private",
    };
    if (opts.name) body["name"] = opts.name;
    if (opts.topic) body["topic"] = opts.topic;
    if (opts.invite?.length) body["invite"] = opts.invite;
    if (opts.isDirect) body["is_direct"] = true;
    const r = await this.http.request<{ room_id: string }>("POST", `${C}/createRoom`, { body });
    return r.room_id;
  }

  async join(roomIdOrAlias: string): Promise<string> {
    const r = await this.http.request<{ room_id: string }>("POST", `${C}/join/${enc(roomIdOrAlias)}`, { body: {} });
    return r.room_id;
  }

  async leave(roomId: string): Promise<void> {
    await this.http.request("POST", `${C}/rooms/${enc(roomId)}/leave`, { body: {} });
  }

  async invite(roomId: string, userId: string): Promise<void> {
    await this.http.request("POST", `${C}/rooms/${enc(roomId)}/invite`, { body: { user_id: userId } });
  }

  async publicRooms(search?: string): Promise<PublicRoom[]> {
    const body: Record<string, unknown> = { limit: 50 };
    if (search) body["filter"] = { generic_search_term: search };
    const r = await this.http.request<{ chunk: PublicRoom[] }>("POST", `${C}/publicRooms`, { body });
    return r.chunk;
  }

  async typing(roomId: string, typing: boolean): Promise<void> {
    const body = typing ? { typing: true, timeout: 20000 } : { typing: false };
    await this.http.request("PUT", `${C}/rooms/${enc(roomId)}/typing/${enc(this.userId)}`, { body });
  }

  async readReceipt(roomId: string, eventId: string): Promise<void> {
    await this.http.request("POST", `${C}/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, { body: {} });
  }

  async displayName(userId: string): Promise<string | undefined> {
    try {
      const r = await this.http.request<{ displayname?: string }>("GET", `${C}/profile/${enc(userId)}/displayname`);
      return r.displayname;
    } catch {
      return undefined;
    }
  }

  async setDisplayName(name: string): Promise<void> {
    await this.http.request("PUT", `${C}/profile/${enc(this.userId)}/displayname`, { body: { displayname: name } });
  }

  async setAccountData(type: string, content: Record<string, unknown>): Promise<void> {
    await this.http.request("PUT", `${C}/user/${enc(this.userId)}/account_data/${enc(type)}`, { body: content });
  }

  async logout(): Promise<void> {
    this.stop();
    try {
      await this.http.request("POST", `${C}/logout`, { body: {} });
    } catch {
      /* the session is dropped locally either way */
    }
    this.storage?.removeItem(this.outboxKey());
  }

  // ---- media -----------------------------------------------------------------

  /** Upload with progress (fetch cannot report upload progress; XHR can). */
  upload(file: Blob, name: string, onProgress: (fraction: number) => void): Promise<string> {
    const attempt = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open("POST", this.http.url("/_matrix/media/v3/upload", { filename: name }));
        const token = this.http.session?.accessToken;
        if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
        xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable) onProgress(e.loaded / e.total);
        };
        xhr.onload = () => {
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(xhr.responseText) as Record<string, unknown>;
          } catch {
            /* not JSON */
          }
          if (xhr.status === 200 && typeof body["content_uri"] === "string") resolve(body["content_uri"]);
          else
            reject(
              new MatrixError(xhr.status, String(body["errcode"] ?? `HTTP_${xhr.status}`), String(body["error"] ?? "upload failed"), body),
            );
        };
        xhr.onerror = () => reject(new MatrixError(0, "NETWORK", "upload failed"));
        xhr.send(file);
      });
    return (async () => {
      for (let i = 0; ; i++) {
        try {
          return await attempt();
        } catch (e) {
          if (e instanceof MatrixError && e.errcode === "M_UNKNOWN_TOKEN" && e.body["soft_logout"] === true) {
            if (await this.http.refresh(this.http.session?.accessToken)) continue;
          }
          if (i < 5 && e instanceof MatrixError && e.transient) {
            await napUntilOnline(1000 * 2 ** i);
            continue;
          }
          throw e;
        }
      }
    })();
  }

  /** An authenticated thumbnail as a Blob (shown through an object URL). */
  thumbnail(mxc: string, width: number, height: number): Promise<Blob> {
    const m = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(mxc);
    if (!m) return Promise.reject(new Error("not an mxc URI"));
    return this.http.blob(`/_matrix/client/v1/media/thumbnail/${enc(m[1]!)}/${enc(m[2]!)}`, {
      width,
      height,
      method: "scale",
    });
  }
}

export interface PublicRoom {
  room_id: string;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  num_joined_members: number;
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

export { Http, MatrixError, type Fetch, type Session };
