"""The sync indicator, the conflict chooser and the settings screen. Pure, no Flet."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.domain.calendar import VN_TZ
from app.i18n import LANGUAGES, t
from app.views.errors import error_text
from app.views.format import datetime_text
from app.views.lock_model import (
    AUTO_LOCK_CHOICES,
    DEFAULT_AUTO_LOCK_MINUTES,
    pin_problem,
    ward_options,
)
from app.views.ward_picker import WardPicker


@dataclass(frozen=True)
class SyncIndicator:
    """One line for the shell: offline / syncing / pending N / conflicts / last synced."""

    text: str
    tone: str  # "ok" | "busy" | "warn" | "error" | "offline"
    pending: int
    conflicts: int
    can_sync_now: bool


STALL_WARN_S = 10  # a run this long without an answer says so


def clock_text(moment: dt.datetime) -> str:
    """A time of day today, in Vietnam: when a retry comes."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(VN_TZ).strftime("%H:%M:%S")


def progress_text(progress: Any) -> str:
    """The running step: "Đang gửi 120/500", "Đang nhận (1000)", "Đang gửi tệp 2/5"."""
    stage = getattr(progress, "stage", "")
    done, total = getattr(progress, "done", 0), getattr(progress, "total", None)
    if stage not in ("push", "pull", "upload"):
        return t("sync.running")
    count = f"{done}/{total}" if total else str(done)
    return t(f"sync.stage.{stage}", count=count)


def _running_parts(status: Any, now: dt.datetime) -> list[str]:
    parts = [progress_text(getattr(status, "progress", None))]
    moved = getattr(status, "progress_at", None)
    quiet = (now - moved).total_seconds() if moved else 0.0
    if quiet >= STALL_WARN_S:
        cut_at = moved + dt.timedelta(seconds=float(getattr(status, "stall_s", 25.0)))
        parts.append(t("sync.stalled", s=int(quiet), at=clock_text(cut_at)))
    if getattr(status, "queued", False):
        parts.append(t("sync.queued"))
    return parts


def sync_indicator(
    summary: Any, status: Any = None, *, enrolled: bool = True, now: dt.datetime | None = None
) -> SyncIndicator:
    """`summary` is the store's SyncSummary; `status` the scheduler's latest SyncStatus (or None).

    The scheduler's status is read by attribute names that describe it (`online`, `running`,
    `last_error`, `progress`, `next_try_at`), so a status without one of them is simply not
    shown that way. "Chờ gửi" counts what the user made (`waiting`), not outbox rows.
    """
    now = now or dt.datetime.now(dt.UTC)
    waiting = getattr(summary, "waiting", None)
    pending = int((waiting if waiting is not None else getattr(summary, "pending", 0)) or 0)
    conflicts = int(getattr(summary, "conflicts", 0) or 0)
    last: dt.datetime | None = getattr(summary, "last_synced_at", None)
    parts: list[str] = []
    if not enrolled:
        return SyncIndicator(t("sync.local_only"), "offline", pending, conflicts, False)
    running = bool(getattr(status, "running", False))
    online = getattr(status, "online", None)
    error = getattr(status, "last_error", None)
    retry_at = getattr(status, "next_try_at", None)
    if running:
        parts += _running_parts(status, now)
        tone = "busy"
    elif online is False:
        parts.append(t("sync.offline"))
        if retry_at is not None:
            parts.append(t("sync.retry_at", at=clock_text(retry_at)))
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
    rejected = int(getattr(summary, "rejected", 0) or 0)
    if rejected:  # refused records stay local; the count is of records (a dossier and its
        # history entries), not of dossiers, so no number: the list marks which dossiers
        parts.append(t("sync.rejected"))
        tone = "warn" if tone == "ok" else tone
    unreadable = int(getattr(summary, "unreadable", 0) or 0)
    if unreadable:  # kept aside until the server sends a readable version
        parts.append(t("sync.unreadable", n=unreadable))
        tone = "warn" if tone == "ok" else tone
    parts.append(t("sync.last", at=datetime_text(last)) if last else t("sync.never"))
    # During a run "Đồng bộ ngay" queues another run, or restarts one that hangs.
    return SyncIndicator(" · ".join(parts), tone, pending, conflicts, True)


# ---------------------------------------------------------------------------------------------
# What waits to be sent


@dataclass(frozen=True)
class WaitingRow:
    kind: str  # "Hồ sơ" | "Phiếu khảo sát" | "Quyết định duyệt"
    title: str  # a dossier's code, an audit's ward
    state: str  # "Chờ gửi" | "Bị từ chối" | "Xung đột"
    tone: str  # "warn" | "error"
    error: str  # the last error, "" when none


def waiting_rows(records: list[Any], last_error: str | None = None) -> list[WaitingRow]:
    """The store's `WaitingRecord`s as the sync screen lists them. A record waiting on a run
    that failed shows that run's error; a refused one the server's reason for it."""
    from app.views.audit_models import ward_name

    rows = []
    for r in records:
        title = (r.code if r.entity == "dossier" else "") or ward_name(r.ward_code)
        refused = r.state in ("rejected", "conflict")
        reason = r.reason or (last_error if not refused else "") or ""
        rows.append(
            WaitingRow(
                kind=t(f"waiting.kind.{r.entity}"),
                title=title or r.entity_id[:8],
                state=t(f"waiting.state.{r.state}"),
                tone="error" if refused else "warn",
                error=error_reason_text(reason),
            )
        )
    return rows


def error_reason_text(reason: str) -> str:
    """A stored reason, shortened to one readable line."""
    reason = " ".join(reason.split())
    return reason if len(reason) <= 160 else reason[:157] + "…"


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


EVERY_WARD = "*"  # a scope holding this sees every ward (the server's ALL_WARDS)
COUNT_PAGE = 500  # dossiers read per page while counting those outside a scope


@dataclass(frozen=True)
class OutsideScope:
    """Local dossiers received under wards the enrolling user does not hold: the server refuses
    them (`ward_out_of_scope`), so they stay on this device, marked rejected."""

    count: int
    wards: list[str]  # their wards' names
    notice: str  # what the user reads before agreeing


@dataclass
class EnrolOutcome:
    problem: str | None = None
    wards: list[tuple[str, str]] = field(default_factory=list)  # to choose from, when several
    ward: str = ""  # the device's ward now
    outside: OutsideScope | None = None  # not saved yet: confirm_enrol() or cancel_enrol()


@dataclass
class SettingsState:
    server_url: str
    language: str
    auto_lock_minutes: int
    enrolled: bool
    account: list[tuple[str, str]] = field(default_factory=list)  # (label, value) to show
    desktop_login: bool = False  # a password login (a supervisor's desktop): it can log out


def account_lines(settings: Any) -> list[tuple[str, str]]:
    """Who this device works for: the enrolled user, role, wards and server; or, local only,
    the work chosen at first run and the device's ward."""
    role = settings.get("role")
    if settings.get("device_token"):
        wards = [name for _, name in ward_options(list(settings.get("wards") or []))]
        return [
            (t("settings.account.user"), settings.get("user") or "—"),
            (t("settings.account.role"), t(f"role.{role}") if role else "—"),
            (t("settings.account.wards"), ", ".join(wards) or "—"),
            (t("settings.server"), settings.get("server_url") or "—"),
        ]
    work = settings.get("local_role") or "officer"
    ward = settings.get("ward_code")
    ward_name = ward_options([ward])[0][1] if ward else "—"
    return [
        (t("settings.account.work"), t(f"role.{work}")),
        (t("settings.account.ward"), ward_name),
    ]


def _desktop_login(store: Any) -> bool:
    from app.views.sync_bridge import is_desktop_login

    return is_desktop_login(store)


class SettingsPresenter:
    def __init__(self, store: Any) -> None:
        self.store = store
        # a redeemed enrolment or desktop login awaiting the user: (url, answer, desktop)
        self._held: tuple[str, dict, bool] | None = None

    def load(self) -> SettingsState:
        s = self.store.settings
        minutes = s.get("auto_lock_minutes", DEFAULT_AUTO_LOCK_MINUTES)
        return SettingsState(
            server_url=s.get("server_url", "") or "",
            language=s.get("language", "vi") or "vi",
            auto_lock_minutes=int(minutes if minutes is not None else DEFAULT_AUTO_LOCK_MINUTES),
            enrolled=bool(s.get("device_token")),
            account=account_lines(s),
            desktop_login=_desktop_login(self.store),
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
        if url:
            from app.sync.transport import InsecureUrl, check_scheme

            try:  # http:// only to this machine, unless the lab flag is set
                check_scheme(url, bool(self.store.settings.get("allow_insecure_http")))
            except InsecureUrl as exc:
                return str(exc)
        self.store.settings.set("server_url", url)
        if bridge is not None and url:
            bridge.retarget(url)
        return None

    def enrol(self, url: str, code: str) -> EnrolOutcome:
        """Enrol a store that has worked locally so far. The device's ward must be one of the
        user's: one ward is taken as it is; with several, the user picks (`wards`).

        When local dossiers were received under wards outside the user's scope, nothing is
        saved yet: the outcome's `outside` says how many, and the user confirms or cancels.
        Those dossiers are not moved to the user's ward. A dossier's ward is where it was
        received: its code carries that ward's agency code and the receipt slip handed to the
        applicant names it, and a local store's ward was picked by the officer at first run,
        not a placeholder. Re-filing them would falsify the record; they stay here, and the
        server's refusal marks them 'rejected: out of scope' for an admin to settle."""
        from app.views.sync_bridge import EnrolError, redeem

        url, code = url.strip().rstrip("/"), code.strip()
        if not url.startswith(("http://", "https://")) or not code:
            return EnrolOutcome(problem=t("first.error.server"))
        try:
            answer = redeem(url, code)
        except EnrolError as exc:
            return EnrolOutcome(problem=t("settings.error.enrol", reason=error_text(exc)))
        return self._agree_or_keep(url, answer, desktop=False)

    def login(self, url: str, username: str, password: str) -> EnrolOutcome:
        """A desktop login (supervisors, admins) with the user's password instead of a one-time
        code; kept like an enrolment, with the same scope check, and it can log out."""
        from app.views.sync_bridge import EnrolError, authenticate

        url, username = url.strip().rstrip("/"), username.strip()
        if not url.startswith(("http://", "https://")) or not username or not password:
            return EnrolOutcome(problem=t("settings.error.login_fields"))
        try:
            answer = authenticate(url, username, password)
        except EnrolError as exc:
            refused = type(exc.__cause__).__name__ in ("Unauthorized", "RequestRejected")
            reason = t("settings.error.login_refused") if refused else error_text(exc)
            return EnrolOutcome(problem=t("settings.error.login", reason=reason))
        return self._agree_or_keep(url, answer, desktop=True)

    def logout(self) -> str | None:
        """End the desktop login: None when done, else why not (nothing is forgotten then)."""
        from app.views.sync_bridge import EnrolError, is_desktop_login, log_out

        if not is_desktop_login(self.store):
            return t("settings.error.not_logged_in")
        try:
            log_out(self.store)
        except EnrolError as exc:
            return t("settings.error.logout", reason=error_text(exc))
        return None

    def _agree_or_keep(self, url: str, answer: dict, desktop: bool) -> EnrolOutcome:
        outside = self.outside_scope([str(c) for c in answer.get("wards") or []])
        if outside is not None:
            self._held = (url, answer, desktop)
            return EnrolOutcome(outside=outside)
        return self._keep(url, answer, desktop)

    def confirm_enrol(self) -> EnrolOutcome:
        """The user agreed: keep the enrolment redeemed by `enrol` (or the login)."""
        if self._held is None:
            return EnrolOutcome(problem=t("settings.error.nothing_held"))
        url, answer, desktop = self._held
        self._held = None
        return self._keep(url, answer, desktop)

    def cancel_enrol(self) -> str:
        """The user declined: forget the redeemed answer (its code is spent on the server)."""
        self._held = None
        return t("settings.enrol_cancelled")

    def outside_scope(self, wards: list[str]) -> OutsideScope | None:
        """The local dossiers a user holding `wards` may not send, or None when there are none."""
        if EVERY_WARD in wards:
            return None
        by_ward = self._dossiers_by_ward()
        outside = {w: n for w, n in by_ward.items() if w not in wards}
        if not outside:
            return None
        count = sum(outside.values())
        names = [name for _, name in ward_options(sorted(outside))]
        notice = t("settings.outside_scope", n=count, wards=", ".join(names))
        return OutsideScope(count, names, notice)

    def _dossiers_by_ward(self) -> dict[str, int]:
        """Every local dossier counted by ward, read a page at a time (bounded by the total)."""
        from app.storage import DossierQuery

        query = DossierQuery()
        counts: dict[str, int] = {}
        offset, total = 0, 1
        while offset < total:
            page = self.store.dossiers.list(query, offset=offset, limit=COUNT_PAGE)
            for dossier in page.items:
                counts[dossier.ward_code] = counts.get(dossier.ward_code, 0) + 1
            total, offset = page.total, offset + COUNT_PAGE
        return counts

    def _keep(self, url: str, answer: dict, desktop: bool = False) -> EnrolOutcome:
        from app.views.sync_bridge import keep_enrolment

        keep_enrolment(self.store, url, answer, desktop)
        codes = [str(c) for c in answer.get("wards") or []]
        current = self.store.settings.get("ward_code") or ""
        if codes and current not in codes:
            current = codes[0]
            self.store.settings.set("ward_code", current)
        return EnrolOutcome(wards=ward_options(codes) if len(codes) > 1 else [], ward=current)

    def ward_choices(self) -> list[tuple[str, str]]:
        """The wards this device may work for: an enrolled user's own (the picker is shown
        only when there are several), or, local only, every Hanoi ward. Slow the first time
        (the ward list loads): call it off the UI loop."""
        if self.store.settings.get("device_token"):
            codes = [str(c) for c in self.store.settings.get("wards") or []]
            return ward_options(codes) if len(codes) > 1 and EVERY_WARD not in codes else []
        return ward_options()

    def ward_picker(self) -> WardPicker | None:
        """The settings screen's picker over `ward_choices`, on the device's ward; None when
        there is nothing to choose."""
        choices = self.ward_choices()
        if not choices:
            return None
        return WardPicker(choices, chosen=self.store.settings.get("ward_code"))

    def set_ward(self, code: str) -> None:
        """The device's ward: one of the enrolled user's wards, or, local only, a Hanoi ward.
        Dossiers received before keep theirs (the ward is where a dossier was received)."""
        if self.store.settings.get("device_token"):
            allowed = [str(c) for c in self.store.settings.get("wards") or []]
        else:
            allowed = [c for c, _ in ward_options()]
        if code not in allowed:
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
