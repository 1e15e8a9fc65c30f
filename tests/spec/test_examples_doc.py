"""Every endpoint is written out next to an example of its request and answer.

spec/README.md promises request and response examples for each endpoint. A
route counts as having them when some section of a spec/*.md page (the text
between two headings) names its path and shows an example: a ```json or
```http block, an inline JSON code span such as `{"available": true}`, or a
table row naming the path with JSON in it (the body and answer columns of a
table of small endpoints). Aliases (r0, unstable) are documented as groups in
http.md, and a path with a trailing slash counts as the path without it.
"""

from __future__ import annotations

import re

from spec_helpers import SPEC_DIR, normalise, openapi

_PATH = re.compile(
    r"(/_matrix/[A-Za-z0-9_./{}\-]*|/\.well-known/[a-z/]+|/_plait/[A-Za-z0-9_./{}\-]*)"
)
_HEADING = re.compile(r"(?m)^(?=#{1,4} )")
_INLINE_JSON = re.compile(r"`\{[^`]*\}`")
_JSON_IN_ROW = re.compile(r'\{"|\{\}|`\{')


def _key(path: str) -> str:
    return normalise(path.rstrip(".")).rstrip("/")


def paths_with_examples() -> set[str]:
    found: set[str] = set()
    for page in sorted(SPEC_DIR.glob("*.md")):
        for section in _HEADING.split(page.read_text(encoding="utf-8")):
            has_example = (
                "```json" in section
                or "```http" in section
                or _INLINE_JSON.search(section) is not None
            )
            for line in section.splitlines():
                row_example = line.startswith("|") and _JSON_IN_ROW.search(line) is not None
                if has_example or row_example:
                    found.update(_key(m) for m in _PATH.findall(line))
    return found


def test_every_route_has_an_example() -> None:
    have = paths_with_examples()
    missing = sorted(
        path
        for path in openapi()["paths"]
        if path.startswith(("/_matrix/", "/.well-known/", "/_plait/"))
        and "/r0/" not in path
        and "/unstable/" not in path
        and _key(path) not in have
    )
    assert not missing, f"routes no spec/*.md section shows with an example: {missing}"
