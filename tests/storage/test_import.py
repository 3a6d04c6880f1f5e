"""Importing a dossier register: validate all rows, write the good ones at once, skip repeats."""

from __future__ import annotations

from app.storage import DossierQuery


def _rows(procedure) -> list[dict]:
    base = {
        "procedure_code": procedure.code,
        "ward_code": "00070",
        "channel": "1",
        "status": "2",
        "received_at": "2025-11-20T08:30:00+07:00",
    }
    return [
        base | {"code": "000.00.70.H26-251120-0901", "applicant_name": "Nguyễn Văn An",
                "applicant_id_number": "001090000001"},
        base | {"code": "", "applicant_name": "Trần Thị Bích",
                "applicant_id_number": "001090000002"},
        base | {"code": "", "applicant_name": "  ", "applicant_id_number": "001090000003"},
        base | {"procedure_code": "9.999999", "applicant_name": "Lê Văn Cường"},
        base | {"ward_code": "99999", "applicant_name": "Phạm Thị Dung"},
        base | {"channel": "4", "applicant_name": "Hoàng Văn Em"},
        base | {"status": "9", "applicant_name": "Vũ Thị Phương"},
        base | {"status": "11", "applicant_name": "Đặng Văn Giang"},
        base | {"received_at": "20/11/2025", "applicant_name": "Bùi Thị Hoa"},
        base | {"code": "000.00.70.H26-251120-0902", "applicant_name": "Đỗ Văn Khánh",
                "status": "1", "channel": 3},
    ]


def test_import_reports_bad_rows_with_line_numbers_and_writes_the_rest(store, procedure):
    report = store.dossiers.import_rows(_rows(procedure))
    assert report.imported == 3
    assert report.skipped_duplicates == 0
    bad_lines = {line: reason.split(":")[0] for line, reason in report.errors}
    assert bad_lines == {
        4: "applicant_name",
        5: "procedure_code",
        6: "ward_code",
        7: "channel",
        8: "finished_at",  # a completed dossier: when did processing finish?
        9: "status",
        10: "received_at",
    }
    page = store.dossiers.list(DossierQuery())
    assert page.total == 3
    codes = {d.code for d in page.items}
    assert {"000.00.70.H26-251120-0901", "000.00.70.H26-251120-0902"} <= codes
    issued = (codes - {"000.00.70.H26-251120-0901", "000.00.70.H26-251120-0902"}).pop()
    assert issued.startswith("000.00.70.H26-251120-")
    assert store.dossiers.list(DossierQuery(search="bich")).items[0].applicant_name == (
        "Trần Thị Bích"
    )
    # each imported dossier has its history event and its queued mutations
    assert len(store.sync.pending_mutations(10_000_000)) == 6


def test_reimporting_the_same_file_creates_nothing_new(store, procedure):
    first = store.dossiers.import_rows(_rows(procedure))
    again = store.dossiers.import_rows(_rows(procedure))
    assert first.imported == 3
    assert again.imported == 0
    assert again.skipped_duplicates == 3
    assert store.dossiers.list(DossierQuery()).total == 3
    assert len(store.sync.pending_mutations(10_000_000)) == 6


def test_duplicates_within_one_file_are_skipped(store, procedure):
    rows = _rows(procedure)[:2]
    report = store.dossiers.import_rows(rows + rows)
    assert (report.imported, report.skipped_duplicates) == (2, 2)


def test_explicit_line_numbers_are_kept(store, procedure):
    row = _rows(procedure)[3] | {"line_no": 41}
    report = store.dossiers.import_rows([row])
    assert report.errors and report.errors[0][0] == 41 and report.imported == 0


def _anonymous_row(procedure) -> dict:
    """No code and no ID number: only the blind identity term can recognise it again."""
    return {
        "code": "", "procedure_code": procedure.code, "ward_code": "00070", "channel": "1",
        "status": "2", "received_at": "2025-11-20T08:30:00+07:00",
        "applicant_name": "Lò Thị Mai", "applicant_id_number": "",
    }


def test_a_row_without_code_or_id_number_is_imported_once(store, procedure):
    first = store.dossiers.import_rows([_anonymous_row(procedure)])
    again = store.dossiers.import_rows([_anonymous_row(procedure)])
    assert (first.imported, again.imported, again.skipped_duplicates) == (1, 0, 1)
    assert store.dossiers.list(DossierQuery()).total == 1


def test_the_identity_folds_the_name_but_keeps_other_people_apart(store, procedure):
    row = _anonymous_row(procedure)
    store.dossiers.import_rows([row])
    same = store.dossiers.import_rows([row | {"applicant_name": "  LO  thi mai "}])
    other_ward = store.dossiers.import_rows([row | {"ward_code": "00073"}])
    other_time = store.dossiers.import_rows([row | {"received_at": "2025-11-20T08:31:00+07:00"}])
    other_name = store.dossiers.import_rows([row | {"applicant_name": "Lò Thị Mây"}])
    assert same.skipped_duplicates == 1
    assert (other_ward.imported, other_time.imported, other_name.imported) == (1, 1, 1)


def test_identity_terms_are_blind_and_backfilled_for_older_stores(store, data_dir, procedure):
    from app.storage import open_store
    from tests.storage.conftest import PIN

    store.dossiers.import_rows([_anonymous_row(procedure)])
    store.close()
    with store.db.connect_raw() as db:
        [(term,)] = db.execute("SELECT term FROM terms WHERE kind = 'k'").fetchall()
        assert len(term) == 8 and b"Mai" not in term
        # a store from before identity terms: none stored, no backfill mark
        db.execute("DELETE FROM terms WHERE kind = 'k'")
        db.execute("DELETE FROM meta WHERE key = 'identity_terms'")
    with open_store(data_dir, PIN) as reopened:
        again = reopened.dossiers.import_rows([_anonymous_row(procedure)])
        assert (again.imported, again.skipped_duplicates) == (0, 1)


def test_a_time_without_zone_is_vietnam_time(store, procedure):
    row = _anonymous_row(procedure) | {"received_at": "2025-11-21T06:30:00"}
    assert store.dossiers.import_rows([row]).imported == 1
    [dossier] = store.dossiers.list(DossierQuery()).items
    assert dossier.received_at.isoformat() == "2025-11-20T23:30:00+00:00"  # 06:30 in Hanoi
    assert "-251121-" in dossier.code  # the receipt day is the Hanoi one
    date_only = _anonymous_row(procedure) | {"received_at": "2025-11-24"}
    assert store.dossiers.import_rows([date_only]).imported == 1
    assert store.dossiers.list(DossierQuery(search="lo thi mai")).total == 2


def test_a_register_imported_at_any_status_carries_the_history_it_implies(store, procedure):
    """A dossier in process or already returned is imported with one history event per step
    of the status machine's path from intake (the server accepts each step)."""
    base = _rows(procedure)[0] | {"code": ""}
    rows = [
        base | {"status": "4", "applicant_name": "Ngô Văn Lâm"},
        base | {"status": "10", "applicant_name": "Lý Thị Mai",
                "finished_at": "2025-11-25T10:00:00+07:00",
                "returned_at": "2025-11-26T09:00:00+07:00"},
    ]
    report = store.dossiers.import_rows(rows)
    assert (report.imported, report.errors) == (2, [])
    by_status = {int(d.status): d for d in store.dossiers.list(DossierQuery()).items}
    paths = {
        s: [(e.from_status, int(e.to_status)) for e in store.dossiers.history(d.id)]
        for s, d in by_status.items()
    }
    assert paths == {
        4: [(None, 2), (2, 4)],
        10: [(None, 2), (2, 4), (4, 9), (9, 10)],
    }
    assert by_status[10].finished_at is not None and by_status[10].returned_at is not None


def test_the_papers_column_is_imported_and_a_bad_cell_names_its_line(store, procedure):
    base = _rows(procedure)[0] | {"code": ""}
    rows = [
        base | {"applicant_name": "Lý Thị Giấy", "applicant_id_number": "001090000011",
                "documents": "Tờ khai (1 bản chính) | Giấy chứng sinh (1 bản chính, 1 bản sao)"},
        base | {"applicant_name": "Mai Văn Sai", "applicant_id_number": "001090000012",
                "documents": "Tờ khai (hai bản)"},
    ]
    report = store.dossiers.import_rows(rows)
    assert report.imported == 1
    [(line, reason)] = report.errors
    assert line == 3 and reason.startswith("documents: «hai bản»")
    [imported] = store.dossiers.list(DossierQuery(search="ly thi giay")).items
    assert [(d.name, d.originals, d.copies) for d in imported.documents] == [
        ("Tờ khai", 1, 0), ("Giấy chứng sinh", 1, 1),
    ]
