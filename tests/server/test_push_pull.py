"""Push applies each mutation at most once; merge, conflicts, domain checks; paged scoped pull.
Runs against SQLite and PostgreSQL (the `api_server` fixture is parametrized)."""

from __future__ import annotations

import gzip
import json
import threading
import uuid

import zstandard
from sqlalchemy import text

from app.domain.columns import to_columns
from app.domain.mutations import Change, PullResponse
from tests.server.helpers import (
    Device,
    new_audit,
    new_dossier,
    new_name,
    new_ward,
    pull_all,
    push,
)


def _officer(api_server, ward):
    return api_server.enrol(f"officer_{ward}", "officer", [ward])


def test_same_batch_twice_and_concurrently_applies_once(api_server):
    ward = new_ward()
    officer = _officer(api_server, ward)
    device = Device()
    batch = [new_dossier(device, ward) for _ in range(40)]
    batch += [
        device.mutation("dossier", m["entity_id"], ward, {"status": 2}, base_version=1)
        for m in batch[:20]
    ]
    log_before = api_server.count("change_log")
    with api_server.client(officer.token) as client:
        first = push(client, batch)
        second = push(client, batch)
    assert first == second
    assert {r["status"] for r in first} == {"applied"}
    assert api_server.count("change_log") - log_before == 60

    racing = [new_dossier(device, ward) for _ in range(60)]
    gate = threading.Barrier(2)
    answers: list[list[dict]] = [[], []]

    def send(slot: int) -> None:
        with api_server.client(officer.token) as client:  # its own connection
            gate.wait(timeout=10)
            answers[slot] = push(client, racing)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert answers[0] == answers[1] and len(answers[0]) == 60
    assert {r["status"] for r in answers[0]} == {"applied"}
    assert {r["version"] for r in answers[0]} == {1}
    assert api_server.count("change_log") - log_before == 120

    reader = api_server.enrol(officer.user)  # the pusher is not sent its own records back
    with api_server.client(reader.token) as client:
        changes, _ = pull_all(client)
    ids = [c["entity_id"] for c in changes]
    assert len(ids) == len(set(ids)) == 100  # each record once, at its latest version
    assert {c["version"] for c in changes if c["entity_id"] == batch[0]["entity_id"]} == {2}


def test_fields_merge_and_same_field_race_becomes_conflict(api_server):
    ward = new_ward()
    officer = _officer(api_server, ward)
    a, b = Device("dev-a"), Device("dev-b")
    create = new_dossier(a, ward, notes="ban đầu")
    dossier_id = create["entity_id"]
    with api_server.client(officer.token) as client:
        assert push(client, [create])[0]["version"] == 1
        # Both devices saw version 1; A edits notes, B edits fee: both survive.
        r1 = push(client, [a.mutation("dossier", dossier_id, ward, {"notes": "A"}, 1)])
        r2 = push(client, [b.mutation("dossier", dossier_id, ward, {"fee": 50000}, 1)])
        assert [r1[0]["status"], r2[0]["status"]] == ["applied", "applied"]
        # B edits notes without having seen A's edit: a race, the later stamp wins.
        r3 = push(client, [b.mutation("dossier", dossier_id, ward, {"notes": "B"}, 1)])
        assert r3[0]["status"] == "conflict"
        changes, _ = pull_all(client)
    dossier = next(c for c in changes if c["entity_id"] == dossier_id)
    assert dossier["fields"]["notes"]["value"] == "B"
    assert dossier["fields"]["fee"]["value"] == 50000
    conflict = next(
        c
        for c in changes
        if c["entity"] == "conflict" and c["fields"]["entity_id"]["value"] == dossier_id
    )
    assert conflict["fields"]["field"]["value"] == "notes"
    assert conflict["fields"]["state"]["value"] == "open"
    assert [v["value"] for v in conflict["fields"]["values"]["value"]] == ["B", "A"]

    # The append-only audit log says who, from which device, and what changed.
    with api_server.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT username, device_id, action, version, detail FROM audit_log "
                "WHERE entity_id = :id ORDER BY id"
            ),
            {"id": dossier_id},
        ).all()
    assert [(r.action, r.version) for r in rows] == [
        ("change", 1),
        ("change", 2),
        ("change", 3),
        ("change", 4),
    ]
    assert {(r.username, r.device_id) for r in rows} == {(officer.user, officer.device_id)}
    details = [r.detail if isinstance(r.detail, dict) else json.loads(r.detail) for r in rows]
    assert [d["changed"] for d in details[1:]] == [["notes"], ["fee"], ["notes"]]


def test_rejected_mutations_change_nothing(api_server):
    ward, second_ward, other_ward = new_ward(), new_ward(), new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward, second_ward])
    device = Device()
    create = new_dossier(device, ward, status=2)
    dossier_id = create["entity_id"]
    with api_server.client(officer.token) as client:
        push(client, [create])
        before = [
            api_server.count(t) for t in ("change_log", "record", "audit_log", "applied_mutation")
        ]
        bad = {
            "invalid_fields:status:choice": new_dossier(device, ward, status=11),
            "invalid_fields:colour:unknown_field": new_dossier(device, ward, colour="red"),
            # A first status past intake is accepted with what it implies (see
            # test_records_push.py); a completed dossier needs its finishing time.
            "finished_at_required": new_dossier(device, ward, status=9),
            "status_transition:2->3": device.mutation(
                "dossier", dossier_id, ward, {"status": 3}, 1
            ),
            "ward_out_of_scope": new_dossier(device, other_ward),
            "ward_mismatch": device.mutation("dossier", dossier_id, second_ward, {"fee": 1}, 1),
            "role_not_permitted": new_audit(device, ward),
            "unknown_entity": device.mutation("spaceship", "x", ward, {"a": 1}),
        }
        results = push(client, list(bad.values()))
        after = [
            api_server.count(t) for t in ("change_log", "record", "audit_log", "applied_mutation")
        ]
        # Equal status is a no-op, not a transition.
        same = push(client, [device.mutation("dossier", dossier_id, ward, {"status": 2}, 1)])
    reasons = {r["reason"]: r["status"] for r in results}
    for reason in bad:
        matching = [r for r in reasons if r == reason or r.startswith(reason)]
        assert matching, (reason, results)
        assert reasons[matching[0]] == "rejected"
    assert before == after
    assert same[0]["status"] == "applied"


def test_audit_review_rules_and_templates(api_server):
    ward = new_ward()
    auditor = api_server.enrol(f"auditor_{ward}", "auditor", [ward])
    device = Device()
    draft = new_audit(device, ward, **{"answers.premises.one_stop_area": {"value": True}})
    audit_id = draft["entity_id"]
    with api_server.client(auditor.token) as client:
        assert push(client, [draft])[0]["status"] == "applied", "auditor writes a draft"
        results = push(
            client,
            [
                new_audit(device, ward, template_version="1999.9"),
                device.mutation("audit", audit_id, ward, {"review_state": "approved"}, 1),
                device.mutation(
                    "audit",
                    audit_id,
                    ward,
                    {"answers.premises.one_stop_area": {"value": "maybe"}},
                    1,
                ),
                device.mutation("audit", audit_id, ward, {"review_state": "submitted"}, 1),
                device.mutation(
                    "audit", audit_id, ward, {"answers.premises.one_stop_area": {"value": False}}, 2
                ),
            ],
        )
    assert results[0]["reason"] == "unknown_template:1999.9"
    assert results[1]["reason"] == "review_transition:draft->approved"
    assert results[2]["reason"].startswith("invalid_answer:premises.one_stop_area")
    assert results[3]["status"] == "applied"
    assert results[4]["reason"] == "audit_not_editable:submitted"


def test_pull_pages_in_order_and_compression(api_server):
    ward = new_ward()
    officer = _officer(api_server, ward)
    device = Device()
    batch = [new_dossier(device, ward) for _ in range(25)]
    with api_server.client(officer.token) as client:
        payload = json.dumps({"mutations": batch[:12]}).encode()
        gz = client.post(
            "/sync/push",
            content=gzip.compress(payload),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        payload = json.dumps({"mutations": batch[12:]}).encode()
        zs = client.post(
            "/sync/push",
            content=zstandard.ZstdCompressor().compress(payload),
            headers={"Content-Encoding": "zstd", "Content-Type": "application/json"},
        )
        assert gz.status_code == zs.status_code == 200
        assert len(gz.json()["results"]) + len(zs.json()["results"]) == 25

    reader = api_server.enrol(officer.user)  # the pusher is not sent its own records back
    with api_server.client(reader.token) as client:
        seen, cursor, pages = [], 0, 0
        while True:
            page = client.get(
                "/sync/pull",
                params={"cursor": cursor, "limit": 10},
                headers={"Accept-Encoding": "gzip"},
            )
            assert page.headers.get("content-encoding") == "gzip"
            body = page.json()
            seqs = [c["seq"] for c in body["changes"]]
            assert seqs == sorted(seqs) and all(s > cursor for s in seqs)
            seen += [c["entity_id"] for c in body["changes"]]
            cursor, pages = body["next_cursor"], pages + 1
            if not body["has_more"]:
                break
        assert pages == 3
        assert sorted(seen) == sorted(m["entity_id"] for m in batch)
        empty = client.get("/sync/pull", params={"cursor": cursor}).json()
        assert empty == {"changes": [], "next_cursor": cursor, "has_more": False}
        # A client that accepts zstd (the sync client) gets the same page in zstd.
        gzip_only = {"Accept-Encoding": "gzip"}
        as_gzip = client.get("/sync/pull", params={"limit": 25}, headers=gzip_only)
        as_zstd = client.get(
            "/sync/pull", params={"limit": 25}, headers={"Accept-Encoding": "zstd, gzip"}
        )
        assert as_zstd.headers.get("content-encoding") == "zstd"
        assert as_zstd.json() == as_gzip.json() and len(as_zstd.json()["changes"]) == 25
        assert int(as_zstd.headers["content-length"]) < int(as_gzip.headers["content-length"])
        refused = client.get(
            "/sync/pull", params={"limit": 25}, headers={"Accept-Encoding": "zstd;q=0, gzip"}
        )
        assert refused.headers.get("content-encoding") == "gzip"
        # A lean page (clients since issue 13's fifth round): no seq, no ward the fields
        # repeat, and the same changes once read.
        lean = client.get("/sync/pull", params={"limit": 25, "lean": 1}).json()
        assert lean["next_cursor"] == as_gzip.json()["next_cursor"]
        assert not any("seq" in c or "ward_code" in c for c in lean["changes"])
        as_read = [Change.model_validate(c) for c in as_gzip.json()["changes"]]
        assert [Change.model_validate(c) for c in lean["changes"]] == [
            c.model_copy(update={"seq": 0}) for c in as_read
        ]
        # In columns (clients since issue 13's ninth round): the same changes, in the same
        # order, as blocks, in fewer bytes.
        zstd = {"Accept-Encoding": "zstd"}
        row_page = client.get("/sync/pull", params={"limit": 25, "lean": 1}, headers=zstd)
        col_page = client.get(
            "/sync/pull", params={"limit": 25, "lean": 1, "cols": 1}, headers=zstd
        )
        in_columns = col_page.json()
        assert "changes" not in in_columns and in_columns["columns"]
        assert PullResponse.model_validate(in_columns) == PullResponse.model_validate(lean)
        assert col_page.headers["sync-pull-next"] == row_page.headers["sync-pull-next"]
        assert int(col_page.headers["content-length"]) < int(row_page.headers["content-length"])


def test_a_push_in_columns_is_read_as_its_rows_and_a_malformed_one_is_refused_whole(
    api_server,
):
    """Issue 13's ninth round: a push's mutations as blocks of columns (`to_columns`)."""
    ward = new_ward()
    officer = _officer(api_server, ward)
    device = Device()
    batch = [new_dossier(device, ward) for _ in range(4)]
    blocks = to_columns(batch)
    with api_server.client(officer.token) as client:
        gap = [{**blocks[0], "at": [2, *blocks[0]["at"][1:]]}]  # positions 1..4, not 0..3
        refused = client.post("/sync/push", json={"columns": gap})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "validation_error"
        assert pull_all(client)[0] == []  # nothing of it applied
        taken = client.post("/sync/push", json={"columns": blocks, "answer": "summary"})
        assert taken.status_code == 200, taken.text
        assert taken.json()["applied"] == [[0, 4]] and "columns" in taken.json()["reads"]
    reader = api_server.enrol(officer.user)
    with api_server.client(reader.token) as client:
        got = {c["entity_id"]: c["fields"]["applicant_name"]["value"] for c in pull_all(client)[0]}
    assert got == {m["entity_id"]: m["fields"]["applicant_name"]["value"] for m in batch}


def test_the_pull_head_says_what_the_body_ends_with_and_pages_go_to_4000(api_server):
    """`Sync-Pull-Next` (issue 13's fifth round) names the body's next cursor, whether more
    follows and how many changes it holds; a limit up to 4,000 is taken, past it refused."""
    ward = new_ward()
    officer = _officer(api_server, ward)
    device = Device()
    with api_server.client(officer.token) as client:
        assert len(push(client, [new_dossier(device, ward) for _ in range(5)])) == 5
    reader = api_server.enrol(officer.user)  # the pusher is not sent its own records back
    with api_server.client(reader.token) as client:
        cursor, pages = 0, 0
        while True:
            page = client.get("/sync/pull", params={"cursor": cursor, "limit": 2})
            body = page.json()
            more = int(body["has_more"])
            said = f"cursor={body['next_cursor']}; more={more}; changes={len(body['changes'])}"
            assert page.headers["sync-pull-next"] == said
            cursor, pages = body["next_cursor"], pages + 1
            if not body["has_more"]:
                break
        assert pages == 3
        assert client.get("/sync/pull", params={"limit": 4000}).status_code == 200
        past = client.get("/sync/pull", params={"limit": 4001})
        assert past.status_code == 422 and past.json()["error"]["code"] == "validation_error"


def test_comments_speak_for_their_author_and_conflicts_come_from_the_server(api_server):
    ward = new_ward()
    auditor = api_server.enrol(new_name("aud"), "auditor", [ward])
    supervisor = api_server.enrol(new_name("sup"), "supervisor", [ward])
    officer = api_server.enrol(new_name("officer"), "officer", [ward])
    device = Device()
    audit = new_audit(device, ward, state="submitted")
    audit_id = audit["entity_id"]

    def comment(author: str, **extra) -> dict:
        fields = {
            "audit_id": audit_id,
            "ward_code": ward,
            "author": author,
            "at": "2025-11-20T03:00:00+00:00",
            "text": "Ghi chú",
        }
        return device.mutation("audit_comment", str(uuid.uuid4()), ward, {**fields, **extra})

    with api_server.client(auditor.token) as client:
        assert push(client, [audit])[0]["status"] == "applied"
        forged = push(
            client,
            [
                comment(supervisor.user),
                comment(auditor.user, decision="approved"),
                device.mutation("audit_comment", str(uuid.uuid4()), ward, {"text": "ẩn danh"}),
            ],
        )
        own = push(client, [comment(auditor.user)])
    assert [r["reason"] for r in forged] == [
        "comment_author_not_caller",
        "comment_decision_role",
        "comment_author_not_caller",
    ]
    assert own[0]["status"] == "applied"
    with api_server.client(supervisor.token) as client:
        decided = client.post(
            f"/reviews/{audit_id}", json={"decision": "changes_requested", "comment": "Thiếu ảnh"}
        ).json()
        assert push(client, [comment(supervisor.user, decision="approved")])[0]["status"] == (
            "applied"
        )
    with api_server.client(auditor.token) as client:
        edit = device.mutation(
            "audit_comment", decided["comment_id"], ward, {"text": "Đã đủ ảnh"}, base_version=1
        )
        assert push(client, [edit])[0]["reason"] == "comment_author_not_caller"

    # Conflicts: only the server's merge creates them; devices may only resolve them.
    a, b = Device("dev-a"), Device("dev-b")
    create = new_dossier(a, ward)
    dossier_id = create["entity_id"]
    with api_server.client(officer.token) as client:
        fake = device.mutation(
            "conflict",
            str(uuid.uuid4()),
            ward,
            {"entity": "dossier", "entity_id": dossier_id, "field": "fee", "state": "open"},
        )
        assert push(client, [fake])[0]["reason"] == "conflict_server_only"
        push(client, [create])
        push(client, [a.mutation("dossier", dossier_id, ward, {"fee": 1}, 1)])
        assert (
            push(client, [b.mutation("dossier", dossier_id, ward, {"fee": 2}, 1)])[0]["status"]
            == "conflict"
        )
        changes, _ = pull_all(client)
        conflict = next(c for c in changes if c["entity"] == "conflict")
        rewrite = device.mutation(
            "conflict", conflict["entity_id"], ward, {"values": []}, base_version=1
        )
        resolve = device.mutation(
            "conflict", conflict["entity_id"], ward, {"state": "resolved", "chosen": 1}, 1
        )
        results = push(client, [rewrite, resolve])
    assert [r["reason"] for r in results] == ["conflict_read_only:values", None]
    assert results[1]["status"] == "applied"
    with api_server.engine.connect() as conn:
        logged = conn.execute(
            text("SELECT detail FROM audit_log WHERE action = 'conflict' AND entity_id = :id"),
            {"id": conflict["entity_id"]},
        ).scalar_one()
    logged = logged if isinstance(logged, dict) else json.loads(logged)
    assert logged == {"of": f"dossier/{dossier_id}", "field": "fee", "kept": 2, "lost": 1}


def _server_fields(api_server, entity_id: str) -> dict:
    with api_server.engine.connect() as conn:
        raw = conn.execute(
            text("SELECT fields FROM record WHERE entity_id = :id"), {"id": entity_id}
        ).scalar_one()
    fields = json.loads(raw) if isinstance(raw, str) else raw
    return {k: v["value"] for k, v in fields.items()}


def test_a_mutation_id_belongs_to_the_device_that_applied_it(api_server):
    """Another device (of another user, or of the same one) sending an applied id is refused
    for that mutation, never answered with the first device's result; the first device
    re-sending its own id still gets its stored result."""
    ward = new_ward()
    first = _officer(api_server, ward)
    other_user = api_server.enrol(new_name("officer"), "officer", [ward])
    same_user = api_server.enrol(first.user)
    device = Device()
    original = new_dossier(device, ward)
    with api_server.client(first.token) as client:
        [applied] = push(client, [original])
    assert (applied["status"], applied["version"]) == ("applied", 1)
    log_before = api_server.count("change_log")
    for intruder in (other_user, same_user):
        impostor = new_dossier(Device(), ward)
        impostor["mutation_id"] = original["mutation_id"]
        with api_server.client(intruder.token) as client:
            [answer] = push(client, [impostor])
        assert answer["status"] == "rejected" and answer["reason"] == "mutation_id_taken"
        assert answer["version"] == 0  # nothing of the first device's result
        with api_server.engine.connect() as conn:  # the impostor's record was never stored
            stored = conn.execute(
                text("SELECT COUNT(*) FROM record WHERE entity_id = :id"),
                {"id": impostor["entity_id"]},
            ).scalar_one()
        assert stored == 0
    assert api_server.count("change_log") == log_before
    with api_server.client(first.token) as client:
        assert push(client, [original]) == [applied]  # exactly once, for its own device


def test_the_race_path_refuses_another_devices_id_too(api_server):
    """The twin check after a failed insert (two connections pushing one id): the stored row
    belongs to another device, so this push is refused and its changes rolled back."""
    from app.domain.hlc import Clock
    from app.domain.mutations import Mutation
    from server.core import sealing
    from server.scope import Caller
    from server.services import sync

    ward = new_ward()
    first = _officer(api_server, ward)
    device = Device()
    original = new_dossier(device, ward)
    with api_server.client(first.token) as client:
        [applied] = push(client, [original])
    assert applied["status"] == "applied"
    impostor = new_dossier(Device(), ward)
    impostor["mutation_id"] = original["mutation_id"]
    # This process applies mutations itself: it needs the server's data key for sealed fields.
    sealing.install(sealing.load_keyring(api_server.data_dir / "keys" / "server.key"))
    caller = Caller(0, "impostor", "officer", frozenset({ward}), device_id="another-device")
    from server.core import sealing

    # In this process, as in the server's: personal fields are sealed with its data key.
    sealing.install(sealing.load_keyring(api_server.data_dir / "keys" / "server.key"))
    # apply_once without push()'s look-up first: as when a twin commits between the two.
    answer = sync.apply_once(
        api_server.engine, caller, Mutation.model_validate(impostor), Clock("srvtest")
    )
    assert (answer.status, answer.reason) == ("rejected", "mutation_id_taken")
    assert answer.version == 0
    with api_server.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT COUNT(*) FROM record WHERE entity_id = :id"),
            {"id": impostor["entity_id"]},
        ).scalar_one()
    assert stored == 0
    own = Caller(0, first.user, "officer", frozenset({ward}), device_id=first.device_id)
    again = sync.apply_once(
        api_server.engine, own, Mutation.model_validate(original), Clock("srvtest")
    )
    assert (again.status, again.version) == ("applied", 1)


def test_the_mutation_counters_count_each_answer_of_a_push(api_server):
    """/metrics counts a push's answers by status (added once per status and push)."""
    ward = new_ward()
    officer = api_server.enrol(f"officer_{ward}", "officer", [ward])
    device = Device()

    def counted(client) -> dict[str, int]:
        lines = client.get("/metrics").text.splitlines()
        values = dict(line.split() for line in lines if line and not line.startswith("#"))
        return {
            s: int(values[f"commune_mutations_{s}_total"]) for s in ("applied", "rejected")
        }

    with api_server.client(officer.token) as client:
        before = counted(client)
        good = [new_dossier(device, ward) for _ in range(3)]
        bad = [new_dossier(device, ward, status=11), new_dossier(device, ward, colour="red")]
        results = push(client, good + bad)
        after = counted(client)
    assert [r["status"] for r in results] == ["applied"] * 3 + ["rejected"] * 2
    assert after == {"applied": before["applied"] + 3, "rejected": before["rejected"] + 2}
