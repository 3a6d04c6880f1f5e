"""Which one-stop forms of Circular 01/2018/TT-VPCP a dossier's history calls for.

Form 01 (receipt and appointment) comes with every dossier. The others come from status moves:
02, the supplement request, from each move into SUPPLEMENT_REQUESTED (its note says what to
add, its date is the new appointment); 03, the refusal, from the move into REFUSED (its note is
the reason). Pure: the PDFs are made in `app.reports.counter_forms`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from app.domain.status import DossierStatus

SUPPLEMENT_REQUEST = "02"
REFUSAL = "03"
APOLOGY = "04"

FORM_OF_MOVE: dict[DossierStatus, str] = {
    DossierStatus.SUPPLEMENT_REQUESTED: SUPPLEMENT_REQUEST,
    DossierStatus.REFUSED: REFUSAL,
}


@dataclass(frozen=True)
class FormNotice:
    """One form a move calls for: its number, the move's time, note and new date."""

    number: str
    event_id: str
    at: dt.datetime
    note: str = ""
    new_date: dt.date | None = None


def notices_of(events: list[Any]) -> list[FormNotice]:
    """The forms a dossier's history events (`DossierEvent`) call for, oldest first."""
    found = [
        FormNotice(
            number=FORM_OF_MOVE[e.to_status],
            event_id=e.id,
            at=e.at,
            note=e.note or "",
            new_date=e.appointment_date,
        )
        for e in events
        if e.from_status is not None and e.to_status in FORM_OF_MOVE
    ]
    return sorted(found, key=lambda n: n.at)
