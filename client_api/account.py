"""``/account/password``, ``/account/deactivate``, and devices (``/devices``, ``/delete_devices``).

Changing the password, deactivating and deleting devices are guarded by
user-interactive auth with ``m.login.password`` (spec: "Account registration
and management", "Device management"): a stolen access token alone cannot
lock the owner out.
"""

from __future__ import annotations

from typing import Any

from client_api import validation as v
from homeserver.accounts import uia
from homeserver.accounts.auth import MAX_DEVICE_ID_LENGTH, Requester, require_user
from homeserver.accounts.passwords import MAX_PASSWORD_BYTES
from homeserver.errors import not_found
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.storage.devices import DeviceRow

PASSWORD_FLOWS = [[uia.PASSWORD]]
MAX_DISPLAY_NAME_LENGTH = 256
MAX_DELETE_DEVICES = 1000


def device_json(device: DeviceRow) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "display_name": device.display_name,
        "last_seen_ip": device.last_seen_ip,
        "last_seen_ts": device.last_seen_ts,
    }


def add_routes(router: Router, hs: HomeServer) -> None:
    async def password_uia(
        body: dict[str, Any], requester: Requester, purpose: str
    ) -> uia.UiaSession:
        return await hs.interactive_auth.authenticate(
            body.get("auth"), purpose=purpose, flows=PASSWORD_FLOWS, user_id=requester.user_id
        )

    async def change_password(request: Request) -> Response:
        requester = await require_user(hs, request)
        body = request.json()
        new_password = v.string(
            body,
            "new_password",
            max_length=MAX_PASSWORD_BYTES,
            max_bytes=MAX_PASSWORD_BYTES,
            required=True,
        )
        assert new_password is not None
        logout_devices = v.boolean(body, "logout_devices", True)
        session = await password_uia(body, requester, "change_password")
        await hs.accounts.change_password(requester, new_password, logout_devices=logout_devices)
        hs.interactive_auth.finish(session)
        return Response.json({})

    async def deactivate(request: Request) -> Response:
        requester = await require_user(hs, request)
        body = request.json()
        v.boolean(body, "erase", False)
        session = await password_uia(body, requester, "deactivate")
        await hs.accounts.deactivate(requester.user_id)
        hs.interactive_auth.finish(session)
        # We hold no third-party identifiers, so there is nothing to unbind.
        return Response.json({"id_server_unbind_result": "no-support"})

    async def list_devices(request: Request) -> Response:
        requester = await require_user(hs, request)
        devices = await hs.devices.list_devices(requester.user_id)
        return Response.json({"devices": [device_json(d) for d in devices]})

    async def get_device(request: Request) -> Response:
        requester = await require_user(hs, request)
        device = await hs.devices.get_device(requester.user_id, request.path_params["deviceId"])
        if device is None:
            raise not_found("Unknown device")
        return Response.json(device_json(device))

    async def update_device(request: Request) -> Response:
        requester = await require_user(hs, request)
        body = request.json()
        display_name = v.string(body, "display_name", max_length=MAX_DISPLAY_NAME_LENGTH)
        device_id = request.path_params["deviceId"]
        if not await hs.devices.rename(requester.user_id, device_id, display_name):
            raise not_found("Unknown device")
        return Response.json({})

    async def delete_device(request: Request) -> Response:
        requester = await require_user(hs, request)
        device_id = request.path_params["deviceId"]
        body = request.json()
        if await hs.devices.get_device(requester.user_id, device_id) is None:
            raise not_found("Unknown device")
        session = await password_uia(body, requester, "delete_devices")
        await hs.devices.delete(requester.user_id, [device_id])
        hs.interactive_auth.finish(session)
        return Response.json({})

    async def delete_devices(request: Request) -> Response:
        requester = await require_user(hs, request)
        body = request.json()
        device_ids = v.string_list(
            body, "devices", max_items=MAX_DELETE_DEVICES, max_length=MAX_DEVICE_ID_LENGTH
        )
        session = await password_uia(body, requester, "delete_devices")
        await hs.devices.delete(requester.user_id, device_ids)
        hs.interactive_auth.finish(session)
        return Response.json({})

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}"
        router.add("POST", f"{base}/account/password", change_password, max_body=v.SMALL_BODY)
        router.add("POST", f"{base}/account/deactivate", deactivate, max_body=v.SMALL_BODY)
        router.add("GET", f"{base}/devices", list_devices)
        router.add("GET", f"{base}/devices/{{deviceId}}", get_device)
        router.add("PUT", f"{base}/devices/{{deviceId}}", update_device, max_body=v.SMALL_BODY)
        router.add("DELETE", f"{base}/devices/{{deviceId}}", delete_device, max_body=v.SMALL_BODY)
        router.add("POST", f"{base}/delete_devices", delete_devices)
