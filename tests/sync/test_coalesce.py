"""Folding outbox runs of one record into one wire mutation, and back to one result per row."""

from __future__ import annotations

from app.domain.hlc import Clock
from app.domain.mutations import FieldValue, Mutation, PushResult, new_mutation_id
from app.sync.coalesce import fold, unfold

CLOCK = Clock("dev-c")


def _m(entity_id: str, base: int = 0, **fields) -> Mutation:
    return Mutation(
        mutation_id=new_mutation_id(),
        device_id="dev-c",
        entity="audit",
        entity_id=entity_id,
        ward_code="00070",
        base_version=base,
        fields={k: FieldValue(value=v, hlc=CLOCK.now()) for k, v in fields.items()},
    )


def test_consecutive_rows_of_one_record_fold_and_results_unfold():
    rows = [
        _m("a", review_state="draft", notes="x"),
        _m("a", **{"answers.p.ups": {"value": True}}, score=0.1),
        _m("a", **{"answers.p.fire": {"value": False}}, score=0.2),
        _m("b", notes="other record"),
        _m("a", notes="after another record: a new group"),
        _m("a", review_state="submitted"),  # a step field starts a new group
        _m("a", base=3, notes="seen a newer version: a new group"),
    ]
    groups = fold(rows)
    assert [len(g.members) for g in groups] == [3, 1, 1, 1, 1]
    first = groups[0].mutation
    assert first.fields["score"].value == 0.2 and first.fields["notes"].value == "x"
    assert set(first.fields) == {
        "review_state",
        "notes",
        "answers.p.ups",
        "answers.p.fire",
        "score",
    }
    assert first.mutation_id not in {r.mutation_id for r in rows}
    assert fold(rows)[0].mutation.mutation_id == first.mutation_id  # a replay, the same id
    assert groups[1].mutation == rows[3]  # alone: sent as it is

    answers = [
        PushResult(mutation_id=g.mutation.mutation_id, status="applied", version=i + 1)
        for i, g in enumerate(groups[:-1])  # the last one was not answered
    ]
    results = unfold(groups, answers)
    assert [r.mutation_id for r in results] == [r.mutation_id for r in rows[:-1]]
    assert [r.version for r in results] == [1, 1, 1, 2, 3, 4]
