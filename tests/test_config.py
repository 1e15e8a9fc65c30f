"""Configuration precedence and validation (homeserver/config.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import attrs
import pytest

from homeserver.config import Config, ConfigError, load_config
from tools.config_template import render


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plait.toml"
    path.write_text(text)
    return path


def test_defaults_serve_loopback_with_open_registration() -> None:
    config = load_config(env={})
    assert config.listen == "127.0.0.1:8008"
    assert config.server_name == "localhost"
    assert config.effective_registration == "open"
    assert config.effective_database_url.startswith("sqlite:///")
    assert config.effective_database_url.endswith("/data/plait.db")


@pytest.mark.parametrize("listen", ["0.0.0.0:8008", "192.0.2.1:80", "[2001:db8::1]:8008"])
def test_registration_closed_by_default_off_loopback(listen: str) -> None:
    assert load_config(env={}, overrides={"listen": listen}).effective_registration == "closed"


@pytest.mark.parametrize("listen", ["[::1]:8008", "localhost:9000", "127.0.0.2:8008"])
def test_registration_open_by_default_on_any_loopback(listen: str) -> None:
    assert load_config(env={}, overrides={"listen": listen}).effective_registration == "open"


def test_explicit_registration_wins_over_the_loopback_default() -> None:
    config = load_config(env={}, overrides={"listen": "0.0.0.0:8008", "registration": "open"})
    assert config.effective_registration == "open"


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path, 'server_name = "file.example"\nlisten = "127.0.0.1:1"\n[http]\nmax_json_body = 10\n')
    config = load_config(path, env={"PLAIT_LISTEN": "127.0.0.1:2", "PLAIT_HTTP_MAX_JSON_BODY": "20"})
    assert (config.server_name, config.listen, config.http.max_json_body) == (
        "file.example",
        "127.0.0.1:2",
        20,
    )
    config = load_config(
        path, env={"PLAIT_LISTEN": "127.0.0.1:2"}, overrides={"listen": "127.0.0.1:3", "server_name": None}
    )
    assert (config.server_name, config.listen) == ("file.example", "127.0.0.1:3")


def test_env_booleans() -> None:
    assert load_config(env={"PLAIT_RATE_LIMITS_ENABLED": "false"}).rate_limits.enabled is False
    assert load_config(env={"PLAIT_RATE_LIMITS_ENABLED": "1"}).rate_limits.enabled is True


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nonsense = 1\n", "unknown configuration key 'nonsense'"),
        ("[http]\nbogus = 1\n", "http.bogus"),
        ('listen = "nope"\n', "listen"),
        ('server_name = "bad name!"\n', "server_name"),
        ('registration = "sometimes"\n', "registration"),
        ("[http]\nmax_json_body = -1\n", "http.max_json_body"),
        ('[http]\nmax_json_body = "big"\n', "http.max_json_body"),
        ("http = 3\n", "[http] must be a table"),
        ('database_url = "mysql://x"\n', "database_url"),
        ('[tls]\nlisten = "127.0.0.1:8448"\n', "cert_path"),
        ("server_name = \n", "config file"),
    ],
)
def test_invalid_configuration_names_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        load_config(write(tmp_path, text), env={})
    assert needle in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", env={})


def _leaf_keys(obj: object, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        if attrs.has(type(value)):
            keys |= _leaf_keys(value, f"{field.name}.")
        else:
            keys.add(prefix + field.name)
    return keys


def test_generated_config_documents_every_key_and_loads(tmp_path: Path) -> None:
    text = render()
    parsed = tomllib.loads(text)
    flattened = {
        f"{k}.{kk}" if isinstance(v, dict) else k
        for k, v in parsed.items()
        for kk in (v if isinstance(v, dict) else [None])
    }
    assert flattened == _leaf_keys(Config())
    config = load_config(write(tmp_path, text), env={})
    assert config == attrs.evolve(Config())
