"""The ward-wide duplicate check, client side: ward keys once, then terms, never the number.

`check(settings, procedure, id_number, timeout_s)` asks the server whether an open dossier of
the procedure exists for the ID number in the device's wards. It sends one keyed term per ward
(`app.domain.duplicates.id_term` under the ward key the server gave this device), so the ID
number never leaves the device for this check. One attempt, short timeouts: the counter must
not wait on a bad link (the caller also bounds the whole call, see `app.views.sync_bridge`).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from app.domain.duplicates import id_term
from app.domain.models import WardDuplicate
from app.sync.transport import HttpError, RetryPolicy, Timeouts, Transport

# (server url, device id) -> (key id, {ward: key}): kept in memory only, for this process.
_KEYS: dict[tuple[str, str], tuple[str, dict[str, bytes]]] = {}
_KEYS_LOCK = threading.Lock()


def short_transport(settings: Any, timeout_s: float) -> Transport:
    t = Timeouts(connect=timeout_s, read=timeout_s, write=timeout_s, pool=timeout_s)
    return Transport.from_settings(settings, timeouts=t, retry=RetryPolicy(attempts=1))


def _wards(settings: Any) -> list[str]:
    wards = [w for w in settings.get("wards") or [] if w and w != "*"]
    return wards or [w for w in [settings.get("ward_code")] if w]


def _ward_keys(transport: Transport, settings: Any, fresh: bool) -> tuple[str, dict[str, bytes]]:
    slot = (str(settings.get("server_url")), str(settings.get("server_device_id")))
    with _KEYS_LOCK:
        if not fresh and slot in _KEYS:
            return _KEYS[slot]
    answer = transport.index_keys(_wards(settings))
    keys = (str(answer["key_id"]), {w: bytes.fromhex(k) for w, k in answer["wards"].items()})
    with _KEYS_LOCK:
        _KEYS[slot] = keys
    return keys


def check(
    transport: Transport, settings: Any, procedure_code: str, id_number: str
) -> list[WardDuplicate]:
    """Open dossiers found ward-wide; raises the transport's errors (the caller falls back)."""
    for fresh in (False, True):
        key_id, keys = _ward_keys(transport, settings, fresh)
        terms = {w: t for w, k in keys.items() if (t := id_term(k, id_number))}
        if not terms:
            return []
        try:
            found = transport.ward_duplicates(procedure_code, key_id, terms)
        except HttpError as exc:
            if exc.code == "stale_index_key" and not fresh:
                continue  # the server's data key rotated: ask for the ward keys again
            raise
        return [
            WardDuplicate(
                code=str(d["code"]),
                received_day=dt.date.fromisoformat(d["received_day"]),
                ward_code=str(d["ward_code"]),
            )
            for d in found
            if d.get("code") and d.get("received_day")
        ]
    return []
