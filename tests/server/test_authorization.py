"""Authorization matrix: endpoint x role x ward in / out of scope. Nothing out of scope is
readable or writable; a revoked device is refused on its next request."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from tests.server.helpers import Device, new_audit, new_dossier, new_name, new_ward, pull_all, push

ROLES = ("officer", "auditor", "supervisor")


def _upload(client, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    assert client.post("/attachments", json={"sha256": sha, "size": len(data)}).status_code == 200
    done = client.patch(f"/attachments/{sha}", content=data, headers={"Upload-Offset": "0"})
    assert done.json() == {"offset": len(data), "complete": True}
    return sha


@pytest.fixture(scope="module")
def world(sqlite_api_server):
    """Two wards, A and B, each with a dossier, an audit and an audit photo."""
    api = sqlite_api_server
    a, b = new_ward(), new_ward()
    people = {
        f"{role}_{w}": api.enrol(new_name(role), role, [ward])
        for role in ROLES
        for w, ward in (("A", a), ("B", b))
    }
    people["admin"] = api.enrol(new_name("admin"), "admin", ["*"])
    device = Device()
    records = {}
    for w, ward in (("A", a), ("B", b)):
        with api.client(people[f"officer_{w}"].token) as client:
            dossier = new_dossier(device, ward)
            assert push(client, [dossier])[0]["status"] == "applied"
        with api.client(people[f"auditor_{w}"].token) as client:
            audit = new_audit(device, ward, state="submitted")
            sha = _upload(client, os.urandom(3000))
            photo = device.mutation(
                "attachment",
                str(uuid.uuid4()),
                ward,
                {
                    "owner_entity": "audit",
                    "owner_id": audit["entity_id"],
                    "sha256": sha,
                    "size": 3000,
                    "mime": "image/jpeg",
                    "ward_code": ward,
                },
            )
            assert {r["status"] for r in push(client, [audit, photo])} == {"applied"}
        records[w] = {
            "dossier": dossier["entity_id"],
            "audit": audit["entity_id"],
            "attachment": photo["entity_id"],
            "sha": sha,
            "ward": ward,
        }
    return {"api": api, "people": people, "records": records}


VISIBLE = {
    "officer": {"dossier"},
    "auditor": {"audit", "attachment"},
    "supervisor": {"dossier", "audit", "attachment"},
}


@pytest.mark.parametrize("role", ROLES)
def test_pull_shows_only_the_scope(world, role):
    api, rec = world["api"], world["records"]
    # A second device of the same person: the pushing device is not sent its own records back.
    other_device = api.enrol(world["people"][f"{role}_A"].user)
    with api.client(other_device.token) as client:
        changes, _ = pull_all(client)
    seen = {c["entity_id"] for c in changes}
    expected = {rec["A"][kind] for kind in VISIBLE[role]}
    assert seen == expected
    assert {c["ward_code"] for c in changes} == {rec["A"]["ward"]}


def test_admin_with_all_wards_sees_everything(world):
    api, rec = world["api"], world["records"]
    with api.client(world["people"]["admin"].token) as client:
        changes, _ = pull_all(client)
    seen = {c["entity_id"] for c in changes}
    assert {rec[w][k] for w in "AB" for k in ("dossier", "audit", "attachment")} <= seen


@pytest.mark.parametrize("role", [*ROLES, "admin"])
@pytest.mark.parametrize("family", ["dossier", "audit"])
@pytest.mark.parametrize("where", ["A", "B"])
def test_push_matrix(world, role, family, where):
    api, rec = world["api"], world["records"]
    person = world["people"]["admin" if role == "admin" else f"{role}_A"]
    ward = rec[where]["ward"]
    device = Device()
    create = new_dossier(device, ward) if family == "dossier" else new_audit(device, ward)
    update = device.mutation(family, rec[where][family], ward, {"notes": "sửa"}, base_version=1)
    before = api.count("change_log")
    with api.client(person.token) as client:
        results = push(client, [create, update])
    in_scope = where == "A" or role == "admin"
    allowed = role in ("supervisor", "admin") or VISIBLE[role] >= {family}
    if in_scope and allowed:
        assert [r["status"] for r in results] == ["applied", "applied"]
        assert api.count("change_log") == before + 2
    else:
        reason = "ward_out_of_scope" if not in_scope else "role_not_permitted"
        assert [r["reason"] for r in results] == [reason, reason]
        assert api.count("change_log") == before


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("auditor_A", 200),
        ("supervisor_A", 200),
        ("admin", 200),
        ("officer_A", 404),
        ("auditor_B", 404),
        ("supervisor_B", 404),
    ],
)
def test_attachment_download_needs_a_record_in_scope(world, who, status):
    api, sha = world["api"], world["records"]["A"]["sha"]
    with api.client(world["people"][who].token) as client:
        response = client.get(f"/attachments/{sha}")
    assert response.status_code == status
    if status == 200:
        assert hashlib.sha256(response.content).hexdigest() == sha
    else:
        assert response.json()["error"]["code"] == "attachment_not_found"


@pytest.mark.parametrize(
    ("who", "status"),
    [("officer_A", 403), ("auditor_A", 403), ("supervisor_A", 200), ("admin", 200)],
)
def test_reviews_are_for_reviewers_in_scope(world, who, status):
    api, rec = world["api"], world["records"]
    with api.client(world["people"][who].token) as client:
        listing = client.get("/reviews", params={"state": "submitted"})
        out_of_scope = client.post(
            f"/reviews/{rec['B']['audit']}", json={"decision": "approved", "comment": "ok"}
        )
    assert listing.status_code == status
    if status == 200:
        ids = {a["audit_id"] for a in listing.json()["audits"]}
        assert rec["A"]["audit"] in ids
        assert (rec["B"]["audit"] in ids) == (who == "admin")
        if who == "supervisor_A":
            assert out_of_scope.status_code == 404
    else:
        assert listing.json()["error"]["code"] == "forbidden"
        assert out_of_scope.status_code == 403


@pytest.mark.parametrize("who", ["officer_A", "auditor_A", "supervisor_A"])
def test_admin_endpoints_refuse_non_admins(world, who):
    api = world["api"]
    with api.client(world["people"][who].token) as client:
        assert client.get("/admin/devices").status_code == 403
        created = client.post(
            "/admin/users", json={"username": new_name("x"), "role": "admin", "wards": ["*"]}
        )
        assert created.status_code == 403
        assert client.post("/admin/enrol-codes", json={"username": who}).status_code == 403


ENDPOINTS = [
    ("GET", "/sync/pull", None),
    ("POST", "/sync/push", {"mutations": []}),
    ("POST", "/attachments", {"sha256": "a" * 64, "size": 1}),
    ("GET", "/attachments/" + "a" * 64, None),
    ("GET", "/reviews", None),
    ("GET", "/admin/devices", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_no_or_bad_token_is_401(world, method, path, body, token):
    with world["api"].client(token) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_revoked_device_is_refused_on_next_request(world):
    api = world["api"]
    victim = api.enrol(new_name("lost"), "auditor", [world["records"]["A"]["ward"]])
    with api.client(victim.token) as client:
        assert client.get("/sync/pull").status_code == 200
        with api.client(world["people"]["admin"].token) as admin:
            revoked = admin.post(f"/admin/devices/{victim.device_id}/revoke")
            assert revoked.status_code == 200 and revoked.json()["revoked"] is True
        for method, path, body in ENDPOINTS:
            response = client.request(method, path, json=body)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "device_revoked"
