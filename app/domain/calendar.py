"""Working days on the Vietnamese calendar (the `holidays` package), with official make-up days.

The government moves working days around Tết and national holidays each year (a Saturday worked
to make a bridge holiday); those dates are passed in as `make_up_days` (worked despite being a
weekend) and `extra_holidays` (off despite being a weekday).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import holidays

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    VN_TZ: dt.tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except (ImportError, ZoneInfoNotFoundError):  # no tz database (some Windows, mobile builds)
    VN_TZ = dt.timezone(dt.timedelta(hours=7), "Asia/Ho_Chi_Minh")  # no DST since 1975


# A same-day procedure (0 working days) received from 15:00 on is returned the next working day
# (the rule the province's one-stop regulations print on such procedures, e.g. "nhận sau 15 giờ
# thì trả trong ngày làm việc tiếp theo"; docs/reference-data.md).
SAME_DAY_CUTOFF = dt.time(15, 0)


def counted_from(received: dt.datetime, processing_days: int) -> tuple[dt.date, int]:
    """The day of receipt in Vietnam and the working days to add to it for the appointment:
    as published, except that a same-day procedure received at or after 15:00 counts one."""
    if received.tzinfo is None:
        received = received.replace(tzinfo=dt.UTC)
    local = received.astimezone(VN_TZ)
    if processing_days == 0 and local.time() >= SAME_DAY_CUTOFF:
        return local.date(), 1
    return local.date(), processing_days


def vn_date(moment: dt.datetime) -> dt.date:
    """The calendar day in Vietnam of an instant (naive instants are UTC, as stored)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(VN_TZ).date()


def vn_today() -> dt.date:
    """Today in Vietnam (the one clock read of this module)."""
    return vn_date(dt.datetime.now(dt.UTC))


@lru_cache(maxsize=64)
def _vietnam_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("VN", years=year))


class WorkingCalendar:
    def __init__(
        self, make_up_days: Iterable[dt.date] = (), extra_holidays: Iterable[dt.date] = ()
    ) -> None:
        self.make_up_days = frozenset(make_up_days)
        self.extra_holidays = frozenset(extra_holidays)

    def is_holiday(self, day: dt.date) -> bool:
        return day in self.extra_holidays or day in _vietnam_holidays(day.year)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.make_up_days:
            return True
        return day.weekday() < 5 and not self.is_holiday(day)

    def add_working_days(self, start: dt.date, days: int) -> dt.date:
        """The date `days` working days after `start` (the day of receipt does not count).

        Zero days means the same day if it is a working day, else the next working day.
        """
        if days < 0:
            raise ValueError("days must be >= 0")
        day = start
        if days == 0:
            while not self.is_working_day(day):
                day += dt.timedelta(days=1)
            return day
        remaining = days
        while remaining:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days after `start` up to and including `end` (negative if end < start)."""
        if end < start:
            return -self.working_days_between(end, start)
        count, day = 0, start
        while day < end:
            day += dt.timedelta(days=1)
            count += self.is_working_day(day)
        return count
