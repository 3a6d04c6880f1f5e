"""Blind index: search sealed names, addresses and ID numbers without storing them readable.

Each folded token (`app.domain.text.tokens`: lower case, diacritics removed, đ -> d) becomes a
keyed HMAC-SHA256 term truncated to 16 hex characters (64 bits). Terms are tagged by kind before
hashing, so a whole word, a prefix and an ID number never collide even when their text is equal:

- `w:` whole word ("huong"), `p:` prefix of length >= 2 ("hu", "huo", ..., "huong"),
- `i:` an ID number, digits only, whole value,
- `c:` a dossier's code in three forms: whole (`000.00.53.H26-261207-9944`), date and sequence
  (`261207-9944`) and sequence (`9944`), upper-cased, so any form printed on the slip finds it,
- `k:` a dossier's identity (procedure, folded name, ID digits, receipt time, ward) as one value,
  so an import can recognise a row it already holds without storing any part of it readable.

A record stores `terms(...)`; a search ANDs `query_terms(...)`: every query token must be a prefix
of some token of the record, so typing "nguy" or "huo" already finds "Nguyễn Thị Hương".

Leakage, accepted on purpose:
- Terms are deterministic under the store's key: equal tokens give equal terms. Someone holding
  the database file (without the key) sees which records share a word or prefix, how many tokens
  and roughly how long each is (a token of n letters adds n - 1 prefix terms), and can rank terms by
  frequency; in Vietnam the surname "nguyen" is common enough to be guessed from frequency alone.
- They cannot test a guess: the HMAC is keyed with a sub-key of the data key, so unlike a plain hash
  the 10^12 space of 12-digit ID numbers cannot be enumerated offline.
- 64-bit terms make accidental collisions negligible at a commune's scale; a collision would only
  add a false hit, which the caller removes after opening the sealed value.
- Code terms leak nothing new: the code is a readable column already (it names nobody).
Range, substring (not prefix) and fuzzy search are not offered: they would leak more.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

from app.domain.codes import code_search_forms
from app.domain.text import digits, tokens

TERM_HEX_CHARS = 16
MIN_PREFIX = 2
MAX_TOKEN_CHARS = 40  # prefixes beyond this length add storage and leakage, not recall

_WORD = b"w:"
_PREFIX = b"p:"
_ID = b"i:"
_IDENTITY = b"k:"
_CODE = b"c:"
_SEPARATOR = "\x1f"  # unit separator: no folded text or code contains it
_CACHED_TOKENS = 4096  # names and addresses repeat a lot ("nguyen", "thi", "phuong", ...)


class BlindIndex:
    """Keyed search terms. Use the `index` sub-key of the data key."""

    __slots__ = ("_keyed", "_token_terms")

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("blind index key too short")
        # HMAC state with the key already absorbed: each term copies it (about 2x faster).
        self._keyed = hmac.new(bytes(key), digestmod=hashlib.sha256)
        self._token_terms = lru_cache(maxsize=_CACHED_TOKENS)(self._compute_token_terms)

    def __repr__(self) -> str:
        return "BlindIndex(<key hidden>)"

    def _term(self, tag: bytes, text: str) -> str:
        mac = self._keyed.copy()
        mac.update(tag + text.encode())
        return mac.hexdigest()[:TERM_HEX_CHARS]

    def _compute_token_terms(self, token: str) -> tuple[str, ...]:
        prefixes = range(MIN_PREFIX, min(len(token), MAX_TOKEN_CHARS) + 1)
        return (self._term(_WORD, token), *(self._term(_PREFIX, token[:n]) for n in prefixes))

    def terms(self, text: str) -> list[str]:
        """Terms to store for a name or address: each whole token and each of its prefixes."""
        out: dict[str, None] = {}
        for token in tokens(text):
            out.update(dict.fromkeys(self._token_terms(token)))
        return list(out)

    def query_terms(self, text: str) -> list[str]:
        """Terms that must ALL be present for a record to match the typed query.

        Each query token is a prefix term. A one-character token has no prefix term, so it is
        matched as a whole word (typing "5" in an address finds "số 5"). Empty query -> [].
        """
        out: dict[str, None] = {}
        for token in tokens(text):
            token = token[:MAX_TOKEN_CHARS]
            tag = _PREFIX if len(token) >= MIN_PREFIX else _WORD
            out.setdefault(self._term(tag, token), None)
        return list(out)

    def id_terms(self, id_number: str) -> list[str]:
        """The term to store for an ID number (CCCD, phone): digits only, whole value."""
        return self.digit_id_terms(digits(id_number))

    def digit_id_terms(self, number: str) -> list[str]:
        """`id_terms` of a number already reduced to its digits (bulk intake does it once)."""
        return [self._term(_ID, number)] if number else []

    def query_id_terms(self, text: str) -> list[str]:
        """The term to look up an ID number typed with or without spaces, dots or dashes."""
        return self.id_terms(text)

    def code_terms(self, code: str) -> list[str]:
        """Terms to store for a dossier code: its whole, date-and-sequence and sequence forms."""
        return [self._term(_CODE, form) for form in code_search_forms(code)]

    def query_code_terms(self, text: str) -> list[str]:
        """The term to look up a typed code (any case, spaces around it ignored), or [] when the
        text is not a code, nor its `YYMMDD-XXXX` or `XXXX` tail."""
        typed = re.sub(r"\s+", "", text).upper()
        forms = code_search_forms(typed)
        return [self._term(_CODE, typed)] if typed in forms else []

    def identity_term(
        self,
        procedure_code: str,
        name: str,
        id_number: str,
        received_at: str,
        ward_code: str,
        *,
        name_tokens: list[str] | None = None,
        id_digits: str | None = None,
    ) -> str:
        """One term for a dossier's identity: equal after folding the name (case, diacritics,
        spaces) and keeping only the ID's digits, so "NGUYEN  Van An" repeats "Nguyễn Văn An".
        `name_tokens`, `id_digits`: `tokens(name)` and `digits(id_number)` when the caller has
        them already (bulk intake)."""
        folded = " ".join(tokens(name) if name_tokens is None else name_tokens)
        number = digits(id_number) if id_digits is None else id_digits
        parts = (procedure_code.strip(), folded, number, received_at.strip(), ward_code.strip())
        return self._term(_IDENTITY, _SEPARATOR.join(parts))
