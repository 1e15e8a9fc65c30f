"""matrix-nio, a real third-party client, uploads, downloads and thumbnails media.

nio runs on asyncio (aiohttp), so it runs in a worker thread with its own event
loop while the server runs on trio in this test. The room part of the story
(send the upload as ``m.image``, the other user downloads it from the timeline)
is added when rooms land; this covers the media API as nio speaks it.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import trio
from media_helpers import image_bytes
from nio import AsyncClient, LoginResponse, ResizingMethod
from nio.responses import MemoryDownloadResponse, ThumbnailResponse, UploadResponse
from PIL import Image


async def nio_session(base_url: str, user: str, password: str, work: Any) -> Any:
    client = AsyncClient(base_url, user)
    try:
        login = await client.login(password)
        assert isinstance(login, LoginResponse), login
        return await work(client)
    finally:
        await client.close()


def run_nio(base_url: str, user: str, work: Any) -> Any:
    return asyncio.run(nio_session(base_url, user, "correct horse", work))


async def test_nio_upload_download_thumbnail(
    server: Any, client: httpx.AsyncClient, register_user: Any
) -> None:
    await register_user(client, "alice")
    await register_user(client, "bob")
    picture = image_bytes((640, 480), "JPEG", color=(10, 120, 200))

    async def alice_uploads(nio: AsyncClient) -> str:
        response, keys = await nio.upload(
            io.BytesIO(picture),
            content_type="image/jpeg",
            filename="cat.jpg",
            filesize=len(picture),
        )
        assert isinstance(response, UploadResponse), response
        assert keys is None
        return str(response.content_uri)

    uri = await trio.to_thread.run_sync(
        run_nio, server.base_url, "@alice:test.example", alice_uploads
    )
    assert uri.startswith("mxc://test.example/")
    server_name, media_id = uri[len("mxc://") :].split("/")

    async def bob_fetches(nio: AsyncClient) -> tuple[Any, Any, Any]:
        plain = await nio.download(mxc=uri)
        named = await nio.download(mxc=uri, filename="renamed.jpg")
        thumb = await nio.thumbnail(server_name, media_id, 96, 96, ResizingMethod.crop)
        return plain, named, thumb

    plain, named, thumb = await trio.to_thread.run_sync(
        run_nio, server.base_url, "@bob:test.example", bob_fetches
    )
    assert isinstance(plain, MemoryDownloadResponse), plain
    assert plain.body == picture
    assert plain.content_type == "image/jpeg"
    assert plain.filename == "cat.jpg"
    assert isinstance(named, MemoryDownloadResponse), named
    assert named.filename == "renamed.jpg"
    assert isinstance(thumb, ThumbnailResponse), thumb
    assert thumb.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.body)).size == (96, 96)


async def test_nio_image_message_in_a_room(
    server: Any, client: httpx.AsyncClient, register_user: Any
) -> None:
    """Alice uploads a picture and sends it as m.image; Bob finds it in /sync and downloads it."""
    from nio import (
        JoinResponse,
        RoomCreateResponse,
        RoomMessageImage,
        RoomSendResponse,
        SyncResponse,
    )

    await register_user(client, "alice")
    await register_user(client, "bob")
    picture = image_bytes((320, 200), "PNG", color=(250, 200, 0))

    async def alice_sends(nio: AsyncClient) -> str:
        created = await nio.room_create(invite=["@bob:test.example"])
        assert isinstance(created, RoomCreateResponse), created
        assert isinstance(await nio.sync(timeout=0), SyncResponse)
        uploaded, _ = await nio.upload(
            io.BytesIO(picture), content_type="image/png", filename="sun.png", filesize=len(picture)
        )
        assert isinstance(uploaded, UploadResponse), uploaded
        content = {
            "msgtype": "m.image",
            "body": "sun.png",
            "url": uploaded.content_uri,
            "info": {"mimetype": "image/png", "size": len(picture), "w": 320, "h": 200},
        }
        sent = await nio.room_send(created.room_id, "m.room.message", content)
        assert isinstance(sent, RoomSendResponse), sent
        return str(created.room_id)

    room_id = await trio.to_thread.run_sync(
        run_nio, server.base_url, "@alice:test.example", alice_sends
    )

    async def bob_receives(nio: AsyncClient) -> tuple[Any, Any]:
        joined = await nio.join(room_id)
        assert isinstance(joined, JoinResponse), joined
        synced = await nio.sync(timeout=0, full_state=True)
        assert isinstance(synced, SyncResponse), synced
        images = [
            e for e in synced.rooms.join[room_id].timeline.events if isinstance(e, RoomMessageImage)
        ]
        assert len(images) == 1, synced.rooms.join[room_id].timeline.events
        image = images[0]
        server_name, media_id = image.url[len("mxc://") :].split("/")
        downloaded = await nio.download(mxc=image.url)
        thumb = await nio.thumbnail(server_name, media_id, 32, 32, ResizingMethod.crop)
        return downloaded, thumb

    downloaded, thumb = await trio.to_thread.run_sync(
        run_nio, server.base_url, "@bob:test.example", bob_receives
    )
    assert isinstance(downloaded, MemoryDownloadResponse), downloaded
    assert downloaded.body == picture
    assert downloaded.filename == "sun.png"
    assert isinstance(thumb, ThumbnailResponse), thumb
    assert Image.open(io.BytesIO(thumb.body)).size == (32, 32)
