"""No personal data on disk in clear; tampered or swapped sealed values fail loudly."""

from __future__ import annotations

import pytest

from app.domain.models import DocumentReceived
from app.storage import TamperError, create_store, open_store
from app.storage.db import SQLCIPHER_ENV, sqlcipher_available
from tests.storage.conftest import PIN, TEST_KEYS, receive

MARKERS = {
    "applicant_name": "Phạm Thị Markerhoa Zyxwv",
    "applicant_id_number": "079123456789",
    "applicant_phone": "0987654321",
    "applicant_address": "Ngõ Markeraddr 77, phường Quặnglưu",
    "notes": "ghi chú Markernote bí mật",
}


def _encodings(text: str) -> list[bytes]:
    return [text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-16-be")]


@pytest.fixture(params=["default", "plain"])
def store_on_each_path(request, data_dir, monkeypatch):
    """The default path (SQLCipher when it imports) and the plain sqlite3 path, where the
    per-record sealing alone must keep every marker off the disk."""
    if request.param == "plain":
        monkeypatch.setenv(SQLCIPHER_ENV, "off")
    with create_store(data_dir, PIN, settings=TEST_KEYS) as s:
        assert s.db.encrypted == (request.param == "default" and sqlcipher_available())
        yield s


def test_no_marker_in_any_file_under_the_data_dir(store_on_each_path, data_dir, procedure):
    store = store_on_each_path
    dossier = receive(
        store,
        procedure,
        **MARKERS,
        documents=[DocumentReceived(name="Tờ khai Markerdoc", originals=1)],
    )
    store.dossiers.change_status(dossier.id, 4, note="Markerevent ghi chú", actor="Markeractor")
    store.attachments.add(
        "dossier", dossier.id, "00070", b"photo of Markerfile", filename="Markerfilename.jpg"
    )
    store.settings.set("device_token", "Markertoken-secret")
    store.close()
    needles = [*MARKERS.values(), "Markerhoa", "Markeraddr", "Markernote", "Markerdoc",
               "Markerevent", "Markeractor", "Markerfile", "Markertoken", "079123456789"]
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "store.db" for p in files)
    for path in files:
        content = path.read_bytes()
        for needle in needles:
            for encoded in _encodings(needle):
                assert encoded not in content, f"{needle!r} found in {path.name}"
    with open_store(data_dir, PIN) as reopened:  # and the data is all still there
        assert reopened.dossiers.get(dossier.id).applicant_name == MARKERS["applicant_name"]


def _raw(store):
    """The store file as it is on disk (keyed when SQLCipher is on), outside the store."""
    return store.db.connect_raw()


def test_a_flipped_byte_in_a_sealed_blob_raises_tamper_error(store, data_dir, procedure):
    dossier = receive(store, procedure)
    store.close()
    with _raw(store) as raw:
        (blob,) = raw.execute(
            "SELECT sealed FROM records WHERE entity_id = ?", (dossier.id,)
        ).fetchone()
        edited = bytearray(blob)
        edited[len(edited) // 2] ^= 0x01
        raw.execute(
            "UPDATE records SET sealed = ? WHERE entity_id = ?", (bytes(edited), dossier.id)
        )
    raw.close()
    with open_store(data_dir, PIN) as reopened:
        with pytest.raises(TamperError) as caught:
            reopened.dossiers.get(dossier.id)
        assert dossier.id in str(caught.value)
        assert "Nguyễn" not in str(caught.value)


def test_swapped_sealed_blobs_raise_tamper_error(store, data_dir, procedure):
    a = receive(store, procedure)
    b = receive(store, procedure, applicant_name="Lê Văn Bình")
    store.close()
    with _raw(store) as raw:
        blob_a = raw.execute("SELECT sealed FROM records WHERE entity_id = ?", (a.id,)).fetchone()
        blob_b = raw.execute("SELECT sealed FROM records WHERE entity_id = ?", (b.id,)).fetchone()
        raw.execute("UPDATE records SET sealed = ? WHERE entity_id = ?", (blob_b[0], a.id))
        raw.execute("UPDATE records SET sealed = ? WHERE entity_id = ?", (blob_a[0], b.id))
    raw.close()
    with open_store(data_dir, PIN) as reopened:
        for dossier in (a, b):
            with pytest.raises(TamperError):
                reopened.dossiers.get(dossier.id)


def test_the_outbox_holds_no_values_and_refuses_a_tampered_record(store, data_dir, procedure):
    dossier = receive(store, procedure)
    store.close()
    with _raw(store) as raw:
        columns = [r[1] for r in raw.execute("PRAGMA table_info(outbox)")]
        assert columns == ["id", "mutation_id", "entity", "entity_id", "base_version", "hlc",
                           "fields", "sealed"]
        assert raw.execute("SELECT count(*) FROM outbox WHERE sealed IS NOT NULL").fetchone() == (
            0,
        )  # nothing overwritten yet: rows name fields, the values live in the sealed record
        (blob,) = raw.execute(
            "SELECT sealed FROM records WHERE entity_id = ?", (dossier.id,)
        ).fetchone()
        raw.execute(
            "UPDATE records SET sealed = ? WHERE entity_id = ?",
            (blob[:-1] + bytes([blob[-1] ^ 1]), dossier.id),
        )
    raw.close()
    with open_store(data_dir, PIN) as reopened, pytest.raises(TamperError):
        reopened.sync.pending_mutations(1_000_000)


def test_an_edited_readable_column_raises_tamper_error(store, data_dir, procedure):
    dossier = receive(store, procedure)
    store.close()
    with _raw(store) as raw:
        raw.execute("UPDATE records SET status = 9 WHERE entity_id = ?", (dossier.id,))
    raw.close()
    with open_store(data_dir, PIN) as reopened, pytest.raises(TamperError):
        reopened.dossiers.get(dossier.id)
