"""Official make-up working days and extra holidays kept in the store move appointment dates."""

from __future__ import annotations

import datetime as dt

from app.domain.calendar import WorkingCalendar
from app.storage import open_store
from tests.storage.conftest import PIN, receive

FRIDAY = dt.date(2025, 11, 21)  # the conftest request's receipt day in Hanoi
SATURDAY, MONDAY = dt.date(2025, 11, 22), dt.date(2025, 11, 24)


def test_a_make_up_saturday_brings_the_appointment_forward(store, procedure):
    plain = WorkingCalendar().add_working_days(FRIDAY, procedure.processing_days)
    assert receive(store, procedure).appointment_date == plain
    store.calendar.add_make_up_day(SATURDAY)
    worked = WorkingCalendar(make_up_days=[SATURDAY])
    expected = worked.add_working_days(FRIDAY, procedure.processing_days)
    assert expected < plain
    assert receive(store, procedure).appointment_date == expected


def test_an_extra_holiday_pushes_it_back_and_both_survive_reopening(store, data_dir, procedure):
    store.calendar.add_holiday(MONDAY)
    store.calendar.add_make_up_day(SATURDAY)
    store.close()
    with open_store(data_dir, PIN) as reopened:
        days = reopened.calendar.days()
        assert days.make_up_days == (SATURDAY,) and days.extra_holidays == (MONDAY,)
        expected = WorkingCalendar([SATURDAY], [MONDAY]).add_working_days(
            FRIDAY, procedure.processing_days)
        assert receive(reopened, procedure).appointment_date == expected
        assert reopened.dossiers.calendar.is_working_day(SATURDAY)
        assert not reopened.dossiers.calendar.is_working_day(MONDAY)


def test_a_day_is_a_make_up_day_or_a_holiday_never_both_and_can_be_removed(store):
    store.calendar.add_make_up_day(MONDAY)
    store.calendar.add_holiday(MONDAY)
    assert store.calendar.days().make_up_days == ()
    assert store.calendar.days().extra_holidays == (MONDAY,)
    assert store.calendar.remove(MONDAY) and not store.calendar.remove(MONDAY)
    assert store.calendar.days().extra_holidays == ()
