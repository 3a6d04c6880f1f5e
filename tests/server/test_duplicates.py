"""The ward-wide duplicate check over HTTP, against a real API process: found in the caller's
wards by keyed term, nothing beyond its scope, never the ID number stored or sent."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.domain.duplicates import id_term
from tests.server.helpers import PROCEDURE, Device, new_dossier, new_name, new_ward, push

ID_NUMBER = "001099012345"


def _keys(client, *wards: str) -> dict:
    answer = client.get("/counter/index-keys", params={"ward": list(wards)})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _check(client, keys: dict, id_number: str, procedure: str = PROCEDURE):
    terms = {w: id_term(bytes.fromhex(k), id_number) for w, k in keys["wards"].items()}
    body = {"procedure_code": procedure, "key_id": keys["key_id"], "terms": terms}
    return client.post("/counter/duplicates", json=body)


@pytest.fixture(scope="module")
def ward_world(api_server):
    api = api_server
    a, b = new_ward(), new_ward()
    people = {
        "a1": api.enrol(new_name("officer"), "officer", [a]),
        "a2": api.enrol(new_name("officer"), "officer", [a]),
        "b": api.enrol(new_name("officer"), "officer", [b]),
        "auditor": api.enrol(new_name("auditor"), "auditor", [a]),
    }
    device = Device()
    open_one = new_dossier(device, a, status=2, applicant_id_number=ID_NUMBER)
    closed = new_dossier(
        device,
        a,
        status=10,
        applicant_id_number="001099099999",
        finished_at=open_one["fields"]["received_at"]["value"],
        returned_at=open_one["fields"]["received_at"]["value"],
        result="Giấy xác nhận",
    )
    with api.client(people["a1"].token) as client:
        answers = push(client, [open_one, closed])
    assert [r["status"] for r in answers] == ["applied", "applied"], answers
    return {"api": api, "a": a, "b": b, "people": people, "open": open_one}


def test_a_second_device_of_the_ward_is_told_the_code_and_day(ward_world):
    w = ward_world
    with w["api"].client(w["people"]["a2"].token) as client:
        keys = _keys(client, w["a"])
        assert set(keys["wards"]) == {w["a"]}
        answer = _check(client, keys, "0010 9901 2345")  # spaces: the digits count
    assert answer.status_code == 200
    [found] = answer.json()["duplicates"]
    assert found["code"] == w["open"]["fields"]["code"]["value"]
    assert found["ward_code"] == w["a"]
    assert len(found["received_day"]) == 10
    assert set(found) == {"code", "received_day", "ward_code"}  # no name, no number


def test_closed_dossiers_other_procedures_and_other_numbers_are_not_duplicates(ward_world):
    w = ward_world
    with w["api"].client(w["people"]["a2"].token) as client:
        keys = _keys(client, w["a"])
        assert _check(client, keys, "001099099999").json()["duplicates"] == []  # returned
        assert _check(client, keys, ID_NUMBER, "1.001612").json()["duplicates"] == []
        assert _check(client, keys, "001099012346").json()["duplicates"] == []


def test_another_ward_gets_no_key_and_no_answer_for_ward_a(ward_world):
    w = ward_world
    with w["api"].client(w["people"]["a2"].token) as client:
        a_keys = _keys(client, w["a"])
    with w["api"].client(w["people"]["b"].token) as client:
        assert _keys(client, w["a"])["wards"] == {}  # out of scope: left out
        assert set(_keys(client)["wards"]) == {w["b"]}  # no ward asked: its own
        # Even holding ward A's key (a leaked one), ward B's officer learns nothing of A.
        assert _check(client, a_keys, ID_NUMBER).json()["duplicates"] == []


def test_stale_key_id_bad_terms_and_other_roles_are_refused(ward_world):
    w = ward_world
    with w["api"].client(w["people"]["a2"].token) as client:
        keys = _keys(client, w["a"])
        stale = client.post(
            "/counter/duplicates",
            json={
                "procedure_code": PROCEDURE,
                "key_id": "000000000000",
                "terms": {w["a"]: "0" * 32},
            },
        )
        assert stale.status_code == 409
        assert stale.json()["error"]["code"] == "stale_index_key"
        plain = client.post(
            "/counter/duplicates",
            json={
                "procedure_code": PROCEDURE,
                "key_id": keys["key_id"],
                "terms": {w["a"]: ID_NUMBER},
            },
        )
        assert plain.status_code == 422  # a plain number is not a term
    with w["api"].client(w["people"]["auditor"].token) as client:
        assert client.get("/counter/index-keys").status_code == 403


def test_the_server_stores_a_term_never_the_number(ward_world):
    w = ward_world
    entity_id = w["open"]["entity_id"]
    with w["api"].engine.connect() as conn:
        row = (
            conn.execute(text("SELECT * FROM dossier_fact WHERE entity_id = :i"), {"i": entity_id})
            .mappings()
            .one()
        )
        record = conn.execute(
            text("SELECT fields FROM record WHERE entity_id = :i"), {"i": entity_id}
        ).scalar_one()
    assert len(row["id_term"]) == 32
    assert ID_NUMBER not in " ".join(str(v) for v in row.values())
    assert ID_NUMBER not in str(record)  # sealed at rest
