"""Configuration: one TOML file, every key overridable by ``PLAIT_*`` variables and flags.

Precedence, lowest first: built-in defaults, the TOML file, environment
variables, command-line flags. A top-level key ``server_name`` is overridden by
``PLAIT_SERVER_NAME``; a key in a table, ``[http] max_json_body``, by
``PLAIT_HTTP_MAX_JSON_BODY``. Everything is validated once, at start, with a
message that names the key.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

Registration = Literal["open", "token", "closed"]


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and says why."""


@attrs.define
class HttpConfig:
    # Largest JSON request body, bytes (routes may set their own).
    max_json_body: int = 1024 * 1024
    # Request line plus headers, bytes; beyond it: 431.
    max_header_bytes: int = 64 * 1024
    # Seconds an idle keep-alive connection is kept open.
    idle_timeout: float = 60.0
    # Seconds allowed to receive the request line and headers, and then the body.
    header_timeout: float = 20.0
    body_timeout: float = 60.0
    # Seconds in-flight requests get to finish on shutdown.
    shutdown_grace: float = 10.0
    # Largest number of connections served at once.
    max_connections: int = 20000


@attrs.define
class TlsConfig:
    # Optional TLS listener, e.g. "0.0.0.0:8448" for federation.
    listen: str = ""
    cert_path: str = ""
    key_path: str = ""


@attrs.define
class AuthConfig:
    # Lifetime of access tokens for clients that asked for a refresh token.
    access_token_lifetime_s: int = 300
    # Lifetime of a refresh token that is never used.
    refresh_token_lifetime_s: int = 30 * 24 * 3600
    # Seconds after which a cached session row is read again (0: kept until revoked;
    # revocations drop it at once either way, the server being one process).
    session_cache_s: float = 0.0
    # argon2id cost for password hashes (argon2-cffi defaults; tests lower them).
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 4


@attrs.define
class RateLimitConfig:
    # One switch turns every limit off (benchmarks on loopback).
    enabled: bool = True
    # Token buckets: sustained rate per second and burst size.
    login_per_second: float = 0.5
    login_burst: int = 10
    register_per_second: float = 0.2
    register_burst: int = 5
    writes_per_second: float = 10.0
    writes_burst: int = 50


@attrs.define
class MediaConfig:
    # Largest upload, bytes (enforced from Content-Length and while streaming).
    max_upload_size: int = 50 * 1024 * 1024
    # Serve the deprecated unauthenticated /_matrix/media/v3/download|thumbnail|config
    # (Matrix 1.11 deprecates them; off unless old clients need them).
    enable_legacy_unauthenticated: bool = False
    # Total bytes a user may have uploaded; 0 means no quota.
    per_user_quota: int = 0
    # URL previews fetch arbitrary URLs for users (SSRF risk); off unless wanted.
    url_preview_enabled: bool = False
    # Networks previews may fetch from although private (comma-separated CIDRs,
    # e.g. "127.0.0.1/32" in tests); loopback, private and link-local are refused otherwise.
    url_preview_ip_allowlist: str = ""
    # Thumbnails generated on demand: "WxH method" entries separated by commas
    # (the sizes the spec recommends, Client-Server API "Thumbnails").
    thumbnail_sizes: str = "32x32 crop, 96x96 crop, 320x240 scale, 640x480 scale, 800x600 scale"
    # Largest source image (pixels) the thumbnailer decodes; beyond it: 413.
    max_thumbnail_pixels: int = 32 * 1024 * 1024
    # Pending asynchronous uploads (POST /media/v1/create) a user may hold, and
    # how long an unused created media id lives (spec recommends 24 hours).
    max_pending_uploads: int = 20
    unused_expiry_s: int = 24 * 3600


@attrs.define
class PresenceConfig:
    # false: PUT /presence is accepted and ignored, GET answers "offline", and
    # /sync carries no presence (as Synapse with presence.enabled = false).
    enabled: bool = True
    # Seconds without activity before an online user shows as "unavailable",
    # and before a user who stopped syncing shows as "offline".
    idle_after_s: int = 300
    offline_after_s: int = 1800


@attrs.define
class PushConfig:
    # Networks HTTP pushers may deliver to although private or loopback (comma-
    # separated CIDRs, e.g. "127.0.0.1/32" in tests); refused otherwise (SSRF).
    gateway_ip_allowlist: str = ""
    # Delivery attempts per notification, and the first retry delay (doubling, capped at 60 s).
    max_attempts: int = 5
    retry_initial_s: float = 1.0


@attrs.define
class WebSocketConfig:
    # The WebSocket sync transport (spec/websocket.md): seconds to send the auth frame,
    # heartbeat ping interval and pong deadline, grace to refresh an expired token.
    auth_timeout_s: float = 10.0
    heartbeat_interval_s: float = 30.0
    heartbeat_timeout_s: float = 20.0
    token_grace_s: float = 60.0
    # Largest accepted client frame; outgoing queue bounds (frames, bytes) and the
    # longest a single frame may take to send before the consumer counts as stalled.
    max_frame_bytes: int = 64 * 1024
    queue_frames: int = 64
    queue_bytes: int = 8 * 1024 * 1024
    send_timeout_s: float = 30.0


@attrs.define
class Config:
    server_name: str = "localhost"
    listen: str = "127.0.0.1:8008"
    data_dir: str = "./data"
    # Empty: SQLite in the data directory.
    database_url: str = ""
    redis_url: str = ""
    # Empty: "open" when listening on loopback only, otherwise "closed".
    registration: str = ""
    public_baseurl: str = ""
    default_room_version: str = "10"
    log_level: str = "INFO"
    # Seconds a redacted event's original content is kept (for moderation) before
    # it is rewritten to its redacted form; 0 purges at once.
    redaction_retention_s: int = 7 * 24 * 3600
    http: HttpConfig = attrs.field(factory=HttpConfig)
    tls: TlsConfig = attrs.field(factory=TlsConfig)
    auth: AuthConfig = attrs.field(factory=AuthConfig)
    rate_limits: RateLimitConfig = attrs.field(factory=RateLimitConfig)
    media: MediaConfig = attrs.field(factory=MediaConfig)
    presence: PresenceConfig = attrs.field(factory=PresenceConfig)
    push: PushConfig = attrs.field(factory=PushConfig)
    websocket: WebSocketConfig = attrs.field(factory=WebSocketConfig)

    # -- derived values -------------------------------------------------------

    @property
    def listen_host(self) -> str:
        return split_host_port(self.listen)[0]

    @property
    def listen_port(self) -> int:
        return split_host_port(self.listen)[1]

    @property
    def effective_registration(self) -> Registration:
        if self.registration in ("open", "token", "closed"):
            return self.registration  # type: ignore[return-value]
        return "open" if is_loopback(self.listen_host) else "closed"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'plait.db'}"

    @property
    def base_url(self) -> str:
        if self.public_baseurl:
            return self.public_baseurl.rstrip("/")
        host = self.listen_host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.listen_port}"


def split_host_port(value: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` or ``[v6]:PORT``."""
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
    else:
        host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listen: {value!r} is not HOST:PORT")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_SECTIONS = {
    "http": HttpConfig,
    "tls": TlsConfig,
    "auth": AuthConfig,
    "rate_limits": RateLimitConfig,
    "media": MediaConfig,
    "presence": PresenceConfig,
    "push": PushConfig,
    "websocket": WebSocketConfig,
}


def _coerce(key: str, value: Any, target: Any) -> Any:
    """Convert ``value`` to the type of the default ``target``, or explain why not."""
    try:
        if isinstance(target, bool):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(target, int):
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if isinstance(target, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(target, str):
            if not isinstance(value, str):
                raise ValueError
            return value
    except ValueError:
        pass
    raise ConfigError(f"{key}: expected {type(target).__name__}, got {value!r}")


def _apply(obj: Any, values: Mapping[str, Any], prefix: str = "") -> None:
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key in _SECTIONS and not prefix:
            if not isinstance(value, Mapping):
                raise ConfigError(f"[{key}] must be a table")
            _apply(getattr(obj, key), value, f"{key}.")
            continue
        if not hasattr(obj, key) or key.startswith("_") or isinstance(getattr(type(obj), key, None), property):
            raise ConfigError(f"unknown configuration key {name!r}")
        setattr(obj, key, _coerce(name, value, getattr(obj, key)))


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    defaults = Config()
    for var, value in env.items():
        if not var.startswith("PLAIT_"):
            continue
        key = var[len("PLAIT_") :].lower()
        for section in _SECTIONS:
            if key.startswith(section + "_") and hasattr(getattr(defaults, section), key[len(section) + 1 :]):
                out.setdefault(section, {})[key[len(section) + 1 :]] = value
                break
        else:
            if hasattr(defaults, key) and key not in _SECTIONS:
                out[key] = value
    return out


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration from defaults, file, environment and flag overrides."""
    config = Config()
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {os.fspath(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {os.fspath(path)!r}: {e}") from None
        _apply(config, data)
    _apply(config, _from_env(os.environ if env is None else env))
    if overrides:
        _apply(config, {k: v for k, v in overrides.items() if v is not None})
    validate(config)
    return config


def validate(config: Config) -> None:
    from homeserver.core.identifiers import is_valid_server_name

    if not is_valid_server_name(config.server_name):
        raise ConfigError(f"server_name: {config.server_name!r} is not a valid server name")
    split_host_port(config.listen)
    if config.registration not in ("", "open", "token", "closed"):
        raise ConfigError("registration: must be one of open, token, closed")
    if config.tls.listen:
        split_host_port(config.tls.listen)
        if not (config.tls.cert_path and config.tls.key_path):
            raise ConfigError("tls: listen is set, so cert_path and key_path are required")
    url = config.effective_database_url
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise ConfigError("database_url: only sqlite:/// and postgresql:// URLs are supported")
    for name in ("max_json_body", "max_header_bytes", "max_connections"):
        if getattr(config.http, name) <= 0:
            raise ConfigError(f"http.{name}: must be positive")
    for name in ("idle_timeout", "header_timeout", "body_timeout", "shutdown_grace"):
        if getattr(config.http, name) <= 0:
            raise ConfigError(f"http.{name}: must be positive")
    if config.auth.access_token_lifetime_s <= 0:
        raise ConfigError("auth.access_token_lifetime_s: must be positive")
    _validate_media(config.media)
    if not 0 < config.presence.idle_after_s <= config.presence.offline_after_s:
        raise ConfigError("presence.idle_after_s: must be positive and at most offline_after_s")
    if not 1 <= config.push.max_attempts <= 20 or not 0 < config.push.retry_initial_s <= 60:
        raise ConfigError("push: max_attempts 1 to 20, retry_initial_s above 0 and at most 60")
    if not 0 <= config.redaction_retention_s <= 10 * 365 * 24 * 3600:
        raise ConfigError("redaction_retention_s: 0 to 10 years in seconds")
    if config.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level: one of DEBUG, INFO, WARNING, ERROR")


def _validate_media(media: MediaConfig) -> None:
    for name in ("max_upload_size", "max_thumbnail_pixels", "max_pending_uploads", "unused_expiry_s"):
        if getattr(media, name) <= 0:
            raise ConfigError(f"media.{name}: must be positive")
    if media.per_user_quota < 0:
        raise ConfigError("media.per_user_quota: must be 0 (no quota) or positive")
    from homeserver.media.preview import parse_networks
    from homeserver.media.thumbnailer import parse_thumbnail_sizes

    try:
        parse_networks(media.url_preview_ip_allowlist)
    except ValueError as e:
        raise ConfigError(f"media.url_preview_ip_allowlist: {e}") from None

    try:
        parse_thumbnail_sizes(media.thumbnail_sizes)
    except ValueError as e:
        raise ConfigError(f"media.thumbnail_sizes: {e}") from None
