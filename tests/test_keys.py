"""The signing key file: generated once, reloaded identically, private, rotated safely."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import nacl.signing
import pytest
import signedjson.key
import signedjson.sign

from homeserver.core.signing import verify_signed_json
from homeserver.keys import (
    OLD_SIGNING_KEYS_FILE,
    SIGNING_KEY_FILE,
    KeyFileError,
    format_signing_key,
    load_or_generate_server_keys,
    load_server_keys,
    parse_signing_key,
    rotate_signing_key,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_once_and_reloaded_identically(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = load_or_generate_server_keys(data_dir)
    key_file = data_dir / SIGNING_KEY_FILE
    assert mode(key_file) == 0o600
    content = key_file.read_text()
    assert content == format_signing_key(first.current)

    second = load_or_generate_server_keys(data_dir)
    assert key_file.read_text() == content
    assert second.current.key_id == first.current.key_id
    assert bytes(second.current.signing_key) == bytes(first.current.signing_key)
    assert second.old == ()


def test_two_data_dirs_get_different_keys(tmp_path: Path) -> None:
    a = load_or_generate_server_keys(tmp_path / "a")
    b = load_or_generate_server_keys(tmp_path / "b")
    assert bytes(a.current.signing_key) != bytes(b.current.signing_key)


def test_file_is_in_synapse_format(tmp_path: Path) -> None:
    keys = load_or_generate_server_keys(tmp_path)
    line = (tmp_path / SIGNING_KEY_FILE).read_text()
    algorithm, version, seed = line.split()
    assert algorithm == "ed25519"
    assert version == keys.current.version
    assert "=" not in seed
    # signedjson (what Synapse uses) reads our file, and we read one it wrote.
    [theirs] = signedjson.key.read_signing_keys(line.splitlines())
    assert bytes(theirs) == bytes(keys.current.signing_key)
    assert theirs.version == keys.current.version
    key = signedjson.key.generate_signing_key("zz9")
    other = tmp_path / "other"
    other.mkdir()
    with open(other / SIGNING_KEY_FILE, "w") as f:
        signedjson.key.write_signing_keys(f, [key])
    loaded = load_server_keys(other)
    assert loaded.current.key_id == "ed25519:zz9"
    assert bytes(loaded.current.signing_key) == bytes(key)


def test_loose_permissions_are_tightened(tmp_path: Path) -> None:
    load_or_generate_server_keys(tmp_path)
    key_file = tmp_path / SIGNING_KEY_FILE
    key_file.chmod(0o644)
    load_server_keys(tmp_path)
    assert mode(key_file) == 0o600


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ed25519 a_b\n",
        "curve25519 a_b AAAA\n",
        "ed25519 a-b " + "A" * 43 + "\n",
        "ed25519 a_b Zm9v\n",
        "ed25519 a_b !!!!\n",
    ],
)
def test_bad_key_files_are_refused_with_the_path(tmp_path: Path, text: str) -> None:
    (tmp_path / SIGNING_KEY_FILE).write_text(text)
    with pytest.raises(KeyFileError, match=SIGNING_KEY_FILE):
        load_or_generate_server_keys(tmp_path)
    assert (tmp_path / SIGNING_KEY_FILE).read_text() == text  # never overwritten


def test_missing_key_file_is_an_error_for_load(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        load_server_keys(tmp_path)


def test_rotation_keeps_the_old_public_key_with_expiry(tmp_path: Path) -> None:
    first = load_or_generate_server_keys(tmp_path)
    rotated = rotate_signing_key(tmp_path, now_ms=1_700_000_000_000)
    assert rotated.current.key_id != first.current.key_id
    assert bytes(rotated.current.signing_key) != bytes(first.current.signing_key)
    [old] = rotated.old
    assert old.key_id == first.current.key_id
    assert old.verify_key == first.current.verify_key
    assert old.expired_ts == 1_700_000_000_000
    assert mode(tmp_path / SIGNING_KEY_FILE) == 0o600

    # A restart sees the same thing, and the old key still verifies what it signed.
    reloaded = load_or_generate_server_keys(tmp_path)
    assert reloaded == rotated
    stored = json.loads((tmp_path / OLD_SIGNING_KEYS_FILE).read_text())
    assert stored[first.current.key_id]["expired_ts"] == 1_700_000_000_000
    assert reloaded.verify_key(first.current.key_id) == first.current.verify_key
    assert reloaded.verify_key(rotated.current.key_id) == rotated.current.verify_key
    assert reloaded.verify_key("ed25519:nope") is None

    again = rotate_signing_key(tmp_path, now_ms=1_800_000_000_000)
    assert [k.key_id for k in again.old] == [first.current.key_id, rotated.current.key_id]
    assert [k.expired_ts for k in again.old] == [1_700_000_000_000, 1_800_000_000_000]
    assert not list(tmp_path.glob(".*.tmp"))


def test_server_keys_json_is_signed_and_complete(tmp_path: Path) -> None:
    load_or_generate_server_keys(tmp_path)
    keys = rotate_signing_key(tmp_path, now_ms=5)
    body = keys.server_keys_json("example.org", valid_until_ts=1000)
    assert body["server_name"] == "example.org"
    assert body["valid_until_ts"] == 1000
    assert set(body["verify_keys"]) == {keys.current.key_id}
    assert body["old_verify_keys"][keys.old[0].key_id]["expired_ts"] == 5
    verify_signed_json(body, "example.org", keys.current.verify_key, keys.current.key_id)
    published = signedjson.key.decode_verify_key_base64(
        "ed25519", keys.current.version, body["verify_keys"][keys.current.key_id]["key"]
    )
    signedjson.sign.verify_signed_json(body, "example.org", published)


def test_parse_signing_key_uses_the_first_line() -> None:
    first = nacl.signing.SigningKey(b"\x03" * 32)
    key = parse_signing_key("ed25519 k1 AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM\n")
    assert key.key_id == "ed25519:k1"
    assert bytes(key.signing_key) == bytes(first)
    text = format_signing_key(key) + "ed25519 k2 BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ\n"
    assert parse_signing_key(text) == key
