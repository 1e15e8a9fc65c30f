"""Relations: the rules for child events, and the bundled aggregations served with parents.

Client-Server API v1.12+: "Forming relationships between events", "Event
replacements", "Event annotations and reactions", "Threading", "Reference
relations", "Aggregations of child events".

The pure part (:func:`replacement_problem`, :func:`latest_valid_edit`,
:func:`thread_root_problem`) takes plain event dicts and returns data, so the
same rules judge a local send (refused with 400) and a stored child of any
origin (never bundled when invalid). :func:`build_bundles` turns the rows of
``relation_queries.read_bundle_rows`` into ``unsigned["m.relations"]`` for a
page of events; :class:`ClientEvents` calls it once per page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from homeserver.errors import MatrixError, bad_json
from homeserver.storage.events import StoredEvent
from homeserver.storage.relation_queries import BundleRows, EditCandidate
from homeserver.storage.relations import (
    ANNOTATION,
    REFERENCE,
    REPLACE,
    THREAD,
    relation_of,
)

MAX_ANNOTATION_KEY_BYTES = 1024


def duplicate_annotation() -> MatrixError:
    # Spec "Avoiding duplicate annotations".
    return MatrixError(
        400, "M_DUPLICATE_ANNOTATION", "You already sent this annotation for this event"
    )


def invalid_relation(error: str) -> MatrixError:
    """A relation that breaks its rel_type's rules: the body is JSON but a value is wrong."""
    return bad_json(error)


def _rel_type_of(event: Mapping[str, Any]) -> str | None:
    relation = relation_of(event.get("content"))
    return relation[0] if relation is not None else None


def replacement_problem(original: Mapping[str, Any], replacement: Mapping[str, Any]) -> str | None:
    """Why ``replacement`` is not a valid edit of ``original`` (spec "Validity of replacement
    events"), or None when it is. Both are PDU-shaped dicts (``type``, ``sender``,
    ``room_id``, ``content``, ``state_key`` if state)."""
    if original.get("room_id") != replacement.get("room_id"):
        return "An edit must be in the room of the event it replaces"
    if original.get("sender") != replacement.get("sender"):
        return "Only the sender of an event may edit it"
    if original.get("type") != replacement.get("type"):
        return "An edit must have the type of the event it replaces"
    if "state_key" in original or "state_key" in replacement:
        return "State events cannot be edited"
    if _rel_type_of(original) == REPLACE:
        return "An edit cannot be edited; edit the original event"
    content = replacement.get("content")
    # An encrypted edit carries m.new_content inside its ciphertext, out of our sight.
    if replacement.get("type") != "m.room.encrypted" and not (
        isinstance(content, dict) and isinstance(content.get("m.new_content"), dict)
    ):
        return "An edit needs an 'm.new_content' object"
    return None


def latest_valid_edit(
    original: Mapping[str, Any],
    candidates: Iterable[Mapping[str, Any]],
) -> Mapping[str, Any] | None:
    """The most recent valid replacement: greatest ``origin_server_ts``, ties to the greatest
    ``event_id`` (spec "Server-side aggregation of m.replace relationships")."""
    valid = [c for c in candidates if replacement_problem(original, c) is None]
    if not valid:
        return None
    return max(valid, key=lambda c: (int(c.get("origin_server_ts", 0)), str(c.get("event_id"))))


def thread_root_problem(root: Mapping[str, Any]) -> str | None:
    """A thread may not start off an event that itself has a relation (spec "Validation of
    m.thread relationships")."""
    if _rel_type_of(root) is not None:
        return "Cannot start a thread from an event with a relation"
    return None


def annotation_lock_key(
    sender: str, event_type: str, content: Mapping[str, Any]
) -> tuple[str, ...] | None:
    """What two sends must not check at the same time: the same annotation by the same
    user. Held around check and persist, the second of two concurrent identical
    reactions sees the first and is refused (M_DUPLICATE_ANNOTATION)."""
    relation = relation_of(content)
    if relation is None or relation[0] != ANNOTATION or relation[2] is None:
        return None
    return (ANNOTATION, sender, relation[1], event_type, relation[2])


def _as_dict(event: StoredEvent) -> dict[str, Any]:
    return {**event.pdu, "event_id": event.event_id}


async def check_new_relation(
    content: Mapping[str, Any],
    *,
    sender: str,
    room_id: str,
    event_type: str,
    get_event: Callable[[str], Awaitable[StoredEvent | None]],
    has_annotation: Callable[[str, str, str, str], Awaitable[bool]],
) -> None:
    """Refuse a local event whose relation breaks its rel_type's rules (400)."""
    relates_to = content.get("m.relates_to")
    if relates_to is None:
        return
    if not isinstance(relates_to, dict):
        raise invalid_relation("'m.relates_to' must be an object")
    rel_type = relates_to.get("rel_type")
    if rel_type not in (ANNOTATION, REPLACE, THREAD, REFERENCE):
        return  # rich replies and relation types we do not know: stored as sent
    parent_id = relates_to.get("event_id")
    if not isinstance(parent_id, str) or not parent_id.startswith("$") or len(parent_id) > 255:
        raise invalid_relation("'m.relates_to.event_id' must be an event ID")
    parent = await get_event(parent_id)
    if (
        parent is None
        or parent.room_id != room_id
        or parent.outlier
        or parent.rejected_reason is not None
    ):
        raise invalid_relation("'m.relates_to.event_id' names no event in this room")
    if rel_type == ANNOTATION:
        key = relates_to.get("key")
        if not isinstance(key, str) or not key:
            raise invalid_relation("An annotation needs a non-empty string 'key'")
        if len(key.encode()) > MAX_ANNOTATION_KEY_BYTES:
            raise invalid_relation("The annotation 'key' is too long")
        if await has_annotation(parent_id, sender, event_type, key):
            raise duplicate_annotation()
    elif rel_type == REPLACE:
        replacement = {"type": event_type, "sender": sender, "room_id": room_id, "content": content}
        problem = replacement_problem(_as_dict(parent), replacement)
        if problem is not None:
            raise invalid_relation(problem)
    elif rel_type == THREAD:
        problem = thread_root_problem(_as_dict(parent))
        if problem is not None:
            # The spec names no code for this case: 400 M_UNKNOWN.
            raise MatrixError(400, "M_UNKNOWN", problem)


Serialize = Callable[[Sequence[StoredEvent], bool], Awaitable[list[dict[str, Any]]]]


async def build_bundles(
    parents: Sequence[StoredEvent],
    rows: BundleRows,
    *,
    user_id: str | None,
    redacted: set[str],
    get_events: Callable[[Iterable[str]], Awaitable[dict[str, StoredEvent]]],
    serialize: Serialize,
) -> dict[str, dict[str, Any]]:
    """``unsigned["m.relations"]`` for each of ``parents`` that has any.

    ``serialize(events, with_bundles)`` formats child events for this client:
    a thread's ``latest_event`` with its own bundle (its edits), an edit without.
    Annotations are not bundled (spec "Server-side aggregation of m.annotation").
    """
    by_id = {p.event_id: p for p in parents}
    wanted: set[str] = {t.latest_event_id for t in rows.threads.values()}
    edit_candidates: dict[str, list[EditCandidate]] = {}
    for parent_id, candidates in rows.edits.items():
        parent = by_id.get(parent_id)
        # A redacted original has no bundled edit (spec "Redactions of edited events").
        if parent is None or parent_id in redacted:
            continue
        edit_candidates[parent_id] = candidates
        wanted.update(c.event_id for c in edit_candidates[parent_id])
    found = await get_events(wanted) if wanted else {}

    edits: dict[str, StoredEvent] = {}
    for parent_id, candidates in edit_candidates.items():
        latest = latest_valid_edit(
            _as_dict(by_id[parent_id]),
            (_as_dict(found[c.event_id]) for c in candidates if c.event_id in found),
        )
        if latest is not None:
            edits[parent_id] = found[str(latest["event_id"])]
    edit_json = (
        dict(zip(edits, await serialize(list(edits.values()), False), strict=True)) if edits else {}
    )
    latest_events = {
        root: found[t.latest_event_id]
        for root, t in rows.threads.items()
        if t.latest_event_id in found and root in by_id
    }
    latest_json = (
        dict(zip(latest_events, await serialize(list(latest_events.values()), True), strict=True))
        if latest_events
        else {}
    )

    bundles: dict[str, dict[str, Any]] = {}
    for parent_id in by_id:
        bundle: dict[str, Any] = {}
        if parent_id in edit_json:
            bundle[REPLACE] = edit_json[parent_id]
        thread = rows.threads.get(parent_id)
        if thread is not None and parent_id in latest_json:
            bundle[THREAD] = {
                "latest_event": latest_json[parent_id],
                "count": thread.count,
                "current_user_participated": thread.participated
                or by_id[parent_id].sender == user_id,
            }
        references = rows.references.get(parent_id)
        if references:
            bundle[REFERENCE] = {"chunk": [{"event_id": e} for e in references]}
        if bundle:
            bundles[parent_id] = bundle
    return bundles
