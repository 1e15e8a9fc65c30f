"""Helpers for the E2E tests: clients with ed25519 device keys, signed like real ones."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import attrs
import httpx
import nacl.signing

from homeserver.core.signing import encode_base64, sign_json

V3 = "/_matrix/client/v3"


def assert_error(response: httpx.Response, status: int, errcode: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["errcode"] == errcode, body
    assert isinstance(body["error"], str)
    return body


def new_key() -> tuple[nacl.signing.SigningKey, str]:
    key = nacl.signing.SigningKey.generate()
    return key, encode_base64(bytes(key.verify_key))


@attrs.define
class Device:
    """One logged-in device of a user, with its own ed25519 identity key."""

    client: httpx.AsyncClient
    user_id: str
    device_id: str
    token: str
    password: str = "correct horse"
    signing_key: nacl.signing.SigningKey = attrs.field(factory=nacl.signing.SigningKey.generate)
    curve_key: str = attrs.field(factory=lambda: encode_base64(secrets.token_bytes(32)))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def ed25519(self) -> str:
        return encode_base64(bytes(self.signing_key.verify_key))

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        return sign_json(obj, self.user_id, self.signing_key, f"ed25519:{self.device_id}")

    def device_keys(self, **extra: Any) -> dict[str, Any]:
        return self.sign(
            {
                "user_id": self.user_id,
                "device_id": self.device_id,
                "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
                "keys": {
                    f"curve25519:{self.device_id}": self.curve_key,
                    f"ed25519:{self.device_id}": self.ed25519,
                },
                **extra,
            }
        )

    def one_time_keys(self, count: int, start: int = 0, fallback: bool = False) -> dict[str, Any]:
        keys = {}
        for i in range(start, start + count):
            body: dict[str, Any] = {"key": encode_base64(secrets.token_bytes(32))}
            if fallback:
                body["fallback"] = True
            keys[f"signed_curve25519:K{i:05d}"] = self.sign(body)
        return keys

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(V3 + path, headers=self.headers, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.post(
            V3 + path, headers=self.headers, json={} if body is None else body, **kw
        )

    async def put(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.put(
            V3 + path, headers=self.headers, json={} if body is None else body, **kw
        )

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.delete(V3 + path, headers=self.headers, **kw)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        call = {"GET": self.get, "POST": self.post, "PUT": self.put, "DELETE": self.delete}
        if method in ("GET", "DELETE"):
            response = await call[method](path, **kw)
        else:
            response = await call[method](path, body, **kw)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def upload_device_keys(self) -> dict[str, Any]:
        return await self.ok("POST", "/keys/upload", {"device_keys": self.device_keys()})

    async def sync(self, since: str | None = None, timeout: int = 0) -> dict[str, Any]:
        params: dict[str, Any] = {"timeout": timeout}
        if since is not None:
            params["since"] = since
        return await self.ok("GET", "/sync", params=params)

    async def create_room(self, **body: Any) -> str:
        result = await self.ok("POST", "/createRoom", body)
        room_id: str = result["room_id"]
        return room_id

    async def join(self, room_id: str) -> None:
        await self.ok("POST", f"/join/{quote(room_id, safe='')}")

    async def leave(self, room_id: str) -> None:
        await self.ok("POST", f"/rooms/{quote(room_id, safe='')}/leave")


async def register(client: httpx.AsyncClient, register_user: Any, name: str) -> Device:
    result = await register_user(client, name)
    return Device(client, result["user_id"], result["device_id"], result["access_token"])


async def login(first: Device, device_id: str | None = None) -> Device:
    """Another device of the same user."""
    body: dict[str, Any] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": first.user_id},
        "password": first.password,
    }
    if device_id is not None:
        body["device_id"] = device_id
    response = await first.client.post(V3 + "/login", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    return Device(first.client, result["user_id"], result["device_id"], result["access_token"])


def cross_signing_key(
    user_id: str, usage: str, key: nacl.signing.SigningKey, signer: Any = None
) -> dict[str, Any]:
    """A cross-signing key object; ``signer`` = (signing key, public) of the master key."""
    public = encode_base64(bytes(key.verify_key))
    obj: dict[str, Any] = {
        "user_id": user_id,
        "usage": [usage],
        "keys": {f"ed25519:{public}": public},
    }
    if signer is not None:
        signer_key, signer_public = signer
        obj = sign_json(obj, user_id, signer_key, f"ed25519:{signer_public}")
    return obj
