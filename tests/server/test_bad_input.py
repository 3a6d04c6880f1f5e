"""Bad input never yields a 5xx, in particular on PostgreSQL, whose text cannot hold NUL
characters and whose json type refuses NaN: such values are refused before they reach SQL."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import DataError

from server.core.config import Settings
from server.main import create_app
from tests.server.helpers import Device, new_audit, new_dossier, new_name, new_ward, push

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def people(postgres_api_server):
    api = postgres_api_server
    ward = new_ward()
    return {
        "api": api,
        "ward": ward,
        "officer": api.enrol(new_name("officer"), "officer", [ward]),
        "auditor": api.enrol(new_name("auditor"), "auditor", [ward]),
        "admin": api.enrol(new_name("admin"), "admin", ["*"]),
    }


def _assert_validation_error(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert "NUL" in response.text


def _push_lenient(client: httpx.Client, mutations: list[dict]) -> list[dict]:
    """Push with Python's lenient JSON (NaN, Infinity), as a careless client might send it."""
    body = json.dumps({"mutations": mutations}, allow_nan=True)
    response = client.post("/sync/push", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_nul_in_strings_that_reach_sql_is_a_422(people):
    api, ward = people["api"], people["ward"]
    device = Device()
    nul_id = device.mutation("dossier", "a\x00b", ward, {"status": 1, "ward_code": ward})
    nul_ward = new_dossier(device, "0\x000")
    with api.client(people["admin"].token) as admin:
        for bad in (nul_id, nul_ward):
            _assert_validation_error(admin.post("/sync/push", json={"mutations": [bad]}))
        _assert_validation_error(admin.post("/admin/devices/a%00b/revoke"))
        _assert_validation_error(admin.post("/reviews/a%00b", json={"decision": "approved"}))
        _assert_validation_error(
            admin.post("/reviews/bulk", json={"audit_ids": ["a\x00"], "decision": "approved"})
        )
        _assert_validation_error(admin.post("/admin/enrol-codes", json={"username": "x\x00"}))
    with api.client() as anonymous:
        _assert_validation_error(
            anonymous.post("/auth/login", json={"username": "a\x00b", "password": "x"})
        )
        _assert_validation_error(
            anonymous.post("/auth/enrol", json={"code": "AAAA", "device_name": "tab\x00let"})
        )


def test_nul_and_nan_in_field_values_are_rejected_mutations(people):
    api, ward = people["api"], people["ward"]
    device = Device()
    records_before = api.count("record")
    with api.client(people["officer"].token) as officer:
        dossier_results = push(
            officer,
            [
                new_dossier(device, ward, notes="a\x00b"),
                new_dossier(device, ward, documents=[{"name": "x\x00"}]),
            ],
        )
    with api.client(people["auditor"].token) as auditor:
        audit_results = _push_lenient(
            auditor,
            [
                new_audit(device, ward, score=float("nan")),
                new_audit(device, ward, score=float("inf")),
                new_audit(device, ward, position={"lat": float("nan"), "lon": 105.8}),
            ],
        )
        fine = push(auditor, [new_audit(device, ward, score=87.5)])
    assert [r["reason"] for r in dossier_results] == [
        "invalid_fields:notes:nul_char",
        "invalid_fields:documents:nul_char",
    ]
    assert [r["reason"] for r in audit_results] == [
        "invalid_fields:score:not_finite",
        "invalid_fields:score:not_finite",
        "invalid_fields:position:not_finite",
    ]
    assert fine[0]["status"] == "applied"
    assert api.count("record") == records_before + 1


def test_a_value_the_database_refuses_is_a_json_422(tmp_path):
    app = create_app(Settings(data_dir=tmp_path))

    @app.get("/refused-by-the-database")
    def refused() -> None:
        raise DataError("INSERT ...", {}, ValueError("invalid input syntax for type json"))

    with TestClient(app) as client:
        response = client.get("/refused-by-the-database")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_data"
