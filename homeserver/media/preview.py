"""URL previews: fetch a page for a user (its OpenGraph data: ``opengraph``), safely.

The server fetches URLs that users choose, from inside the deployment's
network, so the fetcher is built against server-side request forgery:

* every hostname is resolved by us, and each address is checked against a
  blocklist (loopback, private, link-local, CGNAT, multicast, reserved and
  IPv4-mapped forms of them; only ``url_preview_ip_allowlist`` re-opens a
  range); the connection then goes to the checked address itself, so a second
  DNS answer (rebinding) cannot redirect it;
* redirects are followed by hand, at most a few, each hop checked again;
* the whole fetch has a deadline and the body a byte cap.

Results are cached in memory for an hour (Synapse #2294: an unbounded preview
cache filled disks), bounded in entries.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import attrs
import h11
import trio

from homeserver.errors import MatrixError, forbidden, invalid_param

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_REDIRECTS = 5
FETCH_TIMEOUT_S = 10.0
MAX_PAGE_BYTES = 1024 * 1024
MAX_IMAGE_BYTES = 10 * 1024 * 1024
CACHE_TTL_S = 3600.0
CACHE_ENTRIES = 1000
USER_AGENT = "Plait URL preview (Matrix homeserver)"

# Not covered by ``is_global`` in every Python version, so listed explicitly.
_ALWAYS_BLOCKED = [
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b::/96", "2002::/16")
]


def parse_networks(value: str) -> list[IPNetwork]:
    """``"127.0.0.1/32, 10.0.0.0/8"`` -> networks; ValueError naming the bad one."""
    networks: list[IPNetwork] = []
    for item in value.split(","):
        item = item.strip()
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP network") from None
    return networks


def is_blocked(address: IPAddress, allowlist: list[IPNetwork]) -> bool:
    """True unless the address is public, or explicitly allowed."""
    if any(address in network for network in allowlist):
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_blocked(address.ipv4_mapped, allowlist)
    if not address.is_global or address.is_multicast:
        return True
    return any(address in network for network in _ALWAYS_BLOCKED)


class FetchError(Exception):
    pass


@attrs.frozen
class Fetched:
    url: str
    content_type: str
    body: bytes


async def resolve(host: str, port: int) -> list[IPAddress]:
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in out:
            out.append(address)
    return out


class UrlFetcher:
    """GET a URL with the SSRF rules above. Errors are :class:`MatrixError`s."""

    def __init__(self, allowlist: list[IPNetwork], *, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self.allowlist = allowlist
        self.timeout_s = timeout_s
        self._ssl = ssl.create_default_context()

    async def fetch(self, url: str, *, max_bytes: int, accept: str) -> Fetched:
        try:
            with trio.fail_after(self.timeout_s):
                for _ in range(MAX_REDIRECTS + 1):
                    status, headers, body = await self._get_once(url, max_bytes, accept)
                    location = headers.get("location")
                    if status in (301, 302, 303, 307, 308) and location:
                        url = urljoin(url, location)
                        continue
                    if status != 200:
                        raise FetchError(f"status {status}")
                    return Fetched(url, headers.get("content-type", ""), body)
                raise FetchError("too many redirects")
        except trio.TooSlowError:
            raise MatrixError(504, "M_UNKNOWN", "Timed out fetching the URL") from None
        except (
            FetchError,
            OSError,
            h11.ProtocolError,
            trio.BrokenResourceError,
            ssl.SSLError,
        ) as e:
            raise MatrixError(502, "M_UNKNOWN", f"Could not fetch the URL ({e})") from None

    async def _get_once(
        self, url: str, max_bytes: int, accept: str
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid_param("Only http and https URLs can be previewed")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = await resolve(host, port)
        allowed = [a for a in addresses if not is_blocked(a, self.allowlist)]
        if not allowed:
            raise forbidden("URL previews of this address are not allowed")
        tcp = await trio.open_tcp_stream(str(allowed[0]), port)
        stream: trio.abc.Stream = tcp
        try:
            if parts.scheme == "https":
                stream = trio.SSLStream(tcp, self._ssl, server_hostname=host)
                await stream.do_handshake()
            return await _exchange(stream, parts, max_bytes, accept)
        finally:
            await trio.aclose_forcefully(stream)


async def _exchange(
    stream: trio.abc.Stream, parts: Any, max_bytes: int, accept: str
) -> tuple[int, dict[str, str], bytes]:
    conn = h11.Connection(h11.CLIENT)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rsplit("@", 1)[-1]
    request = h11.Request(
        method="GET",
        target=target,
        headers=[
            ("Host", host_header),
            ("User-Agent", USER_AGENT),
            ("Accept", accept),
            ("Accept-Encoding", "identity"),
            ("Connection", "close"),
        ],
    )
    await stream.send_all(conn.send(request) + conn.send(h11.EndOfMessage()))
    status = 0
    headers: dict[str, str] = {}
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(bytes(data))
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            if status in (301, 302, 303, 307, 308):
                return status, headers, b""
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_bytes:
                raise MatrixError(502, "M_TOO_LARGE", "The page is too large to preview")
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return status, headers, bytes(body)


class PreviewCache:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, url: str) -> dict[str, Any] | None:
        entry = self._entries.get(url)
        if entry is None or entry[0] <= self._clock():
            self._entries.pop(url, None)
            return None
        return entry[1]

    def put(self, url: str, value: dict[str, Any]) -> None:
        self._entries.pop(url, None)
        while len(self._entries) >= CACHE_ENTRIES:
            del self._entries[next(iter(self._entries))]  # oldest first
        self._entries[url] = (self._clock() + CACHE_TTL_S, value)
