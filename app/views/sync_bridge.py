"""The views' door to `app/sync`: enrol, and a background scheduler for an enrolled store.

The views never speak HTTP themselves; everything here delegates to the sync room.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

log = logging.getLogger(__name__)


class EnrolError(Exception):
    pass


class AttachmentUnavailable(Exception):
    """The file is not on this device and could not be downloaded now (offline, refused, or
    `revoked`: the device was revoked, the notice shown and the store erased)."""

    def __init__(self, message: str, revoked: bool = False) -> None:
        super().__init__(message)
        self.revoked = revoked


def enrol(store: Any, server_url: str, code: str, device_name: str = "") -> dict:
    """Redeem a one-time code and keep the answer in the store's settings."""
    answer = redeem(server_url, code, device_name)
    keep_enrolment(store, server_url, answer)
    return answer


class _HeldSettings:
    """Settings that keep nothing on disk: the sync room's `enrol` writes here while the user
    has not yet agreed to what enrolling means for this store."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


def redeem(server_url: str, code: str, device_name: str = "") -> dict:
    """Redeem a one-time code and hand back the server's answer (token, user, wards) without
    keeping it, so the caller may ask the user first. The code is spent either way."""
    from app.sync.enrolment import enrol as redeem_code
    from app.sync.transport import SyncError

    try:
        return redeem_code(_HeldSettings(), server_url, code, device_name)
    except SyncError as exc:
        raise EnrolError(str(exc)) from exc


def authenticate(server_url: str, username: str, password: str) -> dict:
    """A desktop login's answer (token, user, wards), not kept yet, like `redeem`."""
    from app.sync.enrolment import login
    from app.sync.transport import SyncError

    try:
        return login(_HeldSettings(), server_url, username, password)
    except SyncError as exc:
        raise EnrolError(str(exc)) from exc


def keep_enrolment(store: Any, server_url: str, answer: dict, desktop: bool = False) -> None:
    """Save a redeemed answer (or a desktop login's, `desktop`) in the store's sealed settings
    (the sync room's rule)."""
    from app.sync.enrolment import save_enrolment

    save_enrolment(store.settings, server_url, answer, desktop=desktop)


def is_desktop_login(store: Any) -> bool:
    from app.sync.enrolment import is_desktop_login as logged_in

    return logged_in(store.settings)


def log_out(store: Any) -> None:
    """End the desktop login on the server and forget its tokens here. Raises `EnrolError`
    (the server could not be reached: the tokens are kept, so the user can try again)."""
    from app.sync.enrolment import logout
    from app.sync.transport import SyncError

    try:
        logout(store.settings)
    except SyncError as exc:
        raise EnrolError(str(exc)) from exc


RevokedNotice = Callable[[], object]
NOTICE_WAIT_S = 10.0  # how long the erase waits for the notice to be on screen
WARD_CHECK_S = 3.0  # the longest the counter waits for the ward-wide duplicate check


class SyncBridge:
    """A started `SyncScheduler` for one unlocked store."""

    def __init__(self, scheduler: Any, transport: Any = None, settings: Any = None) -> None:
        self.scheduler = scheduler
        self.settings = settings  # the store's sealed settings (server address, token, wards)

    @property
    def transport(self) -> Any:
        """The engine's current transport (a hung run's is replaced after it is cut)."""
        return self.scheduler.engine.transport

    @classmethod
    def start_for(cls, store: Any, on_revoked: RevokedNotice | None = None) -> SyncBridge | None:
        """None when the device is not enrolled (local only) or the sync room is absent.

        `on_revoked` runs on the sync thread when the server says this device was revoked, while
        the store can still be read and before it is crypto-erased: the place to tell the user.
        When it returns a future (Flet's `page.run_task` does), the erase waits for it, at most
        NOTICE_WAIT_S seconds."""
        if not store.settings.get("device_token"):
            return None
        try:
            from app.sync.engine import SyncEngine
            from app.sync.scheduler import SyncScheduler
            from app.sync.transport import Transport
        except ImportError:
            log.warning("app.sync is not available; working locally")
            return None
        from app.sync.transport import InsecureUrl

        try:
            transport = Transport.from_settings(store.settings)
        except InsecureUrl as exc:  # an http:// address kept before the check: no sync
            log.warning("not syncing: %s", exc)
            return None
        engine = SyncEngine(store.sync, transport, on_revoked=_waiting_for(on_revoked))
        scheduler = SyncScheduler(
            engine, new_transport=lambda: Transport.from_settings(store.settings)
        )
        scheduler.start()
        return cls(scheduler, settings=store.settings)

    def open_attachment(self, sha256: str) -> bytes:
        """A file's bytes: the local copy, or downloaded on this first open and kept (its
        SHA-256 checked). Blocking: call it from the views' worker, not the UI loop."""
        from app.sync.transport import DeviceRevoked, SyncError

        try:
            return self.scheduler.engine.open_attachment(sha256)
        except SyncError as exc:
            revoked = isinstance(exc, DeviceRevoked)
            raise AttachmentUnavailable(str(exc), revoked=revoked) from exc

    def ward_duplicates(
        self, procedure_code: str, id_number: str, timeout_s: float = WARD_CHECK_S
    ) -> list[Any] | None:
        """Open dossiers of the procedure for this ID number in the device's wards, asked of the
        server (`app.sync.duplicates`); None when it could not answer within `timeout_s` (no
        link, a stalled server, a refusal): the counter then relies on the device's own check
        and says so. Blocking for at most `timeout_s`: call it from the views' worker."""
        return ward_duplicates(self.settings, procedure_code, id_number, timeout_s)

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


def ward_duplicates(
    settings: Any, procedure_code: str, id_number: str, timeout_s: float = WARD_CHECK_S
) -> list[Any] | None:
    """See `SyncBridge.ward_duplicates`. The request runs on its own thread with its own
    transport; past the deadline the transport is closed (requests in flight cut) and the
    answer is None, so a server that accepts and never answers costs `timeout_s`, no more."""
    if settings is None or not settings.get("device_token"):
        return None
    from app.sync.duplicates import check, short_transport
    from app.sync.transport import SyncError

    try:
        transport = short_transport(settings, timeout_s)
    except SyncError:
        return None
    done: Future = Future()

    def run() -> None:
        try:
            done.set_result(check(transport, settings, procedure_code, id_number))
        except Exception as exc:  # any failure means "not checked", never a broken counter
            done.set_exception(exc)

    threading.Thread(target=run, name="ward-duplicates", daemon=True).start()
    try:
        return done.result(timeout=timeout_s)
    except FutureTimeout:
        log.info("ward-wide duplicate check: no answer within %.1f s", timeout_s)
        return None
    except Exception as exc:
        log.info("ward-wide duplicate check failed: %s", exc)
        return None
    finally:
        transport.close()


def _waiting_for(notice: RevokedNotice | None) -> Callable[[], None] | None:
    """The engine's `on_revoked`: run the notice, and wait for it when it hands back a future."""
    if notice is None:
        return None

    def before_erase() -> None:
        shown = notice()
        if isinstance(shown, Future):
            try:
                shown.result(timeout=NOTICE_WAIT_S)
            except FutureTimeout:
                log.warning("the revocation notice took too long; erasing anyway")
            except Exception:  # the notice failed: the erase must still happen
                log.exception("the revocation notice failed")

    return before_erase
