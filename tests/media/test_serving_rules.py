"""The pure serving rules and thumbnail-size rules, without a server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.config import ConfigError, load_config
from homeserver.media.serving import (
    ByteRange,
    RangeNotSatisfiable,
    clean_upload_name,
    content_disposition,
    encode_filename,
    normalize_content_type,
    parse_range,
)
from homeserver.media.thumbnailer import ThumbnailSpec, choose_spec, parse_thumbnail_sizes


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, ByteRange(0, 5)),
        ("bytes=5-", 10, ByteRange(5, 10)),
        ("bytes=-3", 10, ByteRange(7, 10)),
        ("bytes=-30", 10, ByteRange(0, 10)),
        ("bytes=8-100", 10, ByteRange(8, 10)),
        ("BYTES = 1-1", 10, ByteRange(1, 2)),
        ("bytes=0-1,3-4", 10, None),  # multiple ranges: ignored, full body
        ("items=0-1", 10, None),
        ("bytes=4-2", 10, None),  # invalid: ignored
        ("bytes=a-b", 10, None),
        ("bytes=-", 10, None),
        ("bytes", 10, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10-", 10), ("bytes=10-12", 10), ("bytes=-0", 10), ("bytes=0-", 0)]
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


@given(st.text(max_size=40), st.integers(0, 1000))
def test_parse_range_never_crashes_and_stays_in_bounds(header: str, size: int) -> None:
    try:
        r = parse_range(header, size)
    except RangeNotSatisfiable:
        return
    if r is not None:
        assert 0 <= r.start < r.end <= size


@given(st.text(min_size=1, max_size=60))
def test_filenames_never_break_the_header(name: str) -> None:
    value = content_disposition("application/pdf", name)
    assert "\r" not in value and "\n" not in value
    value.encode("latin-1")  # header-safe
    head = value.split("; filename*=", 1)[0]
    assert head.count('"') in (0, 2)


def test_ascii_filename_is_quoted_plainly() -> None:
    assert encode_filename("a b.png") == 'filename="a b.png"'
    assert encode_filename("100%.txt") == "filename=\"100_.txt\"; filename*=utf-8''100%25.txt"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "application/octet-stream"),
        ("", "application/octet-stream"),
        ("image/png", "image/png"),
        ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
        ("text/html\r\nSet-Cookie: x", "application/octet-stream"),
        ("nonsense", "application/octet-stream"),
    ],
)
def test_normalize_content_type(value: str | None, expected: str) -> None:
    assert normalize_content_type(value) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\doc.pdf", "doc.pdf"),
        ("a\x00b\nc.txt", "abc.txt"),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_clean_upload_name(name: str | None, expected: str | None) -> None:
    assert clean_upload_name(name) == expected


def test_parse_thumbnail_sizes() -> None:
    assert parse_thumbnail_sizes("32x32 crop, 640 x 480 scale,") == [
        ThumbnailSpec(32, 32, "crop"),
        ThumbnailSpec(640, 480, "scale"),
    ]
    for bad in ("", "32x32", "32x32 stretch", "0x10 crop", "99999x1 scale"):
        with pytest.raises(ValueError):
            parse_thumbnail_sizes(bad)


def test_bad_thumbnail_sizes_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"media\.thumbnail_sizes"):
        load_config(env={}, overrides={"media": {"thumbnail_sizes": "big please"}})
    with pytest.raises(ConfigError, match=r"media\.max_upload_size"):
        load_config(env={}, overrides={"media": {"max_upload_size": 0}})
    config = load_config(env={"PLAIT_MEDIA_PER_USER_QUOTA": "1000"})
    assert config.media.per_user_quota == 1000


SPECS = parse_thumbnail_sizes("32x32 crop, 96x96 crop, 320x240 scale, 640x480 scale, 800x600 scale")


@pytest.mark.parametrize(
    ("request_", "method", "expected"),
    [
        ((1, 1), "crop", ThumbnailSpec(32, 32, "crop")),
        ((32, 32), "crop", ThumbnailSpec(32, 32, "crop")),
        ((33, 10), "crop", ThumbnailSpec(96, 96, "crop")),
        ((500, 500), "crop", ThumbnailSpec(96, 96, "crop")),  # largest crop
        ((100, 100), "scale", ThumbnailSpec(320, 240, "scale")),
        ((321, 100), "scale", ThumbnailSpec(640, 480, "scale")),
        ((5000, 5000), "scale", ThumbnailSpec(800, 600, "scale")),
    ],
)
def test_choose_spec(request_: tuple[int, int], method: str, expected: ThumbnailSpec) -> None:
    assert choose_spec(SPECS, *request_, method) == expected  # type: ignore[arg-type]
