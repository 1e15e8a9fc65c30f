"""Search terms: one tokenizer for every language, used for both indexing and queries. Pure.

Database full-text parsers split on spaces and punctuation, which finds
nothing in Chinese, Japanese or Thai (no spaces between words), and their
behaviour for non-ASCII letters depends on the database's locale. So Plait
tokenizes in Python, identically for SQLite and PostgreSQL, and hands the
databases finished terms (user_pain.md §10: search must work in any language):

* Text is NFKC-normalized and case-folded.
* Runs of letters and digits in scripts written with spaces become words.
* Runs of CJK ideographs, kana, Hangul or Thai become character bigrams plus
  the single characters, so any substring of two or more characters is found
  (a query is tokenized the same way and all its terms must match), and so
  is a single character.
* A URL is split at its punctuation like any other text (``https``,
  ``example``, ``com``, path words), so searching a URL, its host, or a word
  of its path finds the message.
"""

from __future__ import annotations

import re
import unicodedata

MAX_TERMS = 2000
MAX_TERM_LENGTH = 64
# Scripts written without spaces between words.
_CJK = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1100-\u11ff"  # Hangul Jamo
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u312f"  # Bopomofo
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\U00020000-\U0003134f"  # CJK Extensions B-G
)
_RUN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")


def terms(text: str, *, max_terms: int = MAX_TERMS) -> list[str]:
    """The index terms of ``text``, in order, duplicates kept (ranking counts them)."""
    out: list[str] = []
    normalized = unicodedata.normalize("NFKC", text).casefold()
    for found in _RUN.finditer(normalized):
        cjk, word = found.group(1), found.group(2)
        if word is not None:
            out.append(word[:MAX_TERM_LENGTH])
        else:
            out.extend(cjk)
            out.extend(cjk[i : i + 2] for i in range(len(cjk) - 1))
        if len(out) >= max_terms:
            return out[:max_terms]
    return out


def query_terms(text: str) -> list[str]:
    """The terms a query must all match: words, and bigrams of CJK runs (unigrams if 1 char)."""
    out: list[str] = []
    normalized = unicodedata.normalize("NFKC", text).casefold()
    for found in _RUN.finditer(normalized):
        cjk, word = found.group(1), found.group(2)
        if word is not None:
            out.append(word[:MAX_TERM_LENGTH])
        elif len(cjk) == 1:
            out.append(cjk)
        else:
            out.extend(cjk[i : i + 2] for i in range(len(cjk) - 1))
    return list(dict.fromkeys(out))[:32]


def highlights(text: str) -> list[str]:
    """Words a client should highlight: the query's words as typed (spec ``highlights``)."""
    normalized = unicodedata.normalize("NFKC", text)
    return list(dict.fromkeys(m.group(0) for m in _RUN.finditer(normalized)))[:32]
