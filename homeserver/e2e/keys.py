"""Device keys, one-time and fallback keys, cross-signing keys and signatures.

Spec: client-server-api "End-to-end encryption" (``/keys/upload``, ``/keys/query``,
``/keys/claim``, ``/keys/changes``, cross-signing). Every change to what
``/keys/query`` answers for a user (device keys, cross-signing keys, signatures,
a deleted device) takes a position on the ``device_lists`` stream and wakes
the user and everyone sharing a room with them, whose next ``/sync`` lists the
user in ``device_lists.changed``.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.engine import Connection

from homeserver.core.signing import SignatureError
from homeserver.e2e import validation as val
from homeserver.errors import MatrixError, bad_json, invalid_param
from homeserver.notifier import Notifier
from homeserver.storage import devices as devices_db
from homeserver.storage import e2e_keys as db
from homeserver.storage.database import Database

# One-time keys a device may hold on the server; nio/vodozemac keep about 50.
MAX_STORED_ONE_TIME_KEYS = 1000
# The algorithm clients count; answered as 0 when absent (nio and Synapse expect it).
SIGNED_CURVE25519 = "signed_curve25519"
# Devices whose key counts for /sync are kept in memory.
MAX_CACHED_COUNTS = 20_000
# Recent device-list changes (position, user) remembered to spare /sync its reads.
MAX_LOGGED_CHANGES = 10_000


def _server_of(user_id: str) -> str:
    return user_id.partition(":")[2]


class E2EKeyService:
    def __init__(self, database: Database, notifier: Notifier, server_name: str) -> None:
        self.database = database
        self.notifier = notifier
        self.server_name = server_name
        # Device deletions recorded by worker threads, announced on the trio thread.
        self._deleted: deque[tuple[str, int, list[str], list[str]]] = deque()
        # (user, device) -> (one-time key counts, unused fallback types) for /sync.
        # Exact in one process: the only writers of those keys are upload, claim and
        # device deletion below, and each drops the entries it changed once its
        # transaction committed (a read overtaken by one is not kept: generation stamp).
        self._counts: OrderedDict[tuple[str, str], tuple[dict[str, int], list[str]]] = OrderedDict()
        self._counts_generation = 0
        # The device_lists stream since start: every position above ``_log_floor``
        # (None: not loaded yet) is in ``_log``, appended in the writing transaction
        # before it commits, in position order (positions are allocated under the
        # counter row's lock). Only this process writes the stream.
        self._log_lock = threading.Lock()
        self._log: deque[tuple[int, str]] = deque()
        self._log_floor: int | None = None

    async def load_stream_position(self) -> None:
        for stream in ("device_lists", "to_device"):
            position = await self.database.read(functools.partial(db.read_position, stream=stream))
            self.notifier.set_position(stream, position)
            if stream == "device_lists":
                with self._log_lock:
                    self._log_floor = position if self._log_floor is None else self._log_floor

    def _record_change(self, conn: Connection, user_id: str) -> int:
        """A device-list change of ``user_id``, in the writing transaction (worker thread)."""
        position = db.record_device_list_change(conn, user_id)
        with self._log_lock:
            self._log.append((position, user_id))
            while len(self._log) > MAX_LOGGED_CHANGES:
                evicted, _ = self._log.popleft()
                if self._log_floor is not None:
                    self._log_floor = max(self._log_floor, evicted)
        return position

    def _changed_users(self, from_pos: int, to_pos: int) -> set[str] | None:
        """Users with a device-list change in ``(from_pos, to_pos]``; None if unknown."""
        with self._log_lock:
            if self._log_floor is None or from_pos < self._log_floor:
                return None
            users: set[str] = set()
            # Newest first: a sync's range is usually at the end of the log.
            for position, user in reversed(self._log):
                if position <= from_pos:
                    break
                if position <= to_pos:
                    users.add(user)
            return users

    def _notify_change(self, user_id: str, position: int, rooms: list[str]) -> None:
        self.notifier.notify("device_lists", position, users=[user_id], rooms=rooms)

    async def _write_with_change(self, user_id: str, fn: Callable[[Connection], bool]) -> None:
        """Run ``fn``; if it says the user's keys changed, record and announce the change."""

        def write(conn: Connection) -> tuple[int, list[str]] | None:
            if not fn(conn):
                return None
            return self._record_change(conn, user_id), db.joined_rooms(conn, user_id)

        changed = await self.database.run(write)
        if changed is not None:
            self._notify_change(user_id, *changed)

    # -- upload ------------------------------------------------------------------------

    async def upload(
        self,
        user_id: str,
        device_id: str,
        device_keys: dict[str, Any] | None,
        one_time_keys: list[tuple[str, str, Any]],
        fallback_keys: list[tuple[str, str, Any]],
    ) -> dict[str, int]:
        counts: dict[str, int] = {}

        def write(conn: Connection) -> bool:
            changed = False
            if device_keys is not None:
                existing = db.get_device_keys(conn, user_id, device_id)
                if existing is None:
                    changed = True
                elif val.without_signatures(existing) != val.without_signatures(device_keys):
                    raise invalid_param(
                        "This device already has different device keys; log in as a new device"
                    )
                else:
                    changed = existing != device_keys
                if changed:
                    db.put_device_keys(conn, user_id, device_id, device_keys)
            if one_time_keys:
                stored = db.get_one_time_keys(
                    conn, user_id, device_id, [(alg, kid) for alg, kid, _ in one_time_keys]
                )
                new = []
                for algorithm, key_id, key in one_time_keys:
                    old = stored.get((algorithm, key_id), None)
                    if (algorithm, key_id) not in stored:
                        new.append((algorithm, key_id, key))
                    elif not val.one_time_keys_match(old, key):
                        raise invalid_param(f"One time key {key_id} already exists and differs")
                held = sum(db.count_one_time_keys(conn, user_id, device_id).values())
                if held + len(new) > MAX_STORED_ONE_TIME_KEYS:
                    raise invalid_param(
                        f"A device may hold at most {MAX_STORED_ONE_TIME_KEYS} one-time keys"
                    )
                db.add_one_time_keys(conn, user_id, device_id, new)
            seen: set[str] = set()
            for algorithm, key_id, key in fallback_keys:
                if algorithm in seen:
                    raise bad_json(f"'fallback_keys' has more than one {algorithm} key")
                seen.add(algorithm)
                db.put_fallback_key(conn, user_id, device_id, algorithm, key_id, key)
            counts.update(db.count_one_time_keys(conn, user_id, device_id))
            return changed

        try:
            await self._write_with_change(user_id, write)
        finally:
            self._forget_counts([(user_id, device_id)])
        counts.setdefault(SIGNED_CURVE25519, 0)
        return counts

    # -- query -------------------------------------------------------------------------

    async def query(self, requester: str, wanted: dict[str, list[str]]) -> dict[str, Any]:
        def read(conn: Connection) -> dict[str, Any]:
            result: dict[str, Any] = {
                "device_keys": {},
                "master_keys": {},
                "self_signing_keys": {},
                "failures": {},
            }
            own_usk: dict[str, Any] = {}
            for user_id, device_ids in wanted.items():
                if _server_of(user_id) != self.server_name:
                    result["failures"][_server_of(user_id)] = {
                        "status": 503,
                        "message": "Querying keys of remote users is not supported yet",
                    }
                    continue
                signatures = db.read_signatures(conn, user_id)

                def visible(
                    target: str,
                    key: dict[str, Any],
                    user_id: str = user_id,
                    signatures: dict[str, list[tuple[str, str, str]]] = signatures,
                ) -> Any:
                    return _merge(key, signatures.get(target, []), user_id, requester)

                keys = db.read_device_keys(conn, user_id, device_ids or None)
                names = {
                    d.device_id: d.display_name for d in devices_db.list_devices(conn, user_id)
                }
                devices: dict[str, Any] = {}
                for device_id, key in keys.items():
                    merged = visible(device_id, key)
                    if names.get(device_id) is not None:
                        merged["unsigned"] = {"device_display_name": names[device_id]}
                    devices[device_id] = merged
                result["device_keys"][user_id] = devices
                cross = db.get_cross_signing_keys(conn, user_id)
                for key_type, field in (
                    ("master", "master_keys"),
                    ("self_signing", "self_signing_keys"),
                ):
                    if key_type in cross:
                        public = _public_key(cross[key_type])
                        result[field][user_id] = visible(public, cross[key_type])
                if user_id == requester and "user_signing" in cross:
                    own_usk[user_id] = visible(
                        _public_key(cross["user_signing"]), cross["user_signing"]
                    )
            result["user_signing_keys"] = own_usk
            return result

        return await self.database.read(read)

    # -- claim -------------------------------------------------------------------------

    async def claim(self, wanted: dict[str, dict[str, str]]) -> dict[str, Any]:
        failures: dict[str, Any] = {}

        def write(conn: Connection) -> dict[str, Any]:
            claimed: dict[str, Any] = {}
            for user_id, devices in wanted.items():
                if _server_of(user_id) != self.server_name:
                    failures[_server_of(user_id)] = {
                        "status": 503,
                        "message": "Claiming keys of remote users is not supported yet",
                    }
                    continue
                for device_id, algorithm in devices.items():
                    found = db.claim_one_time_key(conn, user_id, device_id, algorithm)
                    if found is None:
                        # "If no one-time key is left, the fallback key is returned."
                        found = db.claim_fallback_key(conn, user_id, device_id, algorithm)
                    if found is not None:
                        key_id, key = found
                        claimed.setdefault(user_id, {}).setdefault(device_id, {})[key_id] = key
            return claimed

        try:
            claimed = await self.database.run(write)
        finally:
            # A claim (by anyone) changes the claimed devices' counts.
            self._forget_counts(
                (user_id, device_id) for user_id, devices in wanted.items() for device_id in devices
            )
        return {"one_time_keys": claimed, "failures": failures}

    # -- counts for /sync ---------------------------------------------------------------

    async def device_key_counts(
        self, user_id: str, device_id: str
    ) -> tuple[dict[str, int], list[str]]:
        """(one-time key counts, unused fallback key types) for /sync: from memory, or
        in one database trip. The caller may change what it gets (copies)."""
        key = (user_id, device_id)
        cached = self._counts.get(key)
        if cached is None:
            stamp = self._counts_generation

            def read(conn: Any) -> tuple[dict[str, int], list[str]]:
                return (
                    db.count_one_time_keys(conn, user_id, device_id),
                    db.unused_fallback_algorithms(conn, user_id, device_id),
                )

            cached = await self.database.read(read)
            if stamp == self._counts_generation:
                self._counts[key] = cached
                while len(self._counts) > MAX_CACHED_COUNTS:
                    self._counts.popitem(last=False)
        else:
            self._counts.move_to_end(key)
        return dict(cached[0]), list(cached[1])

    def _forget_counts(self, keys: Iterable[tuple[str, str]]) -> None:
        """After (or instead of) a change to these devices' one-time or fallback keys."""
        self._counts_generation += 1
        for key in keys:
            self._counts.pop(key, None)

    # -- device lists ----------------------------------------------------------------------

    async def device_list_changes(
        self,
        user_id: str,
        from_pos: int,
        to_pos: int,
        *,
        events_from: int | None = None,
        events_to: int | None = None,
    ) -> tuple[list[str], list[str]]:
        """Users whose device lists ``user_id`` should refetch, and those no longer shared.

        ``changed``: users sharing a room with ``user_id`` (or the user) whose keys
        changed in ``(from_pos, to_pos]`` of the ``device_lists`` stream, plus, when an
        events range is given, users who newly share a room through a join in it.
        ``left``: users who no longer share any room after a leave in that range.
        """

        events_moved = events_from is not None and events_to is not None and events_to > events_from
        if to_pos <= from_pos and not events_moved:
            return [], []
        if not events_moved:
            # Only the device_lists stream moved: if nobody but the user changed keys
            # in the range, the answer needs no read (the user shares with itself).
            users = self._changed_users(from_pos, to_pos)
            if users is not None and users <= {user_id}:
                return sorted(users), []

        def read(conn: Connection) -> tuple[list[str], list[str]]:
            sharing = db.users_sharing_rooms(conn, user_id)
            changed: set[str] = set()
            if to_pos > from_pos:
                changed = db.users_changed_between(conn, from_pos, to_pos) & sharing
            left: set[str] = set()
            if events_from is not None and events_to is not None and events_to > events_from:
                for room_id, who, membership in db.member_changes_between(
                    conn, user_id, events_from, events_to
                ):
                    if who == user_id:
                        members = db.room_members(conn, room_id)
                        if membership == "join":
                            changed |= members & sharing
                        else:
                            left |= members - sharing
                    elif membership == "join":
                        changed |= {who} & sharing
                    elif who not in sharing:
                        left.add(who)
            left -= sharing
            changed -= left
            return sorted(changed), sorted(left)

        return await self.database.read(read)

    # -- cross-signing -----------------------------------------------------------------

    async def cross_signing_keys(self, user_id: str) -> dict[str, dict[str, Any]]:
        return await self.database.read(lambda conn: db.get_cross_signing_keys(conn, user_id))

    async def upload_cross_signing(self, user_id: str, uploaded: dict[str, dict[str, Any]]) -> None:
        """Store validated keys by type (``master``, ``self_signing``, ``user_signing``).

        Self- and user-signing keys must be signed by the master key (the one in
        this request, or else the stored one).
        """

        def write(conn: Connection) -> bool:
            stored = db.get_cross_signing_keys(conn, user_id)
            master = uploaded.get("master", stored.get("master"))
            if master is None:
                raise bad_json("Upload a master key before the other cross-signing keys")
            master_public = _public_key(master)
            for key_type in ("self_signing", "user_signing"):
                key = uploaded.get(key_type)
                if key is None:
                    continue
                try:
                    val.check_signature(key, user_id, f"ed25519:{master_public}", master_public)
                except SignatureError as e:
                    raise MatrixError(
                        400,
                        "M_INVALID_SIGNATURE",
                        f"{key_type}_key is not signed by the master key: {e}",
                    ) from None
            changed = False
            if "master" in stored and _public_key(stored["master"]) != master_public:
                # A new master key invalidates keys signed by the old one.
                for key_type in ("self_signing", "user_signing"):
                    if key_type not in uploaded and key_type in stored:
                        db.delete_cross_signing_key(conn, user_id, key_type)
                        changed = True
            for key_type, key in uploaded.items():
                if stored.get(key_type) != key:
                    db.put_cross_signing_key(conn, user_id, key_type, _public_key(key), key)
                    changed = True
            return changed

        await self._write_with_change(user_id, write)

    async def upload_signatures(
        self, user_id: str, body: dict[str, dict[str, dict[str, Any]]]
    ) -> dict[str, Any]:
        failures: dict[str, dict[str, Any]] = {}

        def fail(target_user: str, key_id: str, errcode: str, error: str) -> None:
            failures.setdefault(target_user, {})[key_id] = {"errcode": errcode, "error": error}

        def write(conn: Connection) -> bool:
            mine = db.get_cross_signing_keys(conn, user_id)
            changed = False
            for target_user, objects in body.items():
                theirs = (
                    mine if target_user == user_id else db.get_cross_signing_keys(conn, target_user)
                )
                for key_id, signed in objects.items():
                    try:
                        changed |= _store_signature(
                            conn, user_id, mine, target_user, theirs, key_id, signed
                        )
                    except _SignatureFailure as e:
                        fail(target_user, key_id, e.errcode, str(e))
            return changed

        await self._write_with_change(user_id, write)
        return {"failures": failures}

    # -- device deletion -------------------------------------------------------------------

    def on_devices_deleted_tx(self, conn: Connection, user_id: str, device_ids: list[str]) -> None:
        """In the deleting transaction: drop the devices' keys, record a device-list change.

        The change is announced by :meth:`flush_device_deletions`, which the auth
        service calls once the transaction committed. (Should the transaction roll
        back after this hook, the queued position is announced anyway; the counter
        then reuses it for the next change, which is at worst announced early.)
        """
        if not device_ids:
            return
        db.delete_device_keys(conn, user_id, device_ids)
        position = self._record_change(conn, user_id)
        self._deleted.append((user_id, position, db.joined_rooms(conn, user_id), device_ids))

    def flush_device_deletions(self) -> None:
        while self._deleted:
            user_id, position, rooms, device_ids = self._deleted.popleft()
            self._forget_counts((user_id, device_id) for device_id in device_ids)
            self._notify_change(user_id, position, rooms)


class _SignatureFailure(Exception):
    def __init__(self, errcode: str, error: str) -> None:
        super().__init__(error)
        self.errcode = errcode


def _public_key(key: dict[str, Any]) -> str:
    ((_, public),) = key["keys"].items()
    return str(public)


def _merge(
    key: dict[str, Any], extra: list[tuple[str, str, str]], target_user: str, requester: str
) -> dict[str, Any]:
    """``key`` with the separately uploaded signatures the requester may see.

    Signatures by the key's owner are public; a signature with someone's
    user-signing key is shown only to that someone (as Synapse does).
    """
    merged = dict(key)
    signatures = {u: dict(s) for u, s in key.get("signatures", {}).items() if isinstance(s, dict)}
    for signer_user, signer_key, signature in extra:
        if signer_user in (target_user, requester):
            signatures.setdefault(signer_user, {})[signer_key] = signature
    if signatures or "signatures" in key:
        merged["signatures"] = signatures
    return merged


def _signature_by(signed: dict[str, Any], user_id: str, key_id: str) -> str:
    sigs = signed.get("signatures")
    value = sigs.get(user_id, {}).get(key_id) if isinstance(sigs, dict) else None
    if (
        not isinstance(sigs, dict)
        or not isinstance(sigs.get(user_id), dict)
        or not isinstance(value, str)
    ):
        raise _SignatureFailure("M_INVALID_SIGNATURE", f"No signature by {user_id} with {key_id}")
    return value


def _store_signature(
    conn: Connection,
    user_id: str,
    mine: dict[str, dict[str, Any]],
    target_user: str,
    theirs: dict[str, dict[str, Any]],
    key_id: str,
    signed: Any,
) -> bool:
    """Verify one uploaded signature and store it; True if it is new."""
    if not isinstance(signed, dict):
        raise _SignatureFailure("M_BAD_JSON", "The signed object must be an object")
    if target_user == user_id and "master" in mine and key_id == _public_key(mine["master"]):
        # Our master key, signed by one of our devices.
        stored = mine["master"]
        candidates = [k for k in _signer_ids(signed, user_id) if k != f"ed25519:{key_id}"]
        verifiers = {}
        for signer_key in candidates:
            device_id = signer_key.partition(":")[2]
            device = db.get_device_keys(conn, user_id, device_id)
            if device is not None and isinstance(device.get("keys", {}).get(signer_key), str):
                verifiers[signer_key] = device["keys"][signer_key]
        if not verifiers:
            raise _SignatureFailure("M_INVALID_SIGNATURE", "No signature by a known device")
    elif target_user == user_id:
        # One of our devices, signed by our self-signing key.
        stored_device = db.get_device_keys(conn, user_id, key_id)
        if stored_device is None:
            raise _SignatureFailure("M_NOT_FOUND", f"Unknown device {key_id}")
        stored = stored_device
        if "self_signing" not in mine:
            raise _SignatureFailure("M_INVALID_SIGNATURE", "No self-signing key uploaded")
        ssk = _public_key(mine["self_signing"])
        verifiers = {f"ed25519:{ssk}": ssk}
    else:
        # Another user's master key, signed by our user-signing key.
        if "master" not in theirs or key_id != _public_key(theirs["master"]):
            raise _SignatureFailure("M_NOT_FOUND", f"Unknown master key {key_id}")
        stored = theirs["master"]
        if "user_signing" not in mine:
            raise _SignatureFailure("M_INVALID_SIGNATURE", "No user-signing key uploaded")
        usk = _public_key(mine["user_signing"])
        verifiers = {f"ed25519:{usk}": usk}
    if val.without_signatures(stored) != val.without_signatures(signed):
        raise _SignatureFailure("M_INVALID_PARAM", "The signed object differs from the stored key")
    stored_any = False
    for signer_key, public in verifiers.items():
        try:
            signature = _signature_by(signed, user_id, signer_key)
        except _SignatureFailure:
            if len(verifiers) == 1:
                raise
            continue
        try:
            val.check_signature(signed, user_id, signer_key, public)
        except SignatureError as e:
            raise _SignatureFailure("M_INVALID_SIGNATURE", str(e)) from None
        db.put_signature(conn, target_user, key_id, user_id, signer_key, signature)
        stored_any = True
    return stored_any


def _signer_ids(signed: dict[str, Any], user_id: str) -> list[str]:
    sigs = signed.get("signatures")
    ours = sigs.get(user_id) if isinstance(sigs, dict) else None
    return (
        [k for k in ours if isinstance(k, str) and k.startswith("ed25519:")]
        if isinstance(ours, dict)
        else []
    )
