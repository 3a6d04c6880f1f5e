"""The append-only audit log says who, from which device, when and what: readable fields with
their new values, personal fields by name only; admin actions with the acting user and device."""

from __future__ import annotations

import json
from types import SimpleNamespace

from sqlalchemy import text

from tests.server.helpers import Device, new_dossier, new_name, new_ward, push


def _rows(api, where: str, **params) -> list:
    with api.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT user_id, username, device_id, action, entity_id, version, detail "
                f"FROM audit_log WHERE {where} ORDER BY id"
            ),
            params,
        ).all()
    return [SimpleNamespace(**{**r._mapping, "detail": _json(r.detail)}) for r in rows]


def _json(value):
    return value if isinstance(value, dict) else json.loads(value)


def _user_id(api, username: str) -> int:
    with api.engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM app_user WHERE username = :u"), {"u": username}
        ).scalar_one()


def test_change_rows_hold_readable_values_and_only_the_names_of_personal_fields(api_server):
    api, ward = api_server, new_ward()
    officer = api.enrol(new_name("officer"), "officer", [ward])
    device = Device()
    create = new_dossier(
        device, ward, applicant_name="Nguyễn Thị Hoà", applicant_id_number="001190012345"
    )
    dossier_id = create["entity_id"]
    with api.client(officer.token) as client:
        push(client, [create])
        push(client, [device.mutation("dossier", dossier_id, ward, {"status": 2}, 1)])
    rows = _rows(api, "entity_id = :id", id=dossier_id)
    assert [(r.action, r.version) for r in rows] == [("change", 1), ("change", 2)]
    assert {(r.user_id, r.device_id) for r in rows} == {
        (_user_id(api, officer.user), officer.device_id)
    }
    first, second = (r.detail for r in rows)
    fields = create["fields"]
    assert first["fields"] == sorted(fields)
    readable = ["appointment_date", "channel", "code", "procedure_code", "received_at",
                "status", "ward_code"]
    assert first["values"] == {name: fields[name]["value"] for name in readable}
    assert second["values"] == {"status": 2}
    logged = json.dumps([r.detail for r in rows], ensure_ascii=False)
    assert "Nguyễn" not in logged and "001190012345" not in logged


def test_admin_actions_record_the_acting_user_and_device(api_server):
    api, ward = api_server, new_ward()
    admin = api.enrol(new_name("admin"), "admin", [ward])
    officer = api.enrol(new_name("officer"), "officer", [ward])
    created = new_name("officer")
    with api.client(admin.token) as client:
        assert (
            client.post(
                "/admin/users", json={"username": created, "role": "officer", "wards": [ward]}
            ).status_code
            == 201
        )
        assert client.post("/admin/enrol-codes", json={"username": created}).status_code == 201
        assert client.post(f"/admin/devices/{officer.device_id}/revoke").status_code == 200
    rows = _rows(api, "username = :u", u=admin.user)
    actions = [(r.action, r.user_id, r.device_id) for r in rows if r.action != "enrol"]
    admin_id = _user_id(api, admin.user)
    assert actions == [
        ("create_user", admin_id, admin.device_id),
        ("enrol_code", admin_id, admin.device_id),
        ("revoke_device", admin_id, admin.device_id),
    ]
    assert rows[-1].detail == {"device": officer.device_id, "user": officer.user}
    assert rows[-3].detail == {"user": created, "role": "officer", "wards": [ward]}
