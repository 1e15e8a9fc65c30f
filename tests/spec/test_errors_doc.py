"""spec/errors.md lists exactly the errcodes the server's source sends.

The scan is textual, like ``grep -o '"M_[A-Z_]*"'`` over homeserver/ and
client_api/: every errcode Plait sends is spelled as a string literal there.
"""

from __future__ import annotations

import re
from pathlib import Path

from spec_helpers import SPEC_DIR

ROOT = SPEC_DIR.parent
SOURCE_DIRS = ("homeserver", "client_api")
_LITERAL = re.compile(r"[\"'](M_[A-Z_]+)[\"']")
_TABLE_ROW = re.compile(r"^\|\s*`(M_[A-Z_]+)`\s*\|\s*([^|]+)\|", re.MULTILINE)


def errcodes_in_source() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            for code in _LITERAL.findall(path.read_text(encoding="utf-8")):
                found.setdefault(code, set()).add(str(path.relative_to(ROOT)))
    return found


def errcodes_documented() -> dict[str, str]:
    text = (SPEC_DIR / "errors.md").read_text(encoding="utf-8")
    return {code: status.strip() for code, status in _TABLE_ROW.findall(text)}


def test_every_errcode_sent_is_documented() -> None:
    missing = {
        code: sorted(files)
        for code, files in errcodes_in_source().items()
        if code not in errcodes_documented()
    }
    assert not missing, f"sent but not in spec/errors.md: {missing}"


def test_every_documented_errcode_is_sent() -> None:
    unused = sorted(set(errcodes_documented()) - set(errcodes_in_source()))
    assert not unused, f"in spec/errors.md but never sent: {unused}"


def test_each_documented_errcode_names_its_status() -> None:
    for code, status in errcodes_documented().items():
        assert re.fullmatch(r"\d{3}( / \d{3})*", status), (code, status)


def test_scan_sees_the_common_codes() -> None:
    # Guards the scanner itself: a regex that matched nothing would pass vacuously.
    assert {"M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_TOKEN"} <= set(errcodes_in_source())
    assert Path(ROOT / "homeserver" / "errors.py").exists()
