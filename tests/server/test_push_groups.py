"""Pushes waiting for the writer's turn are applied together in one transaction, each under its
own caller and batch id, each mutation still at most once; a push at fault fails by itself.
And a change is encoded once for all the devices that pull it, never for the device whose own
push it was.

The service is called in-process (threads in place of the API's worker threads), on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from sqlalchemy import event, text

from app.domain.hlc import Clock
from app.domain.mutations import Mutation, PullResponse
from server.core import sealing
from server.core.config import SERVER_NODE
from server.scope import Caller
from server.services import identity, sync
from tests.server.helpers import Device, new_dossier, new_ward
from tests.support.central_db import migrated_engine

PUSHES = 4


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    sealing.install(sealing.Keyring.of([sealing.new_key()]))
    engine = migrated_engine(request, tmp_path)
    yield engine
    engine.dispose()


def _officer(engine, ward: str) -> Caller:
    user = identity.create_user(engine, f"officer_{uuid.uuid4().hex[:8]}", "officer", [ward])
    return Caller(user.id, user.username, "officer", frozenset({ward}), uuid.uuid4().hex[:12])


def _checked(mutations: list[dict]) -> list[Mutation]:
    return [Mutation.model_validate(m) for m in mutations]


class _Commits:
    def __init__(self, engine) -> None:
        self.count = 0
        event.listen(engine, "commit", self._seen)

    def _seen(self, _conn) -> None:
        self.count += 1


def _push_together(engine, pushes: list[tuple[Caller, list[Mutation], str]]) -> list:
    """Each push from its own thread, all queued behind a writer's turn held here, then let
    go at once. Returns each push's results, or the exception it raised."""
    queue = sync._push_queue(engine)
    out: list = [None] * len(pushes)

    def run(i: int, caller: Caller, mutations: list[Mutation], batch: str) -> None:
        try:
            out[i] = sync.push(engine, caller, mutations, Clock(SERVER_NODE), batch)
        except Exception as error:  # noqa: BLE001 (the test looks at what each push met)
            out[i] = error

    threads = [threading.Thread(target=run, args=(i, *p)) for i, p in enumerate(pushes)]
    with queue.turn:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(queue.waiting) < len(pushes) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(queue.waiting) == len(pushes), "the pushes did not queue"
    for thread in threads:
        thread.join(60)
    return out


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar())


def test_queued_pushes_are_applied_in_one_transaction_each_batch_kept(engine):
    ward = new_ward()
    pushes = []
    for i in range(PUSHES):
        device = Device()
        mutations = _checked([new_dossier(device, ward) for _ in range(5)])
        pushes.append((_officer(engine, ward), mutations, f"batch-{i}"))
    commits = _Commits(engine)
    results = _push_together(engine, pushes)

    assert commits.count == 1  # one transaction for the four pushes (four without grouping)
    for (caller, mutations, batch), answered in zip(pushes, results, strict=True):
        assert [r.mutation_id for r in answered] == [m.mutation_id for m in mutations]
        assert {r.status for r in answered} == {"applied"}
        kept = sync.committed_batches(engine, caller, [batch])
        assert kept[batch]["applied"] == [[0, 5]]  # each push's answer under its own id
    assert _count(engine, "SELECT count(*) FROM applied_mutation") == PUSHES * 5
    assert _count(engine, "SELECT count(*) FROM change_log") == PUSHES * 5


def test_one_mutation_in_two_pushes_of_a_group_is_applied_once(engine):
    ward = new_ward()
    device = Device()
    caller, stranger = _officer(engine, ward), _officer(engine, ward)
    twice = _checked([new_dossier(device, ward)])
    first_id = twice[0].mutation_id
    commits = _Commits(engine)
    results = _push_together(
        engine, [(caller, twice, "a"), (caller, twice, "b"), (stranger, twice, "c")]
    )

    assert commits.count == 1  # decided inside the group, not by a failed group's fallback
    first, resent, other_device = (r[0] for r in results)
    assert (first.status, first.version) == ("applied", 1)
    assert resent == first  # the same device's resend: the first one's answer
    assert (other_device.status, other_device.reason) == ("rejected", sync.MUTATION_ID_TAKEN)
    assert (
        _count(engine, "SELECT count(*) FROM applied_mutation WHERE mutation_id = :m", m=first_id)
        == 1
    )
    assert _count(engine, "SELECT count(*) FROM change_log") == 1


def test_a_push_at_fault_fails_alone_and_the_rest_of_its_group_is_applied(engine, monkeypatch):
    ward = new_ward()
    pushes = [
        (_officer(engine, ward), _checked([new_dossier(Device(), ward) for _ in range(3)]), f"b{i}")
        for i in range(PUSHES)
    ]
    poisoned = pushes[1][1][2].mutation_id  # a fault no check foresaw, in one push's last row
    real = sync._apply_checked

    def faulty(session, caller, mutation, clock):
        if mutation.mutation_id == poisoned:
            raise RuntimeError("an unforeseen fault")
        return real(session, caller, mutation, clock)

    monkeypatch.setattr(sync, "_apply_checked", faulty)
    results = _push_together(engine, pushes)

    assert isinstance(results[1], RuntimeError)  # the push at fault fails in its own request
    for i in (0, 2, 3):
        assert [r.status for r in results[i]] == ["applied"] * 3
        caller, _, batch = pushes[i]
        assert batch in sync.committed_batches(engine, caller, [batch])
    # Nothing of the failed group stayed; each good push was applied once, on its own.
    assert _count(engine, "SELECT count(*) FROM applied_mutation") == 9
    assert _count(engine, "SELECT count(*) FROM change_log") == 9


def _ids_in(page: sync.PulledPage) -> list[str]:
    return [change["entity_id"] for change in json.loads(page.body)["changes"]]


def test_a_change_is_encoded_once_for_the_devices_that_pull_it(engine, monkeypatch):
    ward = new_ward()
    pusher, reader, neighbour = (_officer(engine, ward) for _ in range(3))
    mutations = _checked([new_dossier(Device(), ward) for _ in range(3)])
    sync.push(engine, pusher, mutations, Clock(SERVER_NODE))
    encodings = []
    real = sync._serving
    monkeypatch.setattr(sync, "_serving", lambda *a: encodings.append(a) or real(*a))

    first = sync.pull(engine, reader, 0, 100, one_clock=True)
    second = sync.pull(engine, neighbour, 0, 100, one_clock=True)
    whole = sync.pull(engine, neighbour, 0, 100)  # another form: encoded for itself
    cols = [
        sync.pull(engine, who, 0, 100, one_clock=True, columns=True) for who in (reader, neighbour)
    ]

    assert len(encodings) == 9  # three for the first pull, three for each other form
    assert second.body == first.body and cols[0].body == cols[1].body
    assert _ids_in(first) == [m.entity_id for m in mutations]
    assert _ids_in(whole) == _ids_in(first)
    # In columns, from the cache, the same changes as the rows of the first pull.
    rows = json.loads(first.body)
    assert PullResponse.model_validate_json(cols[1].body) == PullResponse.model_validate(rows)
    # The pusher's own records are still left out for it: its rows never come from the cache.
    assert _ids_in(sync.pull(engine, pusher, 0, 100, one_clock=True)) == []


def test_served_changes_keep_to_their_bound_oldest_out_first():
    served = sync._ServedChanges(max_bytes=10)
    served.put(("a",), b"1234", 4)
    served.put(("b",), b"5678", 4)
    assert served.get(("a",)) == b"1234"  # now the most recently served
    served.put(("c",), b"9999", 4)
    assert served.get(("b",)) is None
    assert (served.get(("a",)), served.get(("c",))) == (b"1234", b"9999")
    assert served.size == 8


def test_pulls_past_the_bound_wait_for_a_slot(engine, monkeypatch):
    ward = new_ward()
    callers = [_officer(engine, ward) for _ in range(3 * sync.PULLS_AT_ONCE)]
    running, most, guard = [0], [0], threading.Lock()
    real = sync._pull_rows

    def watched(*args, **kwargs):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)  # long enough for every thread to have arrived
        try:
            return real(*args, **kwargs)
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(sync, "_pull_rows", watched)
    pages: list = []
    threads = [
        threading.Thread(target=lambda c=c: pages.append(sync.pull(engine, c, 0, 10)))
        for c in callers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(pages) == len(callers)  # every pull was answered
    assert most[0] == sync.PULLS_AT_ONCE  # never more at once, and the bound was reached


def test_a_push_that_wrote_knows_the_log_head_at_its_commit(engine):
    ward = new_ward()
    caller = _officer(engine, ward)
    mutations = _checked([new_dossier(Device(), ward) for _ in range(3)])
    results, head = sync.push_and_head(engine, caller, mutations, Clock(SERVER_NODE))
    assert head == sync.log_head(engine) == 3
    again = sync.push_and_head(engine, caller, mutations, Clock(SERVER_NODE))
    assert again == (results, None)  # a replay wrote nothing: the route reads the head itself
