"""Field-level merge: the greatest clock stamp wins each field, on every replica alike.

Edits of different fields never clobber each other. A same-field race (an edit made without
having seen the field's latest change, with a different value) keeps the same winner everywhere
and is reported so that a person can resolve it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.domain.hlc import node_of


@dataclass(frozen=True)
class Stamped:
    value: Any
    hlc: str
    changed_version: int = 0  # server version at which this field last changed


@dataclass(frozen=True)
class Race:
    field: str
    winner: Stamped
    loser: Stamped


@dataclass
class MergeOutcome:
    fields: dict[str, Stamped]
    changed: list[str]
    races: list[Race]


def merge_fields(
    current: dict[str, Stamped],
    incoming: dict[str, Stamped],
    base_version: int | None = None,
    new_version: int = 0,
) -> MergeOutcome:
    """Merge `incoming` into `current`.

    `base_version` is the record version the writer had seen; None skips race detection
    (used by devices applying pulled state, where the server has already judged races).
    """
    merged = dict(current)
    changed: list[str] = []
    races: list[Race] = []
    for name, theirs in incoming.items():
        ours = current.get(name)
        if ours is not None and base_version is not None and _is_race(ours, theirs, base_version):
            winner, loser = (theirs, ours) if theirs.hlc > ours.hlc else (ours, theirs)
            races.append(Race(name, winner, loser))
        if ours is None or theirs.hlc > ours.hlc:
            merged[name] = Stamped(theirs.value, theirs.hlc, new_version)
            if ours is None or ours.value != theirs.value:
                changed.append(name)
    return MergeOutcome(merged, changed, races)


def _is_race(ours: Stamped, theirs: Stamped, base_version: int) -> bool:
    """A write races the field's current value when its writer had not seen that value.

    A device always knows its own earlier writes, even those the server applied after the
    base version it had pulled, so only another node's unseen change makes a race.
    """
    unseen = ours.changed_version > base_version and node_of(ours.hlc) != node_of(theirs.hlc)
    return unseen and ours.value != theirs.value and ours.hlc != theirs.hlc


