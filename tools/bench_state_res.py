"""Benchmark: resolve two forks of N state events each (default 10,000).

Both forks start from the same room (create, Alice's join, power levels, public join
rules) and then each adds N state events: joins of the same N users (so every member key
is conflicted), a power levels change by Alice every 100 events (each citing the fork's
previous one, so the mainline and auth chains grow), and a kick every 50 events (power
events for the topological sort). Run: ``python -m tools.bench_state_res --events 10000``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.core.state_res import resolve_state

ALICE = "@alice:a.example"
Key = tuple[str, str]


def _event(
    version: RoomVersion,
    event_id: str,
    event_type: str,
    sender: str,
    content: dict[str, Any],
    state_key: str,
    auth_events: list[str],
    ts: int,
) -> dict[str, Any]:
    if version.room_id_from_create_event:
        auth_events = [a for a in auth_events if a != "$create"]
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": event_type,
        "sender": sender,
        "content": content,
        "state_key": state_key,
        "auth_events": auth_events,
        "prev_events": [],
        "origin_server_ts": ts,
    }
    if not (event_type == "m.room.create" and version.room_id_from_create_event):
        event["room_id"] = "!create" if version.room_id_from_create_event else "!bench:a.example"
    return event


def build_forks(
    version: RoomVersion, events_per_fork: int, power_levels_users: int = 0
) -> tuple[list[dict[Key, str]], dict[str, dict[str, Any]]]:
    """Two state maps and the event map holding every event of both forks."""
    event_map: dict[str, dict[str, Any]] = {}
    state: dict[Key, str] = {}  # the state map the next event lands in

    def add(*args: Any) -> str:
        event = _event(version, *args)
        event_map[event["event_id"]] = event
        state[(event["type"], event["state_key"])] = event["event_id"]
        return str(event["event_id"])

    create_content: dict[str, Any] = {"room_version": version.identifier}
    if not version.implicit_room_creator:
        create_content["creator"] = ALICE
    add("$create", "m.room.create", ALICE, create_content, "", [], 0)
    add("$join-alice", "m.room.member", ALICE, {"membership": "join"}, ALICE, ["$create"], 1)
    # Big rooms carry big ``users`` maps in every power levels event.
    admins = {f"@extra{n}:c.example": 1 for n in range(power_levels_users)}
    if not version.privileged_creators:
        admins[ALICE] = 100
    add("$pl", "m.room.power_levels", ALICE, {"users": admins}, "", ["$create", "$join-alice"], 2)
    base_auth = ["$create", "$join-alice", "$pl"]
    add("$jr", "m.room.join_rules", ALICE, {"join_rule": "public"}, "", base_auth, 3)
    base_state = dict(state)

    forks = []
    for fork in ("a", "b"):
        state = dict(base_state)
        pl = "$pl"
        members: dict[str, str] = {}
        for i in range(events_per_fork):
            ts = 10 + 2 * i + (1 if fork == "b" else 0)
            user = f"@user{i}:b.example"
            if i % 100 == 99:
                users = {**admins, f"@user{i - 1}:b.example": 50}
                pl = add(
                    f"${fork}-pl-{i}",
                    "m.room.power_levels",
                    ALICE,
                    {"users": users},
                    "",
                    ["$create", "$join-alice", pl],
                    ts,
                )
            elif i % 50 == 49 and f"@user{i - 1}:b.example" in members:
                target = f"@user{i - 1}:b.example"
                auth = ["$create", "$join-alice", pl, members[target]]
                members[target] = add(
                    f"${fork}-kick-{i}",
                    "m.room.member",
                    ALICE,
                    {"membership": "leave"},
                    target,
                    auth,
                    ts,
                )
            else:
                members[user] = add(
                    f"${fork}-join-{i}",
                    "m.room.member",
                    user,
                    {"membership": "join"},
                    user,
                    ["$create", pl, "$jr"],
                    ts,
                )
        forks.append(state)
    return forks, event_map


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="state events per fork")
    parser.add_argument("--room-version", action="append", choices=sorted(KNOWN_ROOM_VERSIONS))
    parser.add_argument(
        "--pl-users", type=int, default=0, help="extra entries in every power levels users map"
    )
    args = parser.parse_args(argv)
    for identifier in args.room_version or ["11", "12"]:
        version = KNOWN_ROOM_VERSIONS[identifier]
        state_sets, event_map = build_forks(version, args.events, args.pl_users)
        start = time.perf_counter()
        resolved = resolve_state(version, state_sets, event_map)
        elapsed = time.perf_counter() - start
        print(
            f"room v{identifier}: 2 forks x {args.events} state events, "
            f"{args.pl_users} extra power levels users, "
            f"{len(event_map)} events: resolved {len(resolved)} keys in {elapsed:.2f} s"
        )


if __name__ == "__main__":
    main()
