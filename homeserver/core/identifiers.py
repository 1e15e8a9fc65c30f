"""Matrix identifier grammar (spec: Appendices, "Identifier Grammar")."""

from __future__ import annotations

import re

# Server names: hostname, IPv4 or [IPv6], optional port.
_PORT = r"(?::[0-9]{1,5})?"
_HOSTNAME = r"[A-Za-z0-9](?:[A-Za-z0-9\-.]{0,253}[A-Za-z0-9])?"
_IPV4 = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
_IPV6 = r"\[[0-9A-Fa-f:.]{2,45}\]"
_SERVER_NAME_RE = re.compile(rf"^(?:{_IPV4}|{_IPV6}|{_HOSTNAME}){_PORT}$")

# Localparts a server allows for new users: a-z, 0-9, . _ = - /  and + (spec v1.8).
_LOCALPART_RE = re.compile(r"^[a-z0-9._=\-/+]+$")
# Historical user IDs may contain any printable ASCII except ':'.
_HISTORICAL_LOCALPART_RE = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")

MAX_USER_ID_LENGTH = 255


def is_valid_server_name(name: str) -> bool:
    if not _SERVER_NAME_RE.match(name):
        return False
    _, _, port = name.rpartition(":") if not name.endswith("]") else ("", "", "")
    return not (port.isdigit() and int(port) > 65535)


def is_valid_localpart(localpart: str) -> bool:
    """Whether a localpart may be used for a *new* user on this server."""
    return bool(_LOCALPART_RE.match(localpart))


def user_id(localpart: str, server_name: str) -> str:
    return f"@{localpart}:{server_name}"


def parse_user_id(value: str) -> tuple[str, str] | None:
    """Split ``@localpart:server`` leniently (historical IDs allowed); None if malformed."""
    if not value.startswith("@") or len(value.encode()) > MAX_USER_ID_LENGTH:
        return None
    localpart, sep, server = value[1:].partition(":")
    if not sep or not localpart or not _HISTORICAL_LOCALPART_RE.match(localpart):
        return None
    if not is_valid_server_name(server):
        return None
    return localpart, server
