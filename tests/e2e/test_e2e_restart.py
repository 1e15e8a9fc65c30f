"""The to-device and device-list stream positions survive a restart (sync tokens stay valid)."""

from __future__ import annotations

from pathlib import Path

from plait_fixtures import make_config

from homeserver.homeserver import HomeServer
from homeserver.storage import e2e_keys as e2e_db
from homeserver.storage import to_device as to_device_db


async def test_positions_are_reloaded_at_open(tmp_path: Path, database_url: str) -> None:
    config = make_config(tmp_path, database_url)
    hs = await HomeServer.open(config)
    try:
        position = await hs.database.run(
            lambda conn: to_device_db.enqueue(
                conn, "@alice:test.example", "A", {"type": "m.test", "content": {}}
            )
        )
        change = await hs.database.run(
            lambda conn: e2e_db.record_device_list_change(conn, "@alice:test.example")
        )
    finally:
        await hs.aclose()
    hs = await HomeServer.open(config)
    try:
        token = hs.notifier.current_token()
        assert token.to_device == position == 1
        assert token.device_lists == change == 1
        found = await hs.to_device.to_device_for("@alice:test.example", "A", 0, token.to_device)
        assert found == [(1, {"type": "m.test", "content": {}})]
    finally:
        await hs.aclose()
