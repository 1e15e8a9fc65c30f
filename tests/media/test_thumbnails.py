"""Thumbnails over HTTP: sizes, methods, animation, EXIF, hostile images, caching."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import httpx
import pytest
import trio
from media_helpers import image_bytes, media_path, upload
from PIL import Image

from homeserver.storage import media as media_db


async def thumbnail(
    c: httpx.AsyncClient, uri: str, width: int, height: int, method: str = "scale", **extra: str
) -> httpx.Response:
    params = {"width": str(width), "height": str(height), "method": method, **extra}
    return await c.get(media_path(uri, "thumbnail"), params=params)


def opened(r: httpx.Response) -> Image.Image:
    assert r.status_code == 200, r.text
    img = Image.open(io.BytesIO(r.content))
    assert Image.MIME[img.format] == r.headers["content-type"]  # type: ignore[index]
    return img


@pytest.mark.parametrize(
    ("source", "request_", "method", "expected"),
    [
        ((400, 300), (32, 32), "crop", (32, 32)),
        ((400, 300), (50, 50), "crop", (96, 96)),  # smallest configured size covering it
        ((1000, 500), (320, 240), "scale", (320, 160)),
        ((1000, 500), (2000, 2000), "scale", (800, 400)),  # largest configured size
        ((100, 50), (320, 240), "scale", (100, 50)),  # never upscaled
        ((20, 40), (32, 32), "crop", (20, 20)),  # cropped to the aspect, not upscaled
    ],
)
async def test_thumbnail_sizes(
    alice: httpx.AsyncClient,
    source: tuple[int, int],
    request_: tuple[int, int],
    method: str,
    expected: tuple[int, int],
) -> None:
    uri = await upload(alice, image_bytes(source), "image/png")
    r = await thumbnail(alice, uri, *request_, method)
    img = opened(r)
    assert img.size == expected
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-disposition"] == 'inline; filename="thumbnail.jpeg"'
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]


async def test_crop_takes_the_centre(alice: httpx.AsyncClient) -> None:
    # Wide image: red left quarter, green middle, blue right quarter; a square crop is green.
    img = Image.new("RGB", (400, 100), (0, 255, 0))
    img.paste((255, 0, 0), (0, 0, 100, 100))
    img.paste((0, 0, 255), (300, 0, 400, 100))
    out = io.BytesIO()
    img.save(out, "PNG")
    uri = await upload(alice, out.getvalue(), "image/png")
    thumb = opened(await thumbnail(alice, uri, 96, 96, "crop")).convert("RGB")
    assert thumb.size == (96, 96)
    for x in (2, 48, 93):
        r, g, b = thumb.getpixel((x, 48))  # type: ignore[misc]
        assert g > 200 and r < 60 and b < 60


async def test_transparency_is_kept_as_png(alice: httpx.AsyncClient) -> None:
    uri = await upload(alice, image_bytes((200, 200), mode="RGBA", color=(0, 0, 0, 0)), "image/png")
    r = await thumbnail(alice, uri, 32, 32, "crop")
    img = opened(r)
    assert r.headers["content-type"] == "image/png"
    assert img.mode == "RGBA"
    assert img.getpixel((5, 5))[3] == 0  # type: ignore[index]


def animated_gif(frames: int = 3, size: tuple[int, int] = (200, 200)) -> bytes:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", size, colors[i % len(colors)]) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


@pytest.mark.parametrize("content_type", ["image/gif", "image/webp"])
async def test_animated_thumbnail_keeps_animating(
    alice: httpx.AsyncClient, content_type: str
) -> None:
    data = animated_gif()
    if content_type == "image/webp":
        gif = Image.open(io.BytesIO(data))
        out = io.BytesIO()
        gif.save(out, "WEBP", save_all=True, duration=100, loop=0)
        data = out.getvalue()
    uri = await upload(alice, data, content_type)
    r = await thumbnail(alice, uri, 96, 96, "crop", animated="true")
    img = opened(r)
    assert r.headers["content-type"] == "image/webp"
    assert getattr(img, "n_frames", 1) == 3
    assert img.size == (96, 96)
    # animated=false (and absent) must not animate.
    for extra in ({"animated": "false"}, {}):
        r = await thumbnail(alice, uri, 96, 96, "crop", **extra)
        img = opened(r)
        assert getattr(img, "n_frames", 1) == 1
        assert r.headers["content-type"] in ("image/jpeg", "image/png")


async def test_animated_true_on_a_still_image_is_still(alice: httpx.AsyncClient) -> None:
    uri = await upload(alice, image_bytes((300, 300), "JPEG"), "image/jpeg")
    r = await thumbnail(alice, uri, 32, 32, "crop", animated="true")
    assert r.headers["content-type"] == "image/jpeg"
    assert getattr(opened(r), "n_frames", 1) == 1


def jpeg_with_exif(orientation: int) -> bytes:
    img = Image.new("RGB", (200, 100), (255, 0, 0))
    img.paste((0, 0, 255), (100, 0, 200, 100))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPSInfo: latitude
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, quality=95)
    return out.getvalue()


async def test_exif_orientation_is_applied_and_exif_stripped(alice: httpx.AsyncClient) -> None:
    # Orientation 6: the camera was turned; viewers rotate 90 degrees clockwise.
    source = jpeg_with_exif(6)
    assert b"SecretCam" in source
    uri = await upload(alice, source, "image/jpeg")
    r = await thumbnail(alice, uri, 320, 240, "scale")
    img = opened(r)
    assert img.size == (100, 200)  # portrait now
    top = img.convert("RGB").getpixel((50, 20))
    bottom = img.convert("RGB").getpixel((50, 180))
    assert top[0] > 200 and top[2] < 60  # type: ignore[index]  # red on top after rotation
    assert bottom[2] > 200 and bottom[0] < 60  # type: ignore[index]
    assert b"SecretCam" not in r.content
    assert b"Exif" not in r.content
    assert len(img.getexif()) == 0


@pytest.mark.server_config(media={"max_thumbnail_pixels": 1_000_000})
async def test_image_over_the_pixel_limit_is_413(alice: httpx.AsyncClient) -> None:
    uri = await upload(alice, image_bytes((1200, 1000)), "image/png")
    r = await thumbnail(alice, uri, 32, 32, "crop")
    assert r.status_code == 413
    assert r.json()["errcode"] == "M_TOO_LARGE"


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG that claims width x height pixels (decoding it would need gigabytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# As in production (the thumbnailer turns Pillow's bomb warning into an error).
@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(100_000, 100_000), (10_000, 10_000)])
async def test_decompression_bomb_is_refused_cleanly(
    alice: httpx.AsyncClient, size: tuple[int, int]
) -> None:
    data = png_bomb(*size)
    assert len(data) < 2000
    uri = await upload(alice, data, "image/png")
    r = await thumbnail(alice, uri, 96, 96, "crop")
    assert r.status_code == 413
    assert r.json()["errcode"] == "M_TOO_LARGE"
    # The server is fine afterwards.
    ok = await upload(alice, image_bytes((64, 64)), "image/png")
    assert (await thumbnail(alice, ok, 32, 32, "crop")).status_code == 200


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"not an image at all", "image/png"),
        (image_bytes((50, 50))[:60], "image/png"),  # truncated
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        (b"%PDF-1.4", "application/pdf"),
        (b"%!PS-Adobe-3.0 EPSF-3.0", "image/png"),  # EPS must never reach Ghostscript
    ],
)
async def test_content_that_cannot_be_thumbnailed_is_400(
    alice: httpx.AsyncClient, data: bytes, content_type: str
) -> None:
    uri = await upload(alice, data, content_type)
    r = await thumbnail(alice, uri, 32, 32, "crop")
    assert r.status_code == 400
    assert r.json()["errcode"] == "M_UNKNOWN"


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"height": "32"}, "M_MISSING_PARAM"),
        ({"width": "32"}, "M_MISSING_PARAM"),
        ({"width": "-1", "height": "32"}, "M_INVALID_PARAM"),
        ({"width": "0", "height": "32"}, "M_INVALID_PARAM"),
        ({"width": "1.5", "height": "32"}, "M_INVALID_PARAM"),
        ({"width": "32", "height": "99999999"}, "M_INVALID_PARAM"),
        ({"width": "32", "height": "32", "method": "stretch"}, "M_INVALID_PARAM"),
        ({"width": "32", "height": "32", "animated": "maybe"}, "M_INVALID_PARAM"),
    ],
)
async def test_bad_thumbnail_parameters_are_400(
    alice: httpx.AsyncClient, params: dict[str, str], errcode: str
) -> None:
    uri = await upload(alice, image_bytes((64, 64)), "image/png")
    r = await alice.get(media_path(uri, "thumbnail"), params=params)
    assert r.status_code == 400
    assert r.json()["errcode"] == errcode


async def test_thumbnails_are_cached(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, server: Any
) -> None:
    uri = await upload(alice, image_bytes((500, 400)), "image/png")
    media_id = uri.rsplit("/", 1)[1]
    first = await thumbnail(alice, uri, 30, 30, "crop")  # -> the 32x32 crop
    second = await thumbnail(bob, uri, 32, 32, "crop")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    row = await server.hs.database.read(
        lambda c: media_db.get_thumbnail(
            c, "test.example", media_id, width=32, height=32, method="crop", animated=False
        )
    )
    assert row is not None and row.size == len(first.content)
    assert await server.hs.database.read(lambda c: media_db.blob_refcount(c, row.sha256)) == 1


async def test_thumbnail_requires_authentication(
    alice: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    uri = await upload(alice, image_bytes((64, 64)), "image/png")
    r = await client.get(media_path(uri, "thumbnail"), params={"width": "32", "height": "32"})
    assert r.status_code == 401


async def test_concurrent_requests_share_one_thumbnail(
    alice: httpx.AsyncClient, server: Any
) -> None:
    uri = await upload(alice, image_bytes((900, 700)), "image/png")
    media_id = uri.rsplit("/", 1)[1]
    bodies: list[bytes] = []

    async def one() -> None:
        r = await thumbnail(alice, uri, 96, 96, "crop")
        assert r.status_code == 200
        bodies.append(r.content)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
    assert len(set(bodies)) == 1
    row = await server.hs.database.read(
        lambda c: media_db.get_thumbnail(
            c, "test.example", media_id, width=96, height=96, method="crop", animated=False
        )
    )
    assert row is not None
    assert await server.hs.database.read(lambda c: media_db.blob_refcount(c, row.sha256)) == 1
    assert server.hs.media.statistics().thumbnails_in_progress == 0
