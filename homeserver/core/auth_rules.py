"""The authorisation rules of room versions 10, 11 and 12, as pure functions over event dicts.

Two servers that disagree about one rule split a room forever, so this module follows the
spec text rule by rule, and every rejection names the rule as the spec numbers it for the
room version at hand ("4.3.2: ..." in v10/v11 is "5.3.2: ..." in v12, which inserted rule 2).

Contract (what the caller owns, what we own):

* Events are plain dicts carrying their ``event_id`` (computed by the caller).
* :func:`check_auth` takes the *state to check against* as a mapping
  ``(type, state_key) -> event``. It applies every rule that depends on state. In v12 the
  mapping must hold the room's ``m.room.create`` event even though events never cite it
  (rule 2 derives it from ``room_id``). Only accepted (not rejected) events belong in it.
* :func:`check_auth_events` applies the rules about the event's own ``auth_events`` list
  (rule 2 in v10/v11, 3 in v12): duplicates, entries the auth events selection would not
  pick, rejected entries (the caller says which ids were rejected), a missing create event,
  entries from another room.
* Signatures are not verified here: :func:`required_signers` lists the servers whose
  signatures the caller must check ("events must be signed by the server denoted by the
  sender", and rule 4.2.1 / 5.2.1 for ``join_authorised_via_users_server``). The one
  signature inside the rules, the ``signed`` block of a third-party invite, is verified here.
* Anything malformed raises :class:`AuthError`, never another exception: fields the rules
  read are parsed strictly (a wrong type rejects), fields they never read are ignored.

Spec: ``content/rooms/v10.md``, ``v11.md``, ``v12.md`` "Authorisation rules";
``server-server-api.md`` "Auth events selection".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from homeserver.core.auth_rules_third_party import (
    third_party_invite_public_keys,
    verify_third_party_signed,
)
from homeserver.core.identifiers import parse_user_id
from homeserver.core.power_levels import (
    LEVEL_KEYS,
    PowerLevel,
    PowerLevels,
    parse_level,
    parse_level_map,
    power_levels_from_state,
    room_creators,
)
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

CREATE = "m.room.create"
MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
THIRD_PARTY_INVITE = "m.room.third_party_invite"

StateKey = tuple[str, str]
CREATE_KEY: StateKey = (CREATE, "")
POWER_LEVELS_KEY: StateKey = (POWER_LEVELS, "")
JOIN_RULES_KEY: StateKey = (JOIN_RULES, "")


class AuthError(ValueError):
    """The event is not allowed; ``reason`` starts with the spec rule number ("5.3.2: ...")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def rule(self) -> str:
        """The rule number part of the reason, e.g. ``"4.3.2"`` (or ``"format"``)."""
        return self.reason.split(":", 1)[0]


def _rule(room_version: RoomVersion, v11_number: str) -> str:
    """Renumber a rule written in v10/v11 numbering for ``room_version``.

    v12 inserted rule 2 (room_id derived from the create event) and rule 10.4 (creators in
    ``users``), shifting the rules after them; v10 and v11 share numbering.
    """
    parts = v11_number.split(".")
    top = int(parts[0])
    if room_version.room_id_from_create_event and top >= 2:
        parts[0] = str(top + 1)
    if room_version.privileged_creators and top == 9 and len(parts) > 1 and int(parts[1]) >= 4:
        parts[1] = str(int(parts[1]) + 1)
    return ".".join(parts)


def _reject(room_version: RoomVersion, v11_number: str, message: str) -> AuthError:
    return AuthError(f"{_rule(room_version, v11_number)}: {message}")


# --- lenient accessors -------------------------------------------------------------------


def _content(event: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if event is None:
        return {}
    content = event.get("content")
    return content if isinstance(content, Mapping) else {}


def _str_field(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str):
        raise AuthError(f"format: event has no string {key!r}")
    return value


def _state_key(event: Mapping[str, Any]) -> str | None:
    if "state_key" not in event:
        return None
    state_key = event["state_key"]
    if not isinstance(state_key, str):
        raise AuthError("format: state_key is not a string")
    return state_key


def _domain(user_id: str) -> str | None:
    """The server part of an identifier (everything after the first colon)."""
    _, sep, domain = user_id.partition(":")
    return domain if sep else None


def _membership(state: Mapping[StateKey, Mapping[str, Any]], user_id: str) -> str | None:
    """A user's current membership in ``state``, None when absent or malformed."""
    membership = _content(state.get((MEMBER, user_id))).get("membership")
    return membership if isinstance(membership, str) else None


def _join_rule(state: Mapping[StateKey, Mapping[str, Any]]) -> str | None:
    """The current join rule. Like Synapse and ruma, a room without one behaves as ``invite``.

    A join_rules event without ``join_rule`` also counts as ``invite`` (Synapse); a
    non-string value matches no rule, so every rule that reads it rejects.
    """
    event = state.get(JOIN_RULES_KEY)
    if event is None:
        return "invite"
    join_rule = _content(event).get("join_rule", "invite")
    return join_rule if isinstance(join_rule, str) else None


# --- auth events selection ----------------------------------------------------------------


def auth_types_for_event(room_version: RoomVersion, event: Mapping[str, Any]) -> set[StateKey]:
    """The (type, state_key) pairs the auth events selection picks for ``event``.

    Spec: server-server API "Auth events selection". Used both to choose ``auth_events``
    when building an event and to check a received event's list (rule 2.2 / 3.2). Never
    raises: an unreadable field just contributes nothing.
    """
    event_type = event.get("type")
    if event_type == CREATE:
        return set()
    types: set[StateKey] = {POWER_LEVELS_KEY}
    if not room_version.room_id_from_create_event:
        # v12 (MSC4291): the create event is implied by room_id and never selected.
        types.add(CREATE_KEY)
    sender = event.get("sender")
    if isinstance(sender, str):
        types.add((MEMBER, sender))
    if event_type != MEMBER:
        return types
    content = _content(event)
    membership = content.get("membership")
    state_key = event.get("state_key")
    if isinstance(state_key, str):
        types.add((MEMBER, state_key))
    if membership in ("join", "invite", "knock"):
        types.add(JOIN_RULES_KEY)
    if membership == "invite":
        third_party_invite = content.get("third_party_invite")
        if isinstance(third_party_invite, Mapping):
            signed = third_party_invite.get("signed")
            token = signed.get("token") if isinstance(signed, Mapping) else None
            if isinstance(token, str):
                types.add((THIRD_PARTY_INVITE, token))
    if membership == "join":
        # All supported versions (v8+) have restricted rooms.
        authoriser = content.get("join_authorised_via_users_server")
        if isinstance(authoriser, str):
            types.add((MEMBER, authoriser))
    return types


def required_signers(room_version: RoomVersion, event: Mapping[str, Any]) -> set[str]:
    """Server names whose valid signature the event needs before the rules apply.

    The sender's server always; for a join naming ``join_authorised_via_users_server``, that
    user's server too (rule 4.2.1 in v10/v11, 5.2.1 in v12).
    """
    signers: set[str] = set()
    sender = event.get("sender")
    if isinstance(sender, str) and (domain := _domain(sender)):
        signers.add(domain)
    content = _content(event)
    authoriser = content.get("join_authorised_via_users_server")
    if (
        event.get("type") == MEMBER
        and content.get("membership") == "join"
        and isinstance(authoriser, str)
        and (domain := _domain(authoriser))
    ):
        signers.add(domain)
    return signers


def check_auth_events(
    room_version: RoomVersion,
    event: Mapping[str, Any],
    auth_events: Sequence[Mapping[str, Any]],
    *,
    rejected_event_ids: Collection[str] = frozenset(),
) -> None:
    """Rules about the event's own ``auth_events`` list (rule 2 in v10/v11, rule 3 in v12).

    ``auth_events`` are the events the PDU lists, in order, already fetched by the caller.
    """
    if event.get("type") == CREATE:
        return
    expected = auth_types_for_event(room_version, event)
    room_id = event.get("room_id")
    seen: set[StateKey] = set()
    for auth_event in auth_events:
        auth_type = auth_event.get("type")
        auth_state_key = auth_event.get("state_key")
        if not isinstance(auth_type, str) or not isinstance(auth_state_key, str):
            raise _reject(room_version, "2.2", "an auth event is not a state event")
        key = (auth_type, auth_state_key)
        if key in seen:
            raise _reject(room_version, "2.1", f"duplicate auth events for {key}")
        seen.add(key)
        if key not in expected:
            raise _reject(room_version, "2.2", f"unexpected auth event for {key}")
        auth_event_id = auth_event.get("event_id")
        if isinstance(auth_event_id, str) and auth_event_id in rejected_event_ids:
            raise _reject(room_version, "2.3", f"auth event for {key} was rejected")
        if auth_event.get("room_id") != room_id:
            raise _reject(room_version, "2.5", f"auth event for {key} is from another room")
    if not room_version.room_id_from_create_event and CREATE_KEY not in seen:
        raise _reject(room_version, "2.4", "no m.room.create event in auth_events")


# --- rule 1: m.room.create ----------------------------------------------------------------


def _check_create(room_version: RoomVersion, event: Mapping[str, Any]) -> None:
    prev_events = event.get("prev_events")
    if prev_events != [] and prev_events is not None:
        raise AuthError("1.1: the create event has prev_events")
    content = event.get("content")
    if not isinstance(content, Mapping):
        raise AuthError("format: content is not an object")
    if room_version.room_id_from_create_event:
        # v12 (MSC4291): the room id *is* the create event's id, so it cannot carry one.
        if "room_id" in event:
            raise AuthError("1.2: the create event has a room_id")
    else:
        room_id = event.get("room_id")
        sender = _str_field(event, "sender")
        room_domain = _domain(room_id) if isinstance(room_id, str) else None
        if room_domain is None or room_domain != _domain(sender):
            raise AuthError("1.2: the room_id domain does not match the sender's")
    if "room_version" in content and not (
        isinstance(content["room_version"], str) and content["room_version"] in KNOWN_ROOM_VERSIONS
    ):
        raise AuthError("1.3: unknown room_version")
    if not room_version.implicit_room_creator and "creator" not in content:
        raise AuthError("1.4: the create event has no creator")
    if room_version.privileged_creators and "additional_creators" in content:
        additional = content["additional_creators"]
        if not isinstance(additional, list) or not all(
            isinstance(user_id, str) and parse_user_id(user_id) is not None
            for user_id in additional
        ):
            raise AuthError("1.4: additional_creators is not a list of user IDs")


# --- rule 4: m.room.member ----------------------------------------------------------------


def _check_member(
    room_version: RoomVersion,
    event: Mapping[str, Any],
    state: Mapping[StateKey, Mapping[str, Any]],
    levels: PowerLevels,
    create_event: Mapping[str, Any],
) -> None:
    rv = room_version
    sender = _str_field(event, "sender")
    target = _state_key(event)
    content = event.get("content")
    if target is None or not isinstance(content, Mapping) or "membership" not in content:
        raise _reject(rv, "4.1", "no state_key or no membership")
    membership = content["membership"]
    # Rule 4.2 (join_authorised_via_users_server signature) is the caller's: required_signers().
    target_membership = _membership(state, target)
    sender_membership = _membership(state, sender)
    sender_level = levels.user_level(sender)
    target_level = levels.user_level(target)

    if membership == "join":
        # 4.3.1: the creator's own first join. Only the create *sender* (v11+) or
        # content.creator (v10) qualifies, not v12's additional_creators.
        creator = (
            create_event.get("sender")
            if rv.implicit_room_creator
            else _content(create_event).get("creator")
        )
        if event.get("prev_events") == [create_event.get("event_id")] and target == creator:
            return
        if sender != target:
            raise _reject(rv, "4.3.2", "cannot join on behalf of another user")
        if sender_membership == "ban":
            raise _reject(rv, "4.3.3", "the sender is banned")
        join_rule = _join_rule(state)
        if join_rule in ("invite", "knock"):
            if target_membership in ("invite", "join"):
                return
            raise _reject(rv, "4.3.7", f"join rule {join_rule!r} needs an invite")
        if join_rule == "restricted" or (
            join_rule == "knock_restricted" and rv.knock_restricted_join_rule
        ):
            if target_membership in ("join", "invite"):
                return
            authoriser = content.get("join_authorised_via_users_server")
            if (
                not isinstance(authoriser, str)
                or _membership(state, authoriser) != "join"
                or levels.user_level(authoriser) < levels.invite
            ):
                raise _reject(rv, "4.3.5.2", "no joined authorising user who may invite")
            return
        if join_rule == "public":
            return
        raise _reject(rv, "4.3.7", f"join rule {join_rule!r} does not allow joining")

    if membership == "invite":
        if "third_party_invite" in content:
            _check_third_party_invite(rv, event, content, target, target_membership, state)
            return
        if sender_membership != "join":
            raise _reject(rv, "4.4.2", "the sender is not joined")
        if target_membership in ("join", "ban"):
            raise _reject(rv, "4.4.3", f"the target's membership is {target_membership}")
        if sender_level >= levels.invite:
            return
        raise _reject(rv, "4.4.5", "the sender's power level is below the invite level")

    if membership == "leave":
        if sender == target:
            if target_membership in ("invite", "join", "knock"):
                return
            raise _reject(rv, "4.5.1", f"cannot leave from membership {target_membership}")
        if sender_membership != "join":
            raise _reject(rv, "4.5.2", "the sender is not joined")
        if target_membership == "ban" and sender_level < levels.ban:
            raise _reject(rv, "4.5.3", "unbanning needs the ban level")
        if sender_level >= levels.kick and target_level < sender_level:
            return
        raise _reject(rv, "4.5.5", "kicking needs the kick level and more power than the target")

    if membership == "ban":
        if sender_membership != "join":
            raise _reject(rv, "4.6.1", "the sender is not joined")
        if sender_level >= levels.ban and target_level < sender_level:
            return
        raise _reject(rv, "4.6.3", "banning needs the ban level and more power than the target")

    if membership == "knock":
        join_rule = _join_rule(state)
        if not (
            join_rule == "knock"
            or (join_rule == "knock_restricted" and rv.knock_restricted_join_rule)
        ):
            raise _reject(rv, "4.7.1", f"join rule {join_rule!r} does not allow knocking")
        if sender != target:
            raise _reject(rv, "4.7.2", "cannot knock on behalf of another user")
        if sender_membership not in ("ban", "invite", "join"):
            return
        raise _reject(rv, "4.7.4", f"cannot knock from membership {sender_membership}")

    raise _reject(rv, "4.8", f"unknown membership {membership!r}")


def _check_third_party_invite(
    rv: RoomVersion,
    event: Mapping[str, Any],
    content: Mapping[str, Any],
    target: str,
    target_membership: str | None,
    state: Mapping[StateKey, Mapping[str, Any]],
) -> None:
    """Rule 4.4.1 (v10/v11) / 5.4.1 (v12): an invite standing in for a third-party invite."""
    if target_membership == "ban":
        raise _reject(rv, "4.4.1.1", "the target is banned")
    third_party_invite = content["third_party_invite"]
    signed = third_party_invite.get("signed") if isinstance(third_party_invite, Mapping) else None
    if not isinstance(signed, Mapping):
        raise _reject(rv, "4.4.1.2", "third_party_invite has no signed object")
    if "mxid" not in signed or "token" not in signed:
        raise _reject(rv, "4.4.1.3", "signed has no mxid or no token")
    if signed["mxid"] != target:
        raise _reject(rv, "4.4.1.4", "signed.mxid does not match the state_key")
    token = signed["token"]
    invite_event = state.get((THIRD_PARTY_INVITE, token)) if isinstance(token, str) else None
    if invite_event is None:
        raise _reject(rv, "4.4.1.5", "no m.room.third_party_invite for the token")
    if invite_event.get("sender") != event.get("sender"):
        raise _reject(rv, "4.4.1.6", "the sender did not send the third-party invite")
    if verify_third_party_signed(signed, third_party_invite_public_keys(invite_event)):
        return
    raise _reject(rv, "4.4.1.8", "no signature in signed matches a public key")


# --- rule 9: m.room.power_levels ----------------------------------------------------------


def _check_power_levels(
    rv: RoomVersion,
    event: Mapping[str, Any],
    state: Mapping[StateKey, Mapping[str, Any]],
    sender_level: PowerLevel,
    create_event: Mapping[str, Any],
) -> None:
    strict = rv.strict_integer_power_levels
    content = event.get("content")
    if not isinstance(content, Mapping):
        raise AuthError("format: content is not an object")
    for key in LEVEL_KEYS:
        if key in content and parse_level(content[key], strict_integers=strict) is None:
            raise _reject(rv, "9.1", f"{key} is not an integer")
    new_maps: dict[str, dict[str, int]] = {}
    for key in ("events", "notifications"):
        new_maps[key] = _strict_level_map(rv, content, key, "9.2")
    new_users = _strict_level_map(rv, content, "users", "9.3")
    if not all(parse_user_id(user_id) is not None for user_id in new_users):
        raise _reject(rv, "9.3", "users has a key that is not a valid user ID")
    if rv.privileged_creators:
        creators = room_creators(rv, create_event)
        if any(user_id in creators for user_id in new_users):
            raise AuthError("10.4: users may not contain a room creator")

    previous = state.get(POWER_LEVELS_KEY)
    if previous is None:
        return
    old = _content(previous)

    # 9.5: top-level levels added, changed or removed; raw presence, as the spec says.
    for key in LEVEL_KEYS:
        old_value = parse_level(old.get(key), strict_integers=strict) if key in old else None
        new_value = parse_level(content.get(key), strict_integers=strict)
        if old_value == new_value:
            continue
        if old_value is not None and old_value > sender_level:
            raise _reject(rv, "9.5.1", f"{key}: the current value is above the sender's level")
        if new_value is not None and new_value > sender_level:
            raise _reject(rv, "9.5.2", f"{key}: the new value is above the sender's level")

    for key in ("events", "notifications"):
        old_map = parse_level_map(old.get(key), strict_integers=strict)
        new_map = new_maps[key]
        for name in old_map.keys() | new_map.keys():
            old_value, new_value = old_map.get(name), new_map.get(name)
            if old_value == new_value:
                continue
            if old_value is not None and old_value > sender_level:
                raise _reject(rv, "9.6.1", f"{key}.{name}: the current value is too high")
            if new_value is not None and new_value > sender_level:
                raise _reject(rv, "9.7.1", f"{key}.{name}: the new value is too high")

    sender = event.get("sender")
    old_users = parse_level_map(old.get("users"), strict_integers=strict)
    for user_id in old_users.keys() | new_users.keys():
        old_value, new_value = old_users.get(user_id), new_users.get(user_id)
        if old_value == new_value:
            continue
        if old_value is not None and user_id != sender and old_value >= sender_level:
            raise _reject(rv, "9.8.1", f"users.{user_id}: not below the sender's level")
        if new_value is not None and new_value > sender_level:
            raise _reject(rv, "9.9.1", f"users.{user_id}: the new value is too high")


def _strict_level_map(
    rv: RoomVersion, content: Mapping[str, Any], key: str, rule: str
) -> dict[str, int]:
    if key not in content:
        return {}
    value = content[key]
    if not isinstance(value, Mapping):
        raise _reject(rv, rule, f"{key} is not an object")
    out: dict[str, int] = {}
    for name, raw in value.items():
        level = parse_level(raw, strict_integers=rv.strict_integer_power_levels)
        if level is None or not isinstance(name, str):
            raise _reject(rv, rule, f"{key} has a value that is not an integer")
        out[name] = level
    return out


# --- the rules in order -------------------------------------------------------------------


def check_auth(
    room_version: RoomVersion,
    event: Mapping[str, Any],
    auth_events: Mapping[StateKey, Mapping[str, Any]],
) -> None:
    """Raise :class:`AuthError` unless ``event`` is allowed against the state ``auth_events``.

    ``auth_events`` maps (type, state_key) to the accepted state event in force; only the
    keys from :func:`auth_types_for_event` are read (plus the create event in v12). This is
    the check iterative auth checks run during state resolution, and the check against the
    state before an event and the current state on receipt.
    """
    rv, state = room_version, auth_events
    event_type = _str_field(event, "type")
    sender = _str_field(event, "sender")
    state_key = _state_key(event)

    if event_type == CREATE:
        _check_create(rv, event)
        return

    create_event = state.get(CREATE_KEY)
    if rv.room_id_from_create_event:
        create_id = create_event.get("event_id") if create_event is not None else None
        if not isinstance(create_id, str) or event.get("room_id") != "!" + create_id[1:]:
            raise AuthError("2: room_id is not the id of the room's create event")
    elif create_event is None:
        raise AuthError("2.4: no m.room.create event")
    assert create_event is not None

    # Rule 3: m.federate false keeps the room on the creating server. Only a literal false
    # counts, as the spec says ("set to false").
    if _content(create_event).get("m.federate", True) is False:
        create_sender = create_event.get("sender")
        if not isinstance(create_sender, str) or _domain(sender) != _domain(create_sender):
            raise _reject(rv, "3", "the room is not federated")

    levels = power_levels_from_state(rv, create_event, state.get(POWER_LEVELS_KEY))

    if event_type == MEMBER:
        _check_member(rv, event, state, levels, create_event)
        return

    if _membership(state, sender) != "join":
        raise _reject(rv, "5", "the sender is not joined")

    sender_level = levels.user_level(sender)
    if event_type == THIRD_PARTY_INVITE:
        if sender_level >= levels.invite:
            return
        raise _reject(rv, "6.1", "the sender's power level is below the invite level")

    required = levels.required_level(event_type, is_state=state_key is not None)
    if required > sender_level:
        raise _reject(rv, "7", f"{event_type} needs power level {required}")

    if state_key is not None and state_key.startswith("@") and state_key != sender:
        raise _reject(rv, "8", "state_key is another user's ID")

    if event_type == POWER_LEVELS:
        _check_power_levels(rv, event, state, sender_level, create_event)


def check_auth_against_auth_events(
    room_version: RoomVersion,
    event: Mapping[str, Any],
    auth_events: Sequence[Mapping[str, Any]],
    *,
    create_event: Mapping[str, Any] | None = None,
    rejected_event_ids: Collection[str] = frozenset(),
) -> None:
    """Receipt check 4: the event against its own ``auth_events`` (server-server API).

    In v12 pass the room's ``create_event`` (it is not among the auth events).
    """
    check_auth_events(room_version, event, auth_events, rejected_event_ids=rejected_event_ids)
    state: dict[StateKey, Mapping[str, Any]] = {}
    for auth_event in auth_events:
        state[(auth_event["type"], auth_event["state_key"])] = auth_event
    if room_version.room_id_from_create_event and create_event is not None:
        state[CREATE_KEY] = create_event
    check_auth(room_version, event, state)
