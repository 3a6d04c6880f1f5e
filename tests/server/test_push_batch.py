"""A push batch applied in one transaction: refused rows in the middle of a batch change
nothing and fail nothing else, each mutation is applied once (replayed, or pushed by two
connections at once), and personal fields are sealed as one mutation at a time seals them.

Runs against SQLite and PostgreSQL (the `api_server` fixture is parametrized)."""

from __future__ import annotations

import json
import threading
import uuid

from sqlalchemy import text

from app.domain.hlc import Clock
from tests.server.helpers import Device, dossier_fields, new_dossier, new_ward, pull_all, push


def _stored(api_server, entity_ids: list[str]) -> dict[str, tuple[int, str]]:
    with api_server.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT entity_id, version, fields FROM record WHERE entity = 'dossier'")
        ).all()
    wanted = set(entity_ids)
    return {r[0]: (r[1], str(r[2])) for r in rows if r[0] in wanted}


def _log_rows(api_server, entity_ids: list[str]) -> int:
    with api_server.engine.connect() as conn:
        rows = conn.execute(text("SELECT entity_id FROM change_log")).scalars().all()
    wanted = set(entity_ids)
    return sum(1 for r in rows if r in wanted)


def _mixed_batch(api_server, ward: str, device: Device) -> tuple[list[dict], list[str]]:
    """Good dossiers with refused rows in the middle; returns the batch and the expected
    status of each row."""
    other_ward = new_ward()
    taken = new_dossier(Device(), ward)
    owner = api_server.enrol(f"owner_{ward}", "officer", [ward])
    with api_server.client(owner.token) as client:
        assert push(client, [taken])[0]["status"] == "applied"
    good = [new_dossier(device, ward) for _ in range(6)]
    incomplete = device.mutation("dossier", str(uuid.uuid4()), ward, {"status": 1})
    out_of_scope = new_dossier(device, other_ward)
    unknown = device.mutation("nonsense", str(uuid.uuid4()), ward, {"x": 1})
    impostor = new_dossier(device, ward, mutation_id=None)
    impostor["mutation_id"] = taken["mutation_id"]  # another device applied this id
    update = device.mutation("dossier", good[0]["entity_id"], ward, {"status": 2}, base_version=1)
    bad_update = device.mutation(
        "dossier", good[1]["entity_id"], ward, {"status": "not a status"}, base_version=1
    )
    batch = [
        *good[:3], incomplete, out_of_scope, unknown, impostor, update, bad_update, *good[3:]
    ]
    expected = ["applied"] * 3 + ["rejected"] * 4 + ["applied", "rejected"] + ["applied"] * 3
    return batch, expected


def test_bad_rows_in_the_middle_leave_the_good_ones_applied_once(api_server):
    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    device = Device()
    batch, expected = _mixed_batch(api_server, ward, device)
    with api_server.client(officer.token) as client:
        first = push(client, batch)
        again = push(client, batch)
    assert [r["status"] for r in first] == expected
    reasons = [r["reason"] for r in first if r["status"] == "rejected"]
    assert reasons[1:4] == ["ward_out_of_scope", "unknown_entity", "mutation_id_taken"]
    assert reasons[0] and reasons[4]  # the whole-record and the field checks said why
    assert again == first  # a replay answers the stored results, applies nothing

    applied_ids = [m["entity_id"] for m, s in zip(batch, expected, strict=True) if s == "applied"]
    refused_new = [m["entity_id"] for m in batch[3:7]]
    stored = _stored(api_server, applied_ids + refused_new)
    assert set(stored) == set(applied_ids)  # nothing of a refused new record is stored
    assert stored[batch[0]["entity_id"]][0] == 2  # the update in the same batch applied
    assert stored[batch[1]["entity_id"]][0] == 1  # the refused update left it as it was
    assert _log_rows(api_server, applied_ids) == 7  # 6 creations and 1 update, once each
    for _version, fields in stored.values():
        assert "Nguyễn Văn An" not in fields  # the applicant's name is sealed at rest


def test_one_batch_from_two_connections_applies_each_mutation_once(api_server):
    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    device = Device()
    created = [new_dossier(device, ward) for _ in range(30)]
    updates = [
        device.mutation("dossier", m["entity_id"], ward, {"status": 2}, base_version=1)
        for m in created[:10]
    ]
    broken = device.mutation("dossier", str(uuid.uuid4()), ward, {"status": 1})
    batch = created[:15] + [broken] + updates + created[15:]
    gate = threading.Barrier(2)
    answers: list[list[dict]] = [[], []]

    def send(slot: int) -> None:
        with api_server.client(officer.token) as client:  # its own connection
            gate.wait(timeout=10)
            answers[slot] = push(client, batch)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert answers[0] == answers[1] and len(answers[0]) == len(batch)
    statuses = [r["status"] for r in answers[0]]
    assert statuses.count("rejected") == 1 and statuses[15] == "rejected"
    ids = [m["entity_id"] for m in created]
    assert _log_rows(api_server, ids) == 40  # 30 creations and 10 updates, each once
    stored = _stored(api_server, ids + [broken["entity_id"]])
    assert len(stored) == 30
    assert sorted(v for v, _ in stored.values()) == [1] * 20 + [2] * 10


def test_dossier_fields_helper_is_whole():
    # guards the fixture data above: a whole dossier has its appointment date
    assert "appointment_date" in dossier_fields("00070")


def test_a_summary_answer_names_applied_ranges_then_only_the_exceptions(api_server):
    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    device = Device()
    batch, expected = _mixed_batch(api_server, ward, device)
    with api_server.client(officer.token) as client:
        response = client.post("/sync/push", json={"mutations": batch, "answer": "summary"})
        assert response.status_code == 200, response.text
        summary = response.json()
        old_style = push(client, batch)  # an older client still gets one result per mutation
    assert "results" not in summary
    assert summary["applied"] == [[0, 3], [7, 8], [9, 12]]
    assert [e["index"] for e in summary["exceptions"]] == [3, 4, 5, 6, 8]
    assert {e["status"] for e in summary["exceptions"]} == {"rejected"}
    assert [r["status"] for r in old_style] == expected  # the replay, answered in full


def test_a_record_whose_fields_share_one_clock_may_carry_it_once(api_server):
    from app.domain.mutations import one_clock

    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    plain = new_dossier(Device(), ward)
    compact = one_clock(plain)
    assert "hlc" in compact and all(set(f) == {"value"} for f in compact["fields"].values())
    with api_server.client(officer.token) as client:
        assert push(client, [compact])[0]["status"] == "applied"
        assert push(client, [plain]) == push(client, [compact])  # the same mutation, once
    reader = api_server.enrol(officer.user)
    with api_server.client(reader.token) as client:
        changes, _ = pull_all(client)
    [change] = [c for c in changes if c["entity_id"] == plain["entity_id"]]
    assert change["fields"] == plain["fields"]  # every field stored with the shared stamp


def _derivable(device: Device, ward: str) -> dict:
    """A new dossier whose id is the derived one, in the one-clock form."""
    from app.domain.mutations import derived_mutation_id, one_clock

    wire = one_clock(new_dossier(device, ward))
    wire["mutation_id"] = derived_mutation_id(
        wire["entity"], wire["entity_id"], wire["base_version"], wire["hlc"], [*wire["fields"]]
    )
    return wire


def test_a_push_may_leave_out_ids_the_server_derives_and_each_applies_once(api_server):
    from app.domain.mutations import leave_out_derived_id

    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    device = Device()
    full = [_derivable(device, ward) for _ in range(3)]
    bare = [leave_out_derived_id(m) for m in full]
    assert all("mutation_id" not in m for m in bare)
    other = leave_out_derived_id(_derivable(device, ward))
    bad = {**other, "fields": {**other["fields"], "status": {"value": "not a status"}}}
    with api_server.client(officer.token) as client:
        response = client.post(
            "/sync/push", json={"mutations": [bare[0], bad, *bare[1:]], "answer": "summary"}
        )
        assert response.status_code == 200, response.text
        summary = response.json()
        replay = push(client, full)  # the same writes with their ids: answered, not re-applied
        no_clock = {k: v for k, v in new_dossier(device, ward).items() if k != "mutation_id"}
        refused = client.post("/sync/push", json={"mutations": [no_clock]})
    assert "derived_ids" in summary["reads"]
    assert summary["applied"] == [[0, 1], [2, 4]]
    assert [e["index"] for e in summary["exceptions"]] == [1]  # refused alone, by the checks
    assert [r["status"] for r in replay] == ["applied", "applied", "applied"]
    assert _log_rows(api_server, [m["entity_id"] for m in full]) == 3  # one change each
    assert refused.status_code == 422  # no id and no clock to derive it from


def test_a_pull_asked_for_one_clock_carries_a_shared_stamp_once(api_server):
    from app.domain.mutations import PullResponse

    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    plain = new_dossier(Device(), ward)
    with api_server.client(officer.token) as client:
        assert push(client, [plain])[0]["status"] == "applied"
    reader = api_server.enrol(officer.user)
    with api_server.client(reader.token) as client:
        each, _ = pull_all(client)
        one = client.get("/sync/pull", params={"cursor": 0, "limit": 500, "clocks": "one"})
    assert one.status_code == 200, one.text
    [stamped] = [c for c in each if c["entity_id"] == plain["entity_id"]]
    [compact] = [c for c in one.json()["changes"] if c["entity_id"] == plain["entity_id"]]
    assert "hlc" not in stamped and compact["hlc"] == plain["fields"]["status"]["hlc"]
    assert all(set(f) == {"value"} for f in compact["fields"].values())
    read = PullResponse.model_validate(one.json())  # the client reads it as the full form
    [change] = [c for c in read.changes if c.entity_id == plain["entity_id"]]
    assert change.model_dump(mode="json")["fields"] == stamped["fields"]


def test_a_pull_past_ones_own_push_reads_on_in_one_answer(api_server):
    from server.services.sync import PULL_READ_ON

    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    mine = [new_dossier(Device(), ward) for _ in range(6)]
    with api_server.client(officer.token) as client:
        assert {r["status"] for r in push(client, mine)} == {"applied"}
        own = client.get("/sync/pull", params={"cursor": 0, "limit": 2}).json()
        other = new_dossier(Device(), ward)
    reader = api_server.enrol(officer.user)
    with api_server.client(reader.token) as client:
        assert push(client, [other])[0]["status"] == "applied"
    with api_server.client(officer.token) as client:
        after = client.get("/sync/pull", params={"cursor": own["next_cursor"], "limit": 2}).json()
    assert PULL_READ_ON >= 3  # the officer's 6 rows are 3 pages of 2
    assert own["changes"] == [] and own["has_more"] is False  # 3 pages of its own, one answer
    assert own["next_cursor"] > 0
    assert [c["entity_id"] for c in after["changes"]] == [other["entity_id"]]


def test_the_whole_record_is_still_checked_where_the_change_was_checked_already(api_server):
    """The push checks a mutation's values, then the merged record without checking those
    same values again (`validate_record(checked=...)`): a stored value the push did not carry
    (a hostile row) is still refused with its reason, a value that loses the merge is refused
    as before, valid values that make a bad record are refused, and one bad row never fails
    the others of its batch."""
    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    device = Device()
    hostile, later = new_dossier(device, ward, status=2), new_dossier(device, ward, status=4)
    with api_server.client(officer.token) as client:
        assert [r["status"] for r in push(client, [hostile, later])] == ["applied"] * 2
    with api_server.engine.begin() as conn:  # a readable field stored as no device may write
        fields = conn.execute(
            text("SELECT fields FROM record WHERE entity_id = :id"),
            {"id": hostile["entity_id"]},
        ).scalar_one()
        fields = json.loads(fields) if isinstance(fields, str) else dict(fields)
        fields["fee"] = {"value": True, "hlc": "0000000000000001:0000:x", "changed_version": 1}
        conn.execute(
            text("UPDATE record SET fields = :f WHERE entity_id = :id"),
            {"f": json.dumps(fields), "id": hostile["entity_id"]},
        )
    onto_hostile = device.mutation(
        "dossier", hostile["entity_id"], ward, {"status": 4}, base_version=1
    )
    # A newer stamp's valid fee replaces the hostile one: the record passes again.
    mended = device.mutation("dossier", hostile["entity_id"], ward, {"fee": 5}, base_version=1)
    old = Device()
    old.clock = Clock("old", lambda: 1)  # stamps older than every stored one: they lose
    losing_bad = old.mutation(
        "dossier", later["entity_id"], ward, {"fee": "lots"}, base_version=1
    )
    unfinished = device.mutation(
        "dossier",
        later["entity_id"],
        ward,
        {"status": 9, "finished_at": later["fields"]["received_at"]["value"]},
        base_version=1,
    )
    good = new_dossier(device, ward)
    with api_server.client(officer.token) as client:
        results = push(client, [onto_hostile, losing_bad, unfinished, good, mended])
    assert [(r["status"], r["reason"]) for r in results] == [
        ("rejected", "invalid_fields:fee:type"),
        ("rejected", "invalid_fields:fee:type"),
        ("rejected", "result_required"),
        ("applied", None),
        ("applied", None),
    ]
