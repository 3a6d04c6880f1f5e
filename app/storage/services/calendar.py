"""The commune's own calendar changes, kept in the sealed settings: official make-up working days
(a Saturday worked to bridge a holiday) and extra days off, on top of the `holidays` package's
Vietnamese calendar. Appointment dates of dossiers received after a change use them; dates
already given to applicants stay as they were.

An enrolled device receives the working calendar an admin published on the server
(`ReferenceStore`, by sync); once it has one, that calendar is in force and the store's own
days are set aside (kept, shown, used again only if the server's is dropped), so the device and
the server count with the same days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from app.domain.calendar import WorkingCalendar
from app.storage.settings import SettingsStore

CALENDAR_KEY = "calendar_days"
SERVER_CALENDAR_KEY = "server_calendar"  # {"version", "make_up_days", "extra_holidays"}
MAKE_UP = "make_up_days"
HOLIDAYS = "extra_holidays"


@dataclass(frozen=True)
class CalendarDays:
    make_up_days: tuple[dt.date, ...] = ()
    extra_holidays: tuple[dt.date, ...] = ()


class CalendarStore:
    def __init__(self, settings: SettingsStore) -> None:
        self._settings = settings
        self._current: WorkingCalendar | None = None

    def days(self) -> CalendarDays:
        """The days in force: the server's published calendar if one was received, else
        this store's own."""
        stored = self._settings.get(SERVER_CALENDAR_KEY) or self._settings.get(CALENDAR_KEY) or {}
        return _days(stored)

    def local_days(self) -> CalendarDays:
        return _days(self._settings.get(CALENDAR_KEY) or {})

    def server_version(self) -> int:
        """The server's calendar version held (0: none received)."""
        return int((self._settings.get(SERVER_CALENDAR_KEY) or {}).get("version", 0))

    def set_server_calendar(self, version: int, make_up: list[str], holidays: list[str]) -> None:
        """The calendar an admin published, as received by sync (dates checked here)."""
        self._settings.set(SERVER_CALENDAR_KEY, {
            "version": int(version),
            MAKE_UP: sorted(dt.date.fromisoformat(d).isoformat() for d in make_up),
            HOLIDAYS: sorted(dt.date.fromisoformat(d).isoformat() for d in holidays),
        })
        self._current = None

    def calendar(self) -> WorkingCalendar:
        """The working calendar with the days in force (kept until the next change here)."""
        if self._current is None:
            days = self.days()
            self._current = WorkingCalendar(days.make_up_days, days.extra_holidays)
        return self._current

    def add_make_up_day(self, day: dt.date) -> None:
        """A day worked although it is a weekend or holiday (it stops being an extra day off)."""
        self._save(add_to=MAKE_UP, remove_from=HOLIDAYS, day=day)

    def add_holiday(self, day: dt.date) -> None:
        """A day off although it is a weekday (it stops being a make-up day)."""
        self._save(add_to=HOLIDAYS, remove_from=MAKE_UP, day=day)

    def remove(self, day: dt.date) -> bool:
        """Forget a make-up day or extra holiday; False when the day was neither."""
        days = self.local_days()
        if day not in days.make_up_days and day not in days.extra_holidays:
            return False
        self._write(
            [d for d in days.make_up_days if d != day], [d for d in days.extra_holidays if d != day]
        )
        return True

    def _save(self, *, add_to: str, remove_from: str, day: dt.date) -> None:
        days = self.local_days()
        lists = {MAKE_UP: set(days.make_up_days), HOLIDAYS: set(days.extra_holidays)}
        lists[add_to].add(day)
        lists[remove_from].discard(day)
        self._write(lists[MAKE_UP], lists[HOLIDAYS])

    def _write(self, make_up: Iterable[dt.date], holidays: Iterable[dt.date]) -> None:
        self._settings.set(CALENDAR_KEY, {
            MAKE_UP: sorted(d.isoformat() for d in make_up),
            HOLIDAYS: sorted(d.isoformat() for d in holidays),
        })
        self._current = None


def _days(stored: dict) -> CalendarDays:
    return CalendarDays(
        tuple(sorted(dt.date.fromisoformat(d) for d in stored.get(MAKE_UP, []))),
        tuple(sorted(dt.date.fromisoformat(d) for d in stored.get(HOLIDAYS, []))),
    )
