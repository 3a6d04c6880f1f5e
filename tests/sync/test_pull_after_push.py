"""The push that empties the outbox asks for the pull page after it (issue 13's sixth round):
what others wrote comes in that push's answer, and the pull asks on only when more waits. Real
API process (SQLite) on 127.0.0.1, real encrypted stores."""

from __future__ import annotations

import threading

from app.domain.models import AuditAnswer
from app.sync import engine as engine_module
from tests.server.helpers import Device as Clock
from tests.server.helpers import new_dossier
from tests.sync.conftest import audit_view, receive_dossiers, server_audit_view, server_state


def _count_pulls(device) -> list[int]:
    """Wraps the transport's pull (GET /sync/pull): the cursor of each page asked."""
    asked: list[int] = []
    pull = device.transport.pull

    def counted(cursor, *args, **kw):
        asked.append(cursor)
        return pull(cursor, *args, **kw)

    device.transport.pull = counted
    return asked


def _page_forms(device) -> list[list[str]]:
    """Wraps the transport's requests: the members of each push body, and of each push
    answer's pull page."""
    forms: list[list[str]] = []
    ask = device.transport._json

    def noted(method, path, **kw):
        if path == "/sync/push":
            forms.append(sorted(kw["body"]))
        data = ask(method, path, **kw)
        if path == "/sync/push" and isinstance(data, dict) and "pull" in data:
            forms.append(sorted(data["pull"]))
        return data

    device.transport._json = noted
    return forms


def test_what_others_wrote_comes_with_the_push_and_more_is_asked_for_only_when_it_waits(
    devices, ward
):
    first = devices.enrol(devices.user("officer", [ward]))
    theirs = receive_dossiers(first.store, ward, 5, "Trần Thị Lan")
    assert first.sync().ok
    second = devices.enrol(devices.user("officer", [ward]))
    mine = receive_dossiers(second.store, ward, 3, "Lê Văn Hùng")
    pulls = _count_pulls(second)
    forms = _page_forms(second)

    report = second.sync()
    assert report.ok and report.pulled == 10  # their 5 dossiers and 5 intake events
    assert pulls == []  # no GET /sync/pull: the page came in the push's answer
    # Both ways in columns (issue 13's ninth round): the push's mutations and its page.
    assert forms == [["answer", "batch", "columns"], ["columns", "has_more", "next_cursor"]]
    assert [second.store.dossiers.get(i).applicant_name for i in theirs] == [
        f"Trần Thị Lan {i}" for i in range(5)
    ]
    assert {second.store.dossiers.get(i).sync_state for i in mine} == {"synced"}
    assert second.store.sync.summary().pending == 0
    again = second.sync()  # nothing pushed: a pull, which finds nothing (its own left out)
    assert again.ok and again.pulled == 0 and len(pulls) == 1

    # More than the page the push asked for: the pull asks on from the page's end.
    later = receive_dossiers(first.store, ward, 6, "Phạm Thị Mai")
    assert first.sync().ok
    second.engine.pull_page = 4
    receive_dossiers(second.store, ward, 1, "Vũ Văn Nam")
    cursor_before = second.store.sync.pull_cursor()
    pulls.clear()
    report = second.sync()
    assert report.ok and report.pulled == 12
    assert pulls and min(pulls) > cursor_before  # the push's page stored first, then on
    assert {second.store.dossiers.get(i).applicant_name for i in later} == {
        f"Phạm Thị Mai {i}" for i in range(6)
    }


def test_a_push_answers_page_that_does_not_read_leaves_the_pull_as_it_was(devices, ward):
    first = devices.enrol(devices.user("officer", [ward]))
    theirs = receive_dossiers(first.store, ward, 2, "Đỗ Thị Hà")
    assert first.sync().ok
    second = devices.enrol(devices.user("officer", [ward]))
    mine = receive_dossiers(second.store, ward, 1, "Ngô Văn Tuấn")
    ask = second.transport._json

    def damaged(method, path, **kw):  # the page in the answer is not a page
        data = ask(method, path, **kw)
        if path == "/sync/push" and isinstance(data, dict) and "pull" in data:
            data["pull"] = {"changes": "không phải danh sách", "next_cursor": -1}
        return data

    second.transport._json = damaged
    pulls = _count_pulls(second)
    report = second.sync()
    assert report.ok and report.pulled == 4 and pulls  # pulled as before the sixth round
    assert second.store.dossiers.get(theirs[1]).applicant_name == "Đỗ Thị Hà 1"
    assert second.store.dossiers.get(mine[0]).sync_state == "synced"


def test_the_page_a_push_asks_for_keeps_to_the_callers_wards_and_refuses_bad_asks(
    sync_server, ward
):
    other_ward = "00004" if ward != "00004" else "00008"
    api = sync_server
    here = api.enrol(f"pp-here-{ward}", "officer", [ward])
    there = api.enrol(f"pp-there-{ward}", "officer", [other_ward])
    with api.client(there.token) as client:
        written = client.post("/sync/push", json={"mutations": [new_dossier(Clock(), other_ward)]})
        assert written.status_code == 200
    mutation = new_dossier(Clock(), ward)
    with api.client(here.token) as client:
        answer = client.post(
            "/sync/push?pull=0&limit=50",
            json={"mutations": [mutation], "answer": "summary"},
        )
        for bad in ("pull=-1", "pull=0&limit=0", "pull=0&limit=100000", "pull=x"):
            refused = client.post(f"/sync/push?{bad}", json={"mutations": [], "answer": "summary"})
            assert refused.status_code == 422, bad
    assert answer.status_code == 200
    body = answer.json()
    assert body["applied"] == [[0, 1]] and "then_pull" in body["reads"]
    page = body["pull"]
    wards = {c.get("ward_code") or c["fields"]["ward_code"] for c in page["changes"]}
    assert wards <= {ward}  # nothing of another ward, though it was written just before
    assert mutation["entity_id"] not in {c["entity_id"] for c in page["changes"]}  # its own
    assert page["next_cursor"] > 0 and page["has_more"] is False


def test_a_batch_committed_after_the_page_was_read_is_pulled_as_before(devices, ward, monkeypatch):
    """Two batches in flight: the one that empties the outbox is answered, with its page, before
    the other (an audit, whose score the server writes) is committed. That page cannot hold the
    audit as the server made it, and its push's `through` says so: the pull asks as before."""
    monkeypatch.setattr(engine_module, "MAX_BATCH_ROWS", 4)
    auditor = devices.enrol(devices.user("auditor", [ward]))
    audit = auditor.store.audits.create(ward, "2025.1", "Phạm Văn Đức")
    for item, value in (("premises.one_stop_area", True), ("premises.ups", False)):
        auditor.store.audits.answer(audit.id, item, AuditAnswer(value=value))
    for surveyor in ("Lê Thị Hoa", "Trần Văn Nam"):  # two more audits: 5 rows, 2 batches
        auditor.store.audits.create(ward, "2025.1", surveyor)
    push = auditor.transport.push
    last_answered = threading.Event()
    calls: list[bool] = []

    def held_back(mutations, *args, **kw):
        receipt = kw.get("receipt")
        drains = receipt is not None and receipt.pull_from is not None
        calls.append(drains)
        if not drains:  # the first batch waits until the last one has its answer
            last_answered.wait(10)
            return push(mutations, *args, **kw)
        try:
            return push(mutations, *args, **kw)
        finally:
            last_answered.set()

    auditor.transport.push = held_back
    pages: list = []
    pull = auditor.transport.pull

    def kept(cursor, *args, **kw):
        pages.append(page := pull(cursor, *args, **kw))
        return page

    auditor.transport.pull = kept
    report = auditor.sync()
    assert report.ok and calls == [False, True]
    came = [c for p in pages for c in p.changes if c.entity_id == audit.id]
    assert len(came) == 1 and "score" in came[0].fields  # asked again, and the score came
    on_server = server_state(devices.server, ward)[audit.id]
    assert audit_view(auditor.store, audit.id) == server_audit_view(on_server)
