"""The redaction algorithm: what of an event survives when its content is removed.

It matters far beyond deleting messages: the reference hash (hence the event ID) and
every event signature are computed over the *redacted* form, so that a server holding
only the redacted copy can still verify and identify the event. Servers that disagree
by one key compute different event IDs, so every kept key below follows the spec list
exactly, and where the spec is silent we follow Synapse (see ``third_party_invite``).

Spec: ``rooms/fragments/v9-redactions.md`` (room version 10) and
``rooms/fragments/v11-redactions.md`` (room versions 11 and 12).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeserver.core.room_versions import RoomVersion

# Top-level keys kept by every version covered here (v11-redactions.md list).
_KEPT_TOP_LEVEL_KEYS = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "auth_events",
        "origin_server_ts",
    }
)
# v9-redactions.md (used by v10) also keeps these; MSC2176 (v11) stopped protecting them.
_KEPT_TOP_LEVEL_KEYS_BEFORE_V11 = _KEPT_TOP_LEVEL_KEYS | {"origin", "membership", "prev_state"}

_POWER_LEVELS_KEYS_BEFORE_V11 = (
    "ban",
    "events",
    "events_default",
    "kick",
    "redact",
    "state_default",
    "users",
    "users_default",
)
# v11: m.room.power_levels also keeps "invite".
_POWER_LEVELS_KEYS = (*_POWER_LEVELS_KEYS_BEFORE_V11, "invite")


def redact_event(event: Mapping[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """Return the redacted form of ``event`` for ``room_version``; the input is untouched.

    The result is a deep copy, so callers may change it freely. ``unsigned`` is
    dropped, as the spec's list requires; a server showing a redacted event to
    clients adds its own ``unsigned`` (e.g. ``redacted_because``) afterwards.
    ``content`` is always present in the result (``{}`` if the event had none or it
    was not an object), which keeps redaction idempotent.
    """
    if room_version.updated_redaction_rules:
        kept_keys = _KEPT_TOP_LEVEL_KEYS
    else:
        kept_keys = _KEPT_TOP_LEVEL_KEYS_BEFORE_V11
    redacted = {key: _copy_json(value) for key, value in event.items() if key in kept_keys}
    content = event.get("content")
    if not isinstance(content, Mapping):
        content = {}
    redacted["content"] = _copy_json(_redact_content(event.get("type"), content, room_version))
    return redacted


def _redact_content(
    event_type: object, content: Mapping[str, Any], room_version: RoomVersion
) -> dict[str, Any]:
    updated = room_version.updated_redaction_rules
    if event_type == "m.room.member":
        kept = _pick(content, ("membership", "join_authorised_via_users_server"))
        third_party_invite = content.get("third_party_invite")
        if updated and isinstance(third_party_invite, Mapping):
            # v11: "it allows the signed key of the third_party_invite key". The spec
            # does not say whether a third_party_invite without "signed" survives as
            # {}. Synapse keeps {} (ruma drops it); we match Synapse, which computes
            # the event IDs of most of the federation.
            kept["third_party_invite"] = _pick(third_party_invite, ("signed",))
        return kept
    if event_type == "m.room.create":
        if updated:
            # v11 (MSC2176): the create event keeps all of its content.
            return dict(content)
        return _pick(content, ("creator",))
    if event_type == "m.room.join_rules":
        return _pick(content, ("join_rule", "allow"))
    if event_type == "m.room.power_levels":
        return _pick(content, _POWER_LEVELS_KEYS if updated else _POWER_LEVELS_KEYS_BEFORE_V11)
    if event_type == "m.room.history_visibility":
        return _pick(content, ("history_visibility",))
    if event_type == "m.room.redaction" and updated:
        # v11: the redacted event ID moved into content, and survives redaction there.
        return _pick(content, ("redacts",))
    return {}


def _pick(content: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: content[key] for key in keys if key in content}


def _copy_json(value: Any) -> Any:
    """Deep copy of a JSON value; much cheaper than ``copy.deepcopy``."""
    if isinstance(value, Mapping):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_json(item) for item in value]
    return value
