"""What an API process loads before its first request (`server.core.runtime.warm`): the
tables a push's checks read, so that the first push of a worker does not pay for them."""

from __future__ import annotations

from app.domain import calendar as C
from app.domain import reference
from server.core.runtime import warm


def test_warm_loads_the_wards_the_catalogue_and_three_years_of_holidays():
    C._vietnam_holidays.cache_clear()
    warm()
    year = C.vn_today().year
    cached = C._vietnam_holidays.cache_info().currsize
    assert cached >= 3
    # Loaded now: asking again computes nothing.
    hits = C._vietnam_holidays.cache_info().hits
    for offset in (-1, 0, 1):
        C.WorkingCalendar().is_holiday(C.vn_today().replace(year=year + offset, month=5, day=1))
    assert C._vietnam_holidays.cache_info().hits == hits + 3
    assert C._vietnam_holidays.cache_info().currsize == cached
    assert reference.is_ward_code("00070")
