"""Safe-serving rules for media: headers, dispositions, filenames, byte ranges.

Pure functions, no I/O. Uploaded bytes are attacker-controlled and are served
from the homeserver's own origin, so every response carries headers that stop
a browser from running them as a page (Client-Server API, "Content
repository": security considerations and "Serving inline content").
"""

from __future__ import annotations

import re
from urllib.parse import quote

import attrs

# Spec, "Serving inline content": the Content-Types that may be served inline.
# SVG is absent on purpose: an SVG is a document that can carry script.
INLINE_SAFE_TYPES = frozenset(
    {
        "text/css",
        "text/plain",
        "text/csv",
        "application/json",
        "application/ld+json",
        "image/jpeg",
        "image/gif",
        "image/png",
        "image/apng",
        "image/webp",
        "image/avif",
        "video/mp4",
        "video/webm",
        "video/ogg",
        "video/quicktime",
        "audio/mp4",
        "audio/webm",
        "audio/aac",
        "audio/mpeg",
        "audio/ogg",
        "audio/wave",
        "audio/wav",
        "audio/x-wav",
        "audio/x-pn-wav",
        "audio/flac",
        "audio/x-flac",
    }
)

# The policy the spec recommends (plus media-src, as Synapse sends): even if a
# browser renders the bytes as a document, nothing in it may run or load.
CONTENT_SECURITY_POLICY = (
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
    "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"
)

# Media never changes under its mxc:// URI, so caches may keep it for a year.
CACHE_CONTROL = "public, max-age=31536000, immutable"

DEFAULT_CONTENT_TYPE = "application/octet-stream"

# A media type is "type/subtype" of RFC 9110 token characters, optionally with parameters.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=({_TOKEN}|\"[^\"\r\n]*\"))*")


def normalize_content_type(value: str | None) -> str:
    """The uploaded Content-Type if it is well formed, else octet-stream.

    A malformed type is not an error (clients send odd things) but it must never
    reach a response header as is: it could split headers or confuse sniffers.
    """
    if not value:
        return DEFAULT_CONTENT_TYPE
    value = value.strip()
    if len(value) > 255 or not _MEDIA_TYPE.fullmatch(value):
        return DEFAULT_CONTENT_TYPE
    return value


def essence(content_type: str) -> str:
    """``type/subtype`` in lower case, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def is_inline_safe(content_type: str) -> bool:
    return essence(content_type) in INLINE_SAFE_TYPES


def served_content_type(content_type: str) -> str:
    """Text types get an explicit charset so the browser does not guess one."""
    base = essence(content_type)
    if base.startswith("text/") and "charset" not in content_type.lower():
        return f"{content_type}; charset=utf-8"
    return content_type


def content_disposition(
    content_type: str, filename: str | None, *, force_inline: bool = False
) -> str:
    """``inline`` for safe types, ``attachment`` otherwise, with an RFC 6266 filename.

    ``filename`` is an ASCII fallback (non-ASCII and quoting characters replaced)
    and ``filename*`` carries the exact name as UTF-8 (RFC 6266 §4.3, RFC 8187),
    so a name can never break out of the header.
    """
    kind = "inline" if force_inline or is_inline_safe(content_type) else "attachment"
    if not filename:
        return kind
    return f"{kind}; {encode_filename(filename)}"


def encode_filename(filename: str) -> str:
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in filename)
    if fallback == filename:
        return f'filename="{filename}"'
    encoded = quote(filename, safe="!#$&+-.^_`|~")
    return f"filename=\"{fallback}\"; filename*=utf-8''{encoded}"


def clean_upload_name(name: str | None) -> str | None:
    """Keep an uploaded filename for display, minus control characters and path parts."""
    if name is None:
        return None
    name = "".join(c for c in name if c.isprintable())
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255] or None


def security_headers() -> list[tuple[str, str]]:
    """Headers every media response carries (downloads, thumbnails, errors alike)."""
    return [
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        # Spec v1.4: lets web clients use media with cross-origin isolation on.
        ("Cross-Origin-Resource-Policy", "cross-origin"),
    ]


@attrs.frozen
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, total: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{total}"


class RangeNotSatisfiable(Exception):
    """The Range header is well formed but selects nothing: answer 416."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One byte range from a ``Range`` header (RFC 9110 §14.2), or None to send it all.

    A header we do not understand (other units, several ranges, garbage) is
    ignored, as RFC 9110 allows: the whole body is sent with 200. A range that
    starts past the end is unsatisfiable (416).
    """
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    if not spec.isascii():  # str.isdigit() accepts "²", which int() refuses
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - suffix), size)
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if last != "" and int(last) < start:
        return None  # invalid syntax per RFC 9110: ignore the header
    if start >= size:
        raise RangeNotSatisfiable
    return ByteRange(start, end)
