"""Timeliness of dossiers, computed from the appointment date and never stored as a status.

Closed dossiers are early, on time or late; open ones are within the deadline or overdue.
On-time rate = (within + early + on time) / (within + overdue + early + on time + late).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum

from app.domain.status import ABANDONED, FINISHED, DossierStatus


class Timeliness(StrEnum):
    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"
    WITHIN = "within"
    OVERDUE = "overdue"


def classify(
    status: int,
    appointment: dt.date | None,
    finished: dt.date | None,
    today: dt.date,
) -> Timeliness | None:
    """None for dossiers that left the flow (refused, withdrawn, stopped) or have no deadline."""
    current = DossierStatus(status)
    if current in ABANDONED or appointment is None:
        return None
    if current in FINISHED:
        done = finished or today
        if done < appointment:
            return Timeliness.EARLY
        return Timeliness.ON_TIME if done == appointment else Timeliness.LATE
    return Timeliness.WITHIN if today <= appointment else Timeliness.OVERDUE


def is_overdue(status: int, appointment: dt.date | None, today: dt.date) -> bool:
    return classify(status, appointment, None, today) is Timeliness.OVERDUE


def on_time_rate(kinds: Iterable[Timeliness | None]) -> float | None:
    """The share of counted dossiers handled in time, or None when nothing counts yet."""
    counts = Counter(k for k in kinds if k is not None)
    total = sum(counts.values())
    if not total:
        return None
    good = counts[Timeliness.WITHIN] + counts[Timeliness.EARLY] + counts[Timeliness.ON_TIME]
    return good / total
