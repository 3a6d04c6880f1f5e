"""The API process publishes report snapshots itself (an APScheduler job every
`report_publish_seconds`): dossiers pushed to the real API reach a supervisor's pull as a
snapshot within a bounded wait, with no `commune report publish` run."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from app.domain import oversight as O
from tests.server.helpers import Device, new_dossier, new_ward, pull_all, push
from tests.support.server_proc import sqlite_url, start_api_server

WAIT_S = 60  # the job runs every second; a loaded machine may take a while


def _snapshot(server, token: str, ward: str) -> O.WardSnapshot | None:
    with server.client(token) as client:
        changes, _ = pull_all(client)
    found = [c for c in changes if c["entity"] == O.REPORT_SNAPSHOT and c["entity_id"] == ward]
    if not found:
        return None
    return O.snapshot_from_values({k: f["value"] for k, f in found[-1]["fields"].items()})


def test_the_api_publishes_snapshots_of_pushed_dossiers_by_itself():
    with tempfile.TemporaryDirectory(prefix="commune-api-") as tmp:
        server = start_api_server(
            sqlite_url(Path(tmp)), Path(tmp), {"COMMUNE_REPORT_PUBLISH_SECONDS": "1"}
        )
        try:
            ward = new_ward()
            officer = server.enrol(f"off_{ward}", "officer", [ward]).token
            supervisor = server.enrol(f"sup_{ward}", "supervisor", [ward]).token
            assert _snapshot(server, supervisor, ward) is None
            device = Device()
            with server.client(officer) as client:
                answers = push(client, [new_dossier(device, ward, channel=2) for _ in range(3)])
            assert [a["status"] for a in answers] == ["applied"] * 3
            deadline = time.monotonic() + WAIT_S
            snapshot = None
            for _ in range(WAIT_S * 4):  # bounded in count and in time
                snapshot = _snapshot(server, supervisor, ward)
                if snapshot is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            assert snapshot is not None, server.log_tail()
            assert (snapshot.whole.received, snapshot.whole.online) == (3, 3)
            # One more dossier: the next run publishes the ward again.
            with server.client(officer) as client:
                push(client, [new_dossier(device, ward, channel=1)])
            deadline = time.monotonic() + WAIT_S
            for _ in range(WAIT_S * 4):
                snapshot = _snapshot(server, supervisor, ward)
                if snapshot.whole.received == 4 or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            assert (snapshot.whole.received, snapshot.whole.online) == (4, 3)
        finally:
            server.stop()
