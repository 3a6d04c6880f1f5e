"""The real server checks whole records against the domain, on SQLite and PostgreSQL: what it
refuses is refused with a stable reason and nothing of it is stored; what it stores, every
other device can pull and read."""

from __future__ import annotations

import json
import unicodedata
import uuid

from app.domain import audit as A
from app.domain.models import Dossier
from app.storage import KeySettings, create_store
from tests.server.helpers import Device, new_audit, new_dossier, new_ward, pull_all, push

TEST_KEYS = KeySettings.for_tests(base_delay_s=0.0)


def _people(api, ward: str) -> dict:
    return {
        "officer": api.enrol(f"officer_{uuid.uuid4().hex[:8]}", "officer", [ward]),
        "reader": api.enrol(f"reader_{uuid.uuid4().hex[:8]}", "officer", [ward]),
        "auditor": api.enrol(f"auditor_{uuid.uuid4().hex[:8]}", "auditor", [ward]),
        "supervisor": api.enrol(f"sup_{uuid.uuid4().hex[:8]}", "supervisor", [ward]),
    }


def _pulled(api, token: str) -> dict[str, dict]:
    with api.client(token) as client:
        changes, _ = pull_all(client)
    return {c["entity_id"]: {k: v["value"] for k, v in c["fields"].items()} for c in changes}


def test_dossiers_breaking_a_rule_are_refused_and_nothing_is_stored(api_server):
    ward = new_ward()
    people = _people(api_server, ward)
    device = Device()
    good = new_dossier(device, ward)
    missing_date = new_dossier(device, ward)
    del missing_date["fields"]["appointment_date"]
    bad = {
        "required:appointment_date": missing_date,
        "appointment_date_mismatch": new_dossier(device, ward, appointment_date="2099-12-31"),
        "unknown_procedure": new_dossier(device, ward, procedure_code="9.999999"),
        "code_format": new_dossier(device, ward, code="HS-0001"),
        "invalid_record:documents.0": new_dossier(device, ward, documents=[{"name": ""}]),
    }
    before = [api_server.count(t) for t in ("record", "change_log", "audit_log")]
    with api_server.client(people["officer"].token) as client:
        results = push(client, list(bad.values()))
        after = [api_server.count(t) for t in ("record", "change_log", "audit_log")]
        assert push(client, [good])[0]["status"] == "applied"
    assert [(r["status"], r["reason"]) for r in results] == [
        ("rejected", reason) for reason in bad
    ]
    assert after == before
    pulled = _pulled(api_server, people["reader"].token)
    assert set(pulled) == {good["entity_id"]}
    Dossier(id=good["entity_id"], **pulled[good["entity_id"]])  # readable on every device


def test_a_register_imported_in_process_syncs_with_its_history(api_server, tmp_path):
    ward = new_ward()
    people = _people(api_server, ward)
    store = create_store(tmp_path / "device", "2468", settings=TEST_KEYS)
    try:
        report = store.dossiers.import_rows(
            [
                {
                    "procedure_code": "1.000894",
                    "ward_code": ward,
                    "applicant_name": "Ngô Văn Lâm",
                    "received_at": "2025-11-20T08:30:00+07:00",
                    "status": "4",
                }
            ]
        )
        assert (report.imported, report.errors) == (1, [])
        mutations = [
            m.model_dump(mode="json") | {"device_id": people["officer"].device_id}
            for m in store.sync.pending_mutations()
        ]
    finally:
        store.close()
    with api_server.client(people["officer"].token) as client:
        results = push(client, mutations)
    assert [r["status"] for r in results] == ["applied"] * 3, results
    pulled = _pulled(api_server, people["reader"].token)
    dossiers = [v for v in pulled.values() if "code" in v]
    events = {(v.get("from_status"), v["to_status"]) for v in pulled.values() if "to_status" in v}
    assert [d["status"] for d in dossiers] == [4]
    assert events == {(None, 2), (2, 4)}


def test_audit_answers_are_checked_and_the_score_is_the_servers(api_server):
    ward = new_ward()
    people = _people(api_server, ward)
    device = Device()
    answers = {
        "answers.personnel.it_officer": {"value": True},
        "answers.equipment.digital_signature_pct": {"value": 50},
    }
    honest = new_audit(device, ward, score=99.5, **answers)
    percent = "answers.equipment.digital_signature_pct"
    too_much = new_audit(device, ward, **{percent: {"value": 150}})
    with api_server.client(people["auditor"].token) as client:
        results = push(client, [honest, too_much])
    assert results[0]["status"] == "applied"
    assert results[1]["reason"] == "invalid_answer:equipment.digital_signature_pct:out_of_range"
    expected = A.score(
        A.template(),
        {"personnel.it_officer": {"value": True}, "equipment.digital_signature_pct": {"value": 50}},
    ).total
    assert expected != 99.5
    for who in ("supervisor", "auditor"):  # the writer gets the server's score back too
        pulled = _pulled(api_server, people[who].token)
        assert set(pulled) == {honest["entity_id"]}
        assert pulled[honest["entity_id"]]["score"] == expected


def test_text_is_checked_and_stored_nfc(api_server):
    ward = new_ward()
    people = _people(api_server, ward)
    device = Device()
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Hương")
    nfc = new_dossier(device, ward, applicant_name=decomposed)
    surrogate = new_dossier(device, ward, notes="a\ud800b")
    control = new_dossier(device, ward, notes="bell\x07")
    bad_id = device.mutation("dossier", "id\ud800", ward, {"status": 1})
    with api_server.client(people["officer"].token) as client:
        # Lone surrogates only travel as JSON escapes (no UTF-8 can carry them).
        body = json.dumps({"mutations": [nfc, surrogate, control]}).encode()
        response = client.post(
            "/sync/push", content=body, headers={"Content-Type": "application/json"}
        )
        refused = client.post(
            "/sync/push",
            content=json.dumps({"mutations": [bad_id]}).encode(),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
    assert [(r["status"], r["reason"]) for r in response.json()["results"]] == [
        ("applied", None),
        ("rejected", "invalid_fields:notes:lone_surrogate"),
        ("rejected", "invalid_fields:notes:control_char"),
    ]
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "validation_error"
    pulled = _pulled(api_server, people["reader"].token)
    assert pulled[nfc["entity_id"]]["applicant_name"] == "Nguyễn Thị Hương" != decomposed
