import datetime as dt

from app.domain.calendar import WorkingCalendar

D = dt.date


def test_weekends_and_tet_are_skipped():
    cal = WorkingCalendar()
    # Friday 13 Feb 2026; Tết holidays 16-20 Feb 2026: three working days land on 25 Feb.
    assert cal.add_working_days(D(2026, 2, 13), 3) == D(2026, 2, 25)
    assert not cal.is_working_day(D(2026, 9, 2))  # National Day
    assert not cal.is_working_day(D(2026, 11, 22))  # Sunday


def test_make_up_day_counts_and_extra_holiday_does_not():
    saturday = D(2026, 11, 28)
    cal = WorkingCalendar(make_up_days=[saturday], extra_holidays=[D(2026, 11, 30)])
    assert cal.is_working_day(saturday)
    # Friday 27 -> Sat 28 (make-up) -> Mon 30 off -> Tue 1 Dec.
    assert cal.add_working_days(D(2026, 11, 27), 2) == D(2026, 12, 1)


def test_zero_days_is_same_or_next_working_day():
    cal = WorkingCalendar()
    assert cal.add_working_days(D(2026, 11, 23), 0) == D(2026, 11, 23)
    assert cal.add_working_days(D(2026, 11, 22), 0) == D(2026, 11, 23)


def test_working_days_between_is_inverse_of_adding():
    cal = WorkingCalendar()
    start = D(2026, 4, 20)
    end = cal.add_working_days(start, 12)
    assert cal.working_days_between(start, end) == 12
    assert cal.working_days_between(end, start) == -12


def test_a_same_day_procedure_received_from_15_00_is_due_the_next_working_day():
    from app.domain.calendar import counted_from

    friday = dt.date(2025, 11, 21)
    at = lambda h, m=0: dt.datetime(2025, 11, 21, h - 7, m, tzinfo=dt.UTC)  # noqa: E731 Hanoi
    assert counted_from(at(14, 59), 0) == (friday, 0)
    assert counted_from(at(15, 0), 0) == (friday, 1)
    assert counted_from(at(16, 30), 5) == (friday, 5)  # only same-day procedures move
    cal = WorkingCalendar()
    assert cal.add_working_days(*counted_from(at(14, 59), 0)) == friday
    assert cal.add_working_days(*counted_from(at(15, 0), 0)) == dt.date(2025, 11, 24)  # Monday
    # 07:30 UTC is 14:30 in Hanoi (before the cut-off); 17:30 UTC is already Saturday there
    assert counted_from(dt.datetime(2025, 11, 21, 7, 30, tzinfo=dt.UTC), 0) == (friday, 0)
    assert counted_from(dt.datetime(2025, 11, 21, 17, 30), 0) == (dt.date(2025, 11, 22), 0)
