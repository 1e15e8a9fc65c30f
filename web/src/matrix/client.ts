// The typed client: login and registration, the /sync loop, an outbox that
// retries sends with the same transaction id (so a dropped network loses
// nothing and duplicates nothing), history, typing, receipts and media.
import { Http, MatrixError, type Fetch, type Session } from "./http";
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

export class MatrixClient {
  since: string | undefined;
  connected = true;
  private running = false;
  private syncAbort: AbortController | null = null;
  private outbox: Outgoing[] = [];
  private sending = false;
  private outboxWake: (() => void) | null = null;

  constructor(
    public readonly http: Http,
    private readonly hooks: ClientHooks,
    private readonly storage: Storage | null = globalThis.localStorage ?? null,
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

  start(): void {
    if (this.running) return;
    this.running = true;
    globalThis.addEventListener?.("offline", this.wentOffline);
    void this.syncLoop();
    void this.drainOutbox();
  }

  stop(): void {
    this.running = false;
    globalThis.removeEventListener?.("offline", this.wentOffline);
    this.syncAbort?.abort();
    this.outboxWake?.();
  }

  private wentOffline = (): void => {
    this.setConnected(false);
    this.syncAbort?.abort();
  };

  private setConnected(connected: boolean): void {
    if (this.connected === connected) return;
    this.connected = connected;
    this.hooks.onConnection(connected);
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
    this.hooks.onSync(resp, initial);
    this.since = resp.next_batch;
    return resp;
  }

  private async syncLoop(): Promise<void> {
    let backoff = 500;
    while (this.running) {
      try {
        await this.syncOnce(30000);
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
