"""What ``/sync`` reads from the E2E services (``homeserver/sync/sources.py``, ``E2ESource``).

Spec (client-server-api "Send-to-Device messaging", "Extensions to /sync" of the
E2E module): ``to_device.events``, ``device_lists.changed/left``,
``device_one_time_keys_count``, ``device_unused_fallback_key_types``.
"""

from __future__ import annotations

from typing import Any

from homeserver.e2e.keys import SIGNED_CURVE25519, E2EKeyService
from homeserver.e2e.to_device import MAX_PER_SYNC, ToDeviceService
from homeserver.notifier import StreamToken


class E2ESyncSource:
    def __init__(self, keys: E2EKeyService, to_device: ToDeviceService) -> None:
        self.keys = keys
        self.to_device = to_device

    async def to_device_section(
        self, user_id: str, device_id: str, since_pos: int | None, upto_pos: int
    ) -> tuple[list[dict[str, Any]], int]:
        """(events, position for next_batch): the device's messages after ``since_pos``.

        A sync with ``since`` acknowledges everything up to its ``to_device``
        position, so those messages are deleted first. At most
        :data:`MAX_PER_SYNC` are handed out; then next_batch stops at the last one
        handed out, and the rest follow in the next sync.
        """
        since = since_pos or 0
        if await self.to_device.nothing_queued(user_id, device_id, since):
            # Nothing to acknowledge or hand out (most woken syncs): no database trip.
            return [], max(upto_pos, since)
        if since > 0:
            await self.to_device.delete_to_device_before(user_id, device_id, since)
        found = await self.to_device.to_device_for(user_id, device_id, since, upto_pos)
        if len(found) >= MAX_PER_SYNC:
            return [event for _, event in found], found[-1][0]
        return [event for _, event in found], max(upto_pos, since)

    async def device_lists(
        self, user_id: str, since: StreamToken, upto: StreamToken
    ) -> tuple[list[str], list[str]]:
        return await self.keys.device_list_changes(
            user_id,
            since.device_lists,
            upto.device_lists,
            events_from=since.events,
            events_to=upto.events,
        )

    async def device_key_counts(
        self, user_id: str, device_id: str
    ) -> tuple[dict[str, int], list[str]]:
        """(``device_one_time_keys_count``, ``device_unused_fallback_key_types``), one read."""
        counts, fallback_types = await self.keys.device_key_counts(user_id, device_id)
        # Always state the count clients upload by, zero included: a client that
        # reads a missing count as "unchanged" would never replenish its keys
        # after the last one is claimed (Synapse does the same).
        counts.setdefault(SIGNED_CURVE25519, 0)
        return counts, fallback_types
