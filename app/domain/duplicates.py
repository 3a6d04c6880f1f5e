"""The ward-wide duplicate check's terms: keyed, per ward, never the ID number itself.

The server holds an index key (derived from its data key, server/core/sealing.py) and gives
each enrolled device the *ward keys* of its own wards: `ward_key(index_key, ward)`. A device
asks "is there an open dossier of this procedure for this ID number in my wards?" by sending
`id_term(ward_key, id_number)` per ward, not the number; the server computes the same term for
each dossier it saves (it receives the number in the push) and compares terms. Privacy
reasoning: docs/security.md "Ward-wide duplicate check". Pure: hmac only, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac

from app.domain.text import digits

WARD_LABEL = b"commune-field/duplicate-ward\x00"
ID_LABEL = b"i:"
TERM_HEX_CHARS = 32  # 128 bits: no accidental collision across a city's dossiers
KEY_HEX_CHARS = 64
MAX_WARDS_PER_CHECK = 64  # bounds a request; an officer has a few wards


def ward_key(index_key: bytes, ward_code: str) -> bytes:
    """The key one ward's terms are made with: a device of ward A cannot make ward B's terms."""
    return hmac.new(index_key, WARD_LABEL + ward_code.encode(), hashlib.sha256).digest()


def id_term(key: bytes, id_number: str) -> str | None:
    """The term of an ID number (digits only) under a ward key; None when it holds no digit."""
    number = digits(id_number or "")
    if not number:
        return None
    return hmac.new(key, ID_LABEL + number.encode(), hashlib.sha256).hexdigest()[:TERM_HEX_CHARS]


def is_term(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == TERM_HEX_CHARS
        and all(c in "0123456789abcdef" for c in value)
    )
