"""Authorization matrix: endpoint x role x ward in / out of scope, on SQLite and PostgreSQL.
Nothing out of scope is readable or writable; a revoked device is refused on its next request."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
from starlette.routing import Match

from server.core.config import Settings
from server.main import create_app
from tests.server.helpers import Device, new_audit, new_dossier, new_name, new_ward, pull_all, push

ROLES = ("officer", "auditor", "supervisor")


def _upload(client, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    assert client.post("/attachments", json={"sha256": sha, "size": len(data)}).status_code == 200
    done = client.patch(f"/attachments/{sha}", content=data, headers={"Upload-Offset": "0"})
    assert done.json() == {"offset": len(data), "complete": True}
    return sha


def _attachment(device: Device, ward: str, owner: str, owner_id: str, sha: str) -> dict:
    fields = {
        "owner_entity": owner,
        "owner_id": owner_id,
        "sha256": sha,
        "size": 3000,
        "mime": "image/jpeg",
        "ward_code": ward,
    }
    return device.mutation("attachment", str(uuid.uuid4()), ward, fields)


@pytest.fixture(scope="module")
def world(api_server):
    """Two wards, A and B, each with a dossier, an audit and an audit photo; on both engines
    (the whole matrix, as it adds only seconds on PostgreSQL)."""
    api = api_server
    a, b = new_ward(), new_ward()
    people = {
        f"{role}_{w}": api.enrol(new_name(role), role, [ward])
        for role in ROLES
        for w, ward in (("A", a), ("B", b))
    }
    people["admin"] = api.enrol(new_name("admin"), "admin", ["*"])
    people["admin_A"] = api.enrol(new_name("admin"), "admin", [a])  # a ward-scoped admin
    people["auditor_A_tablet2"] = api.enrol(people["auditor_A"].user)  # same user, 2nd device
    device = Device()
    records = {}
    for w, ward in (("A", a), ("B", b)):
        with api.client(people[f"officer_{w}"].token) as client:
            dossier = new_dossier(device, ward)
            assert push(client, [dossier])[0]["status"] == "applied"
        with api.client(people[f"auditor_{w}"].token) as client:
            audit = new_audit(device, ward, state="submitted")
            data = os.urandom(3000)
            sha = _upload(client, data)
            photo = _attachment(device, ward, "audit", audit["entity_id"], sha)
            assert {r["status"] for r in push(client, [audit, photo])} == {"applied"}
        records[w] = {
            "dossier": dossier["entity_id"],
            "audit": audit["entity_id"],
            "attachment": photo["entity_id"],
            "sha": sha,
            "data": data,
            "ward": ward,
        }
    # An upload auditor_A started and left half done (4,000 bytes declared, 2,000 sent).
    pending = os.urandom(4000)
    records["pending_sha"] = hashlib.sha256(pending).hexdigest()
    with api.client(people["auditor_A"].token) as client:
        client.post("/attachments", json={"sha256": records["pending_sha"], "size": 4000})
        half = client.patch(
            f"/attachments/{records['pending_sha']}",
            content=pending[:2000],
            headers={"Upload-Offset": "0"},
        )
        assert half.json() == {"offset": 2000, "complete": False}
    return {"api": api, "people": people, "records": records}


VISIBLE = {
    "officer": {"dossier"},
    "auditor": {"audit", "attachment"},
    "supervisor": {"audit", "attachment"},  # dossiers only as report snapshots
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


@pytest.mark.parametrize("who", [*(f"{r}_A" for r in ROLES), "admin", "admin_A"])
def test_every_enrolled_role_reads_the_reference_data(world, who):
    """The catalogue and calendar are the province's, the same for every ward and role."""
    with world["api"].client(world["people"][who].token) as client:
        answer = client.get("/sync/reference", params={"catalogue": 0, "calendar": 0})
    assert answer.status_code == 200
    assert set(answer.json()) == {"catalogue", "calendar", "reads"}


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
    allowed = role == "admin" or VISIBLE[role] >= {family}
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
    ("who", "allowed"),
    [
        ("auditor_A", True),
        ("auditor_A_tablet2", True),  # the same user on another device resumes the upload
        ("auditor_B", False),
        ("officer_A", False),
        ("supervisor_A", False),
        ("admin", False),
    ],
)
def test_upload_offset_and_append_only_for_the_uploader(world, who, allowed):
    api, sha = world["api"], world["records"]["pending_sha"]
    with api.client(world["people"][who].token) as client:
        offset = client.get(f"/attachments/{sha}/offset")
        # Owners get a 409 at a wrong offset (state untouched); others a 404 even at the right one.
        chunk = client.patch(
            f"/attachments/{sha}",
            content=b"x" * 100,
            headers={"Upload-Offset": "0" if allowed else "2000"},
        )
        declared = client.post("/attachments", json={"sha256": sha, "size": 4000})
    if allowed:
        assert offset.json() == {"offset": 2000, "size": 4000, "complete": False}
        assert chunk.status_code == 409 and chunk.json()["error"]["offset"] == 2000
        assert declared.json() == {"offset": 2000, "complete": False}
    else:
        assert offset.status_code == chunk.status_code == 404
        assert offset.json()["error"]["code"] == chunk.json()["error"]["code"] == "upload_not_found"
        # Someone else's upload in progress is not shown: their own starts at 0, as for any file.
        assert declared.json() == {"offset": 0, "complete": False}
    with api.client(world["people"]["auditor_A"].token) as owner:
        assert owner.get(f"/attachments/{sha}/offset").json()["offset"] == 2000


def _upload_answers(client, sha: str, size: int) -> list:
    """Everything the upload routes say about a file before any byte is sent by the caller."""
    before = client.get(f"/attachments/{sha}/offset")
    early_chunk = client.patch(f"/attachments/{sha}", content=b"x", headers={"Upload-Offset": "0"})
    declared = client.post("/attachments", json={"sha256": sha, "size": size})
    after = client.get(f"/attachments/{sha}/offset")
    wrong = client.patch(f"/attachments/{sha}", content=b"x", headers={"Upload-Offset": "5"})
    download = client.get(f"/attachments/{sha}")
    answers = [before, early_chunk, declared, after, wrong, download]
    return [(r.status_code, r.json(), r.headers.get("Upload-Offset")) for r in answers]


# Who holds no readable record of ward A's audit photo: other wards, and ward A's officer.
OUTSIDERS_OF_THE_PHOTO = ["officer_B", "auditor_B", "supervisor_B", "officer_A"]


@pytest.mark.parametrize("who", OUTSIDERS_OF_THE_PHOTO)
def test_the_upload_routes_say_of_a_file_held_elsewhere_what_they_say_of_an_unknown_one(world, who):
    api, sha = world["api"], world["records"]["A"]["sha"]
    unknown = hashlib.sha256(os.urandom(3000)).hexdigest()
    with api.client(world["people"][who].token) as client:
        held_elsewhere = _upload_answers(client, sha, 3000)
        never_seen = _upload_answers(client, unknown, 3000)
    assert held_elsewhere == never_seen
    assert held_elsewhere[2][1] == {"offset": 0, "complete": False}
    assert held_elsewhere[5][1]["error"]["code"] == "attachment_not_found"


@pytest.mark.parametrize("who", ["officer_B", "auditor_B"])
def test_naming_another_wards_file_in_a_record_of_ones_own_ward_reads_nothing(world, who):
    api, rec = world["api"], world["records"]
    family = "dossier" if who.startswith("officer") else "audit"
    sha, unknown = rec["A"]["sha"], hashlib.sha256(os.urandom(3000)).hexdigest()
    device = Device()
    naming = _attachment(device, rec["B"]["ward"], family, rec["B"][family], sha)
    naming_unknown = _attachment(device, rec["B"]["ward"], family, rec["B"][family], unknown)
    with api.client(world["people"][who].token) as client:
        # The push takes the record as it takes one naming a file still to come: no oracle.
        assert [r["status"] for r in push(client, [naming, naming_unknown])] == ["applied"] * 2
        stolen, missing = client.get(f"/attachments/{sha}"), client.get(f"/attachments/{unknown}")
    assert stolen.status_code == missing.status_code == 404
    assert stolen.json() == missing.json()
    for reader in ("supervisor_B", "admin_A"):  # ward B's other readers, a ward-A admin
        with api.client(world["people"][reader].token) as client:
            response = client.get(f"/attachments/{sha}")
        assert response.status_code == (200 if reader == "admin_A" else 404)
    with api.client(world["people"]["auditor_A"].token) as client:
        assert client.get(f"/attachments/{sha}").content == rec["A"]["data"]


def test_a_scope_gets_a_file_held_elsewhere_only_by_sending_all_its_bytes(world):
    """A ward-C officer names ward A's photo in a dossier attachment of ward C: nothing; once he
    has sent every byte (verified), his ward holds the file like any he uploaded."""
    api, rec = world["api"], world["records"]
    ward = new_ward()
    officer, colleague = (api.enrol(new_name("officer"), "officer", [ward]) for _ in range(2))
    device = Device()
    dossier = new_dossier(device, ward)
    naming = _attachment(device, ward, "dossier", dossier["entity_id"], rec["A"]["sha"])
    sha, data = rec["A"]["sha"], rec["A"]["data"]
    with api.client(officer.token) as client:
        assert [r["status"] for r in push(client, [dossier, naming])] == ["applied"] * 2
        assert client.get(f"/attachments/{sha}").status_code == 404
        assert client.post("/attachments", json={"sha256": sha, "size": 3000}).json() == {
            "offset": 0,
            "complete": False,
        }
        half = client.patch(
            f"/attachments/{sha}", content=data[:1500], headers={"Upload-Offset": "0"}
        )
        assert half.json() == {"offset": 1500, "complete": False}
        assert client.get(f"/attachments/{sha}").status_code == 404  # half is not all
        rest = client.patch(
            f"/attachments/{sha}", content=data[1500:], headers={"Upload-Offset": "1500"}
        )
        assert rest.json() == {"offset": 3000, "complete": True}
        assert client.get(f"/attachments/{sha}").content == data
    with api.client(colleague.token) as client:  # the ward's other officer reads it too
        assert client.get(f"/attachments/{sha}").content == data
        assert client.post("/attachments", json={"sha256": sha, "size": 3000}).json() == {
            "offset": 3000,
            "complete": True,
        }


def test_within_one_ward_a_file_stays_in_its_family(world):
    """A ward's officer names the ward's audit photo in a dossier attachment: nothing; the
    ward's supervisor reads it through the audit's record."""
    api = world["api"]
    ward = new_ward()
    auditor = api.enrol(new_name("auditor"), "auditor", [ward])
    officer = api.enrol(new_name("officer"), "officer", [ward])
    supervisor = api.enrol(new_name("supervisor"), "supervisor", [ward])
    device = Device()
    audit, dossier = new_audit(device, ward), new_dossier(device, ward)
    with api.client(auditor.token) as client:
        data = os.urandom(3000)
        sha = _upload(client, data)
        photo = _attachment(device, ward, "audit", audit["entity_id"], sha)
        assert [r["status"] for r in push(client, [audit, photo])] == ["applied"] * 2
    with api.client(officer.token) as client:
        naming = _attachment(device, ward, "dossier", dossier["entity_id"], sha)
        assert [r["status"] for r in push(client, [dossier, naming])] == ["applied"] * 2
        assert client.get(f"/attachments/{sha}").status_code == 404
        assert client.post("/attachments", json={"sha256": sha, "size": 3000}).json() == {
            "offset": 0,
            "complete": False,
        }
    with api.client(supervisor.token) as client:
        assert client.get(f"/attachments/{sha}").content == data


def test_a_reader_of_a_file_may_attach_it_in_another_ward_of_theirs(world):
    """A supervisor of wards A and C who reads A's photo names it in a record of ward C: the
    file is his to copy, so ward C holds it without a new upload."""
    api, rec = world["api"], world["records"]
    ward_c = new_ward()
    supervisor = api.enrol(new_name("supervisor"), "supervisor", [rec["A"]["ward"], ward_c])
    auditor_c = api.enrol(new_name("auditor"), "auditor", [ward_c])
    device = Device()
    audit = new_audit(device, ward_c)
    naming = _attachment(device, ward_c, "audit", audit["entity_id"], rec["A"]["sha"])
    with api.client(supervisor.token) as client:
        assert [r["status"] for r in push(client, [audit, naming])] == ["applied"] * 2
        declared = client.post("/attachments", json={"sha256": rec["A"]["sha"], "size": 3000})
        assert declared.json() == {"offset": 3000, "complete": True}
    with api.client(auditor_c.token) as client:
        assert client.get(f"/attachments/{rec['A']['sha']}").content == rec["A"]["data"]


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
        bulk = client.post(
            "/reviews/bulk", json={"audit_ids": [rec["B"]["audit"]], "decision": "approved"}
        )
    assert listing.status_code == status
    if status == 200:
        ids = {a["audit_id"] for a in listing.json()["audits"]}
        assert rec["A"]["audit"] in ids
        assert (rec["B"]["audit"] in ids) == (who == "admin")
        if who == "supervisor_A":
            assert out_of_scope.status_code == 404
            [result] = bulk.json()["results"]
            assert (result["status"], result["reason"]) == ("rejected", "audit_not_found")
    else:
        assert listing.json()["error"]["code"] == "forbidden"
        assert out_of_scope.status_code == bulk.status_code == 403


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("officer_A", {"A"}),
        ("officer_B", {"B"}),
        ("supervisor_A", None),  # sees dossiers only through report snapshots
        ("admin", {"A", "B"}),
        ("auditor_A", None),
    ],
)
def test_duplicate_check_keys_only_for_the_callers_dossier_wards(world, who, sees):
    """Ward keys for the duplicate check: only wards where the caller sees dossiers."""
    wards = {w: world["records"][w]["ward"] for w in ("A", "B")}
    with world["api"].client(world["people"][who].token) as client:
        answer = client.get("/counter/index-keys", params={"ward": list(wards.values())})
    if sees is None:
        assert answer.status_code == 403
        return
    assert answer.status_code == 200
    assert set(answer.json()["wards"]) == {wards[w] for w in sees}


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
        victim = world["people"]["officer_B"]
        assert client.post(f"/admin/devices/{victim.device_id}/revoke").status_code == 403
        assert client.put("/admin/calendar", json={"make_up_days": []}).status_code == 403
        assert client.post("/admin/catalogue", json={"rows": [CATALOGUE_ROW]}).status_code == 403
    with api.client(victim.token) as client:
        assert client.get("/sync/pull").status_code == 200  # still enrolled


CATALOGUE_ROW = {
    "code": "1.999301", "name": "Thủ tục thử của tỉnh", "level": "Xã", "processing_days": 2,
    "fee": "20.000", "documents": "Tờ khai | Văn bản ủy quyền ~ nếu nộp thay", "forms": "",
}


def test_only_an_admin_of_every_ward_publishes_reference_data_all_or_nothing(world):
    api, people = world["api"], world["people"]
    with api.client(people["admin_A"].token) as client:  # one ward's admin: not the province's
        refused = client.put("/admin/calendar", json={"make_up_days": ["2026-12-05"]})
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "out_of_scope")
        refused = client.post("/admin/catalogue", json={"rows": [CATALOGUE_ROW]})
        assert refused.status_code == 403
    with api.client(people["admin"].token) as client:
        bad = client.post("/admin/catalogue", json={
            "rows": [CATALOGUE_ROW, {**CATALOGUE_ROW, "code": "1.99930"},
                     {**CATALOGUE_ROW, "code": "1.999302", "name": "Tên\u0000"}],
        })
        assert bad.status_code == 422
        assert bad.json()["error"]["lines"] == [
            {"line": 3, "reason": "code:format (expected like 1.001193)"},
            {"line": 4, "reason": "name:nul_char"},
        ]
        with api.client(people["officer_A"].token) as officer:
            held = officer.get("/sync/reference").json()["catalogue"]
            assert held is None or "1.999302" not in str(held)  # nothing of it stored
        both = client.put("/admin/calendar", json={
            "make_up_days": ["2026-12-05"], "extra_holidays": ["2026-12-05"]})
        assert (both.status_code, both.json()["error"]["code"]) == (422, "invalid_calendar")
        published = client.post("/admin/catalogue", json={"rows": [CATALOGUE_ROW]})
        assert published.status_code == 201 and published.json()["procedures"] == 1
        version = published.json()["version"]
        assert client.put("/admin/calendar", json={"make_up_days": ["2026-12-05"]}).json()[
            "version"] >= 1
    with api.client(people["officer_A"].token) as officer:
        answer = officer.get("/sync/reference").json()
    assert answer["catalogue"]["version"] == version
    assert {p["code"]: p["fee"] for p in answer["catalogue"]["procedures"]} == {"1.999301": 20000}
    assert answer["calendar"]["make_up_days"] == ["2026-12-05"]


def _admin_action(client, action: str, ward: str, target):
    """One admin action on a new user of `ward`, or on `target` (a device enrolled there)."""
    if action == "create_user":
        body = {"username": new_name("o"), "role": "officer", "wards": [ward]}
        return client.post("/admin/users", json=body).status_code, None
    if action == "enrol_code":
        return client.post("/admin/enrol-codes", json={"username": target.user}).status_code, None
    if action == "revoke":
        return client.post(f"/admin/devices/{target.device_id}/revoke").status_code, None
    listing = client.get("/admin/devices")
    listed = {d["device_id"] for d in listing.json()["devices"]}
    return listing.status_code, target.device_id in listed


ALLOWED_STATUS = {"create_user": 201, "enrol_code": 201, "revoke": 200, "list_devices": 200}
REFUSED_STATUS = {"create_user": 403, "enrol_code": 404, "revoke": 404, "list_devices": 200}


@pytest.mark.parametrize("action", list(ALLOWED_STATUS))
@pytest.mark.parametrize("admin", ["admin", "admin_A"])
@pytest.mark.parametrize("where", ["A", "B"])
def test_admins_manage_only_users_and_devices_in_their_scope(world, action, admin, where):
    api, ward = world["api"], world["records"][where]["ward"]
    in_scope = admin == "admin" or where == "A"
    target = api.enrol(new_name("officer"), "officer", [ward])
    log_before = api.count("audit_log")
    with api.client(world["people"][admin].token) as client:
        status, visible = _admin_action(client, action, ward, target)
    assert status == (ALLOWED_STATUS if in_scope else REFUSED_STATUS)[action]
    if action == "list_devices":
        assert visible is in_scope
    else:  # an action done is logged; a refused one leaves no trace
        assert api.count("audit_log") == log_before + in_scope


def test_a_scoped_admin_cannot_grant_wards_beyond_its_own(world):
    api, a, b = world["api"], world["records"]["A"]["ward"], world["records"]["B"]["ward"]
    with api.client(world["people"]["admin_A"].token) as client:
        for wards, role in (([a, b], "officer"), (["*"], "supervisor"), (["*"], "admin")):
            body = {"username": new_name("x"), "role": role, "wards": wards}
            refused = client.post("/admin/users", json=body)
            assert refused.status_code == 403, (wards, role)
            assert refused.json()["error"]["code"] == "out_of_scope"


ENDPOINTS = [
    ("GET", "/sync/pull", None),
    ("GET", "/sync/reference", None),
    ("POST", "/sync/push", {"mutations": []}),
    ("POST", "/sync/batches", {"ids": ["b1"]}),
    ("POST", "/attachments", {"sha256": "a" * 64, "size": 1}),
    ("GET", "/attachments/" + "a" * 64 + "/offset", None),
    ("PATCH", "/attachments/" + "a" * 64, None),
    ("GET", "/attachments/" + "a" * 64, None),
    ("GET", "/reviews", None),
    ("POST", "/reviews/bulk", {"audit_ids": [str(uuid.uuid4())], "decision": "approved"}),
    ("POST", f"/reviews/{uuid.uuid4()}", {"decision": "approved", "comment": "ok"}),
    ("POST", "/admin/users", {"username": "nobody", "role": "officer", "wards": ["00001"]}),
    ("POST", "/admin/enrol-codes", {"username": "nobody"}),
    ("GET", "/admin/devices", None),
    ("PUT", "/admin/calendar", {"make_up_days": []}),
    ("POST", "/admin/catalogue", {"rows": []}),
    ("POST", f"/admin/devices/{uuid.uuid4()}/revoke", None),
    ("POST", "/auth/logout", None),
    ("GET", "/recovery/key", None),
    ("PUT", "/recovery/escrow", {"escrow": {}}),
    ("GET", "/counter/index-keys", None),
    ("POST", "/counter/duplicates", {"procedure_code": "1.000894", "key_id": "k", "terms": {}}),
]
# Routes that take no token, each with the reason; every other route must be in ENDPOINTS.
PUBLIC_ROUTES = {
    ("GET", "/health"): "liveness probe of the load balancer; answers only ok and the engine",
    ("GET", "/metrics"): "Prometheus scrape; counters and lag totals, no record or user; "
    "in production only with the metrics token (tests/server/test_transport_sessions.py)",
    ("POST", "/auth/refresh"): "how a token is renewed (refresh token, rate-limited)",
    ("POST", "/auth/enrol"): "how a device gets its token (one-time code, rate-limited)",
    ("POST", "/auth/login"): "how a desktop user gets a token (password, rate-limited)",
    ("GET", "/openapi.json"): "FastAPI's generated description of the API, no data",
    ("GET", "/docs"): "FastAPI's generated docs page",
    ("GET", "/docs/oauth2-redirect"): "part of FastAPI's generated docs page",
    ("GET", "/redoc"): "FastAPI's generated docs page",
    ("POST", "/device-status"): "a locked tablet asks whether it is revoked; it proves the device "
    "with its token's SHA-256 and learns only revoked or not, the same 404 for a wrong hash and an "
    "unknown device (tests/sync/test_locked_wipe.py)",
}


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_no_or_bad_token_is_401(world, method, path, body, token):
    with world["api"].client(token) as client:
        response = _request(client, method, path, body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def _serving_route(app, method: str, path: str):
    """The route the app's router picks for this request (the first full match, as Starlette)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in app.routes:
        if route.matches(scope)[0] is Match.FULL:
            return route
    return None


def test_every_route_is_in_the_matrix_or_public_for_a_reason(tmp_path):
    app = create_app(Settings(data_dir=tmp_path))
    routes = {(m, r.path) for r in app.routes for m in getattr(r, "methods", ()) if m != "HEAD"}
    served = {}
    for method, path, _ in ENDPOINTS:
        route = _serving_route(app, method, path)
        assert route is not None, f"{method} {path} in ENDPOINTS is no route of the app"
        served[method, route.path] = path
    assert not set(PUBLIC_ROUTES) - routes, "PUBLIC_ROUTES names a route the app lacks"
    assert not set(PUBLIC_ROUTES) & set(served), "a public route cannot be in ENDPOINTS"
    missing = routes - set(served) - set(PUBLIC_ROUTES)
    assert not missing, f"routes neither in ENDPOINTS nor in PUBLIC_ROUTES: {sorted(missing)}"


def _request(client, method: str, path: str, body):
    if method == "PATCH":  # an attachment chunk at offset 0
        return client.patch(path, content=b"chunk", headers={"Upload-Offset": "0"})
    return client.request(method, path, json=body)


def test_revoked_device_is_refused_on_next_request(world):
    api = world["api"]
    victim = api.enrol(new_name("lost"), "auditor", [world["records"]["A"]["ward"]])
    with api.client(victim.token) as client:
        assert client.get("/sync/pull").status_code == 200
        with api.client(world["people"]["admin"].token) as admin:
            revoked = admin.post(f"/admin/devices/{victim.device_id}/revoke")
            assert revoked.status_code == 200 and revoked.json()["revoked"] is True
        for method, path, body in ENDPOINTS:
            response = _request(client, method, path, body)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "device_revoked"
