"""Content repository endpoints (Client-Server API, "Content repository", v1.11).

Authenticated media lives under ``/_matrix/client/v1/media/*``; uploads are
still ``/_matrix/media/v3/upload`` and ``/_matrix/media/v1/create``. The
deprecated unauthenticated ``/_matrix/media/v3/download|thumbnail|config`` are
routed always but answer 404 ``M_NOT_FOUND`` (the spec's "frozen" answer)
unless ``[media] enable_legacy_unauthenticated`` is on.

Upload bodies are streamed (``stream_body=True``) straight into the blob store,
and downloads are streamed out of it, so memory stays flat whatever the size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

from homeserver.accounts.auth import require_user
from homeserver.errors import MatrixError, invalid_param, missing_param, not_found
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.media.serving import (
    CACHE_CONTROL,
    RangeNotSatisfiable,
    content_disposition,
    parse_range,
    security_headers,
    served_content_type,
)

Handler = Callable[[Request], Awaitable[Response]]

_CLIENT = "/_matrix/client/v1/media"
_MEDIA_V3 = "/_matrix/media/v3"
# The largest thumbnail dimension a client may ask for (we serve configured sizes anyway).
_MAX_DIMENSION = 10_000


def add_routes(router: Router, hs: HomeServer) -> None:
    media = hs.media
    max_upload = hs.config.media.max_upload_size

    async def upload(request: Request) -> Response:
        requester = await require_user(hs, request)
        content_uri = await media.upload(
            user_id=requester.user_id,
            chunks=_body(request),
            content_type=request.headers.get("content-type"),
            upload_name=request.query_one("filename"),
            declared_length=_declared_length(request),
        )
        return Response.json({"content_uri": content_uri})

    async def create(request: Request) -> Response:
        requester = await require_user(hs, request)
        content_uri, expires_at = await media.create_pending(requester.user_id)
        return Response.json({"content_uri": content_uri, "unused_expires_at": expires_at})

    async def upload_to_mxc(request: Request) -> Response:
        requester = await require_user(hs, request)
        await media.upload_pending(
            user_id=requester.user_id,
            server_name=request.path_params["serverName"],
            media_id=request.path_params["mediaId"],
            chunks=_body(request),
            content_type=request.headers.get("content-type"),
            upload_name=request.query_one("filename"),
            declared_length=_declared_length(request),
        )
        return Response.json({})

    async def config(request: Request) -> Response:
        return Response.json(await media.config_json())

    async def download(request: Request) -> Response:
        params = request.path_params
        row = await media.get_media(
            params["serverName"], params["mediaId"], timeout_ms=_timeout_ms(request)
        )
        assert row.sha256 is not None and row.size is not None
        content_type = row.content_type or "application/octet-stream"
        filename = params.get("fileName") or row.upload_name
        headers = [
            ("Content-Type", served_content_type(content_type)),
            ("Content-Disposition", content_disposition(content_type, filename)),
            ("Cache-Control", CACHE_CONTROL),
            ("Accept-Ranges", "bytes"),
            *security_headers(),
        ]
        try:
            byte_range = parse_range(request.headers.get("range"), row.size)
        except RangeNotSatisfiable:
            raise MatrixError(
                416,
                "M_INVALID_PARAM",
                "Requested range not satisfiable",
                headers=[("Content-Range", f"bytes */{row.size}"), *security_headers()],
            ) from None
        if byte_range is None:
            return _stream(200, headers, media.read(row.sha256), row.size)
        headers.append(("Content-Range", byte_range.content_range(row.size)))
        return _stream(
            206,
            headers,
            media.read(row.sha256, byte_range.start, byte_range.end),
            byte_range.length,
        )

    async def thumbnail(request: Request) -> Response:
        params = request.path_params
        thumb = await media.get_thumbnail(
            params["serverName"],
            params["mediaId"],
            width=_dimension(request, "width"),
            height=_dimension(request, "height"),
            method=_method(request),
            animated=_flag(request, "animated"),
            timeout_ms=_timeout_ms(request),
        )
        extension = thumb.content_type.rsplit("/", 1)[-1]
        headers = [
            ("Content-Type", thumb.content_type),
            # Spec v1.12: a thumbnail is always inline, with a file name.
            (
                "Content-Disposition",
                content_disposition(
                    thumb.content_type, f"thumbnail.{extension}", force_inline=True
                ),
            ),
            ("Cache-Control", CACHE_CONTROL),
            *security_headers(),
        ]
        return _stream(200, headers, media.read(thumb.sha256), thumb.size)

    async def preview_url(request: Request) -> Response:
        requester = await require_user(hs, request)
        url = request.query_one("url")
        if not url:
            raise missing_param("'url' is required")
        return Response.json(await media.preview_url(requester.user_id, url))

    def authenticated(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            await require_user(hs, request)
            return await handler(request)

        return wrapped

    def legacy(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            if not hs.config.media.enable_legacy_unauthenticated:
                # Spec v1.11: frozen unauthenticated media answers 404 M_NOT_FOUND.
                raise not_found("Unauthenticated media is disabled; use /_matrix/client/v1/media")
            return await handler(request)

        return wrapped

    # Uploads: the body cap is the upload limit, checked again while streaming.
    router.add("POST", f"{_MEDIA_V3}/upload", upload, max_body=max_upload, stream_body=True)
    router.add(
        "PUT",
        f"{_MEDIA_V3}/upload/{{serverName}}/{{mediaId}}",
        upload_to_mxc,
        max_body=max_upload,
        stream_body=True,
    )
    router.add("POST", "/_matrix/media/v1/create", create)

    router.add("GET", f"{_CLIENT}/config", authenticated(config))
    router.add("GET", f"{_CLIENT}/download/{{serverName}}/{{mediaId}}", authenticated(download))
    # matrix-nio (0.26) asks for ".../{mediaId}/" when it has no file name.
    router.add("GET", f"{_CLIENT}/download/{{serverName}}/{{mediaId}}/", authenticated(download))
    router.add(
        "GET",
        f"{_CLIENT}/download/{{serverName}}/{{mediaId}}/{{fileName}}",
        authenticated(download),
    )
    router.add("GET", f"{_CLIENT}/thumbnail/{{serverName}}/{{mediaId}}", authenticated(thumbnail))
    router.add("GET", f"{_CLIENT}/preview_url", preview_url)

    router.add("GET", f"{_MEDIA_V3}/config", legacy(config))
    router.add("GET", f"{_MEDIA_V3}/download/{{serverName}}/{{mediaId}}", legacy(download))
    router.add("GET", f"{_MEDIA_V3}/download/{{serverName}}/{{mediaId}}/", legacy(download))
    router.add(
        "GET", f"{_MEDIA_V3}/download/{{serverName}}/{{mediaId}}/{{fileName}}", legacy(download)
    )
    router.add("GET", f"{_MEDIA_V3}/thumbnail/{{serverName}}/{{mediaId}}", legacy(thumbnail))
    router.add("GET", f"{_MEDIA_V3}/preview_url", preview_url)


def _body(request: Request) -> AsyncIterator[bytes]:
    if request.body_stream is not None:
        return request.body_stream
    return _one_chunk(request.body)


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


def _stream(
    status: int, headers: list[tuple[str, str]], body: AsyncIterator[bytes], length: int
) -> Response:
    return Response(status=status, headers=headers, stream=body, content_length=length)


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value.partition(",")[0])
    except ValueError:
        return None


def _dimension(request: Request, name: str) -> int:
    value = request.query_one(name)
    if value is None:
        raise missing_param(f"'{name}' is required")
    if not value.isdigit() or not 0 < int(value) <= _MAX_DIMENSION:
        raise invalid_param(f"'{name}' must be an integer between 1 and {_MAX_DIMENSION}")
    return int(value)


def _method(request: Request) -> Literal["crop", "scale"]:
    value = request.query_one("method", "scale")
    if value == "crop":
        return "crop"
    if value == "scale":
        return "scale"
    raise invalid_param("'method' must be 'crop' or 'scale'")


def _flag(request: Request, name: str) -> bool:
    value = request.query_one(name)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise invalid_param(f"'{name}' must be 'true' or 'false'")


def _timeout_ms(request: Request) -> int | None:
    value = request.query_one("timeout_ms")
    if value is None:
        return None
    if not value.isdigit():
        raise invalid_param("'timeout_ms' must be a non-negative integer")
    return int(value)
