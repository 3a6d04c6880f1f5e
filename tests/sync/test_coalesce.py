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


def _fold_one_at_a_time(batch: list[Mutation]) -> list[tuple[Mutation, list[str]]]:
    """The fold as it was before issue 13's fourth round: one copy per member."""
    import uuid

    from app.sync import coalesce

    out: list[list] = []
    for m in batch:
        if out and coalesce._joins(out[-1][0], m):
            fields = dict(out[-1][0].fields)
            for name, fv in m.fields.items():
                if name not in fields or fv.hlc > fields[name].hlc:
                    fields[name] = fv
            out[-1][0] = out[-1][0].model_copy(update={"fields": fields})
            out[-1][1].append(m.mutation_id)
        else:
            out.append([m, [m.mutation_id]])
    for group in out:
        if len(group[1]) > 1:
            mid = str(uuid.uuid5(coalesce._NAMESPACE, "|".join(group[1])))
            group[0] = group[0].model_copy(update={"mutation_id": mid})
    return [(m, members) for m, members in out]


def test_the_fold_of_a_run_at_once_equals_the_fold_one_row_at_a_time():
    import random

    rng = random.Random(13)
    late = CLOCK.now()  # an older stamp than the rows' below: merged by clock, not order
    for _ in range(200):
        batch = []
        for _ in range(rng.randint(1, 30)):
            fields = {f"answers.i.{rng.randint(0, 5)}": rng.random() for _ in range(3)}
            if rng.random() < 0.1:
                fields["review_state"] = "submitted"
            m = _m(rng.choice("ab"), base=rng.choice([0, 0, 1]), **fields)
            if rng.random() < 0.2:
                m = m.model_copy(update={"fields": {
                    **m.fields, "notes": FieldValue(value="late", hlc=late)}})
            batch.append(m)
        groups = fold(batch)
        assert [(g.mutation, g.members) for g in groups] == _fold_one_at_a_time(batch)
        answers = [
            PushResult(mutation_id=g.mutation.mutation_id, status="applied", version=i)
            for i, g in enumerate(groups)
            if rng.random() < 0.8
        ]
        results = unfold(groups, answers)
        by_group = {a.mutation_id: a for a in answers}
        expected = [
            by_group[g.mutation.mutation_id].model_copy(update={"mutation_id": mid})
            for g in groups
            if g.mutation.mutation_id in by_group
            for mid in g.members
        ]
        assert results == expected
