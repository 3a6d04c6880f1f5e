"""The views' door to `app/sync`: enrol, and a background scheduler for an enrolled store.

The views never speak HTTP themselves; everything here delegates to the sync room.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class EnrolError(Exception):
    pass


def enrol(store: Any, server_url: str, code: str, device_name: str = "") -> dict:
    """Redeem a one-time code and keep the answer in the store's settings."""
    try:
        from app.cli.sync_cmds import save_enrolment
        from app.sync.transport import SyncError, Transport
    except ImportError as exc:
        raise EnrolError(str(exc)) from exc
    try:
        with Transport(server_url) as transport:
            answer = transport.enrol(code, device_name or platform.node() or "device")
    except SyncError as exc:
        raise EnrolError(str(exc)) from exc
    save_enrolment(store.settings, server_url, answer)
    return answer


class SyncBridge:
    """A started `SyncScheduler` for one unlocked store."""

    def __init__(self, scheduler: Any, transport: Any) -> None:
        self.scheduler = scheduler
        self.transport = transport

    @classmethod
    def start_for(cls, store: Any) -> SyncBridge | None:
        """None when the device is not enrolled (local only) or the sync room is absent."""
        if not store.settings.get("device_token"):
            return None
        try:
            from app.sync.engine import SyncEngine
            from app.sync.scheduler import SyncScheduler
            from app.sync.transport import Transport
        except ImportError:
            log.warning("app.sync is not available; working locally")
            return None
        transport = Transport.from_settings(store.settings)
        scheduler = SyncScheduler(SyncEngine(store.sync, transport))
        scheduler.start()
        return cls(scheduler, transport)

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        self.scheduler.add_listener(listener)

    def sync_now(self) -> None:
        self.scheduler.sync_now()

    def retarget(self, server_url: str) -> None:
        """A new server address from the settings screen: used from the next request on."""
        self.transport.retarget(server_url)

    def shutdown(self) -> None:
        self.scheduler.shutdown(timeout=5.0)
        self.transport.close()
