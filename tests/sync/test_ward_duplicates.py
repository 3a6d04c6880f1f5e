"""The ward-wide duplicate check between real devices and a real API on 127.0.0.1: device B
is warned of device A's open dossier, a device of another ward is not, and a server that
accepts and never answers costs the counter the check's timeout, not the intake."""

from __future__ import annotations

import socket
import time
from typing import Any

from app.views.dossier_models import ReceiveForm
from app.views.sync_bridge import ward_duplicates
from tests.sync.conftest import _ward_iter

PROCEDURE = "1.004884"
ID_NUMBER = "001190012345"
OFFICER = "Cán bộ một cửa"


def _form(name: str, id_number: str = ID_NUMBER) -> ReceiveForm:
    form = ReceiveForm()
    form.choose(PROCEDURE)
    form.applicant_name = name
    form.applicant_id_number = id_number
    return form


def _check_of(settings: Any, timeout_s: float = 10.0):
    return lambda procedure, number: ward_duplicates(settings, procedure, number, timeout_s)


class _Elsewhere:
    """The device's settings with another server address (the stalled one)."""

    def __init__(self, settings: Any, url: str) -> None:
        self._settings, self._url = settings, url

    def get(self, key: str, default: Any = None) -> Any:
        return self._url if key == "server_url" else self._settings.get(key, default)


def test_device_b_is_warned_of_device_a_and_another_ward_is_not(devices, ward) -> None:
    other_ward = next(_ward_iter)
    officers = devices.user("officer", [ward])
    a, b = devices.enrol(officers), devices.enrol(devices.user("officer", [ward]))
    c = devices.enrol(devices.user("officer", [other_ward]))
    first = _form("Nguyễn Thị Hương").submit(a.store.dossiers, ward, OFFICER)
    assert first is not None and a.sync().ok

    at_b = _form("Nguyễn Thị Hương")
    assert (
        at_b.submit(b.store.dossiers, ward, OFFICER, ward_check=_check_of(b.store.settings)) is None
    )
    assert not at_b.ward_unchecked
    assert [d.code for d in at_b.ward_duplicates] == [first.code]
    assert first.code in at_b.errors["duplicate"]  # B holds nothing of A's: the server told it

    at_c = _form("Nguyễn Thị Hương")
    saved = at_c.submit(
        c.store.dossiers, other_ward, OFFICER, ward_check=_check_of(c.store.settings)
    )
    assert saved is not None, at_c.errors
    assert at_c.ward_duplicates == [] and not at_c.ward_unchecked


def test_a_stalled_server_costs_the_timeout_and_the_intake_goes_on(devices, ward) -> None:
    b = devices.enrol(devices.user("officer", [ward]))
    with socket.socket() as stalled:  # accepts connections (the kernel's backlog), never answers
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(8)
        url = f"http://127.0.0.1:{stalled.getsockname()[1]}"
        form = _form("Phạm Văn Đức", "001190077777")
        started = time.monotonic()
        saved = form.submit(
            b.store.dossiers,
            ward,
            OFFICER,
            ward_check=_check_of(_Elsewhere(b.store.settings, url), timeout_s=1.0),
        )
        waited = time.monotonic() - started
    assert saved is not None  # received all the same
    assert form.ward_unchecked
    assert form.ward_note().startswith("Không kiểm tra được toàn phường")
    # Bounded, not timed: a hung check would wait for the transport's 60 s read timeout.
    assert waited < 30, waited
