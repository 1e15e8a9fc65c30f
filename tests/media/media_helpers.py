"""Helpers shared by the media tests (imported as ``media_helpers``)."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image


def image_bytes(
    size: tuple[int, int] = (400, 300),
    fmt: str = "PNG",
    color: Any = (200, 30, 30),
    mode: str = "RGB",
    **save: Any,
) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format=fmt, **save)
    return out.getvalue()


async def upload(
    c: httpx.AsyncClient,
    data: bytes,
    content_type: str = "application/octet-stream",
    filename: str | None = None,
) -> str:
    params = {"filename": filename} if filename is not None else {}
    r = await c.post(
        "/_matrix/media/v3/upload",
        content=data,
        headers={"Content-Type": content_type},
        params=params,
    )
    assert r.status_code == 200, r.text
    uri = r.json()["content_uri"]
    assert isinstance(uri, str) and uri.startswith("mxc://test.example/")
    return uri


def media_path(uri: str, kind: str = "download") -> str:
    server_name, media_id = uri[len("mxc://") :].split("/")
    return f"/_matrix/client/v1/media/{kind}/{server_name}/{media_id}"
