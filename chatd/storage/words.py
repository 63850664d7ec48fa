"""The words search matches on (SPEC.md, Details: Search), one tokenizer for the stored index and for ``q``.

A word is a run of Unicode letters, digits and ``_``, lower-cased; a query word
matches a stored word it begins (or equals). The store keeps each message's words
as an array (MongoDB indexes it multikey), and asks for each query word the range
``[word, successor(word))``: every string that begins with ``word`` sorts there.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


def words(text: str | None) -> list[str]:
    """The distinct lower-cased words of ``text``, in order of first appearance."""
    if not text:
        return []
    return list(dict.fromkeys(_WORD.findall(text.lower())))


def successor(word: str) -> str:
    """The least string after every string that begins with ``word`` (its last character raised by one)."""
    return word[:-1] + chr(ord(word[-1]) + 1)


def matches(query: list[str], text: str | None) -> bool:
    """Whether every query word begins some word of ``text`` (the in-memory store's search)."""
    have = words(text)
    return all(any(w.startswith(q) for w in have) for q in query)
