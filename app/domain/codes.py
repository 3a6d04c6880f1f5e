"""Dossier codes (Circular 01/2018/TT-VPCP, article 19) issued offline without collisions.

Format: `<agency code>-<YYMMDD>-<XXXX>`, e.g. `000.00.53.H48-220921-0099`: the receiving
agency's code (QCVN 102:2016), the date of receipt and a 4-digit sequence of that day.

Devices issue codes offline, so each device owns a fixed slice of every day's sequence space,
chosen by the server at enrolment (`code_slot`, as DHIS2 reserves values per device): slot k
issues numbers k*BLOCK+1 .. (k+1)*BLOCK. Two devices of one agency never share a slot, so their
codes never collide, online or not. With BLOCK=200 an agency has 49 slots of 200 dossiers a day.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

BLOCK = 200
MAX_SEQUENCE = 9999
SLOTS = MAX_SEQUENCE // BLOCK  # 49

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


def next_sequence(slot: int, used_today: int) -> int:
    """The sequence number after `used_today` numbers of this slot were issued today."""
    numbers = sequence_range(slot)
    if used_today >= len(numbers):
        raise SequenceExhausted(
            f"thiết bị đã dùng hết {BLOCK} số hồ sơ của ngày / device used all {BLOCK} codes today"
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
