"""Property: on arbitrary JSON in every field the rules read, the rules only ever say no.

Any other exception would make a server crash or disagree with its peers on garbage, so
check_auth may raise AuthError and nothing else; the selection helpers never raise.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeserver.core.auth_rules import (
    AuthError,
    auth_types_for_event,
    check_auth,
    check_auth_events,
    required_signers,
)
from homeserver.core.room_versions import V10, V11, V12

USERS = ["@alice:a.example", "@bob:b.example", "@carol:c.example", "alice", ""]
TYPES = [
    "m.room.create",
    "m.room.member",
    "m.room.power_levels",
    "m.room.join_rules",
    "m.room.third_party_invite",
    "m.room.message",
    "m.room.redaction",
]

MISSING = object()

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(
        [*USERS, "join", "invite", "leave", "ban", "knock", "public", "restricted", "10"]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(st.text(max_size=5), st.sampled_from(USERS)), children, max_size=3
        ),
    ),
    max_leaves=8,
)


def choose(*options: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Pick a branch uniformly (``one_of`` leans hard towards its simplest branch)."""
    return st.sampled_from(options).flatmap(lambda strategy: strategy)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value (so deep rules are reached), sometimes arbitrary JSON."""
    return choose(value, value, value, json_values)


levels = st.integers(min_value=-100, max_value=200)
level_map = st.dictionaries(
    st.sampled_from(USERS + TYPES + ["room"]), st.one_of(levels, json_values), max_size=3
)
signed = st.fixed_dictionaries(
    {"mxid": maybe(st.sampled_from(USERS[:2])), "token": maybe(st.sampled_from(["tok", "other"]))},
    optional={"signatures": json_values},
)
third_party_invite = st.fixed_dictionaries({"signed": maybe(signed)})
LEVEL_KEYS = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")
MEMBERSHIP = {
    "membership": st.sampled_from(["join", "invite", "leave", "ban", "knock", "other"]),
}
CONTENT_KEYS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "m.room.member": (
        MEMBERSHIP,
        {
            "join_authorised_via_users_server": st.sampled_from(USERS),
            "third_party_invite": third_party_invite,
            "displayname": st.text(max_size=3),
        },
    ),
    "m.room.join_rules": (
        {
            "join_rule": st.sampled_from(
                ["public", "invite", "knock", "restricted", "knock_restricted"]
            )
        },
        {"allow": st.just([])},
    ),
    "m.room.create": (
        {},
        {
            "creator": st.sampled_from(USERS),
            "room_version": st.sampled_from(["10", "11", "12", "1"]),
            "additional_creators": st.lists(st.sampled_from(USERS), max_size=2),
            "m.federate": st.booleans(),
        },
    ),
    "m.room.power_levels": (
        {},
        {
            **dict.fromkeys(LEVEL_KEYS, levels),
            **dict.fromkeys(("users", "events", "notifications"), level_map),
        },
    ),
    "m.room.third_party_invite": (
        {},
        {
            "public_key": st.text(max_size=44),
            "public_keys": st.lists(
                st.fixed_dictionaries({"public_key": maybe(st.text(max_size=44))}), max_size=2
            ),
        },
    ),
}


def contents(event_type: Any) -> st.SearchStrategy[Any]:
    default: tuple[dict[str, Any], dict[str, Any]] = ({}, {"body": st.text(max_size=3)})
    required, optional = (
        CONTENT_KEYS.get(event_type, default) if isinstance(event_type, str) else default
    )
    fixed = st.fixed_dictionaries(
        {k: maybe(v) for k, v in required.items()},
        optional={k: maybe(v) for k, v in optional.items()},
    )
    if event_type == "m.room.member":
        # Third-party invites sit deepest in the rules: give them their own branch.
        invite = st.fixed_dictionaries(
            {"membership": st.just("invite"), "third_party_invite": maybe(third_party_invite)}
        )
        return choose(fixed, fixed, invite, json_values)
    return choose(fixed, fixed, fixed, json_values)


@st.composite
def events(draw: st.DrawFn, event_type: Any = None) -> dict[str, Any]:
    if event_type is None:
        # Membership has the deepest rules: draw it more often.
        event_type = draw(st.sampled_from([*TYPES, "m.room.member", "m.room.member"]))
    member = event_type == "m.room.member"
    event: dict[str, Any] = {"event_id": draw(st.sampled_from(["$create", "$a", "$b"]))}
    fields = {
        "type": st.just(event_type),
        "sender": st.sampled_from(USERS),
        "state_key": st.sampled_from(USERS[:2] if member else [*USERS[:2], "", "tok"]),
        "room_id": st.sampled_from(["!room:a.example", "!create", "!x"]),
        "prev_events": st.lists(st.sampled_from(["$create", "$a"]), max_size=2),
        "auth_events": st.lists(st.sampled_from(["$create", "$a"]), max_size=2),
    }
    # Half the events keep a well-formed envelope so that content reaches the deep rules.
    corrupt = draw(st.booleans())
    for name, strategy in fields.items():
        if corrupt:
            strategy = choose(strategy, strategy, json_values, st.just(MISSING))
        value = draw(strategy)
        if value is not MISSING:
            event[name] = value
    event["content"] = draw(contents(event_type))
    return event


@st.composite
def states(draw: st.DrawFn) -> dict[tuple[str, str], dict[str, Any]]:
    state: dict[tuple[str, str], dict[str, Any]] = {}
    if draw(st.booleans()) or draw(st.booleans()):
        state[("m.room.create", "")] = {**draw(events("m.room.create")), "event_id": "$create"}
    for key in [
        ("m.room.power_levels", ""),
        ("m.room.join_rules", ""),
        ("m.room.third_party_invite", "tok"),
    ]:
        if draw(st.booleans()):
            state[key] = draw(events(key[0]))
    for user in draw(st.lists(st.sampled_from(USERS), max_size=3, unique=True)):
        state[("m.room.member", user)] = draw(events("m.room.member"))
    return state


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(version=st.sampled_from([V10, V11, V12]), event=events(), state=states())
def test_check_auth_raises_only_auth_error(version: Any, event: dict[str, Any], state: Any) -> None:
    try:
        check_auth(version, event, state)
    except AuthError as error:
        assert error.rule  # every rejection names a rule
    auth_types_for_event(version, event)
    required_signers(version, event)
    with contextlib.suppress(AuthError):
        check_auth_events(version, event, list(state.values()), rejected_event_ids={"$a"})
