"""The commented TOML file that ``plait generate-config`` writes."""

from __future__ import annotations

TEMPLATE = """\
# Plait homeserver configuration.
#
# Every key can also be set with an environment variable: PLAIT_<KEY> for a
# top-level key (PLAIT_SERVER_NAME), PLAIT_<TABLE>_<KEY> for a key in a table
# (PLAIT_HTTP_MAX_JSON_BODY). Flags of `plait serve` override both.

# The domain in your users' IDs (@alice:<server_name>). It cannot change later.
server_name = "{server_name}"

# Where the client API listens, HOST:PORT. Use 0.0.0.0:8008 (behind a reverse
# proxy that terminates TLS) to serve other machines.
listen = "{listen}"

# Where Plait keeps its SQLite database, signing keys and media.
data_dir = "{data_dir}"

# Empty: SQLite in data_dir. For PostgreSQL:
#   database_url = "postgresql://user@127.0.0.1:5432/plait"
database_url = "{database_url}"

# Redis for several worker processes (not needed for one process).
redis_url = ""

# Who may create accounts: "open", "token" (needs a registration token) or
# "closed". Empty: "open" while listening on loopback only, otherwise "closed".
registration = "{registration}"

# The URL clients use to reach this server (for /.well-known/matrix/client).
# Empty: derived from `listen`.
public_baseurl = ""

# Room version for new rooms: "10", "11" or "12".
default_room_version = "10"

# DEBUG, INFO, WARNING or ERROR.
log_level = "INFO"

# Seconds a redacted event's original content is kept for moderation before
# it is purged (rewritten to its redacted form). Default 7 days; 0: at once.
redaction_retention_s = 604800

[http]
# Largest JSON request body in bytes (413 M_TOO_LARGE beyond it).
max_json_body = 1048576
# Largest request line plus headers in bytes (431 beyond it).
max_header_bytes = 65536
# Seconds an idle keep-alive connection stays open.
idle_timeout = 60.0
# Seconds a client has to send its headers, then its body.
header_timeout = 20.0
body_timeout = 60.0
# Seconds in-flight requests get to finish on shutdown (SIGINT/SIGTERM).
shutdown_grace = 10.0
# Most connections served at once.
max_connections = 20000

[tls]
# Optional TLS listener (federation needs one), e.g. "0.0.0.0:8448".
# `plait generate-config --self-signed-tls` writes a certificate and key.
listen = "{tls_listen}"
cert_path = "{tls_cert}"
key_path = "{tls_key}"

[auth]
# Lifetime in seconds of access tokens of clients that use refresh tokens.
access_token_lifetime_s = 300
# Lifetime in seconds of an unused refresh token.
refresh_token_lifetime_s = 2592000
# Seconds after which a cached session row is read again (0: never). Logout and
# every other revocation take effect at once either way.
session_cache_s = 0.0
# argon2id cost of password hashes (argon2-cffi's defaults; raise them on big machines).
argon2_time_cost = 3
argon2_memory_cost_kib = 65536
argon2_parallelism = 4

[rate_limits]
# false turns every rate limit off (benchmarks on loopback only!).
enabled = true
login_per_second = 0.5
login_burst = 10
register_per_second = 0.2
register_burst = 5
writes_per_second = 10.0
writes_burst = 50

[media]
# Largest upload in bytes (clients learn it from /_matrix/client/v1/media/config).
max_upload_size = 52428800
# Serve the deprecated unauthenticated /_matrix/media/v3/download|thumbnail|config.
enable_legacy_unauthenticated = false
# Total bytes each user may upload; 0: no quota.
per_user_quota = 0
# URL previews fetch URLs on users' behalf: loopback, private and link-local addresses are refused.
url_preview_enabled = false
# Private networks previews may still fetch from, as comma-separated CIDRs (normally empty).
url_preview_ip_allowlist = ""
# Thumbnail sizes served: "WIDTHxHEIGHT crop|scale", comma separated.
thumbnail_sizes = "32x32 crop, 96x96 crop, 320x240 scale, 640x480 scale, 800x600 scale"
# Largest image (in pixels) the thumbnailer will decode; larger: 413.
max_thumbnail_pixels = 33554432
# Asynchronous uploads (POST /_matrix/media/v1/create) pending per user, and their lifetime.
max_pending_uploads = 20
unused_expiry_s = 86400

[presence]
# false: presence updates are accepted but not stored or shared; everyone
# shows as "offline" and /sync carries no presence.
enabled = true
# Seconds without activity before an online user shows as "unavailable".
idle_after_s = 300
# Seconds without activity (no /sync, no explicit update) before "offline".
offline_after_s = 1800

[push]
# HTTP pushers may only deliver to public addresses; these comma-separated
# CIDRs re-open private or loopback ones (e.g. a gateway on this host).
gateway_ip_allowlist = ""
# Delivery attempts per notification before it is dropped, and the first
# retry delay in seconds (doubling each time, at most 60).
max_attempts = 5
retry_initial_s = 1.0

[websocket]
# The WebSocket sync transport at /_plait/client/v1/ws (spec/websocket.md).
# Seconds a new connection has to send its auth frame.
auth_timeout_s = 10.0
# Seconds between server pings, and how long a pong may take before the
# connection is closed (4009).
heartbeat_interval_s = 30.0
heartbeat_timeout_s = 20.0
# Seconds an expired access token may be refreshed in-band before closing (4003).
token_grace_s = 60.0
# Largest client frame in bytes (larger ones get an M_TOO_LARGE error frame).
max_frame_bytes = 65536
# Outgoing queue per connection: frames and bytes; a consumer that overflows
# it, or a frame that takes longer than send_timeout_s to send, is closed (4008).
queue_frames = 64
queue_bytes = 8388608
send_timeout_s = 30.0
"""


def render(
    *,
    server_name: str = "localhost",
    listen: str = "127.0.0.1:8008",
    data_dir: str = "./data",
    database_url: str = "",
    registration: str = "",
    tls_listen: str = "",
    tls_cert: str = "",
    tls_key: str = "",
) -> str:
    def q(value: str) -> str:
        # TOML basic strings: escape backslashes and quotes.
        return value.replace("\\", "\\\\").replace('"', '\\"')

    return TEMPLATE.format(
        server_name=q(server_name),
        listen=q(listen),
        data_dir=q(data_dir),
        database_url=q(database_url),
        registration=q(registration),
        tls_listen=q(tls_listen),
        tls_cert=q(tls_cert),
        tls_key=q(tls_key),
    )
