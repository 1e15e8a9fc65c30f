"""The in-memory session rows (``AuthService.sessions``): every revocation path, warm cache.

Each test first uses the tokens (so their session rows sit in the cache), then
revokes through the public API, then expects the very next request to be refused.
A cache that missed one of the writers of the sessions table fails here.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio
from client_helpers import V3, assert_error, bearer, login, password_auth, whoami
from plait_fixtures import RegisterUser, RunningServer

from homeserver.accounts.auth import SessionCache
from homeserver.storage.sessions import SessionRow

ALICE = "@alice:test.example"


async def warm(client: httpx.AsyncClient, server: RunningServer, *tokens: str) -> None:
    """Use each token twice: the second check is answered from memory."""
    for token in tokens:
        for _ in range(2):
            assert (await whoami(client, token)).status_code == 200
    assert len(server.hs.auth.sessions) >= len(tokens)


async def no_database_reads(server: RunningServer, client: httpx.AsyncClient, token: str) -> int:
    """How many database reads one authenticated whoami costs once the cache is warm."""
    database = server.hs.auth.database
    calls = 0
    original = database.read

    async def counting(fn: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(fn)

    database.read = counting  # type: ignore[method-assign]
    try:
        assert (await whoami(client, token)).status_code == 200
    finally:
        del database.read
    return calls


async def test_warm_session_check_reads_nothing(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice = await register_user(client, "alice")
    await warm(client, server, alice["access_token"])
    assert await no_database_reads(server, client, alice["access_token"]) == 0


async def test_logout_with_warm_cache(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice = await register_user(client, "alice")
    other = (await login(client, "alice")).json()
    await warm(client, server, alice["access_token"], other["access_token"])
    response = await client.post(f"{V3}/logout", headers=bearer(alice["access_token"]), json={})
    assert response.status_code == 200
    assert_error(await whoami(client, alice["access_token"]), 401, "M_UNKNOWN_TOKEN")
    assert (await whoami(client, other["access_token"])).status_code == 200


async def test_logout_all_with_warm_cache(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    other = (await login(client, "alice")).json()
    await warm(client, server, alice["access_token"], other["access_token"], bob["access_token"])
    response = await client.post(f"{V3}/logout/all", headers=bearer(other["access_token"]))
    assert response.status_code == 200
    for token in (alice["access_token"], other["access_token"]):
        assert_error(await whoami(client, token), 401, "M_UNKNOWN_TOKEN")
    assert (await whoami(client, bob["access_token"])).status_code == 200


async def test_device_deletion_with_warm_cache(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice = await register_user(client, "alice", device_id="KEEP")
    one = (await login(client, "alice", device_id="ONE")).json()
    two = (await login(client, "alice", device_id="TWO")).json()
    token = alice["access_token"]
    await warm(client, server, token, one["access_token"], two["access_token"])
    deleted = await client.request(
        "DELETE", f"{V3}/devices/ONE", headers=bearer(token), json={"auth": password_auth(ALICE)}
    )
    assert deleted.status_code == 200, deleted.text
    assert_error(await whoami(client, one["access_token"]), 401, "M_UNKNOWN_TOKEN")
    assert (await whoami(client, two["access_token"])).status_code == 200
    body = {"devices": ["TWO"], "auth": password_auth(ALICE)}
    deleted = await client.post(f"{V3}/delete_devices", headers=bearer(token), json=body)
    assert deleted.status_code == 200, deleted.text
    assert_error(await whoami(client, two["access_token"]), 401, "M_UNKNOWN_TOKEN")
    assert (await whoami(client, token)).status_code == 200


async def test_password_change_with_warm_cache(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice = await register_user(client, "alice")
    kept = (await login(client, "alice")).json()
    ended = (await login(client, "alice")).json()
    await warm(client, server, alice["access_token"], kept["access_token"], ended["access_token"])
    # Without logout_devices nothing ends.
    response = await client.post(
        f"{V3}/account/password",
        headers=bearer(alice["access_token"]),
        json={"new_password": "n1", "logout_devices": False, "auth": password_auth(ALICE)},
    )
    assert response.status_code == 200, response.text
    assert (await whoami(client, ended["access_token"])).status_code == 200
    response = await client.post(
        f"{V3}/account/password",
        headers=bearer(alice["access_token"]),
        json={"new_password": "n2", "auth": password_auth(ALICE, password="n1")},
    )
    assert response.status_code == 200, response.text
    for token in (kept["access_token"], ended["access_token"]):
        assert_error(await whoami(client, token), 401, "M_UNKNOWN_TOKEN")
    assert (await whoami(client, alice["access_token"])).status_code == 200


async def test_deactivation_with_warm_cache(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice = await register_user(client, "alice")
    other = (await login(client, "alice")).json()
    await warm(client, server, alice["access_token"], other["access_token"])
    response = await client.post(
        f"{V3}/account/deactivate",
        headers=bearer(alice["access_token"]),
        json={"auth": password_auth(ALICE)},
    )
    assert response.status_code == 200, response.text
    for token in (alice["access_token"], other["access_token"]):
        assert_error(await whoami(client, token), 401, "M_UNKNOWN_TOKEN")


async def test_login_reusing_a_device_id_with_warm_cache(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    """Spec ``POST /login`` ``device_id``: the device's earlier access tokens end."""
    old = await register_user(client, "alice", device_id="SAME")
    await warm(client, server, old["access_token"])
    new = (await login(client, "alice", device_id="SAME")).json()
    assert_error(await whoami(client, old["access_token"]), 401, "M_UNKNOWN_TOKEN")
    me = (await whoami(client, new["access_token"])).json()
    assert me["device_id"] == "SAME"


async def test_refresh_rotation_and_reuse_with_warm_cache(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    await register_user(client, "alice")
    first = (await login(client, "alice", refresh_token=True)).json()
    await warm(client, server, first["access_token"])
    rotated = await client.post(f"{V3}/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    # Using the new access token ends the grace period of the old refresh token (a
    # session row change); both answers come after the row was cached.
    await warm(client, server, second["access_token"])
    reused = await client.post(f"{V3}/refresh", json={"refresh_token": first["refresh_token"]})
    assert_error(reused, 401, "M_UNKNOWN_TOKEN")
    # Reuse revoked the whole session: the warm access tokens are refused at once.
    assert_error(await whoami(client, second["access_token"]), 401, "M_UNKNOWN_TOKEN")
    assert_error(await whoami(client, first["access_token"]), 401, "M_UNKNOWN_TOKEN")


async def test_expiry_is_checked_with_warm_cache(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    await register_user(client, "alice")
    tokens = (await login(client, "alice", refresh_token=True)).json()
    await warm(client, server, tokens["access_token"])
    server.hs.clock.advance(server.config.auth.access_token_lifetime_s + 1)
    body = assert_error(await whoami(client, tokens["access_token"]), 401, "M_UNKNOWN_TOKEN")
    assert body["soft_logout"] is True


# -- the cache itself ------------------------------------------------------------------


def _row(session_id: str) -> SessionRow:
    return SessionRow(session_id, "@u:x", "DEV", 0, False, False, False)


def test_a_read_overtaken_by_a_revocation_is_not_kept() -> None:
    cache = SessionCache()
    stamp = cache.stamp()  # a request starts its database read ...
    cache.forget(["s1"])  # ... a logout commits meanwhile ...
    cache.put(_row("s1"), stamp, 0.0)  # ... and the row it read must not be kept.
    assert cache.get("s1") is None
    cache.put(_row("s1"), cache.stamp(), 0.0)
    assert cache.get("s1") is not None


def test_least_recently_used_rows_go_first() -> None:
    cache = SessionCache(max_entries=2)
    cache.put(_row("a"), cache.stamp(), 0.0)
    cache.put(_row("b"), cache.stamp(), 0.0)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put(_row("c"), cache.stamp(), 0.0)
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


async def test_concurrent_checks_and_logout(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    """Checks racing a logout: once the logout answered, every check is refused."""
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    await warm(client, server, token)

    async def check() -> None:
        await whoami(client, token)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(check)
        response = await client.post(f"{V3}/logout", headers=bearer(token), json={})
        assert response.status_code == 200
    assert_error(await whoami(client, token), 401, "M_UNKNOWN_TOKEN")
