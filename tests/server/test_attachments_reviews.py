"""Resumable attachment upload (tus-shaped) and supervisor reviews that reach devices by pull."""

from __future__ import annotations

import hashlib
import os

from sqlalchemy import text

from tests.server.helpers import Device, new_audit, new_name, new_ward, pull_all, push


def test_upload_resumes_at_the_server_offset_and_checks_the_hash(sqlite_api_server):
    api = sqlite_api_server
    auditor = api.enrol(new_name("aud"), "auditor", [new_ward()])
    data = os.urandom(250_000)
    sha = hashlib.sha256(data).hexdigest()
    with api.client(auditor.token) as client:
        assert client.get(f"/attachments/{sha}/offset").status_code == 404
        assert client.post("/attachments", json={"sha256": sha, "size": len(data)}).json() == {
            "offset": 0,
            "complete": False,
        }
        first = client.patch(
            f"/attachments/{sha}", content=data[:100_000], headers={"Upload-Offset": "0"}
        )
        assert first.json() == {"offset": 100_000, "complete": False}
        # The link dropped; the client asks where to resume.
        state = client.get(f"/attachments/{sha}/offset").json()
        assert state == {"offset": 100_000, "size": len(data), "complete": False}
        wrong = client.patch(
            f"/attachments/{sha}", content=data[50_000:], headers={"Upload-Offset": "50000"}
        )
        assert wrong.status_code == 409 and wrong.headers["Upload-Offset"] == "100000"
        assert wrong.json()["error"] == {
            "code": "offset_mismatch",
            "offset": 100_000,
            "message": "the server has 100000 bytes",
        }
        done = client.patch(
            f"/attachments/{sha}", content=data[100_000:], headers={"Upload-Offset": "100000"}
        )
        assert done.json() == {"offset": len(data), "complete": True}
        again = client.post("/attachments", json={"sha256": sha, "size": len(data)})
        assert again.json() == {"offset": len(data), "complete": True}


def test_corrupt_upload_restarts_and_limits_hold(sqlite_api_server):
    api = sqlite_api_server
    auditor = api.enrol(new_name("aud"), "auditor", [new_ward()])
    data = os.urandom(10_000)
    sha = hashlib.sha256(data).hexdigest()
    corrupt = bytes([data[0] ^ 1]) + data[1:]
    with api.client(auditor.token) as client:
        client.post("/attachments", json={"sha256": sha, "size": len(data)})
        bad = client.patch(f"/attachments/{sha}", content=corrupt, headers={"Upload-Offset": "0"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "checksum_mismatch"
        assert client.get(f"/attachments/{sha}/offset").json()["offset"] == 0
        too_long = client.patch(
            f"/attachments/{sha}", content=data + b"x", headers={"Upload-Offset": "0"}
        )
        assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "too_long"
        huge = client.post("/attachments", json={"sha256": "b" * 64, "size": 10**12})
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "too_large"
        good = client.patch(f"/attachments/{sha}", content=data, headers={"Upload-Offset": "0"})
        assert good.json() == {"offset": len(data), "complete": True}
        # Uploaded, but no attachment record names it yet: nobody may read it.
        assert client.get(f"/attachments/{sha}").status_code == 404


def test_review_decisions_reach_the_auditor_through_pull(api_server):
    ward = new_ward()
    auditor = api_server.enrol(new_name("aud"), "auditor", [ward])
    supervisor = api_server.enrol(new_name("sup"), "supervisor", [ward])
    device = Device()
    answered = {"answers.network.firewall": {"value": False, "photos": []}}
    audits = [new_audit(device, ward, state="submitted", **answered) for _ in range(3)]
    draft = new_audit(device, ward, state="draft")
    with api_server.client(auditor.token) as client:
        push(client, [*audits, draft])
        _, cursor = pull_all(client)
    ids = [a["entity_id"] for a in audits]
    with api_server.client(supervisor.token) as client:
        listed = client.get("/reviews", params={"state": "submitted"}).json()["audits"]
        assert {a["audit_id"] for a in listed} == set(ids)
        one = client.post(
            f"/reviews/{ids[0]}",
            json={"decision": "changes_requested", "comment": "Thiếu ảnh phòng máy"},
        )
        assert one.status_code == 200, one.text
        assert one.json()["review_state"] == "changes_requested"
        refused = client.post(
            f"/reviews/{draft['entity_id']}", json={"decision": "approved", "comment": ""}
        )
        assert refused.status_code == 409
        assert refused.json()["error"]["message"] == "review_transition:draft->approved"
        bulk = client.post(
            "/reviews/bulk",
            json={"audit_ids": [ids[1], ids[2], "nope"], "decision": "approved", "comment": "Đạt"},
        )
        statuses = [(r["audit_id"], r["status"]) for r in bulk.json()["results"]]
        assert statuses == [(ids[1], "applied"), (ids[2], "applied"), ("nope", "rejected")]
        assert client.get("/reviews", params={"state": "approved"}).json()["audits"]
    with api_server.client(auditor.token) as client:
        changes, _ = pull_all(client, cursor)
    states = {
        c["entity_id"]: c["fields"]["review_state"]["value"]
        for c in changes
        if c["entity"] == "audit"
    }
    assert states == {ids[0]: "changes_requested", ids[1]: "approved", ids[2]: "approved"}
    comments = [c["fields"] for c in changes if c["entity"] == "audit_comment"]
    assert {c["text"]["value"] for c in comments} == {"Thiếu ảnh phòng máy", "Đạt"}
    assert len(comments) == 3
    # The change request kept the answers as they stood (old → new on resubmission).
    [request] = [c for c in comments if c["decision"]["value"] == "changes_requested"]
    assert request["answers_before"]["value"] == {"network.firewall": False}
    # The auditor answers the change request: their own transition is allowed.
    with api_server.client(auditor.token) as client:
        version = next(c["version"] for c in changes if c["entity_id"] == ids[0])
        again = push(
            client, [device.mutation("audit", ids[0], ward, {"review_state": "submitted"}, version)]
        )
    assert again[0]["status"] == "applied"


def test_damage_in_an_earlier_chunk_restarts_the_whole_upload(sqlite_api_server):
    """The documented exception to 'a rejection changes nothing': a checksum mismatch resets
    the upload to offset 0, since the server cannot tell which chunk was damaged."""
    api = sqlite_api_server
    auditor = api.enrol(new_name("aud"), "auditor", [new_ward()])
    data = os.urandom(8_000)
    sha = hashlib.sha256(data).hexdigest()
    damaged_first = bytes([data[0] ^ 1]) + data[1:4_000]
    with api.client(auditor.token) as client:
        client.post("/attachments", json={"sha256": sha, "size": len(data)})
        client.patch(f"/attachments/{sha}", content=damaged_first, headers={"Upload-Offset": "0"})
        last = client.patch(
            f"/attachments/{sha}", content=data[4_000:], headers={"Upload-Offset": "4000"}
        )
        assert last.status_code == 422 and last.json()["error"]["offset"] == 0
        assert client.get(f"/attachments/{sha}/offset").json()["offset"] == 0
        # What the sync client does next: declare again, send from the offset it is given.
        assert client.post("/attachments", json={"sha256": sha, "size": len(data)}).json() == {
            "offset": 0,
            "complete": False,
        }
        again = client.patch(f"/attachments/{sha}", content=data, headers={"Upload-Offset": "0"})
        assert again.json() == {"offset": len(data), "complete": True}


def test_each_user_uploads_for_themselves(sqlite_api_server):
    """A colleague's upload of the same file neither blocks nor shortens one's own: nobody
    learns what anyone else holds or sends. A lost (revoked) tablet's half upload stays its
    user's, resumed by that user's new tablet."""
    api = sqlite_api_server
    ward = new_ward()
    lost = api.enrol(new_name("aud"), "auditor", [ward])
    colleague = api.enrol(new_name("aud"), "auditor", [ward])
    data = os.urandom(3_000)
    sha = hashlib.sha256(data).hexdigest()
    with api.client(lost.token) as client:
        client.post("/attachments", json={"sha256": sha, "size": len(data)})
        client.patch(f"/attachments/{sha}", content=data[:1_000], headers={"Upload-Offset": "0"})
    with api.client(colleague.token) as client:
        assert client.get(f"/attachments/{sha}/offset").status_code == 404
        mine = client.post("/attachments", json={"sha256": sha, "size": len(data)})
        assert mine.json() == {"offset": 0, "complete": False}
        done = client.patch(f"/attachments/{sha}", content=data, headers={"Upload-Offset": "0"})
        assert done.json() == {"offset": len(data), "complete": True}
    with api.engine.begin() as conn:
        conn.execute(
            text("UPDATE device SET revoked = :t WHERE id = :id"), {"t": True, "id": lost.device_id}
        )
    new_tablet = api.enrol(lost.user)
    with api.client(new_tablet.token) as client:
        resumed = client.post("/attachments", json={"sha256": sha, "size": len(data)})
        assert resumed.json() == {"offset": 1_000, "complete": False}
        rest = client.patch(
            f"/attachments/{sha}", content=data[1_000:], headers={"Upload-Offset": "1000"}
        )
        assert rest.json() == {"offset": len(data), "complete": True}
