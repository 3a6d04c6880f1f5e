"""The pull's pages (issue 13, fifth round): the first page asks 1,000, each full page twice the
last up to the server's largest (4,000), and the next page is asked while the one before is
stored. Pages are stored in order, each with its cursor: a cut, a killed server or a revoked
device during the page asked ahead ends the run as a failed page always did, and the next run
resumes after the last stored page. A server that serves at most 1,000, and one that refuses a
larger limit (as servers before growing pages did), still give every record once.

One real API process (SQLite) for the module, holding one ward of 4,200 records (2,100 dossiers
and their intake events), pulled by fresh devices."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.domain.models import ReceiveDossier
from app.storage import StoreDestroyed, open_store, store_exists
from app.sync import transport as transport_module
from app.sync.engine import PULL_PAGE, PULL_PAGE_MAX
from app.sync.transport import LEGACY_PULL_LIMIT, DeviceRevoked
from tests.support.netproxy import NetProxy
from tests.support.server_proc import ApiServer, sqlite_api_server  # noqa: F401  (fixture)
from tests.sync.conftest import PIN, Devices, server_state

DOSSIERS = 2100  # with their intake events: 4,200 records, more than 1,000 + 2,000 + 1,000


@pytest.fixture(scope="module")
def server(sqlite_api_server: ApiServer) -> ApiServer:  # noqa: F811
    return sqlite_api_server


@pytest.fixture(scope="module")
def register(server: ApiServer, tmp_path_factory) -> tuple[str, int]:
    """(ward, records): one officer's 2,100 dossiers pushed once for the module."""
    ward = "00004"
    made = Devices(server, tmp_path_factory.mktemp("pull-register"))
    try:
        officer = made.enrol(made.user("officer", [ward]))
        officer.store.dossiers.receive_many(
            ReceiveDossier(
                procedure_code="1.000894",
                ward_code=ward,
                applicant_name=f"Lê Thị Thu {i}",
                # 96 a day: a device has 200 dossier codes a day
                received_at=dt.datetime(2025, 9, 1, 1, 0, tzinfo=dt.UTC)
                + dt.timedelta(minutes=15 * i),
            )
            for i in range(DOSSIERS)
        )
        report = officer.sync()
        assert report.ok and report.applied == 2 * DOSSIERS, report
    finally:
        made.close()
    records = len(server_state(server, ward))
    assert records == 2 * DOSSIERS
    return ward, records


@pytest.fixture
def devices(server: ApiServer, tmp_path: Path) -> Iterator[Devices]:
    made = Devices(server, tmp_path)
    yield made
    made.close()


class Watch:
    """What a device's pull does, in the order it happens: each page asked ("ask", cursor,
    limit) and its body read ("answered", cursor, changes) in a pull thread, each limit as it
    went on the wire ("sent", limit), each page stored ("store", cursor, changes) from the
    engine's thread. With `records`, the store of a page that is not the last waits (up to
    5 s) for the next page to be asked: an engine that asks it only after storing fails the
    order."""

    def __init__(self, device, records: int | None = None) -> None:
        self.events: list[tuple] = []
        self._asked = threading.Condition()
        transport, store = device.transport, device.store.sync
        pull, send, apply = transport.pull, transport._json, store.apply_pull_page
        kept = [0]

        def asked(cursor, limit, *args, **kw):
            self._add(("ask", cursor, limit))
            page = pull(cursor, limit, *args, **kw)
            self._add(("answered", cursor, len(page.changes)))
            return page

        def sent(method, path, **kw):
            if path == "/sync/pull":
                self._add(("sent", kw["params"]["limit"]))
            return send(method, path, **kw)

        def stored(changes, next_cursor):
            kept[0] += len(changes)
            if records is not None and kept[0] < records:
                with self._asked:
                    self._asked.wait_for(lambda: ("ask", next_cursor) in self._asks(), 5.0)
            self._add(("store", next_cursor, len(changes)))
            return apply(changes, next_cursor)

        transport.pull, transport._json, store.apply_pull_page = asked, sent, stored

    def _asks(self) -> list[tuple]:
        return [e[:2] for e in self.events if e[0] == "ask"]

    def _add(self, event: tuple) -> None:
        with self._asked:
            self.events.append(event)
            self._asked.notify_all()

    @property
    def served(self) -> list[int]:
        """The changes each page answered, in the order the pages were asked (two pages in
        flight may end in either order)."""
        with self._asked:
            answered = {e[1]: e[2] for e in self.events if e[0] == "answered"}
            return [answered[e[1]] for e in self.events if e[0] == "ask" and e[1] in answered]

    def answered(self, cursor: int) -> int | None:
        """The index of the event that read the body of the page from `cursor`."""
        with self._asked:
            found = [i for i, e in enumerate(self.events) if e[:2] == ("answered", cursor)]
            return found[0] if found else None

    def of(self, kind: str) -> list[tuple]:
        with self._asked:
            return [e[1:] for e in self.events if e[0] == kind]


def _held(device) -> set[str]:
    return set(device.store.sync.record_states())


@pytest.mark.parametrize("head", ["said", "not said"])
def test_pages_grow_and_a_fresh_pull_of_more_than_4000_records_lands_complete(
    devices, register, server, head, monkeypatch
):
    """The next page is asked from the answer's head, before its body is read; from a server
    whose answers do not say it in the head (older), once the body is read."""
    ward, records = register
    colleague = devices.enrol(devices.user("officer", [ward]))
    if head == "not said":
        monkeypatch.setattr(transport_module.PullHead, "parse", classmethod(lambda c, v: None))
    with NetProxy(server.port) as proxy:
        colleague.transport.retarget(proxy.url)
        proxy.set_link(up_bps=2_000_000, down_bps=2_000_000, delay_ms=20)  # bodies take time
        watch = Watch(colleague, records)
        report = colleague.sync()
        events = len(watch.events)
        again = colleague.sync()  # nothing new: one short page
        del watch.events[events:]
    assert report.ok and report.pulled == records, report
    assert len(_held(colleague)) == records  # each record once
    asks = [limit for _, limit in watch.of("ask")]
    assert asks == [PULL_PAGE, 2 * PULL_PAGE, PULL_PAGE_MAX] == [1000, 2000, 4000]
    assert watch.served == [1000, 2000, records - 3000]  # the server took a limit of 4,000
    # The next page is asked before the page before it is stored, one page ahead at most,
    # and pages are stored in order, each with its own cursor.
    kinds = [e[0] for e in watch.events if e[0] in ("ask", "store")]
    assert kinds == ["ask", "ask", "store", "ask", "store", "store"]
    stored = watch.of("store")
    assert [c for _, c in stored] == watch.served
    assert [cursor for cursor, _ in stored] == [c for c, _ in watch.of("ask")[1:]] + [
        colleague.store.sync.pull_cursor()
    ]
    second = watch.events.index(("ask", stored[0][0], 2000))
    first_read = watch.answered(0)
    assert first_read is not None
    if head == "said":  # asked while the first page's body was still on its way
        assert second < first_read
    else:
        assert second > first_read
    assert again.ok and again.pulled == 0


def test_a_head_the_body_belies_is_dropped_and_nothing_is_stored_out_of_order(
    devices, register, server, monkeypatch
):
    """A head that names another cursor than its body (a proxy's doing, a server bug): the
    page asked from it is never stored; the next page is asked again from the body's."""
    ward, records = register
    colleague = devices.enrol(devices.user("officer", [ward]))
    parse = transport_module.PullHead.parse.__func__

    def off_by_one(cls, value):
        said = parse(cls, value)
        return said and dataclasses.replace(said, next_cursor=said.next_cursor - 1)

    monkeypatch.setattr(transport_module.PullHead, "parse", classmethod(off_by_one))
    watch = Watch(colleague)
    report = colleague.sync()
    assert report.ok and report.pulled == records, report
    assert len(_held(colleague)) == records
    stored = [cursor for cursor, _ in watch.of("store")]
    belied = [c - 1 for c in stored[:-1]]
    asked = [cursor for cursor, _ in watch.of("ask")]
    assert set(belied) & set(asked)  # pages were asked from the heads...
    assert not set(belied) & set(stored)  # ...and none of them was stored
    assert stored == sorted(stored)
    assert [c for c in asked if c not in belied] == [0, *stored[:-1]]


@pytest.mark.parametrize("cut", ["link dropped", "server killed"])
def test_a_cut_during_the_page_asked_ahead_resumes_after_the_last_stored_page(
    devices, register, server, cut
):
    ward, records = register
    colleague = devices.enrol(devices.user("officer", [ward]))
    with NetProxy(server.port) as proxy:
        colleague.transport.retarget(proxy.url)
        proxy.set_link(up_bps=2_000_000, down_bps=2_000_000, delay_ms=150)
        watch = Watch(colleague)
        pull = colleague.transport.pull
        asked: list[int] = []

        def cut_the_third_page(cursor, *args, **kw):
            # The third page asked (ahead of the second, while it is stored or still on its
            # way): as its request reaches the proxy, before the server sees it, the link dies
            # or the server is killed, and stays so until the run has ended. (A timer here
            # raced the request along the link and lost under load.)
            asked.append(cursor)
            if len(asked) == 3:
                if cut == "server killed":
                    proxy.cut_request(b"GET /sync/pull", then=server.kill)
                else:
                    proxy.cut_request(b"GET /sync/pull", then=lambda: proxy.set_offline(True))
            return pull(cursor, *args, **kw)

        colleague.transport.pull = cut_the_third_page
        first = colleague.sync()
        colleague.transport.pull = pull
        if cut == "server killed":
            server.start()
        proxy.set_offline(False)
        assert first.offline and not first.ok, first
        assert len(asked) == 3 and watch.answered(asked[2]) is None  # cut in flight
        # What was stored is whole pages, in order, each with its cursor, and no more.
        stored = watch.of("store")
        assert stored and [c for _, c in stored] == watch.served[: len(stored)]
        last = stored[-1][0]
        assert colleague.store.sync.pull_cursor() == last
        assert first.pulled == sum(n for _, n in stored) == len(_held(colleague))
        watch.events.clear()
        resumed = colleague.sync()
    assert resumed.ok, resumed
    assert watch.of("ask")[0][0] == last  # after the last stored page, not before it
    assert first.pulled + resumed.pulled == records  # nothing pulled twice
    assert len(_held(colleague)) == records  # nothing lost
    assert set(colleague.store.sync.record_states().values()) == {"synced"}


def test_a_device_revoked_during_the_page_asked_ahead_still_erases(devices, register, server):
    from server.services import identity

    ward, _ = register
    colleague = devices.enrol(devices.user("officer", [ward]))
    watch = Watch(colleague)
    pull = colleague.transport.pull
    asked: list[int] = []

    def revoked_before_the_second_page(cursor, limit, *args, **kw):
        asked.append(cursor)
        if len(asked) == 2:  # the page asked ahead: the device is revoked meanwhile
            identity.revoke_device(server.engine, colleague.server_device_id)
        return pull(cursor, limit, *args, **kw)

    colleague.transport.pull = revoked_before_the_second_page
    with pytest.raises(DeviceRevoked):
        colleague.sync()
    assert len(asked) == 2
    assert colleague.revoked_calls == ["called"]
    assert not store_exists(colleague.data_dir) or _cannot_open(colleague.data_dir)
    assert len(watch.of("store")) == 1  # the page before it was stored, never the revoked one


def _cannot_open(data_dir: Path) -> bool:
    try:
        open_store(data_dir, PIN)
    except StoreDestroyed:
        return True
    return False


def test_a_server_that_serves_at_most_1000_still_gives_every_record(devices, register, server):
    ward, records = register
    server.extra_env = {"COMMUNE_PULL_LIMIT_MAX": "1000"}
    server.restart()
    try:
        colleague = devices.enrol(devices.user("officer", [ward]))
        watch = Watch(colleague)
        report = colleague.sync()
    finally:
        server.extra_env = {}
        server.restart()
    assert report.ok and report.pulled == records, report
    assert len(_held(colleague)) == records
    # Asked 2,000 and served 1,000: not a full page, so the ask does not grow further.
    assert [limit for _, limit in watch.of("ask")] == [1000] + [2000] * 4
    assert watch.served == [1000, 1000, 1000, 1000, records - 4000]


def test_a_server_that_refuses_a_limit_past_1000_is_asked_1000(devices, register, server):
    """As servers before growing pages: their route's bound answers 422 past 1,000."""
    ward, records = register
    colleague = devices.enrol(devices.user("officer", [ward]))
    with httpx.Client(base_url=server.url) as client:  # the server's own 422 for a limit
        refused = client.get(
            "/sync/pull",
            params={"limit": 99_999},
            headers={"Authorization": f"Bearer {colleague.transport.token}"},
        )
    assert refused.status_code == 422
    body = json.dumps(refused.json()).encode()
    past_1000 = rb"GET /sync/pull\?cursor=\d+&limit=(?!([1-9]\d{0,2}|1000)&)\d+&"
    with NetProxy(server.port) as proxy:
        colleague.transport.retarget(proxy.url)
        proxy.answer(re.compile(past_1000), 422, body, times=None)
        watch = Watch(colleague)
        report = colleague.sync()
        refusals = proxy.faults_fired
    assert report.ok and report.pulled == records, report
    assert len(_held(colleague)) == records
    assert refusals == 1  # refused once; then this transport asks what the server takes
    assert [limit for (limit,) in watch.of("sent")] == [1000, 2000] + [LEGACY_PULL_LIMIT] * 4
    assert watch.served == [1000, 1000, 1000, 1000, records - 4000]
