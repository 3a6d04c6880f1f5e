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


# ---------------------------------------------------------------------------------------------
# The text rule: what any stored or transmitted string may hold (one place, used by the field
# specs, the wire schema and the device's services).

# C0 controls but tab and newline, DEL, C1 controls, and the surrogate code points (a lone one
# cannot be encoded as UTF-8: it would fail a reply, a PostgreSQL text value or a CSV export).
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """None for text the rule accepts, else a stable reason code: 'nul_char',
    'lone_surrogate' or 'control_char'."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "nul_char"
    if "\ud800" <= char <= "\udfff":
        return "lone_surrogate"
    return "control_char"


def normalise_text(text: str) -> str:
    """The stored form of a string: line ends as '\\n', then NFC (Vietnamese typed on one
    keyboard arrives decomposed, on another precomposed: stored, compared and searched alike)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.isascii() else unicodedata.normalize("NFC", text)
