"""The issue's "Must show" privacy check, end to end through `commune`: after a CLI import of
marker-laden dossiers no file under the data dir holds any marker (UTF-8, UTF-16 LE/BE), while a
store is open and after it closed, and `commune dossiers list --search` still finds them."""

from __future__ import annotations

import json

import pytest

from app.domain import reference
from app.storage import DossierQuery, open_store
from app.storage.db import SQLCIPHER_ENV
from tests.cli.conftest import PIN, row, write_csv

PROCEDURE = next(p for p in reference.procedures() if p.processing_days >= 1)
PEOPLE = [
    {"applicant_name": "Phạm Thị Markerhoa Zyxwv", "applicant_id_number": "079123456789",
     "applicant_address": "Ngõ Markeraddr 77, phường Quặnglưu",
     "notes": "ghi chú Markernote bí mật", "applicant_phone": "0987654321"},
    {"applicant_name": "Đặng Văn Markerđức", "applicant_id_number": "038199004321",
     "applicant_address": "Thôn Markerthôn, xã Yênmarker", "notes": "Markerghichu thứ hai"},
]
NEEDLES = [
    *(v for person in PEOPLE for v in person.values()),
    "Markerhoa", "Zyxwv", "Markeraddr", "Quặnglưu", "Markernote", "Markerđức", "Markerthôn",
    "Yênmarker", "Markerghichu", "Markerfile",
    "pham thi markerhoa", "markerhoa", "zyxwv", "dang van markerduc", "markerduc",  # folded
]


def _encodings(text: str) -> list[bytes]:
    return [text.encode(e) for e in ("utf-8", "utf-16-le", "utf-16-be")]


def _scan(data_dir) -> list[str]:
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "store.db" for p in files)
    found = []
    for path in files:
        content = path.read_bytes()
        found += [f"{needle!r} in {path.name}" for needle in NEEDLES
                  for encoded in _encodings(needle) if encoded in content]
    return found


@pytest.mark.parametrize("path", ["default", "plain"])
def test_markers_never_reach_the_disk_and_stay_searchable(cli, tmp_path, monkeypatch, path):
    env = {SQLCIPHER_ENV: "off"} if path == "plain" else {}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the in-process store takes the same path
    data = tmp_path / "data"
    assert cli("init", "--data-dir", str(data), COMMUNE_PIN=PIN, **env).code == 0
    register = write_csv(tmp_path / "markers.csv", [row(PROCEDURE.code, **p) for p in PEOPLE])

    with open_store(data, PIN) as held:
        # A read snapshot held open: the CLI's checkpoint cannot fold its WAL back, so the
        # imported pages are still in store.db-wal when the files are scanned.
        with held.db.read() as snapshot:
            snapshot.exec_driver_sql("SELECT count(*) FROM records").scalar_one()
            done = cli("dossiers", "import", str(register), "--data-dir", str(data),
                       COMMUNE_PIN=PIN, **env)
            assert done.code == 0 and "imported 2" in done.out, done.err
            wal = data / "store.db-wal"
            assert wal.exists() and wal.stat().st_size > 0
            assert _scan(data) == []
        [first] = held.dossiers.list(DossierQuery(search="markerhoa")).items
        held.attachments.add("dossier", first.id, "00070", b"scan of Markerfile Markerhoa",
                             filename="Markerfile.jpg")
        held.dossiers.change_status(first.id, 4, note="Markernote khi xử lý")
        assert _scan(data) == []  # open, with its own writes in the WAL
    assert _scan(data) == []  # and after close

    def search(text: str) -> list[str]:
        done = cli("dossiers", "list", "--search", text, "--json", "--data-dir", str(data),
                   COMMUNE_PIN=PIN, **env)
        assert done.code == 0, done.err
        return [d["applicant_name"] for d in json.loads(done.out)["items"]]

    assert search("Phạm Thị Markerhoa") == ["Phạm Thị Markerhoa Zyxwv"]
    assert search("pham thi markerhoa zyxwv") == ["Phạm Thị Markerhoa Zyxwv"]
    assert search("dang van markerduc") == ["Đặng Văn Markerđức"]
    assert search("038.199.004.321") == ["Đặng Văn Markerđức"]
