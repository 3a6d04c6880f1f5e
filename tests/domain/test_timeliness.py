import datetime as dt

from app.domain.status import DossierStatus as S
from app.domain.timeliness import Timeliness as T
from app.domain.timeliness import classify, is_overdue, on_time_rate

D = dt.date
DUE = D(2026, 11, 20)


def test_closed_dossiers_are_early_on_time_or_late():
    assert classify(S.COMPLETED, DUE, D(2026, 11, 19), D(2026, 11, 30)) is T.EARLY
    assert classify(S.RETURNED, DUE, DUE, D(2026, 11, 30)) is T.ON_TIME
    assert classify(S.COMPLETED, DUE, D(2026, 11, 21), D(2026, 11, 30)) is T.LATE


def test_open_dossiers_are_within_or_overdue():
    assert classify(S.IN_PROCESS, DUE, None, DUE) is T.WITHIN
    assert classify(S.RECEIVED, DUE, None, D(2026, 11, 21)) is T.OVERDUE
    assert is_overdue(S.SUPPLEMENT_REQUESTED, DUE, D(2026, 11, 23))


def test_abandoned_dossiers_do_not_count():
    assert classify(S.WITHDRAWN, DUE, None, D(2026, 12, 1)) is None


def test_on_time_rate_formula():
    kinds = [T.WITHIN, T.EARLY, T.ON_TIME, T.OVERDUE, T.LATE, None]
    assert on_time_rate(kinds) == 3 / 5
    assert on_time_rate([None]) is None


def test_a_dossier_finished_early_morning_in_hanoi_counts_that_day():
    import datetime as dt

    from app.domain.models import Dossier

    due = dt.date(2025, 11, 24)
    dossier = Dossier(
        id="x", code="000.00.70.H26-251121-0001", procedure_code="1.001193", ward_code="00070",
        applicant_name="A", channel=1, received_at=dt.datetime(2025, 11, 21, 2, tzinfo=dt.UTC),
        appointment_date=due, status=9,
        finished_at=dt.datetime(2025, 11, 24, 18, 0, tzinfo=dt.UTC),  # 01:00 on the 25th
    )
    assert dossier.timeliness(dt.date(2025, 11, 30)).value == "late"
    on_time = dossier.model_copy(update={"finished_at": dt.datetime(2025, 11, 24, 16, 59,
                                                                    tzinfo=dt.UTC)})
    assert on_time.timeliness(dt.date(2025, 11, 30)).value == "on_time"
