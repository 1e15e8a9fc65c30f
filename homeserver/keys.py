"""The server's ed25519 signing key, kept in the data directory across restarts.

Every event and federation request we send is signed with this key, and other
servers cache its public half, so it must survive restarts: it is generated once,
at first start, and loaded afterwards. When it is rotated, the old public key is
kept with the time it expired, because events it signed must stay verifiable
(server-server-api "Retrieving server keys": ``old_verify_keys``).

Files (Synapse-compatible, so keys can move between the two):

* ``signing.key``: one line ``ed25519 <version> <unpadded base64 seed>``, mode 0600.
* ``old_signing_keys.json``: ``{"ed25519:<version>": {"key": <base64>, "expired_ts": <ms>}}``,
  the shape of ``old_verify_keys``.

This is the one module of the event core that does file I/O. It is synchronous:
call it at startup, before the trio loop, or through ``trio.to_thread``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import nacl.signing

from homeserver.core.signing import (
    ED25519,
    decode_base64,
    decode_verify_key,
    encode_base64,
    encode_verify_key,
    make_key_id,
    sign_json,
)

SIGNING_KEY_FILE = "signing.key"
OLD_SIGNING_KEYS_FILE = "old_signing_keys.json"


class KeyFileError(Exception):
    """A key file exists but cannot be used; the message names the file and the problem."""


@attrs.frozen
class ServerSigningKey:
    """Our current signing key and the version that names it in ``ed25519:<version>``."""

    version: str
    signing_key: nacl.signing.SigningKey = attrs.field(repr=False)

    @property
    def key_id(self) -> str:
        return make_key_id(self.version)

    @property
    def verify_key(self) -> nacl.signing.VerifyKey:
        return self.signing_key.verify_key


@attrs.frozen
class OldVerifyKey:
    """A retired public key and when it stopped being used (ms since the epoch)."""

    key_id: str
    verify_key: nacl.signing.VerifyKey
    expired_ts: int


@attrs.frozen
class ServerKeys:
    """What the server knows about its own keys: the current one and the retired ones."""

    current: ServerSigningKey
    old: tuple[OldVerifyKey, ...] = ()

    def verify_key(self, key_id: str) -> nacl.signing.VerifyKey | None:
        """The public key for one of our key IDs, current or retired."""
        if key_id == self.current.key_id:
            return self.current.verify_key
        for old in self.old:
            if old.key_id == key_id:
                return old.verify_key
        return None

    def server_keys_json(self, server_name: str, valid_until_ts: int) -> dict[str, Any]:
        """The signed body of ``GET /_matrix/key/v2/server`` (pure: the caller picks
        ``valid_until_ts``, e.g. now + 1 day)."""
        body = {
            "server_name": server_name,
            "valid_until_ts": valid_until_ts,
            "verify_keys": {
                self.current.key_id: {"key": encode_verify_key(self.current.verify_key)}
            },
            "old_verify_keys": {
                old.key_id: {"key": encode_verify_key(old.verify_key), "expired_ts": old.expired_ts}
                for old in self.old
            },
        }
        return sign_json(body, server_name, self.current.signing_key, self.current.key_id)


# -- the key file format ----------------------------------------------------------------


def generate_key_version(taken: frozenset[str] = frozenset()) -> str:
    """A fresh version like Synapse's ``a_AbCd``, distinct from the ``taken`` ones."""
    while True:
        version = "a_" + "".join(secrets.choice(string.ascii_letters) for _ in range(4))
        if version not in taken:
            return version


def format_signing_key(key: ServerSigningKey) -> str:
    """One ``signing.key`` line: ``ed25519 <version> <unpadded base64 seed>``."""
    return f"{ED25519} {key.version} {encode_base64(bytes(key.signing_key))}\n"


def parse_signing_key(text: str) -> ServerSigningKey:
    """Parse ``signing.key``; the first key is the current one (Synapse allows several
    lines and signs with the first)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("no key in the file")
    parts = lines[0].split()
    if len(parts) != 3:
        raise ValueError("expected 'ed25519 <version> <base64 seed>'")
    algorithm, version, seed_base64 = parts
    if algorithm != ED25519:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    make_key_id(version)  # validates the version
    seed = decode_base64(seed_base64)
    if len(seed) != 32:
        raise ValueError(f"an ed25519 seed is 32 bytes, got {len(seed)}")
    return ServerSigningKey(version, nacl.signing.SigningKey(seed))


def parse_old_signing_keys(data: Mapping[str, Any]) -> tuple[OldVerifyKey, ...]:
    """Parse the ``old_signing_keys.json`` object (the ``old_verify_keys`` shape)."""
    old = []
    for key_id, entry in data.items():
        if not key_id.startswith(f"{ED25519}:"):
            raise ValueError(f"{key_id}: unsupported algorithm")
        if not isinstance(entry, Mapping):
            raise ValueError(f"{key_id}: expected an object with key and expired_ts")
        expired_ts = entry.get("expired_ts")
        key = entry.get("key")
        if not isinstance(expired_ts, int) or isinstance(expired_ts, bool):
            raise ValueError(f"{key_id}: expired_ts must be an integer")
        if not isinstance(key, str):
            raise ValueError(f"{key_id}: key must be a base64 string")
        old.append(OldVerifyKey(key_id, decode_verify_key(key), expired_ts))
    return tuple(old)


def format_old_signing_keys(old: tuple[OldVerifyKey, ...]) -> str:
    return (
        json.dumps(
            {
                key.key_id: {"key": encode_verify_key(key.verify_key), "expired_ts": key.expired_ts}
                for key in old
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )


# -- the data directory ---------------------------------------------------------------


def load_or_generate_server_keys(data_dir: str | os.PathLike[str]) -> ServerKeys:
    """Load our keys from ``data_dir``, generating the signing key on first start."""
    directory = Path(data_dir)
    key_path = directory / SIGNING_KEY_FILE
    if not key_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        key = ServerSigningKey(generate_key_version(), nacl.signing.SigningKey.generate())
        # Losing a race with another process starting on the same directory is fine:
        # its key is as good as ours, and we load it below.
        with contextlib.suppress(FileExistsError):
            _write_atomically(key_path, format_signing_key(key), mode=0o600, exclusive=True)
    return load_server_keys(directory)


def load_server_keys(data_dir: str | os.PathLike[str]) -> ServerKeys:
    """Load existing keys; :class:`KeyFileError` if the signing key is missing or bad."""
    directory = Path(data_dir)
    key_path = directory / SIGNING_KEY_FILE
    try:
        text = key_path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise KeyFileError(f"{key_path}: cannot read the signing key: {e}") from None
    try:
        current = parse_signing_key(text)
    except ValueError as e:
        raise KeyFileError(f"{key_path}: {e}") from None
    if key_path.stat().st_mode & 0o077:
        # A secret key readable by others: tighten it rather than keep leaking it.
        key_path.chmod(0o600)
    return ServerKeys(current, _load_old_keys(directory))


def _load_old_keys(directory: Path) -> tuple[OldVerifyKey, ...]:
    path = directory / OLD_SIGNING_KEYS_FILE
    if not path.exists():
        return ()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return parse_old_signing_keys(data)
    except (OSError, ValueError) as e:
        raise KeyFileError(f"{path}: {e}") from None


def rotate_signing_key(data_dir: str | os.PathLike[str], now_ms: int) -> ServerKeys:
    """Replace the signing key with a new one; the old public key expires at ``now_ms``.

    The old key is recorded before the new one is written, so a crash in between
    leaves the old key both current and listed as retired, never lost.
    """
    directory = Path(data_dir)
    keys = load_server_keys(directory)
    retired = OldVerifyKey(keys.current.key_id, keys.current.verify_key, now_ms)
    old = (*(k for k in keys.old if k.key_id != retired.key_id), retired)
    taken = frozenset({keys.current.version} | {k.key_id.partition(":")[2] for k in old})
    new = ServerSigningKey(generate_key_version(taken), nacl.signing.SigningKey.generate())
    _write_atomically(directory / OLD_SIGNING_KEYS_FILE, format_old_signing_keys(old), mode=0o644)
    _write_atomically(directory / SIGNING_KEY_FILE, format_signing_key(new), mode=0o600)
    return ServerKeys(new, old)


def _write_atomically(path: Path, text: str, *, mode: int, exclusive: bool = False) -> None:
    """Write a temporary file created with ``mode`` (never briefly wider), then move it
    into place, so a crash never leaves a half-written key file.

    ``exclusive``: fail with FileExistsError if ``path`` exists (hard link instead of
    rename), so two servers starting on one data directory cannot both generate a key.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it; make it exact
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
