"""A supervisor's review decision made offline on a device reaches the server through the
ordinary push, is accepted by its checks, and comes back to the auditor's device by pull."""

from __future__ import annotations

import time

from sqlalchemy import text

from app.domain import audit as A
from app.domain.models import AuditAnswer
from app.views.bulk_review_models import BulkReviewPresenter
from tests.sync.conftest import server_state


def test_offline_decision_pushes_and_reaches_the_auditor(devices, ward: str) -> None:
    auditor = devices.enrol(devices.user("auditor", [ward]))
    supervisor_name = devices.user("supervisor", [ward])
    supervisor = devices.enrol(supervisor_name)
    audit = auditor.store.audits.create(ward, A.TEMPLATE_V1, "Kiểm tra viên Hà")
    auditor.store.audits.answer(audit.id, "network.firewall", AuditAnswer(value=False))
    auditor.store.audits.submit(audit.id)
    auditor.sync()
    supervisor.sync()
    assert supervisor.store.audits.get(audit.id).review_state == "submitted"

    supervisor.store.audits.review(
        audit.id, "changes_requested", "Bổ sung ảnh tường lửa",
        author=supervisor_name, role="supervisor",
    )
    report = supervisor.sync()
    assert supervisor.store.sync.summary().pending == 0, report
    on_server = server_state(devices.server, ward)
    assert on_server[audit.id]["review_state"] == "changes_requested"
    [comment] = [v for v in on_server.values() if v["_entity"] == "audit_comment"]
    assert comment["author"] == supervisor_name and comment["decision"] == "changes_requested"
    # The answers as they stood, kept on the request (sealed at rest like the answers).
    assert comment["answers_before"] == {"network.firewall": False}
    with devices.server.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT fields FROM record WHERE entity_id = :i"), {"i": comment_id(on_server)}
        ).scalar_one()
    assert '"answers_before": {"sealed"' in str(stored).replace("'", '"')

    auditor.sync()
    assert auditor.store.audits.get(audit.id).review_state == "changes_requested"
    assert [c["text"] for c in auditor.store.audits.comments(audit.id)] == [
        "Bổ sung ảnh tường lửa"
    ]

    # The auditor fixes the item and resubmits; the supervisor's review shows old → new.
    time.sleep(0.01)  # after the request (clock stamps are in milliseconds)
    auditor.store.audits.answer(audit.id, "network.firewall", AuditAnswer(value=True))
    auditor.store.audits.submit(audit.id)
    assert auditor.sync().ok
    assert supervisor.sync().ok
    [row] = BulkReviewPresenter(supervisor.store, supervisor_name, "supervisor").load()
    assert row.resubmitted
    assert [(c.item_id, c.old, c.value) for c in row.changes] == [
        ("network.firewall", False, True)
    ]


def comment_id(state: dict) -> str:
    [found] = [i for i, v in state.items() if v["_entity"] == "audit_comment"]
    return found
