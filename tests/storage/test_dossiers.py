"""Receiving dossiers, the status machine, listing, search and the dashboard."""

from __future__ import annotations

import datetime as dt

import pytest

from app.domain import reference
from app.domain.calendar import WorkingCalendar
from app.domain.codes import CODE_RE, sequence_range
from app.domain.status import DossierStatus as S
from app.storage import DossierQuery, InvalidTransition, NotFound
from tests.storage.conftest import receive

FRIDAY_0900_HANOI = dt.datetime(2025, 11, 21, 2, 0, tzinfo=dt.UTC)


def test_receive_issues_a_code_of_the_slot_and_the_appointment_date(store, procedure):
    store.settings.set("code_slot", 3)
    first = receive(store, procedure)
    second = receive(store, procedure)
    assert CODE_RE.match(first.code)
    assert first.code == f"000.00.70.H26-251121-{sequence_range(3)[0]:04d}"
    assert second.code.endswith(f"-{sequence_range(3)[1]:04d}")
    expected = WorkingCalendar().add_working_days(dt.date(2025, 11, 21), procedure.processing_days)
    assert first.appointment_date == expected
    assert first.status == S.RECEIVED and first.sync_state == "pending"
    assert first.fee == procedure.fee


def test_receive_uses_the_agency_code_setting_and_the_hanoi_date(store, procedure):
    store.settings.set("agency_code", "000.00.53.H26")
    late_evening_utc = dt.datetime(2025, 11, 20, 18, 30, tzinfo=dt.UTC)  # 01:30 on the 21st
    dossier = receive(store, procedure, received_at=late_evening_utc)
    assert dossier.code.startswith("000.00.53.H26-251121-")


def test_status_machine_is_enforced_and_recorded(store, procedure):
    dossier = receive(store, procedure)
    with pytest.raises(InvalidTransition) as caught:
        store.dossiers.change_status(dossier.id, S.RETURNED)
    assert "2" in str(caught.value) and "10" in str(caught.value)
    store.dossiers.change_status(dossier.id, S.IN_PROCESS, actor="Cán bộ Lan")
    done = store.dossiers.change_status(dossier.id, S.COMPLETED, result="Đã cấp giấy khai sinh")
    assert done.finished_at is not None and done.result == "Đã cấp giấy khai sinh"
    returned = store.dossiers.change_status(dossier.id, S.RETURNED, note="Trả tận tay")
    assert returned.returned_at is not None
    with pytest.raises(InvalidTransition):
        store.dossiers.change_status(dossier.id, S.IN_PROCESS)
    history = store.dossiers.history(dossier.id)
    assert [(e.from_status, e.to_status) for e in history] == [
        (None, S.RECEIVED),
        (S.RECEIVED, S.IN_PROCESS),
        (S.IN_PROCESS, S.COMPLETED),
        (S.COMPLETED, S.RETURNED),
    ]
    assert history[1].actor == "Cán bộ Lan" and history[3].note == "Trả tận tay"


def test_unknown_dossier_is_not_found(store):
    with pytest.raises(NotFound):
        store.dossiers.get("no-such-id")


def test_list_pages_sorted_by_appointment_date(store, procedure):
    start = FRIDAY_0900_HANOI
    for i in range(7):
        receive(store, procedure, received_at=start - dt.timedelta(days=i * 3))
    first = store.dossiers.list(DossierQuery(), offset=0, limit=3)
    rest = store.dossiers.list(DossierQuery(), offset=3, limit=10)
    assert first.total == rest.total == 7
    dates = [d.appointment_date for d in first.items + rest.items]
    assert len(first.items) == 3 and len(rest.items) == 4
    assert dates == sorted(dates)


def test_filters_status_overdue_due_soon_procedure(store, procedure):
    today = dt.date(2025, 12, 1)
    old = receive(store, procedure, received_at=FRIDAY_0900_HANOI - dt.timedelta(days=30))
    done = receive(store, procedure, received_at=FRIDAY_0900_HANOI - dt.timedelta(days=30))
    store.dossiers.change_status(done.id, S.IN_PROCESS)
    store.dossiers.change_status(done.id, S.COMPLETED, result="Đã cấp")
    fresh = receive(store, procedure, received_at=dt.datetime(2025, 11, 30, 2, tzinfo=dt.UTC))
    ids = lambda q: {d.id for d in store.dossiers.list(q).items}  # noqa: E731
    assert ids(DossierQuery(overdue=True, today=today)) == {old.id}
    assert ids(DossierQuery(status=int(S.COMPLETED))) == {done.id}
    assert ids(DossierQuery(due_within_days=10, today=today)) == {fresh.id}
    assert ids(DossierQuery(procedure_code=procedure.code)) == {old.id, done.id, fresh.id}
    assert ids(DossierQuery(procedure_code="9.999999")) == set()


def test_search_is_diacritic_insensitive_and_finds_id_numbers(store, procedure):
    huong = receive(store, procedure)
    other = receive(
        store, procedure, applicant_name="Trần Văn Đức", applicant_id_number="034095001122"
    )
    found = lambda text: {d.id for d in store.dossiers.list(DossierQuery(search=text)).items}  # noqa: E731
    assert found("nguyen thi huong") == {huong.id}
    assert found("NGUYỄN hương") == {huong.id}
    assert found("huo") == {huong.id}  # prefixes while typing
    assert found("duc") == {other.id}
    assert found("034095001122") == {other.id}
    assert found("034.095.001.122") == {other.id}
    assert found("nguyen duc") == set()
    assert found("Hai Bà Trưng") == set()  # the address is not a name


def test_search_combines_with_filters(store, procedure):
    a = receive(store, procedure)
    b = receive(store, procedure)
    store.dossiers.change_status(b.id, S.IN_PROCESS)
    page = store.dossiers.list(DossierQuery(search="huong", status=int(S.RECEIVED)))
    assert [d.id for d in page.items] == [a.id] and page.total == 1


def test_dashboard_counts(store, procedure):
    today = dt.date(2025, 11, 21)
    receive(store, procedure)  # received today, due within the working week
    overdue = receive(store, procedure, received_at=FRIDAY_0900_HANOI - dt.timedelta(days=40))
    board = store.dossiers.dashboard(today)
    assert board.received_today == 1
    assert board.due_soon == 1
    assert board.overdue == 1
    assert board.on_time_rate == pytest.approx(0.5)
    store.dossiers.change_status(overdue.id, S.WITHDRAWN)
    assert store.dossiers.dashboard(today).on_time_rate == pytest.approx(1.0)


@pytest.mark.parametrize(("utc_hour", "expected_rate"), [(16, 1.0), (17, 0.0), (23, 0.0)])
def test_the_finishing_day_is_the_day_in_hanoi(
    store, procedure, monkeypatch, utc_hour, expected_rate
):
    """Finished on the appointment day at 23:00 and 00:00-06:59 the next day in Hanoi: the
    UTC date still says the appointment day, the counter's calendar says the next one."""
    from app.storage.services import dossiers as service

    dossier = receive(store, procedure)
    due = dossier.appointment_date
    finished = dt.datetime.combine(due, dt.time(utc_hour, 30), dt.UTC)
    monkeypatch.setattr(service, "utc_now", lambda: finished)
    store.dossiers.change_status(dossier.id, S.IN_PROCESS)
    done = store.dossiers.change_status(dossier.id, S.COMPLETED, result="Đã cấp")
    expected = "on_time" if expected_rate else "late"
    assert done.timeliness(due + dt.timedelta(days=3)).value == expected
    assert store.dossiers.dashboard(due + dt.timedelta(days=3)).on_time_rate == expected_rate


def test_search_finds_a_dossier_by_its_code_or_the_code_s_tail(store, procedure):
    store.settings.set("code_slot", 3)
    first = receive(store, procedure)
    second = receive(store, procedure)
    found = lambda text: {d.id for d in store.dossiers.list(DossierQuery(search=text)).items}  # noqa: E731
    agency, day, seq = first.code.rsplit("-", 2)
    assert found(first.code) == {first.id}
    assert found(f"  {first.code.lower()} ") == {first.id}  # any case, spaces around ignored
    assert found(f"{day}-{seq}") == {first.id}
    assert found(seq) == {first.id}
    assert found(second.code.rsplit("-", 1)[1]) == {second.id}
    assert found(f"{day}-9998") == set()
    assert found(f"{agency}-{day}") == set()  # not a code nor a tail of one
    assert found("huong") == {first.id, second.id}  # names still found


def test_code_terms_are_blind_and_backfilled_when_an_older_store_opens(store, data_dir, procedure):
    from app.storage import open_store
    from tests.storage.conftest import PIN

    dossier = receive(store, procedure)
    store.close()
    with store.db.connect_raw() as db:
        terms = db.execute("SELECT term FROM terms WHERE kind = 'c'").fetchall()
        assert len(terms) == 3 and all(len(t) == 8 for (t,) in terms)
        assert all(dossier.code[-4:].encode() not in t for (t,) in terms)
        # a store from before code terms: none stored, no backfill mark
        db.execute("DELETE FROM terms WHERE kind = 'c'")
        db.execute("DELETE FROM meta WHERE key = 'code_terms'")
    with open_store(data_dir, PIN) as reopened:
        page = reopened.dossiers.list(DossierQuery(search=dossier.code[-11:]))
        assert [d.id for d in page.items] == [dossier.id]


def test_completion_without_a_result_is_refused_and_nothing_is_queued(store, procedure):
    from app.storage.services.records import InvalidRecord

    dossier = receive(store, procedure)
    store.dossiers.change_status(dossier.id, S.IN_PROCESS)
    with pytest.raises(InvalidRecord) as refused:
        store.dossiers.change_status(dossier.id, S.COMPLETED, result="  ")
    assert refused.value.reasons == ["result_required"]
    assert store.dossiers.get(dossier.id).status == S.IN_PROCESS
    assert len(store.dossiers.history(dossier.id)) == 2


def test_the_demo_ages_dossiers_by_the_day_in_vietnam(store, procedure):
    """Received at 01:00 on 7 December in Hanoi (still the 6th in UTC): on the 7th, the demo
    sees a dossier of today, not of yesterday, and leaves it at the counter."""
    import random

    from app.demo.run import advance

    dossier = receive(store, procedure, received_at=dt.datetime(2026, 12, 6, 18, tzinfo=dt.UTC))
    advance(store, dossier, dt.date(2026, 12, 7), random.Random(1))
    assert store.dossiers.get(dossier.id).status == S.RECEIVED
    advance(store, dossier, dt.date(2026, 12, 8), random.Random(1))
    assert store.dossiers.get(dossier.id).status != S.RECEIVED


def test_open_duplicates_are_open_dossiers_of_the_procedure_for_the_id_number(store, procedure):
    other_procedure = next(
        p for p in reference.procedures() if p.code != procedure.code and p.processing_days > 0
    )
    first = receive(store, procedure)
    receive(store, other_procedure)  # same person, another procedure
    receive(store, procedure, applicant_id_number="034095001122")  # another person
    closed = receive(store, procedure)
    store.dossiers.change_status(closed.id, S.WITHDRAWN)
    found = store.dossiers.open_duplicates(procedure.code, "001 088 012 345")
    assert [(d.id, d.code, d.received_at) for d in found] == [
        (first.id, first.code, first.received_at)
    ]
    assert store.dossiers.open_duplicates(procedure.code, "") == []
    assert store.dossiers.open_duplicates(procedure.code, "001088012346") == []
    store.dossiers.change_status(first.id, S.IN_PROCESS)  # still open
    assert [d.id for d in store.dossiers.open_duplicates(procedure.code, "001088012345")] == [
        first.id
    ]


def test_the_first_history_event_keeps_the_intake_note(store, procedure):
    dossier = receive(store, procedure, intake_note="Đã cảnh báo trùng")
    [event] = store.dossiers.history(dossier.id)
    assert event.note == "Đã cảnh báo trùng" and event.to_status == S.RECEIVED


def test_a_same_day_procedure_received_after_15_00_is_due_the_next_working_day(store):
    """The service, the form's preview and the record rule (the server's) agree."""
    from app.domain.records import expected_appointment
    from app.views.dossier_models import ReceiveForm

    same_day = reference.procedure("1.001193")  # birth registration: 0 working days
    assert same_day.processing_days == 0
    morning = dt.datetime(2025, 11, 21, 7, 59, tzinfo=dt.UTC)  # 14:59 Friday in Hanoi
    late = dt.datetime(2025, 11, 21, 8, 0, tzinfo=dt.UTC)  # 15:00
    early_one = receive(store, same_day, received_at=morning)
    late_one = receive(store, same_day, received_at=late)
    assert early_one.appointment_date == dt.date(2025, 11, 21)
    assert late_one.appointment_date == dt.date(2025, 11, 24)  # Monday
    assert "-251121-" in late_one.code  # still received on Friday
    assert expected_appointment(late.isoformat(), "1.001193", store.dossiers.calendar) == (
        late_one.appointment_date
    )
    form = ReceiveForm()
    form.choose("1.001193")
    assert form.appointment(late, store.dossiers.calendar) == late_one.appointment_date
    assert form.appointment(morning, store.dossiers.calendar) == early_one.appointment_date


def test_digitisation_of_each_paper_and_of_the_result_survives_a_reopen(store, procedure, data_dir):
    from app.domain.models import DocumentReceived
    from app.domain.status import Digitisation as D
    from app.storage import open_store
    from app.storage.services.records import InvalidRecord
    from tests.storage.conftest import PIN

    papers = [
        DocumentReceived(name="Tờ khai", originals=1, digitised=D.DIGITISED),
        DocumentReceived(name="Bản sao giấy khai sinh", copies=1, digitised=D.REUSED_RESULT),
        DocumentReceived(name="Giấy uỷ quyền", originals=1),
    ]
    dossier = receive(store, procedure, documents=papers)
    store.dossiers.change_status(dossier.id, S.IN_PROCESS)
    with pytest.raises(InvalidRecord) as refused:
        store.dossiers.change_status(dossier.id, S.COMPLETED, result="QĐ 1", result_digitised=7)
    assert refused.value.reasons == ["result_digitised:choice"]
    store.dossiers.change_status(
        dossier.id, S.COMPLETED, result="QĐ 12/2026", result_digitised=D.DIGITISED
    )
    store.close()
    again = open_store(data_dir, PIN)
    try:
        kept = again.dossiers.get(dossier.id)
        assert [d.digitised for d in kept.documents] == [
            D.DIGITISED,
            D.REUSED_RESULT,
            D.NOT_DIGITISED,
        ]
        assert kept.result_digitised is D.DIGITISED
        queued = [m for m in again.sync.pending_mutations() if m.entity_id == dossier.id]
        sent = {k: f.value for m in queued for k, f in m.fields.items()}
        assert sent["result_digitised"] == 1  # it syncs
        assert [d["digitised"] for d in sent["documents"]] == [1, 3, 0]
    finally:
        again.close()
