"""Thumbnails with Pillow: blocking work, meant to run in a worker thread.

Everything here is synchronous and touches no shared state, so the service
calls it through ``trio.to_thread.run_sync``. Uploaded images are hostile
input, so:

* only a short list of decoders is allowed (Pillow can otherwise hand an EPS
  file to Ghostscript);
* the pixel count is checked from the header before anything is decoded, and
  Pillow's own decompression-bomb guard is turned into a clean error;
* EXIF orientation is applied and all metadata (EXIF, GPS, comments) dropped,
  because a thumbnail is re-encoded from pixels only.

Sizes follow the spec ("Thumbnails"): the server picks the smallest configured
size at least as large as the one requested, never upscales, ``crop`` returns
exactly the configured aspect, ``scale`` keeps the source aspect.
"""

from __future__ import annotations

import io
import re
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs

if TYPE_CHECKING:
    # Pillow is imported when the first thumbnail is made (about 2 MB a server
    # without media traffic never needs): see _pillow().
    from PIL import Image

Method = Literal["crop", "scale"]

# The decoders we trust with uploaded bytes, and the MIME types that map to them.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
THUMBNAILABLE_TYPES = frozenset(
    {"image/jpeg", "image/jpg", "image/png", "image/apng", "image/gif", "image/webp", "image/bmp"}
)
# An animation longer than this is thumbnailed as its first frame only.
MAX_ANIMATION_FRAMES = 200

# Pillow warns past Image.MAX_IMAGE_PIXELS (and raises past twice that) from
# inside Image.open, before our own pixel check can run. As an error it is
# caught below and answered 413; as a warning it would let the decode go on.
# (A filter, not catch_warnings(): that one is not thread-safe.) Installed once,
# with the import, before the first image is opened.
_pillow_lock = threading.Lock()
_pillow_ready = False


def _pillow() -> None:
    """Import Pillow and install the decompression-bomb filter, once."""
    global _pillow_ready
    if _pillow_ready:
        return
    with _pillow_lock:
        if not _pillow_ready:
            from PIL import Image

            warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
            _pillow_ready = True


_SIZE_ENTRY = re.compile(r"\s*(\d+)\s*x\s*(\d+)\s+(crop|scale)\s*")


class CannotThumbnail(Exception):
    """The content is not an image we can decode (answered 400)."""


class TooLargeToThumbnail(Exception):
    """The image has more pixels than we are willing to decode (answered 413)."""


@attrs.frozen
class ThumbnailSpec:
    width: int
    height: int
    method: Method


@attrs.frozen
class Thumbnail:
    data: bytes
    content_type: str
    width: int
    height: int
    animated: bool


def parse_thumbnail_sizes(value: str) -> list[ThumbnailSpec]:
    """``"32x32 crop, 320x240 scale"`` -> specs; ValueError naming the bad entry."""
    specs: list[ThumbnailSpec] = []
    for entry in value.split(","):
        if not entry.strip():
            continue
        match = _SIZE_ENTRY.fullmatch(entry)
        if match is None:
            raise ValueError(f"{entry.strip()!r} is not 'WIDTHxHEIGHT crop|scale'")
        width, height = int(match[1]), int(match[2])
        if not (0 < width <= 4096 and 0 < height <= 4096):
            raise ValueError(f"{entry.strip()!r}: sizes must be between 1 and 4096")
        method: Method = "crop" if match[3] == "crop" else "scale"
        specs.append(ThumbnailSpec(width, height, method))
    if not specs:
        raise ValueError("at least one size is needed")
    return specs


def choose_spec(
    specs: list[ThumbnailSpec], width: int, height: int, method: Method
) -> ThumbnailSpec:
    """The smallest configured size of that method covering the request, else the largest.

    Serving only configured sizes bounds what the cache can hold: a client
    asking for every size from 1x1 to 4000x4000 gets a handful of thumbnails.
    """
    candidates = [s for s in specs if s.method == method] or [
        ThumbnailSpec(s.width, s.height, method) for s in specs
    ]
    covering = [s for s in candidates if s.width >= width and s.height >= height]
    if covering:
        return min(covering, key=lambda s: (s.width * s.height, s.width))
    return max(candidates, key=lambda s: (s.width * s.height, s.width))


def make_thumbnail(
    source: Path | bytes, spec: ThumbnailSpec, *, animated: bool, max_pixels: int
) -> Thumbnail:
    """Decode ``source`` and produce the thumbnail for ``spec`` (blocking)."""
    _pillow()
    from PIL import Image, UnidentifiedImageError

    try:
        return _make_thumbnail(source, spec, animated=animated, max_pixels=max_pixels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLargeToThumbnail("image has too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        # Truncated or corrupt files surface as any of these from Pillow's decoders.
        raise CannotThumbnail(f"cannot decode image: {type(e).__name__}") from None


def _make_thumbnail(
    source: Path | bytes, spec: ThumbnailSpec, *, animated: bool, max_pixels: int
) -> Thumbnail:
    from PIL import Image

    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    with Image.open(fp, formats=ALLOWED_FORMATS) as img:
        src_w, src_h = img.size
        if src_w <= 0 or src_h <= 0:
            raise CannotThumbnail("image has no pixels")
        if src_w * src_h > max_pixels:
            raise TooLargeToThumbnail(f"image is {src_w}x{src_h} pixels")
        frames = int(getattr(img, "n_frames", 1))
        if (
            animated
            and frames > 1
            and frames <= MAX_ANIMATION_FRAMES
            and (frames * src_w * src_h <= 4 * max_pixels)
        ):
            return _animated(img, spec)
        return _static(img, spec)


def _target_box(
    src_w: int, src_h: int, spec: ThumbnailSpec
) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """(crop box in source pixels, output size): never larger than the source."""
    if spec.method == "scale":
        ratio = min(spec.width / src_w, spec.height / src_h, 1.0)
        size = (max(1, round(src_w * ratio)), max(1, round(src_h * ratio)))
        return (0, 0, src_w, src_h), size
    # crop: the largest centred region with the requested aspect, then shrink it.
    aspect = spec.width / spec.height
    if src_w / src_h > aspect:
        crop_w, crop_h = max(1, round(src_h * aspect)), src_h
    else:
        crop_w, crop_h = src_w, max(1, round(src_w / aspect))
    left, top = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    box = (left, top, left + crop_w, top + crop_h)
    if crop_w >= spec.width and crop_h >= spec.height:
        return box, (spec.width, spec.height)
    return box, (crop_w, crop_h)  # source too small: crop only, no upscale


def _static(img: Image.Image, spec: ThumbnailSpec) -> Thumbnail:
    from PIL import Image, ImageOps

    img.seek(0)
    if img.format == "JPEG":
        # Let libjpeg decode at 1/2..1/8 scale: much faster, still >= the target
        # in both dimensions whatever the EXIF rotation or crop aspect.
        side = max(spec.width, spec.height)
        img.draft("RGB", (side, side))
    oriented = ImageOps.exif_transpose(img)
    has_alpha = oriented.mode in ("RGBA", "LA", "PA") or (
        oriented.mode == "P" and "transparency" in oriented.info
    )
    oriented = oriented.convert("RGBA" if has_alpha else "RGB")
    box, size = _target_box(oriented.width, oriented.height, spec)
    out_img = oriented.resize(size, Image.Resampling.LANCZOS, box=box)
    out = io.BytesIO()
    if has_alpha:
        out_img.save(out, format="PNG", optimize=False)
        content_type = "image/png"
    else:
        out_img.save(out, format="JPEG", quality=85)
        content_type = "image/jpeg"
    return Thumbnail(out.getvalue(), content_type, out_img.width, out_img.height, False)


def _animated(img: Image.Image, spec: ThumbnailSpec) -> Thumbnail:
    """Every frame resized the same way, saved as animated WebP (the spec's preference)."""
    from PIL import Image, ImageSequence

    box, size = _target_box(img.width, img.height, spec)
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(img):
        durations.append(int(frame.info.get("duration", 100)) or 100)
        frames.append(frame.convert("RGBA").resize(size, Image.Resampling.LANCZOS, box=box))
    out = io.BytesIO()
    frames[0].save(
        out,
        format="WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=int(img.info.get("loop", 0)),
        quality=80,
    )
    return Thumbnail(out.getvalue(), "image/webp", size[0], size[1], True)
