"""Fold runs of queued mutations of one record into one wire mutation before a push.

An auditor answers 36 items one at a time: 37 outbox rows for one audit, each with its own id,
ids and stamps. Sending them as one mutation carries the same fields with the same stamps (so
the server's per-field merge ends the same) at a fraction of the bytes and server work.

Only consecutive rows of the same record with the same base version fold together, and a row
that sets a field the server checks step by step (a status machine) always starts a new group,
so every status move still reaches the server as its own step. The folded id is derived from
its members' ids: a replay of the same group is answered from the server's stored result; a
different grouping after a crash re-sends the same stamps, which the field merge ignores.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.domain.mutations import FieldValue, Mutation, PushResult

# Fields whose changes the server checks as transitions (dossier status, review state, conflict
# state): never folded into an earlier row.
STEP_FIELDS = frozenset({"status", "review_state", "state"})
_NAMESPACE = uuid.UUID("5b0f3c1e-7d0a-4c57-9a41-2f6f0a9d1c11")


@dataclass
class Folded:
    mutation: Mutation
    members: list[str] = field(default_factory=list)


def fold(batch: list[Mutation]) -> list[Folded]:
    out: list[Folded] = []
    runs: list[list[Mutation]] = []
    for m in batch:
        if runs and _joins(runs[-1][0], m):
            runs[-1].append(m)
        else:
            runs.append([m])
    for run in runs:
        first = run[0]
        if len(run) == 1:
            out.append(Folded(first, [first.mutation_id]))
            continue
        # The run's fields merged in one dict and copied once (issue 13: a copy per member
        # cost the audit push a tenth of its CPU); the same fields as merging one at a time.
        fields: dict[str, FieldValue] = dict(first.fields)
        for m in run[1:]:
            _merge_into(fields, m)
        members = [m.mutation_id for m in run]
        name = "|".join(members)
        folded = first.model_copy(
            update={"fields": fields, "mutation_id": str(uuid.uuid5(_NAMESPACE, name))}
        )
        out.append(Folded(folded, members))
    return out


def unfold(groups: list[Folded], results: list[PushResult]) -> list[PushResult]:
    """One result per original outbox row, from the results of the folded mutations."""
    return unfold_ids(carried(groups), results)


def carried(groups: list[Folded]) -> list[tuple[str, list[str]]]:
    """What a push carries, as (sent mutation id, its outbox rows' ids) in the push's order:
    enough to read its answer later (`unfold_ids`)."""
    return [(g.mutation.mutation_id, list(g.members)) for g in groups]


def unfold_ids(groups: list[tuple[str, list[str]]], results: list[PushResult]) -> list[PushResult]:
    by_id = {r.mutation_id: r for r in results}
    out: list[PushResult] = []
    for sent_id, members in groups:
        result = by_id.get(sent_id)
        if result is None:
            continue  # not answered: the rows stay queued
        if len(members) == 1 and members[0] == result.mutation_id:
            out.append(result)  # a row sent as itself: its answer as it came
            continue
        out.extend(result.model_copy(update={"mutation_id": mid}) for mid in members)
    return out


def _joins(current: Mutation, m: Mutation) -> bool:
    return (
        m.entity == current.entity
        and m.entity_id == current.entity_id
        and m.base_version == current.base_version
        and m.ward_code == current.ward_code
        and not (STEP_FIELDS & m.fields.keys())
    )


def _merge_into(fields: dict[str, FieldValue], b: Mutation) -> None:
    """`b`'s fields into a run's: the greater clock wins each field."""
    for name, fv in b.fields.items():
        if name not in fields or fv.hlc > fields[name].hlc:
            fields[name] = fv
