"""OpenGraph data of a fetched page, for URL previews (pure).

Its own module, imported by the first preview: ``html.parser`` and the HTML
entity table are about 0.5 MB that a server without previews never needs.
"""

from __future__ import annotations

from html.parser import HTMLParser


class _OpenGraphParser(HTMLParser):
    """Collects ``og:*`` meta properties, the title and the description."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og: dict[str, str] = {}
        self.title: str | None = None
        self.description: str | None = None
        self._in_title = False
        self._title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs_}
        if tag == "meta":
            key = a.get("property") or a.get("name") or ""
            content = a.get("content", "")
            if key.startswith("og:") and key not in self.og and len(self.og) < 50:
                self.og[key] = content[:1000]
            elif key.lower() == "description" and self.description is None:
                self.description = content[:1000]
        elif tag == "title" and self.title is None:
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.title = " ".join("".join(self._title_parts).split())[:1000]

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or "utf-8"
    return "utf-8"


def parse_open_graph(html: bytes, content_type: str) -> dict[str, str]:
    """OpenGraph data of a page, with ``<title>``/description as fallbacks (pure)."""
    try:
        text = html.decode(_charset(content_type), errors="replace")
    except LookupError:
        text = html.decode("utf-8", errors="replace")
    parser = _OpenGraphParser()
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # hostile HTML: keep what was parsed
        pass
    og = dict(parser.og)
    if "og:title" not in og and parser.title:
        og["og:title"] = parser.title
    if "og:description" not in og and parser.description:
        og["og:description"] = parser.description
    return og
