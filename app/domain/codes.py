"""Dossier codes (Circular 01/2018/TT-VPCP, article 19) issued offline without collisions.

Format: `<agency code>-<YYMMDD>-<XXXX>`, e.g. `000.00.53.H48-220921-0099`: the receiving
agency's code (QCVN 102:2016), the date of receipt and a 4-digit sequence of that day.

Devices issue codes offline, so each device owns a fixed slice of every day's sequence space,
chosen by the server at enrolment (`code_slot`, as DHIS2 reserves values per device): slot k
issues numbers k*BLOCK+1 .. (k+1)*BLOCK. Two devices of one agency never share a slot, so their
codes never collide, online or not. With BLOCK=200 an agency has 49 slots of 200 dossiers a day.

The numbers above the last slot (9801..9999, `LOCAL_SEQUENCES`) are never handed out by the
server: a device that is not enrolled (no slot) issues from there, starting at a random offset
drawn once per store, so it never collides with an enrolled device, and two un-enrolled devices
rarely do. docs/ARCHITECTURE.md ("Dossier codes") has the whole scheme and its limits.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

BLOCK = 200
MAX_SEQUENCE = 9999
SLOTS = MAX_SEQUENCE // BLOCK  # 49
# Reserved for devices without a slot (not enrolled): 199 numbers a day, never given to a slot.
LOCAL_SEQUENCES = range(SLOTS * BLOCK + 1, MAX_SEQUENCE + 1)

AGENCY_RE = r"[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9A-Z]{2}"
CODE_RE = re.compile(rf"^(?P<agency>{AGENCY_RE})-(?P<date>\d{{6}})-(?P<seq>\d{{4}})$")
HANOI_AGENCY_SUFFIX = "H26"  # the city's level-1 code in QCVN 102:2016


class SequenceExhausted(Exception):
    """This device used its whole slice of today's sequence numbers."""


@dataclass(frozen=True)
class DossierCode:
    agency: str
    received: dt.date
    sequence: int

    def __str__(self) -> str:
        return format_code(self.agency, self.received, self.sequence)


def sequence_range(slot: int) -> range:
    if not 0 <= slot < SLOTS:
        raise ValueError(f"code slot must be in 0..{SLOTS - 1}")
    return range(slot * BLOCK + 1, (slot + 1) * BLOCK + 1)


def device_sequences(slot: int | None, local_offset: int = 0) -> list[int]:
    """The numbers a device issues each day, in order: its slot's block, or, without a slot,
    the local range rotated to start at `local_offset` (drawn at random once per device)."""
    if slot is not None:
        return list(sequence_range(slot))
    start = local_offset % len(LOCAL_SEQUENCES)
    return [*LOCAL_SEQUENCES[start:], *LOCAL_SEQUENCES[:start]]


def next_sequence(slot: int | None, used_today: int, local_offset: int = 0) -> int:
    """The sequence number after `used_today` numbers of this device were issued today."""
    numbers = device_sequences(slot, local_offset)
    if used_today >= len(numbers):
        raise SequenceExhausted(
            f"thiết bị đã dùng hết {len(numbers)} số hồ sơ của ngày / "
            f"device used all {len(numbers)} codes today"
        )
    return numbers[used_today]


def format_code(agency: str, received: dt.date, sequence: int) -> str:
    if not re.fullmatch(AGENCY_RE, agency):
        raise ValueError(f"not an agency code (QCVN 102:2016): {agency!r}")
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError("sequence must be 1..9999")
    return f"{agency}-{received:%y%m%d}-{sequence:04d}"


def parse_code(code: str) -> DossierCode:
    match = CODE_RE.match(code.strip())
    if not match:
        raise ValueError(f"not a dossier code: {code!r}")
    received = dt.datetime.strptime(match["date"], "%y%m%d").date()
    return DossierCode(match["agency"], received, int(match["seq"]))


def default_agency_code(ward_code: str) -> str:
    """A stand-in agency code for a Hanoi commune when the city's assigned code is not set.

    The real code is a setting (`agency_code`) of the device; this keeps codes well-formed and
    distinct per ward until then: `000.<2 digits>.<2 digits>.H26` from the 5-digit ward code.
    """
    digits = ward_code.zfill(5)[-4:]
    return f"000.{digits[:2]}.{digits[2:]}.{HANOI_AGENCY_SUFFIX}"


_TAIL_RE = re.compile(r"^(?P<date>\d{6})-(?P<seq>\d{4})$")
_SEQ_RE = re.compile(r"^\d{4}$")


def code_search_forms(code: str) -> list[str]:
    """The forms of a dossier code an officer may type to find it, upper-cased: the whole code,
    its `YYMMDD-XXXX` tail and its `XXXX` sequence. A tail alone gives itself and its
    sequence; text that is none of these gives []."""
    text = code.strip().upper()
    if (whole := CODE_RE.match(text)) is not None:
        return [text, f"{whole['date']}-{whole['seq']}", whole["seq"]]
    if (tail := _TAIL_RE.match(text)) is not None:
        return [text, tail["seq"]]
    return [text] if _SEQ_RE.match(text) else []
