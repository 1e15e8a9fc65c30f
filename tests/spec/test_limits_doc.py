"""spec/ names every configuration key that bounds what a client may do (limits.md)."""

from __future__ import annotations

import attrs
from spec_helpers import SPEC_DIR

from homeserver.config import Config


def test_every_limit_setting_is_documented() -> None:
    """Each key of the config sections that bound what clients may do appears in spec/."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in SPEC_DIR.glob("*.md"))
    config = Config()
    missing = [
        f"{section}.{field.name}"
        for section in ("http", "auth", "rate_limits", "media", "presence", "push", "websocket")
        for field in attrs.fields(type(getattr(config, section)))
        if f"{section}.{field.name}" not in text
    ]
    assert not missing, f"config keys no spec/*.md page mentions: {missing}"
