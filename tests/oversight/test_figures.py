"""Every oversight figure, from SQL on SQLite and PostgreSQL and from a device's facts in memory,
checked against the seeded dossiers and audits counted here by hand."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict

import pytest
from sqlalchemy import text

from app.domain import audit as A
from app.domain import oversight as O
from server.services import reports
from tests.oversight.seed import TODAY, insert_records, seed_dossiers
from tests.support.central_db import migrated_engine

SEVEN_HOURS = dt.timedelta(hours=7)
FIGURES = ("received", "settled", "settled_on_time", "late", "overdue", "within", "online")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    engine = migrated_engine(request, tmp_path)
    yield engine
    engine.dispose()


DOSSIERS = seed_dossiers(700, random.Random(9))


def _vn_day(iso: str) -> dt.date:
    return (dt.datetime.fromisoformat(iso) + SEVEN_HOURS).date()


def _expected(by: tuple[str, ...], date_from=None, date_to=None) -> dict[tuple, dict[str, int]]:
    """Counted by hand from the seed: no shared code with the query or the domain tally."""
    groups: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    for d in DOSSIERS:
        day = _vn_day(d["received_at"])
        if (date_from and day < date_from) or (date_to and day > date_to):
            continue
        monday = day - dt.timedelta(days=day.weekday())
        key_of = {"ward": d["ward_code"], "procedure": d["procedure_code"], "week": str(monday)}
        g = groups[tuple(key_of[b] for b in by)]
        g["received"] += 1
        g["online"] += d["channel"] == 2
        appt = dt.date.fromisoformat(d["appointment_date"]) if d["appointment_date"] else None
        if d["status"] in (9, 10):
            g["settled"] += 1
            done = _vn_day(d["finished_at"]) if d["finished_at"] else TODAY
            if appt is not None:
                g["settled_on_time" if done <= appt else "late"] += 1
        elif d["status"] not in (3, 7, 8) and appt is not None:
            g["overdue" if appt < TODAY else "within"] += 1
    return dict(groups)


def _as_dict(rows: list[O.DossierFigures], by) -> dict[tuple, dict[str, int]]:
    return {tuple(r.key[b] for b in by): {f: getattr(r, f) for f in FIGURES} for r in rows}


GROUPINGS = [("ward",), ("procedure",), ("week",), ("ward", "procedure", "week"), ()]


@pytest.mark.parametrize("by", GROUPINGS, ids=["-".join(b) or "all" for b in GROUPINGS])
def test_sql_figures_match_the_seed_counted_by_hand(engine, by):
    insert_records(engine, "dossier", "dossier", DOSSIERS)
    rows = reports.dossier_figures(engine, TODAY, by=by)
    expected = _expected(by)
    assert _as_dict(rows, by) == expected
    assert sum(g["overdue"] for g in expected.values()) > 0  # the seed exercises every figure
    assert sum(g["late"] for g in expected.values()) > 0


def test_sql_figures_respect_the_period_and_wards(engine):
    insert_records(engine, "dossier", "dossier", DOSSIERS)
    start, end = dt.date(2026, 11, 16), dt.date(2026, 11, 22)
    rows = reports.dossier_figures(
        engine, TODAY, by=("ward",), date_from=start, date_to=end, wards=["00001", "00070"]
    )
    kept = ("00001", "00070")
    expected = {k: v for k, v in _expected(("ward",), start, end).items() if k[0] in kept}
    assert _as_dict(rows, ("ward",)) == expected


def test_monday_after_midnight_in_hanoi_is_the_next_week(engine):
    insert_records(engine, "dossier", "dossier", DOSSIERS)
    weeks = {r.key["week"] for r in reports.dossier_figures(engine, TODAY, by=("week",))}
    assert "2026-11-16" in weeks  # Sunday 15th 17:30 UTC is Monday 16th in Hanoi
    assert all(dt.date.fromisoformat(w).weekday() == 0 for w in weeks)


def test_device_tally_gives_the_same_figures():
    facts = [
        O.DossierFact(
            ward_code=d["ward_code"],
            procedure_code=d["procedure_code"],
            status=d["status"],
            channel=d["channel"],
            received_at=dt.datetime.fromisoformat(d["received_at"]),
            appointment_date=dt.date.fromisoformat(d["appointment_date"])
            if d["appointment_date"]
            else None,
            finished_at=dt.datetime.fromisoformat(d["finished_at"]) if d["finished_at"] else None,
            code=d["code"],
        )
        for d in DOSSIERS
    ]
    for by in GROUPINGS[:4]:
        assert _as_dict(O.tally(facts, TODAY, by), by) == _expected(by)
    # The lists behind overdue and late, as a local-only device makes them.
    listed = {(f.ward_code, d.code, d.kind) for f in facts if (d := O.listed_from_fact(f, TODAY))}
    assert listed == _behind_by_hand()


def _behind_by_hand() -> set[tuple[str, str, str]]:
    """(ward, code, overdue|late) of every overdue and late seeded dossier, counted here."""
    found = set()
    for d in DOSSIERS:
        if not d["appointment_date"]:
            continue
        appt = dt.date.fromisoformat(d["appointment_date"])
        if d["status"] in (9, 10):
            done = _vn_day(d["finished_at"]) if d["finished_at"] else TODAY
            if done > appt:
                found.add((d["ward_code"], d["code"], "late"))
        elif d["status"] not in (3, 7, 8) and appt < TODAY:
            found.add((d["ward_code"], d["code"], "overdue"))
    return found


def test_the_dossiers_behind_overdue_and_late_are_the_seeded_ones(engine):
    insert_records(engine, "dossier", "dossier", DOSSIERS)
    found = reports.listed_dossiers(engine, TODAY)
    rows = {(w, d.code, d.kind) for w, listed in found.items() for d in listed}
    assert rows == _behind_by_hand()
    by_ward = _expected(("ward",))
    for (ward,), figures in by_ward.items():
        kinds = [d.kind for d in found.get(ward, [])]
        assert (kinds.count("overdue"), kinds.count("late")) == (
            figures["overdue"], figures["late"],
        )
    # The snapshot carries them (all five weeks fit its window; each list under its bound),
    # overdue ones longest past their appointment first, with no applicant in sight.
    reports.publish_snapshots(engine, TODAY)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT fields FROM record WHERE entity = 'report_snapshot'")
        ).scalars().all()
    snapshots = [
        O.snapshot_from_values(
            {k: v["value"] for k, v in (json.loads(f) if isinstance(f, str) else f).items()}
        )
        for f in stored
    ]
    listed = {(s.ward_code, d.code, d.kind) for s in snapshots for d in s.dossiers}
    assert listed == rows
    for s in snapshots:
        overdue = [d.appointment_day for d in s.dossiers if d.kind == "overdue"]
        assert overdue == sorted(overdue)
    assert "Nguyễn" not in str(stored)


def test_on_time_rate_follows_the_circular():
    f = O.DossierFigures(within=3, overdue=1, settled_on_time=4, late=2, received=12)
    assert f.on_time_rate == pytest.approx(7 / 10)
    assert O.DossierFigures().on_time_rate is None
    ranked = O.worst_first([f, O.DossierFigures(key={"ward": "x"}), O.DossierFigures(late=1)])
    assert ranked[0].late == 1 and ranked[-1].key == {"ward": "x"}


def _answers(tpl: A.AuditTemplate, failing: set[str]) -> dict:
    """Answers meeting every item except `failing` (answered as badly as possible)."""
    out = {}
    for item in tpl.items():
        bad = item.id in failing
        if item.kind == "yes_no":
            value = not bad
        elif item.kind == "number":
            value = 0 if bad else (item.target or 1)
        elif item.kind == "text":
            value = "ghi chú"
        elif item.kind == "photo":
            value = None
        else:
            options = sorted(item.options, key=lambda o: o.score)
            value = (options[0] if bad else options[-1]).id
        photos = [] if bad or not (item.photo_required or item.kind == "photo") else ["a" * 64]
        out[f"answers.{item.id}"] = {"value": value, "photos": photos}
    return out


def test_audit_figures_per_ward_and_section(engine):
    tpl = A.template()
    items = [item for item in tpl.items() if item.scored and not item.required]
    first, second = items[0].id, items[-1].id
    audits = [
        {"id": "a1", "ward_code": "00001", "review_state": "approved",
         "template_version": tpl.version, "submitted_at": "2026-10-01T02:00:00+00:00",
         **_answers(tpl, {first, second})},
        {"id": "a2", "ward_code": "00001", "review_state": "submitted",
         "template_version": tpl.version, "submitted_at": "2026-11-20T02:00:00+00:00",
         **_answers(tpl, {second})},
        {"id": "a3", "ward_code": "00004", "review_state": "changes_requested",
         "template_version": tpl.version, "submitted_at": "2026-11-21T02:00:00+00:00",
         **_answers(tpl, set())},
    ]
    insert_records(engine, "audit", "audit", audits)
    figs = reports.audit_figures(engine)
    assert set(figs) == {"00001", "00004"}
    w1 = figs["00001"]
    assert (w1.audits, w1.latest_id, w1.latest_state) == (2, "a2", "submitted")
    assert w1.states == {"approved": 1, "submitted": 1}
    assert w1.failing_items == [second]
    failing_section = tpl.section_of(second).id
    assert w1.by_section[failing_section] < 100.0
    assert all(v == 100.0 for s, v in w1.by_section.items() if s != failing_section)
    w4 = figs["00004"]
    assert w4.failing_items == [] and w4.compliant is True and w4.latest_score == 100.0
    grid = O.section_ranking(figs.values())
    assert grid[0] == ("00001", failing_section, w1.by_section[failing_section])


def test_the_lists_are_cut_at_their_bound_longest_overdue_first(engine, monkeypatch):
    monkeypatch.setattr(O, "LIST_LIMIT", 5)
    insert_records(engine, "dossier", "dossier", DOSSIERS)
    found = reports.listed_dossiers(engine, TODAY)
    for ward in {d["ward_code"] for d in DOSSIERS}:
        overdue = [
            d for d in DOSSIERS
            if d["ward_code"] == ward and d["appointment_date"] and d["status"] not in
            (3, 7, 8, 9, 10) and dt.date.fromisoformat(d["appointment_date"]) < TODAY
        ]
        assert len(overdue) > 5  # the seed has more than the bound in every ward
        earliest = sorted(d["appointment_date"] for d in overdue)[:5]
        listed = [d for d in found[ward] if d.kind == "overdue"]
        assert sorted(d.appointment_day for d in listed) == earliest
        assert len([d for d in found[ward] if d.kind == "late"]) <= 5
