"""The Synapse config of make bench-compare: loopback only, open registration, limits relaxed."""

from __future__ import annotations

import pytest

from tools.bench.synapse.config import HIGH, RATE_LIMITS, render_config


def parse_blocks(text: str) -> dict[str, list[str]]:
    """Top-level key -> its indented lines (enough YAML for these assertions)."""
    blocks: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            current, _, value = line.partition(":")
            blocks[current] = [value.strip()] if value.strip() else []
        else:
            blocks[current].append(line.strip())
    return blocks


def test_binds_only_loopback_and_serves_no_federation() -> None:
    text = render_config(data_dir="/tmp/x", port=18008)
    blocks = parse_blocks(text)
    assert blocks["listeners"] == [
        "- port: 18008",
        "bind_addresses: ['127.0.0.1']",
        "type: http",
        "tls: false",
        "x_forwarded: false",
        "resources:",
        "- names: [client]",
        "compress: false",
    ]
    assert "0.0.0.0" not in text and "'::'" not in text and "federation]" not in text
    assert blocks["trusted_key_servers"] == ["[]"]
    assert blocks["federation_domain_whitelist"] == ["[]"]


def test_open_registration_and_no_phoning_home() -> None:
    blocks = parse_blocks(render_config(data_dir="/tmp/x", port=18008))
    assert blocks["enable_registration"] == ["true"]
    assert blocks["enable_registration_without_verification"] == ["true"]
    assert blocks["report_stats"] == ["false"]
    assert blocks["caches"] == ["sync_response_cache_duration: 0"]


@pytest.mark.parametrize(
    "key",
    ["rc_message", "rc_registration", "rc_login", "rc_joins", "rc_invites", "rc_joins_per_room"],
)
def test_rate_limits_are_relaxed(key: str) -> None:
    blocks = parse_blocks(render_config(data_dir="/tmp/x", port=18008))
    assert key in RATE_LIMITS
    numbers = [line.split(":")[1].strip() for line in blocks[key] if line.split(":")[1].strip()]
    assert numbers and all(int(n) == HIGH for n in numbers)
    assert any(line.startswith("per_second") for line in blocks[key])
    assert any(line.startswith("burst_count") for line in blocks[key])


def test_database_choice() -> None:
    sqlite = parse_blocks(render_config(data_dir="/d", port=1))
    assert sqlite["database"] == ["name: sqlite3", "args:", "database: /d/homeserver.db"]
    pg = parse_blocks(render_config(data_dir="/d", port=1, database="postgres"))
    assert "name: psycopg2" in pg["database"] and "database: synapse_bench" in pg["database"]
    assert "host: 127.0.0.1" in pg["database"]
    with pytest.raises(ValueError):
        render_config(data_dir="/d", port=1, database="mysql")
    with pytest.raises(ValueError):
        render_config(data_dir="/d", port=0)


def test_secrets_differ_per_config() -> None:
    one = parse_blocks(render_config(data_dir="/d", port=1))["macaroon_secret_key"]
    two = parse_blocks(render_config(data_dir="/d", port=1))["macaroon_secret_key"]
    assert one != two
