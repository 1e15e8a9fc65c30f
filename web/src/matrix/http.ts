// The one place that talks HTTP to the homeserver: JSON in and out, the
// Authorization header, and silent refresh when the access token expires.

export interface Session {
  userId: string;
  deviceId: string;
  accessToken: string;
  refreshToken?: string | undefined;
  /** When the access token expires (ms since the epoch), if the server said. */
  expiresAt?: number | undefined;
  /** The access token lifetime the server last gave (expires_in_ms). */
  lifetimeMs?: number | undefined;
}

/**
 * Refresh this long before expiry: a fifth of the lifetime, at most 30 s, and
 * at least 2 s (the server's expiry has whole-second precision).
 */
export function refreshMargin(lifetimeMs: number): number {
  return Math.min(30000, Math.max(lifetimeMs / 5, Math.min(2000, lifetimeMs / 2)));
}

/** A Matrix error answer (`errcode`), or a network failure (`status` 0). */
export class MatrixError extends Error {
  constructor(
    public readonly status: number,
    public readonly errcode: string,
    message: string,
    public readonly body: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "MatrixError";
  }

  /** Worth retrying with the same transaction id: the request may not have arrived. */
  get transient(): boolean {
    return this.status === 0 || this.status >= 500 || this.errcode === "M_LIMIT_EXCEEDED";
  }

  get retryAfterMs(): number | undefined {
    const v = this.body["retry_after_ms"];
    return typeof v === "number" ? v : undefined;
  }
}

export type Fetch = typeof fetch;

export interface TokenAnswer {
  access_token: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  auth?: boolean;
  signal?: AbortSignal | undefined;
}

export class Http {
  session: Session | null = null;
  /** Called after a refresh, so the session can be saved. */
  onSession: (s: Session) => void = () => {};
  /** Called when the session is gone for good (back to the login screen). */
  onLoggedOut: () => void = () => {};
  private refreshing: Promise<boolean> | null = null;

  constructor(
    public readonly baseUrl: string,
    private readonly fetchImpl: Fetch = (...args) => fetch(...args),
  ) {}

  url(path: string, query?: RequestOptions["query"]): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) params.set(k, String(v));
    }
    const qs = params.toString();
    return this.baseUrl + path + (qs ? "?" + qs : "");
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const auth = opts.auth ?? true;
    if (auth) await this.refreshIfExpiring();
    for (let attempt = 0; ; attempt++) {
      const token = this.session?.accessToken;
      try {
        return await this.once<T>(method, path, opts, auth ? token : undefined);
      } catch (e) {
        if (auth && e instanceof MatrixError && (e.errcode === "M_UNKNOWN_TOKEN" || e.errcode === "M_MISSING_TOKEN")) {
          const soft = e.body["soft_logout"] === true;
          if (attempt === 0 && soft && (await this.refresh(token))) continue;
          if (this.session) {
            this.session = null;
            this.onLoggedOut();
          }
        }
        throw e;
      }
    }
  }

  /** A raw authenticated GET returning the body as a Blob (media thumbnails). */
  async blob(path: string, query?: RequestOptions["query"]): Promise<Blob> {
    for (let attempt = 0; ; attempt++) {
      const token = this.session?.accessToken;
      const res = await this.fetchImpl(this.url(path, query), {
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      });
      if (res.ok) return await res.blob();
      const err = await toError(res);
      if (attempt === 0 && err.errcode === "M_UNKNOWN_TOKEN" && err.body["soft_logout"] === true) {
        if (await this.refresh(token)) continue;
      }
      throw err;
    }
  }

  /** Refresh ahead of expiry, so requests do not bounce off a 401 first. */
  async refreshIfExpiring(): Promise<void> {
    const s = this.session;
    if (!s?.refreshToken || s.expiresAt === undefined) return;
    const lifetime = s.lifetimeMs ?? 300000;
    if (Date.now() < s.expiresAt - refreshMargin(lifetime)) return;
    try {
      await this.refresh(s.accessToken);
    } catch {
      /* offline: the request itself will fail and be retried */
    }
  }

  /**
   * Swap the refresh token for new tokens, once for all concurrent callers:
   * a refresh token is single use and reusing one revokes the session.
   */
  refresh(staleToken: string | undefined): Promise<boolean> {
    const s = this.session;
    if (!s?.refreshToken) return Promise.resolve(false);
    if (s.accessToken !== staleToken) return Promise.resolve(true); // someone refreshed already
    if (this.refreshing) return this.refreshing;
    const refreshToken = s.refreshToken;
    this.refreshing = (async () => {
      try {
        const r = await this.once<{ access_token: string; refresh_token?: string; expires_in_ms?: number }>(
          "POST",
          "/_matrix/client/v3/refresh",
          { body: { refresh_token: refreshToken } },
          undefined,
        );
        if (!this.session) return false;
        this.session = {
          ...this.session,
          accessToken: r.access_token,
          refreshToken: r.refresh_token ?? refreshToken,
          expiresAt: r.expires_in_ms !== undefined ? Date.now() + r.expires_in_ms : undefined,
          lifetimeMs: r.expires_in_ms,
        };
        this.onSession(this.session);
        return true;
      } catch (e) {
        if (e instanceof MatrixError && e.transient) throw e;
        return false;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /**
   * Swap the refresh token through `exchange` (the WebSocket's in-band
   * `refresh`), after any refresh already under way: one at a time, since a
   * refresh token is single use. Resolves to the new access token, or
   * undefined when the exchange failed.
   */
  async refreshVia(exchange: (refreshToken: string) => Promise<TokenAnswer>): Promise<string | undefined> {
    while (this.refreshing) {
      try {
        await this.refreshing;
      } catch {
        /* the other refresh failed; try ours */
      }
    }
    const refreshToken = this.session?.refreshToken;
    if (!refreshToken) return undefined;
    let token: string | undefined;
    const run = (async () => {
      try {
        const r = await exchange(refreshToken);
        if (!this.session) return false;
        this.session = {
          ...this.session,
          accessToken: r.access_token,
          refreshToken: r.refresh_token ?? refreshToken,
          expiresAt: r.expires_in_ms !== undefined ? Date.now() + r.expires_in_ms : undefined,
          lifetimeMs: r.expires_in_ms,
        };
        this.onSession(this.session);
        token = r.access_token;
        return true;
      } catch {
        return false;
      } finally {
        this.refreshing = null;
      }
    })();
    this.refreshing = run;
    await run;
    return token;
  }

  private async once<T>(
    method: string,
    path: string,
    opts: RequestOptions,
    token: string | undefined,
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (token) headers["Authorization"] = `Bearer ${token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(path, opts.query), {
        method,
        headers,
        body,
        signal: opts.signal,
      });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw new MatrixError(0, "NETWORK", e instanceof Error ? e.message : "network error");
    }
    if (!res.ok) throw await toError(res);
    return (await res.json()) as T;
  }
}

async function toError(res: Response): Promise<MatrixError> {
  let body: Record<string, unknown> = {};
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  const errcode = typeof body["errcode"] === "string" ? body["errcode"] : `HTTP_${res.status}`;
  const message = typeof body["error"] === "string" ? body["error"] : res.statusText;
  return new MatrixError(res.status, errcode, message, body);
}
