"""Arbitrary /createRoom bodies never crash the parser, the planner or the auth dry run.

Every body either becomes a plan that passes its checks, or is refused with a 4xx
MatrixError: the HTTP layer would otherwise answer 500.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from client_api.rooms import parse_create_room
from homeserver.errors import MatrixError
from homeserver.rooms.plan import check_plan, plan_room

SERVER = "test.example"
FAKE_HS: Any = SimpleNamespace(
    server_name=SERVER, config=SimpleNamespace(default_room_version="10")
)

json_scalars = st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
user_ids = st.sampled_from(["@bob:test.example", "@alice:test.example", "bob", "@x:other.example"])
state_entry = st.fixed_dictionaries(
    {"type": st.sampled_from(["m.room.name", "m.room.join_rules", "x", "m.room.power_levels"])},
    optional={"state_key": json_scalars, "content": json_values},
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "visibility": st.sampled_from(["public", "private", "x"]) | json_scalars,
        "preset": st.sampled_from(["private_chat", "public_chat", "trusted_private_chat"])
        | json_scalars,
        "room_version": st.sampled_from(["10", "11", "12", "9"]) | json_scalars,
        "name": json_scalars,
        "topic": json_scalars,
        "invite": st.lists(user_ids, max_size=3) | json_values,
        "is_direct": json_scalars,
        "initial_state": st.lists(state_entry, max_size=3) | json_values,
        "power_level_content_override": st.dictionaries(
            st.sampled_from(["users", "ban", "events", "users_default", "state_default"]),
            json_values,
            max_size=3,
        )
        | json_values,
        "creation_content": json_values,
        "room_alias_name": json_scalars,
    },
)


@settings(max_examples=400, deadline=None)
@given(body=bodies)
def test_any_body_is_planned_or_refused_with_4xx(body: dict[str, Any]) -> None:
    try:
        request = parse_create_room(FAKE_HS, "@alice:test.example", body)
        plan = plan_room(request)
        check_plan(request, plan, SERVER)
    except MatrixError as exc:
        assert 400 <= exc.status < 500, exc
