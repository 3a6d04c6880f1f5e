"""Text folding for search: case- and diacritic-insensitive, Vietnamese-aware."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """'Nguyễn Thị  Hương' -> 'nguyen thi huong'. đ/Đ are letters of their own, not marks."""
    text = unicodedata.normalize("NFC", text).replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text.lower())
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return _SPACES.sub(" ", bare).strip()


def tokens(text: str) -> list[str]:
    """Search tokens: folded words, punctuation dropped, order kept, duplicates removed."""
    seen: dict[str, None] = {}
    for word in _NON_WORD.split(fold(text)):
        if word:
            seen.setdefault(word, None)
    return list(seen)


def digits(text: str) -> str:
    """Only the digits: ID numbers and phones are searched this way."""
    return "".join(ch for ch in text if ch.isdigit())
