"""Push answers kept by the batch id the client gave (issue 13): a device whose answer was lost
asks POST /sync/batches and gets the very answer, refusals included; it never learns another
device's batches; each device keeps only its last few; hostile asks are refused whole.

Runs against SQLite and PostgreSQL (the `api_server` fixture is parametrized)."""

from __future__ import annotations

from sqlalchemy import text

from app.domain.mutations import MAX_BATCH_IDS
from server.services.sync import KEPT_BATCHES
from tests.server.helpers import Device, new_dossier, new_ward
from tests.server.test_push_batch import _mixed_batch


def _push(client, mutations: list[dict], batch: str) -> dict:
    body = {"mutations": mutations, "answer": "summary", "batch": batch}
    response = client.post("/sync/push", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _asked(client, ids: list[str]) -> dict:
    response = client.post("/sync/batches", json={"ids": ids})
    assert response.status_code == 200, response.text
    return response.json()["batches"]


def _kept_rows(api_server, device_id: str) -> list[str]:
    with api_server.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT batch_id FROM push_batch WHERE device_id = :d ORDER BY id"),
            {"d": device_id},
        ).all()
    return [r[0] for r in rows]


def test_a_committed_batch_is_answered_again_with_its_refusals(api_server):
    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    batch, expected = _mixed_batch(api_server, ward, Device())
    with api_server.client(officer.token) as client:
        answer = _push(client, batch, "lost-1")
        assert "batches" in answer["reads"]
        kept = _asked(client, ["lost-1", "never-sent"])
    assert set(kept) == {"lost-1"}  # an id it does not know is left out
    assert kept["lost-1"]["applied"] == answer["applied"]
    assert kept["lost-1"]["exceptions"] == answer["exceptions"]  # the refusals, with reasons
    assert len(answer["exceptions"]) == expected.count("rejected")
    assert all(e["reason"] for e in kept["lost-1"]["exceptions"])


def test_another_device_never_learns_a_batch_it_did_not_push(api_server):
    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    other = api_server.enrol(f"other_{ward}", "officer", [ward])
    device = Device()
    with api_server.client(officer.token) as client:
        _push(client, [new_dossier(device, ward)], "shared-id")
    with api_server.client(other.token) as client:
        assert _asked(client, ["shared-id"]) == {}
        # The same id from the other device is its own batch: both stay apart.
        _push(client, [new_dossier(device, ward)], "shared-id")
        mine = _asked(client, ["shared-id"])
    with api_server.client(officer.token) as client:
        theirs = _asked(client, ["shared-id"])
    assert mine["shared-id"]["applied"] == [[0, 1]] == theirs["shared-id"]["applied"]
    with api_server.client() as anonymous:
        assert anonymous.post("/sync/batches", json={"ids": ["shared-id"]}).status_code == 401


def test_each_device_keeps_only_its_last_batches(api_server):
    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    device = Device()
    ids = [f"b{i}" for i in range(KEPT_BATCHES + 3)]
    with api_server.client(officer.token) as client:
        for batch_id in ids:
            _push(client, [new_dossier(device, ward)], batch_id)
        first = new_dossier(device, ward)
        _push(client, [first], "again")
        _push(client, [first], "again")  # a replay under the same id: answered, kept once
        asked = _asked(client, ids[:3] + ids[-2:] + ["again"])
    device_id = officer.device_id
    kept = _kept_rows(api_server, device_id)
    assert KEPT_BATCHES - 1 <= len(kept) <= KEPT_BATCHES
    assert kept[-1] == "again" and kept.count("again") == 1 and ids[-1] in kept
    assert set(asked) == {ids[-2], ids[-1], "again"}  # the oldest are gone


def test_a_hostile_ask_is_refused_whole(api_server):
    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    with api_server.client(officer.token) as client:
        too_many = [f"id{i}" for i in range(MAX_BATCH_IDS + 1)]
        for body in (
            {"ids": too_many},
            {"ids": ["x" * 41]},
            {"ids": ["../etc"]},
            {"ids": ["a b"]},
            {"ids": [""]},
            {"ids": [7]},
            {"ids": "b1"},
            {},
        ):
            response = client.post("/sync/batches", json=body)
            assert response.status_code == 422, (body, response.text)
        bad = {"mutations": [new_dossier(Device(), ward)], "batch": "no spaces allowed"}
        assert client.post("/sync/push", json=bad).status_code == 422
        assert _asked(client, too_many[:MAX_BATCH_IDS]) == {}


def test_an_older_client_without_batch_ids_is_answered_as_before(api_server):
    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    with api_server.client(officer.token) as client:
        response = client.post("/sync/push", json={"mutations": [new_dossier(Device(), ward)]})
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "applied"
    assert _kept_rows(api_server, officer.device_id) == []
