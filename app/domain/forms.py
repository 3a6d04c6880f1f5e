"""Which one-stop forms of Circular 01/2018/TT-VPCP a dossier's history calls for.

Form 01 (receipt and appointment) comes with every dossier. The others come from status moves:
02, the supplement request, from each move into SUPPLEMENT_REQUESTED (its note says what to
add, its date is the new appointment); 03, the refusal, from the move into REFUSED (its note is
the reason); 04, the apology, from an event that keeps an open status and gives a later
appointment date (`DossierService.reschedule`; its note is the reason for the delay). Pure: the
PDFs are made in `app.reports.counter_forms`.
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
    previous_date: dt.date | None = None  # the appointment the new date replaces


def _number(event: Any) -> str | None:
    if event.from_status is None:
        return None
    if event.from_status == event.to_status and event.appointment_date is not None:
        return APOLOGY
    return FORM_OF_MOVE.get(event.to_status)


def notices_of(events: list[Any], first_appointment: dt.date | None = None) -> list[FormNotice]:
    """The forms a dossier's history events (`DossierEvent`) call for, oldest first.
    `first_appointment`: the date promised at intake, which the first new date replaces."""
    found = []
    appointment = first_appointment
    for e in sorted(events, key=lambda e: e.at):
        number = _number(e)
        if number is not None:
            found.append(FormNotice(number=number, event_id=e.id, at=e.at, note=e.note or "",
                                    new_date=e.appointment_date, previous_date=appointment))
        if e.appointment_date is not None:
            appointment = e.appointment_date
    return found
