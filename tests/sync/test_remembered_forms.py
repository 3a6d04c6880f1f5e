"""The push forms the server reads, remembered between runs (issue 13): a transport made anew
on the same store (the app started again) sends its first push whole, with the reference data
asked beside it instead of before it; a push refused (422) in forms only remembered loses no
row: the forms are forgotten, and the rows go again as the short probe."""

from __future__ import annotations

import json
import threading
import time

import httpx

from app.domain.mutations import READS
from app.sync.engine import FIRST_PUSH_ROWS
from app.sync.transport import READS_SETTING, Transport
from tests.support.netproxy import NetProxy
from tests.sync.conftest import FAST_RETRY, receive_dossiers, server_state


def _started_anew(device, url: str) -> None:
    """The device's transport made again from its settings, as a new app process makes it."""
    device.transport.close()
    device.transport = Transport.from_settings(
        device.store.settings, server_url=url, retry=FAST_RETRY, zstd_level=3
    )
    device.engine.transport = device.transport


def _timed(device, name: str, spans: list) -> None:
    """Wraps a transport call: (name, rows or None, began, ended) of each call, in `spans`."""
    call = getattr(device.transport, name)
    lock = threading.Lock()

    def timed(*args, **kw):
        began = time.monotonic()
        try:
            return call(*args, **kw)
        finally:
            rows = len(args[0]) if name == "push" else None
            with lock:
                spans.append((name, rows, began, time.monotonic()))

    setattr(device.transport, name, timed)


def _after_the_first_push(device) -> None:
    """Holds the reference answer back until the first push was answered."""
    answered = threading.Event()
    push, reference = device.transport.push, device.transport.reference

    def first_push(*args, **kw):
        try:
            return push(*args, **kw)
        finally:
            answered.set()

    def late_reference(*args, **kw):
        assert answered.wait(30)
        return reference(*args, **kw)

    device.transport.push, device.transport.reference = first_push, late_reference


def test_a_new_transport_pushes_whole_with_the_reference_beside(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    assert officer.store.settings.get(READS_SETTING) is None
    assert officer.sync().ok
    assert set(officer.store.settings.get(READS_SETTING)) == set(READS)  # kept for next time
    receive_dossiers(officer.store, ward, 40)
    queued = officer.store.sync.pending_count()
    with NetProxy(sync_server.port) as proxy:
        _started_anew(officer, proxy.url)
        assert officer.transport.server_forms_known and officer.transport.server_forms_assumed
        proxy.set_link(delay_ms=100.0)  # a round trip of 0.2 s: the overlap shows
        spans: list = []
        _timed(officer, "push", spans)
        _timed(officer, "reference", spans)
        report = officer.sync()
    assert report.ok and report.applied == queued, report
    pushes = sorted(s for s in spans if s[0] == "push")
    (reference,) = [s for s in spans if s[0] == "reference"]
    first = min(pushes, key=lambda s: s[2])
    assert first[1] == queued > FIRST_PUSH_ROWS  # whole at once, not the short probe
    assert first[2] < reference[3] and reference[2] < first[3]  # the two travelled together
    assert not officer.transport.server_forms_assumed  # the server said them again
    assert officer.store.sync.pending_count() == 0
    assert len(server_state(sync_server, ward)) == 40 * 2  # the dossiers and their events


def test_a_push_refused_in_remembered_forms_loses_no_row(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    assert officer.sync().ok
    receive_dossiers(officer.store, ward, 30)
    queued = officer.store.sync.pending_count()
    with httpx.Client(base_url=sync_server.url) as client:  # the server's own 422 for a form
        refused = client.post(
            "/sync/push",
            json={"mutations": [{"entity": "dossier"}]},
            headers={"Authorization": f"Bearer {officer.transport.token}"},
        )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_error"
    body = json.dumps(refused.json()).encode()
    with NetProxy(sync_server.port) as proxy:
        _started_anew(officer, proxy.url)
        assert officer.transport.server_forms_assumed
        # An older server now: it refuses the first push, sent in the remembered forms.
        proxy.answer(b"POST /sync/push", 422, body, times=1)
        spans: list = []
        _timed(officer, "push", spans)
        _after_the_first_push(officer)  # the reference answer, which says the forms, comes late
        report = officer.sync()
        refusals = proxy.faults_fired
    assert refusals == 1
    assert report.rejected == 0 and report.applied == queued, report  # no row refused for it
    assert [rows for _, rows, _, _ in spans][:2] == [queued, FIRST_PUSH_ROWS]  # then the probe
    assert officer.store.sync.pending_count() == 0
    assert len(server_state(sync_server, ward)) == 30 * 2
    assert set(officer.store.settings.get(READS_SETTING)) == set(READS)  # learnt again


def test_settings_that_hold_no_form_list_are_not_assumed(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    for kept in ("one_clock", [], [1, 2], {"reads": ["one_clock"]}):
        officer.store.settings.set(READS_SETTING, kept)
        _started_anew(officer, sync_server.url)
        assert not officer.transport.server_forms_known
        assert not officer.transport.server_forms_assumed
