"""The compact push answer: applied positions as ranges, then only the exceptions."""

from __future__ import annotations

import pytest

from app.domain.mutations import (
    PushRequest,
    PushResult,
    PushSummary,
    derived_mutation_id,
    expand,
    leave_out_derived_id,
    summarise,
)


def _results(statuses: list[str]) -> list[PushResult]:
    return [
        PushResult(
            mutation_id=f"m{i}",
            status=s,
            reason=None if s == "applied" else "why",
            version=1 if s != "rejected" else 0,
        )
        for i, s in enumerate(statuses)
    ]


def test_summary_is_ranges_then_exceptions_and_expands_back():
    statuses = ["applied"] * 3 + ["rejected", "conflict"] + ["applied"] * 2 + ["rejected"]
    results = _results(statuses)
    summary = summarise(results)
    assert summary.applied == [(0, 3), (5, 7)]
    assert [(e.index, e.status) for e in summary.exceptions] == [
        (3, "rejected"), (4, "conflict"), (7, "rejected")
    ]
    back = expand(summary, [r.mutation_id for r in results])
    assert [(r.mutation_id, r.status, r.reason) for r in back] == [
        (r.mutation_id, r.status, r.reason) for r in results
    ]


def test_positions_left_out_get_no_result_and_outside_ones_are_refused():
    ids = ["a", "b", "c", "d"]
    partial = PushSummary(applied=[(0, 1)], exceptions=[])
    assert [r.mutation_id for r in expand(partial, ids)] == ["a"]
    with pytest.raises(ValueError):
        expand(PushSummary(applied=[(2, 5)], exceptions=[]), ids)
    with pytest.raises(ValueError):
        expand(PushSummary.model_validate({"applied": [], "exceptions": [
            {"index": 4, "status": "rejected"}
        ]}), ids)


def test_one_clock_per_record_reads_back_as_the_same_mutation():
    import uuid

    from app.domain.mutations import Mutation, one_clock

    stamp, other = "0001763900000000:0000:dev-a", "0001763900000001:0000:dev-a"
    wire = {
        "mutation_id": str(uuid.uuid4()), "device_id": "d", "entity": "dossier",
        "entity_id": "x", "ward_code": "00070", "base_version": 0,
        "fields": {"status": {"value": 2, "hlc": stamp}, "notes": {"value": "", "hlc": stamp}},
    }
    compact = one_clock(wire)
    assert compact["hlc"] == stamp and compact["fields"]["status"] == {"value": 2}
    assert Mutation.model_validate(compact) == Mutation.model_validate(wire)
    mixed = {**wire, "fields": {**wire["fields"], "notes": {"value": "", "hlc": other}}}
    assert one_clock(mixed) == mixed  # different clocks: each field keeps its own


def _wire(**over) -> dict:
    stamp = "0001796600961618:0000:dev"
    base = {
        "device_id": "dev", "entity": "dossier", "entity_id": "e1", "ward_code": "00004",
        "base_version": 0, "hlc": stamp, "fields": {"status": {"value": 1}, "fee": {"value": 0}},
    }
    base["mutation_id"] = derived_mutation_id("dossier", "e1", 0, stamp, ["status", "fee"])
    return {**base, **over}


def test_an_id_is_left_out_only_when_the_server_makes_the_same_one():
    wire = _wire()
    bare = leave_out_derived_id(wire)
    assert "mutation_id" not in bare
    request = PushRequest.model_validate({"mutations": [bare]})
    assert request.mutations[0].mutation_id == wire["mutation_id"]
    random_id = _wire(mutation_id="5b0f3c1e-7d0a-4c57-9a41-2f6f0a9d1c11")
    assert leave_out_derived_id(random_id) == random_id  # not derivable: kept
    stamped = {k: v for k, v in wire.items() if k != "hlc"}
    assert leave_out_derived_id(stamped) == stamped  # no shared clock: kept
    later = _wire(base_version=1)  # another write of the record makes another id
    assert leave_out_derived_id(later)["mutation_id"] == wire["mutation_id"]


def test_a_copy_of_a_store_derives_other_ids_and_the_server_derives_with_its_incarnation():
    stamp = "0001796600961618:0000:dev"
    plain = derived_mutation_id("dossier", "e1", 0, stamp, ["status"])
    copy = derived_mutation_id("dossier", "e1", 0, stamp, ["status"], "a1b2c3d4e5f60718")
    assert copy != plain  # the same write by a restored copy is another write
    wire = _wire(mutation_id=derived_mutation_id(
        "dossier", "e1", 0, "0001796600961618:0000:dev", ["status", "fee"], "a1b2c3d4e5f60718"
    ))
    assert leave_out_derived_id(wire) == wire  # not derivable without the incarnation: kept
    bare = leave_out_derived_id(wire, "a1b2c3d4e5f60718")
    assert "mutation_id" not in bare
    request = PushRequest.model_validate({"mutations": [bare], "incarnation": "a1b2c3d4e5f60718"})
    assert request.mutations[0].mutation_id == wire["mutation_id"]
    assert PushRequest.model_validate({"mutations": [bare]}).mutations[0].mutation_id != (
        wire["mutation_id"]
    )


def test_a_summary_tells_what_the_server_reads():
    assert "derived_ids" in summarise([]).reads
    assert PushSummary.model_validate({"applied": [], "exceptions": []}).reads == []
