"""Two uvicorn workers on PostgreSQL: the same batch pushed at once on several connections is
applied once (the unique mutation id decides across processes, not only across threads)."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.helpers import Device, new_dossier, new_name, new_ward, push
from tests.support.server_proc import ApiServer, start_api_server

pytestmark = pytest.mark.postgres
CONNECTIONS = 4


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (from /proc, Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture(scope="module")
def two_workers(postgres_server) -> Iterator[ApiServer]:
    with tempfile.TemporaryDirectory(prefix="commune-api-") as tmp:
        server = start_api_server(postgres_server.create_database(), Path(tmp), workers=2)
        try:
            yield server
        finally:
            server.stop()


def test_two_workers_apply_a_batch_pushed_concurrently_once(two_workers):
    api = two_workers
    assert len(_children(api.process.pid)) >= 2, "commune api did not start two workers"
    ward = new_ward()
    officer = api.enrol(new_name("officer"), "officer", [ward])
    device = Device()
    batch = [new_dossier(device, ward) for _ in range(80)]
    gate = threading.Barrier(CONNECTIONS)
    answers: list[list[dict]] = [[] for _ in range(CONNECTIONS)]

    def send(slot: int) -> None:
        with api.client(officer.token) as client:  # its own connection, any worker
            gate.wait(timeout=30)
            answers[slot] = push(client, batch)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(answer == answers[0] for answer in answers) and len(answers[0]) == len(batch)
    assert {r["status"] for r in answers[0]} == {"applied"}
    assert {r["version"] for r in answers[0]} == {1}
    for table in ("applied_mutation", "record", "change_log"):
        assert api.count(table) == len(batch), table
