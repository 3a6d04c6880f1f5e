"""The sync indicator, the conflict chooser and the settings screen. Pure, no Flet."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.i18n import LANGUAGES, t
from app.views.errors import error_text
from app.views.format import datetime_text
from app.views.lock_model import (
    AUTO_LOCK_CHOICES,
    DEFAULT_AUTO_LOCK_MINUTES,
    pin_problem,
    ward_options,
)


@dataclass(frozen=True)
class SyncIndicator:
    """One line for the shell: offline / syncing / pending N / conflicts / last synced."""

    text: str
    tone: str  # "ok" | "busy" | "warn" | "error" | "offline"
    pending: int
    conflicts: int
    can_sync_now: bool


def sync_indicator(summary: Any, status: Any = None, *, enrolled: bool = True) -> SyncIndicator:
    """`summary` is the store's SyncSummary; `status` the scheduler's latest SyncStatus (or None).

    The scheduler's status is read by attribute names that describe it (`online`, `running`,
    `last_error`), so a status without one of them is simply not shown that way.
    """
    pending = int(getattr(summary, "pending", 0) or 0)
    conflicts = int(getattr(summary, "conflicts", 0) or 0)
    last: dt.datetime | None = getattr(summary, "last_synced_at", None)
    parts: list[str] = []
    if not enrolled:
        return SyncIndicator(t("sync.local_only"), "offline", pending, conflicts, False)
    running = bool(getattr(status, "running", False))
    online = getattr(status, "online", None)
    error = getattr(status, "last_error", None)
    if running:
        parts.append(t("sync.running"))
        tone = "busy"
    elif online is False:
        parts.append(t("sync.offline"))
        tone = "offline"
    elif error:
        parts.append(t("sync.error"))
        tone = "error"
    else:
        tone = "ok"
    if pending:
        parts.append(t("sync.pending", n=pending))
        tone = "warn" if tone == "ok" else tone
    if conflicts:
        parts.append(t("sync.conflicts", n=conflicts))
        tone = "error" if tone in ("ok", "warn") else tone
    parts.append(t("sync.last", at=datetime_text(last)) if last else t("sync.never"))
    return SyncIndicator(" · ".join(parts), tone, pending, conflicts, not running)


# ---------------------------------------------------------------------------------------------
# Conflicts


@dataclass(frozen=True)
class ConflictChoice:
    conflict_id: str
    title: str
    field: str
    options: list[tuple[str, Any]]  # (shown text, value to write)


def value_text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def conflict_choices(
    conflicts: list[Any], describe: Callable[[str, str], str] | None = None
) -> list[ConflictChoice]:
    """`describe(entity, entity_id)` names the record for a person (code and applicant)."""
    result = []
    for c in conflicts:
        options = []
        for i, v in enumerate(c.values):
            tag = t("conflict.kept") if i == 0 else t("conflict.other")
            options.append((f"{tag}: {value_text(v.get('value'))}", v.get("value")))
        field_label = t(f"field.{c.field}") if c.field else c.field
        who = describe(c.entity, c.entity_id) if describe else c.entity_id[:8]
        title = t("conflict.title", entity=t(f"entity.{c.entity}"), id=who)
        result.append(ConflictChoice(c.id, title, field_label, options))
    return result


# ---------------------------------------------------------------------------------------------
# Settings


@dataclass
class EnrolOutcome:
    problem: str | None = None
    wards: list[tuple[str, str]] = field(default_factory=list)  # to choose from, when several
    ward: str = ""  # the device's ward now


@dataclass
class SettingsState:
    server_url: str
    language: str
    auto_lock_minutes: int
    enrolled: bool


class SettingsPresenter:
    def __init__(self, store: Any) -> None:
        self.store = store

    def load(self) -> SettingsState:
        s = self.store.settings
        minutes = s.get("auto_lock_minutes", DEFAULT_AUTO_LOCK_MINUTES)
        return SettingsState(
            server_url=s.get("server_url", "") or "",
            language=s.get("language", "vi") or "vi",
            auto_lock_minutes=int(minutes if minutes is not None else DEFAULT_AUTO_LOCK_MINUTES),
            enrolled=bool(s.get("device_token")),
        )

    def set_language(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(language)
        self.store.settings.set("language", language)

    def set_auto_lock(self, minutes: int) -> None:
        if minutes not in AUTO_LOCK_CHOICES:
            raise ValueError(minutes)
        self.store.settings.set("auto_lock_minutes", minutes)

    def set_server_url(self, url: str, bridge: Any = None) -> str | None:
        """Keep the address; a running sync (`bridge`, a `SyncBridge`) uses it from its next
        request on, not only after the next unlock."""
        url = url.strip().rstrip("/")
        if url and not url.startswith(("http://", "https://")):
            return t("settings.error.url")
        self.store.settings.set("server_url", url)
        if bridge is not None and url:
            bridge.retarget(url)
        return None

    def enrol(self, url: str, code: str) -> EnrolOutcome:
        """Enrol a store that has worked locally so far. The device's ward must be one of the
        user's: one ward is taken as it is; with several, the user picks (`wards`)."""
        from app.views.sync_bridge import EnrolError, enrol

        url, code = url.strip().rstrip("/"), code.strip()
        if not url.startswith(("http://", "https://")) or not code:
            return EnrolOutcome(problem=t("first.error.server"))
        try:
            answer = enrol(self.store, url, code)
        except EnrolError as exc:
            return EnrolOutcome(problem=t("settings.error.enrol", reason=error_text(exc)))
        codes = [str(c) for c in answer.get("wards") or []]
        current = self.store.settings.get("ward_code") or ""
        if codes and current not in codes:
            current = codes[0]
            self.store.settings.set("ward_code", current)
        return EnrolOutcome(wards=ward_options(codes) if len(codes) > 1 else [], ward=current)

    def set_ward(self, code: str) -> None:
        if code not in (self.store.settings.get("wards") or []):
            raise ValueError(code)
        self.store.settings.set("ward_code", code)

    def change_pin(self, old: str, new: str, confirm: str) -> str | None:
        problem = pin_problem(new, confirm)
        if problem:
            return problem
        from app.storage.errors import StorageError

        try:
            self.store.change_pin(old, new)
        except StorageError as exc:
            return f"{t('settings.error.old_pin')}: {error_text(exc)}"
        return None

    @staticmethod
    def auto_lock_choices() -> list[tuple[int, str]]:
        return [
            (m, t("settings.never") if m == 0 else t("settings.minutes", n=m))
            for m in AUTO_LOCK_CHOICES
        ]
