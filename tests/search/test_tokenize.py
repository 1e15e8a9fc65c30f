"""The search tokenizer: words, CJK bigrams, URLs, and the substring property."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.search.tokenize import highlights, query_terms, terms


def test_words_cjk_and_urls() -> None:
    assert terms("Hello, World!") == ["hello", "world"]
    assert terms("北京大学") == ["北", "京", "大", "学", "北京", "京大", "大学"]
    assert terms("abc中文def") == ["abc", "中", "文", "中文", "def"]
    assert terms("https://example.org/a_b?q=1") == ["https", "example", "org", "a", "b", "q", "1"]
    assert terms("STRASSE Straße") == ["strasse", "strasse"]
    assert terms("\uff46\uff55\uff4c\uff4c") == ["full"]  # NFKC: fullwidth letters
    assert query_terms("北京大学") == ["北京", "京大", "大学"]
    assert query_terms("京") == ["京"]
    assert query_terms("a a b") == ["a", "b"]
    assert query_terms("!!! ...") == []
    assert highlights("Pasta, pasta!") == ["Pasta", "pasta"]


def test_limits() -> None:
    assert len(terms("x " * 5000)) == 2000
    assert terms("y" * 500) == ["y" * 64]
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == 32


cjk = st.text(
    alphabet=st.sampled_from("北京大学東京タワー日本語한국어ไทย"), min_size=1, max_size=30
)
latin = st.text(alphabet=st.sampled_from("abcXYZ0 .,/:"), max_size=30)


@settings(max_examples=200, deadline=None)
@given(prefix=latin, text=cjk, suffix=latin, data=st.data())
def test_every_substring_of_a_cjk_run_is_found(
    prefix: str, text: str, suffix: str, data: st.DataObject
) -> None:
    """A query that is any substring of the message's CJK run matches the message."""
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    document = set(terms(prefix + " " + text + " " + suffix))
    assert set(query_terms(text[start:end])) <= document


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_never_raises_and_terms_are_clean(text: str) -> None:
    for term in terms(text) + query_terms(text):
        assert term and " " not in term and '"' not in term and "'" not in term
