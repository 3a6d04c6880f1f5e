"""First run, PIN set-up, unlock with lockout feedback, and the idle auto-lock. Pure, no Flet."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.i18n import t
from app.views.errors import error_text

MIN_PIN_LENGTH = 6
MAX_PIN_LENGTH = 64
AUTO_LOCK_CHOICES = (0, 1, 2, 5, 10, 15, 30)  # minutes; 0 = never
DEFAULT_AUTO_LOCK_MINUTES = 5


class StoreGateway(Protocol):
    """What the lock screen needs from `app.storage` (the real one or a test fake)."""

    def exists(self) -> bool: ...
    def create(self, pin: str) -> Any: ...
    def open(self, pin: str) -> Any: ...


@dataclass(frozen=True)
class StorageGateway:
    """The real gateway over `app.storage` for one data folder."""

    data_dir: Path

    def exists(self) -> bool:
        from app.storage import store_exists

        return store_exists(self.data_dir)

    def create(self, pin: str) -> Any:
        from app.storage import create_store

        return create_store(self.data_dir, pin)

    def open(self, pin: str) -> Any:
        from app.storage import open_store

        return open_store(self.data_dir, pin)

    def check_revoked(self) -> bool:
        """Locked: ask the server whether this tablet was revoked; erased if so (no PIN)."""
        from app.sync.locked_check import check_while_locked

        return check_while_locked(self.data_dir)


@dataclass
class UnlockResult:
    store: Any = None
    message: str = ""
    wait_seconds: float = 0.0
    attempts_left: int | None = None
    destroyed: bool = False

    @property
    def ok(self) -> bool:
        return self.store is not None


def pin_problem(pin: str, confirm: str) -> str | None:
    """Why this new PIN cannot be used, or None."""
    if len(pin) < MIN_PIN_LENGTH:
        return t("pin.too_short", n=MIN_PIN_LENGTH)
    if len(pin) > MAX_PIN_LENGTH:
        return t("pin.too_long", n=MAX_PIN_LENGTH)
    if len(set(pin)) == 1:
        return t("pin.too_simple")
    if pin != confirm:
        return t("pin.mismatch")
    return None


class LockPresenter:
    """What the lock screen shows: first-run set-up or unlock, and the outcome of an attempt."""

    def __init__(self, gateway: StoreGateway) -> None:
        self.gateway = gateway

    @property
    def first_run(self) -> bool:
        return not self.gateway.exists()

    def create(self, pin: str, confirm: str) -> UnlockResult:
        from app.storage.errors import WeakSecretWithoutKeystore

        problem = pin_problem(pin, confirm)
        if problem:
            return UnlockResult(message=problem)
        try:
            return UnlockResult(store=self.gateway.create(pin))
        except WeakSecretWithoutKeystore as exc:  # no keystore here: a passphrase is needed
            return UnlockResult(message=error_text(exc))

    def unlock(self, pin: str) -> UnlockResult:
        from app.storage.errors import LockedOut, StorageError, StoreDestroyed, WrongPin

        if not pin:
            return UnlockResult(message=t("unlock.empty"))
        try:
            return UnlockResult(store=self.gateway.open(pin))
        except WrongPin as exc:
            return UnlockResult(
                message=_wrong_pin_text(exc.attempts_left, exc.retry_after_s),
                wait_seconds=exc.retry_after_s,
                attempts_left=exc.attempts_left,
            )
        except LockedOut as exc:
            secs = _ceil(exc.retry_after_s)
            return UnlockResult(message=t("unlock.locked_out", s=secs), wait_seconds=secs)
        except StoreDestroyed:
            return UnlockResult(message=t("unlock.destroyed"), destroyed=True)
        except StorageError as exc:  # tampered or missing files: say so, keep the screen usable
            return UnlockResult(message=error_text(exc))


def _ceil(value: float) -> int:
    return max(1, int(-(-value // 1)))


def _wrong_pin_text(attempts_left: int, retry_after_s: float) -> str:
    text = t("unlock.wrong_pin", n=attempts_left)
    if retry_after_s > 0:
        text += " " + t("unlock.wait", s=_ceil(retry_after_s))
    return text


class IdleTimer:
    """Locks after `minutes` without user activity (0 = never)."""

    def __init__(self, minutes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.minutes = minutes
        self._clock = clock
        self._last = clock()

    def touch(self) -> None:
        self._last = self._clock()

    def expired(self) -> bool:
        return self.minutes > 0 and self._clock() - self._last >= self.minutes * 60

    def seconds_left(self) -> float | None:
        if self.minutes <= 0:
            return None
        return max(0.0, self.minutes * 60 - (self._clock() - self._last))


def ward_options(codes: list[str] | None = None) -> list[tuple[str, str]]:
    """(code, name) for a ward picker: the given codes (an enrolled user's scope) in that order,
    or every Hanoi ward. Loading the ward list takes a moment: call it off the UI loop."""
    from app.domain import reference

    if codes is None:
        return [(w.code, w.name) for w in reference.hanoi_wards()]
    options = []
    for code in codes:
        try:
            options.append((code, reference.ward(code).name))
        except KeyError:
            options.append((code, code))
    return options


class RecoveryPresenter:
    """The "Quên mã PIN" path: a request for the admin, then their answer and a new PIN."""

    REQUEST_NAME = "recovery-request.json"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    def request(self) -> tuple[str, Path]:
        """(the request as text to send the admin, the file it was also saved to)."""
        import json

        from app.storage.recovery import new_request, read_escrow

        escrow = read_escrow(self.data_dir) or {}
        body = new_request(self.data_dir, escrow, escrow.get("server_device_id"))
        text = json.dumps(body, separators=(",", ":"))
        path = self.data_dir / self.REQUEST_NAME
        path.write_text(text)
        return text, path

    def finish(self, answer_text: str, pin: str, confirm: str) -> UnlockResult:
        import json

        from app.storage import recover_store
        from app.storage.errors import StorageError

        problem = pin_problem(pin, confirm)
        if problem:
            return UnlockResult(message=problem)
        try:
            answer = json.loads(answer_text)
            if not isinstance(answer, dict):
                raise ValueError
        except ValueError:
            return UnlockResult(message=t("recover.bad_answer"))
        try:
            return UnlockResult(store=recover_store(self.data_dir, answer, pin))
        except StorageError as exc:
            key = (
                "recover.failed" if type(exc).__name__ in ("RecoveryError", "TamperError") else None
            )
            return UnlockResult(message=t(key) if key else error_text(exc))


WARD_MATCHES_SHOWN = 6


def search_wards(
    options: list[tuple[str, str]], query: str, limit: int = WARD_MATCHES_SHOWN
) -> list[tuple[str, str]]:
    """The wards whose name (typed with or without diacritics) or code holds `query`."""
    from app.domain.text import fold

    needle = fold(query)
    if not needle:
        return options[:limit]
    return [(c, n) for c, n in options if needle in fold(n) or needle in c][:limit]


def name_label(work: str | None) -> str:
    """The name field's words for the work chosen: no "receiving officer" for an auditor."""
    return (
        t(f"first.name.{work}")
        if work in ("officer", "auditor", "supervisor")
        else t("first.name.enrolled")
    )
