"""``/keys/*`` (``keys.yaml``, ``cross_signing.yaml``): device, one-time, fallback and
cross-signing keys. Parsing and limits here; the rules in ``homeserver/e2e/keys.py``.

Limits (per request unless noted; all far above what clients send):

* ``/keys/upload``: at most 100 one-time keys and 10 fallback keys; each key at
  most 8 KiB, device keys 16 KiB; a device holds at most 1000 unused one-time keys.
* ``/keys/query``: at most 1000 users, 1000 device IDs per user.
* ``/keys/claim``: at most 1000 devices in all.
* ``/keys/signatures/upload``: at most 1000 signed objects in all.
"""

from __future__ import annotations

from typing import Any

from homeserver.accounts import uia
from homeserver.accounts.auth import require_user
from homeserver.e2e import validation as val
from homeserver.errors import bad_json, invalid_param, missing_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.notifier import StreamToken

MAX_ONE_TIME_KEYS = 100
MAX_FALLBACK_KEYS = 10
MAX_QUERY_USERS = 1000
MAX_QUERY_DEVICES = 1000
MAX_CLAIMS = 1000
MAX_SIGNED_OBJECTS = 1000
MAX_ID_LENGTH = 255


def _object(body: dict[str, Any], name: str, *, required: bool = False) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        if required:
            raise missing_param(f"'{name}' is required")
        return None
    if not isinstance(value, dict):
        raise bad_json(f"'{name}' must be an object")
    return value


def _id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise bad_json(
            f"'{field}' must hold non-empty strings of at most {MAX_ID_LENGTH} characters"
        )
    return value


def _timeout(body: dict[str, Any]) -> None:
    timeout = body.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)):
        raise bad_json("'timeout' must be an integer")


def add_routes(router: Router, hs: HomeServer) -> None:
    keys = hs.e2e_keys

    async def upload(request: Request) -> Response:
        requester = await require_user(hs, request)
        body = request.json()
        device_keys = _object(body, "device_keys")
        parsed_device_keys = (
            val.validate_device_keys(device_keys, requester.user_id, requester.device_id)
            if device_keys is not None
            else None
        )
        otks = _object(body, "one_time_keys")
        one_time_keys = (
            val.validate_key_map(otks, "one_time_keys", MAX_ONE_TIME_KEYS) if otks else []
        )
        fallback_name = (
            "fallback_keys" if "fallback_keys" in body else "org.matrix.msc2732.fallback_keys"
        )
        fallbacks = _object(body, fallback_name)
        fallback_keys = (
            val.validate_key_map(fallbacks, fallback_name, MAX_FALLBACK_KEYS) if fallbacks else []
        )
        counts = await keys.upload(
            requester.user_id, requester.device_id, parsed_device_keys, one_time_keys, fallback_keys
        )
        return Response.json({"one_time_key_counts": counts})

    async def query(request: Request) -> Response:
        requester = await require_user(hs, request)
        body = request.json()
        _timeout(body)
        wanted_raw = _object(body, "device_keys", required=True)
        assert wanted_raw is not None
        if len(wanted_raw) > MAX_QUERY_USERS:
            raise invalid_param(f"'device_keys' names too many users (at most {MAX_QUERY_USERS})")
        wanted: dict[str, list[str]] = {}
        for user_id, device_ids in wanted_raw.items():
            _id(user_id, "device_keys")
            if device_ids is None:
                device_ids = []
            if not isinstance(device_ids, list):
                raise bad_json("'device_keys' values must be lists of device IDs")
            if len(device_ids) > MAX_QUERY_DEVICES:
                raise invalid_param(f"'device_keys' lists too many devices for {user_id}")
            wanted[user_id] = [_id(d, "device_keys") for d in device_ids]
        return Response.json(await keys.query(requester.user_id, wanted))

    async def claim(request: Request) -> Response:
        await require_user(hs, request)
        body = request.json()
        _timeout(body)
        wanted_raw = _object(body, "one_time_keys", required=True)
        assert wanted_raw is not None
        wanted: dict[str, dict[str, str]] = {}
        total = 0
        for user_id, devices in wanted_raw.items():
            _id(user_id, "one_time_keys")
            if not isinstance(devices, dict):
                raise bad_json("'one_time_keys' values must be objects of device ID to algorithm")
            total += len(devices)
            if total > MAX_CLAIMS:
                raise invalid_param(
                    f"'one_time_keys' names too many devices (at most {MAX_CLAIMS})"
                )
            wanted[user_id] = {
                _id(d, "one_time_keys"): _id(alg, "one_time_keys") for d, alg in devices.items()
            }
        return Response.json(await keys.claim(wanted))

    async def changes(request: Request) -> Response:
        requester = await require_user(hs, request)
        from_raw, to_raw = request.query_one("from"), request.query_one("to")
        if not from_raw or not to_raw:
            raise missing_param("'from' and 'to' are required")
        start, end = StreamToken.parse(from_raw), StreamToken.parse(to_raw)
        changed, left = await keys.device_list_changes(
            requester.user_id,
            start.device_lists,
            end.device_lists,
            events_from=start.events,
            events_to=end.events,
        )
        return Response.json({"changed": changed, "left": left})

    async def device_signing_upload(request: Request) -> Response:
        requester = await require_user(hs, request)
        body = request.json()
        uploaded: dict[str, dict[str, Any]] = {}
        for field, key_type in val.CROSS_SIGNING_USAGES.items():
            value = body.get(field)
            if value is not None:
                _, uploaded[key_type] = val.validate_cross_signing_key(
                    value, field, requester.user_id
                )
        stored = await keys.cross_signing_keys(requester.user_id)
        # Spec v1.11 (MSC3967): UIA only when replacing an existing master key;
        # repeating exactly the stored keys needs none either.
        session = None
        if "master" in stored and any(stored.get(t) != k for t, k in uploaded.items()):
            session = await hs.interactive_auth.authenticate(
                body.get("auth"),
                purpose="device_signing_upload",
                flows=[[uia.PASSWORD]],
                user_id=requester.user_id,
            )
        await keys.upload_cross_signing(requester.user_id, uploaded)
        if session is not None:
            hs.interactive_auth.finish(session)
        return Response.json({})

    async def signatures_upload(request: Request) -> Response:
        requester = await require_user(hs, request)
        body = request.json()
        total = 0
        parsed: dict[str, dict[str, dict[str, Any]]] = {}
        for user_id, objects in body.items():
            _id(user_id, "user ID")
            if not isinstance(objects, dict):
                raise bad_json(f"'{user_id}' must be an object of key ID to signed object")
            total += len(objects)
            if total > MAX_SIGNED_OBJECTS:
                raise invalid_param(f"Too many signed objects (at most {MAX_SIGNED_OBJECTS})")
            for key_id, signed in objects.items():
                _id(key_id, f"{user_id} key ID")
                if isinstance(signed, dict):
                    val.encoded_size(signed, f"{user_id}.{key_id}")
            parsed[user_id] = objects
        return Response.json(await keys.upload_signatures(requester.user_id, parsed))

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}"
        router.add("POST", f"{base}/keys/upload", upload)
        router.add("POST", f"{base}/keys/query", query)
        router.add("POST", f"{base}/keys/claim", claim)
        router.add("GET", f"{base}/keys/changes", changes)
        router.add("POST", f"{base}/keys/signatures/upload", signatures_upload)
    router.add("POST", "/_matrix/client/v3/keys/device_signing/upload", device_signing_upload)
    router.add("POST", "/_matrix/client/unstable/keys/device_signing/upload", device_signing_upload)
