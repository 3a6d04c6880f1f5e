"""Server at rest, through the real API process on SQLite and PostgreSQL: a copy of the database
(SQLite file and WAL, or a pg_dump) and of the attachment folder shows no personal value, in
UTF-8, UTF-16 or accent-free form, while a second device pulls the exact values and downloads
the exact bytes. Plus: folders 0700 and files 0600, rotation, and the upgrade of a plain
database."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, make_url, select, update

from app.domain.text import fold
from server.core import sealing
from server.core.sealing import SealError
from server.models import BlobGrant, ChangeLog, Record, utcnow
from server.storage import MAGIC
from tests.server.helpers import (
    Device,
    dossier_fields,
    new_audit,
    new_name,
    new_ward,
    pull_all,
    push,
)
from tests.support.server_proc import (
    _MAIN,
    REPO_ROOT,
    ApiServer,
    sqlite_url,
    start_api_server,
)

ROOT_OWNED = {"server.log"}  # written by the test harness, not by the server


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def at_rest_server(request) -> Iterator[tuple[ApiServer, object]]:
    """A server of its own (its data folder is scanned whole) and, on PostgreSQL, the cluster."""
    with tempfile.TemporaryDirectory(prefix="commune-at-rest-") as tmp:
        if request.param == "sqlite":
            server, cluster = start_api_server(sqlite_url(Path(tmp)), Path(tmp)), None
        else:
            cluster = request.getfixturevalue("postgres_server")
            server = start_api_server(cluster.create_database(), Path(tmp))
        try:
            yield server, cluster
        finally:
            server.stop()


def _markers() -> dict[str, str]:
    tag = secrets.token_hex(4)
    return {
        "applicant_name": f"Nguyễn Thị Đánh Dấu Hoà {tag}",
        "applicant_id_number": "0" + "".join(str(secrets.randbelow(10)) for _ in range(11)),
        "applicant_phone": "09" + "".join(str(secrets.randbelow(10)) for _ in range(8)),
        "applicant_address": f"Số 17 ngõ Hoè Nhai, phường Ba Đình {tag}",
        "notes": f"Ghi chú riêng tư về hồ sơ, người nộp khiếm thính {tag}",
    }


def _forms(value: str) -> list[bytes]:
    """A value as a copy could hold it: UTF-8, UTF-16 both ways, folded to plain ASCII, JSON
    with \\u escapes (how the JSON column writes it), and each longer word on its own."""
    folded = fold(value)
    texts = {value, folded, json.dumps(value)[1:-1]}
    texts |= {word for word in value.split() if len(word) >= 8}
    forms = set()
    for text_form in texts:
        forms |= {
            text_form.encode(),
            text_form.encode("utf-16-le"),
            text_form.encode("utf-16-be"),
        }
    return sorted(forms)


def _hits(haystack: bytes, values: list[str]) -> list[str]:
    lowered = haystack.lower()
    found = []
    for value in values:
        for form in _forms(value):
            if form in haystack or form.lower() in lowered:
                found.append(f"{value!r} as {form[:24]!r}")
    return found


def _database_copy(server: ApiServer, cluster) -> bytes:
    if cluster is None:
        database = Path(make_url(server.db_url).database)
        parts = [database, database.with_name(database.name + "-wal")]
        return b"".join(p.read_bytes() for p in parts if p.exists())
    name = make_url(server.db_url).database
    dump = subprocess.run(
        [
            str(cluster.bindir / "pg_dump"),
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            cluster.user,
            name,
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return dump.stdout


def _attachment_copy(server: ApiServer) -> bytes:
    folder = server.data_dir / "server" / "attachments"
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _push_dossier(client, device: Device, ward: str, markers: dict, code: str) -> dict:
    # A whole dossier (the server refuses one without its receipt time and appointment date).
    timing = dossier_fields(ward)
    fields = {
        "status": 1,
        "procedure_code": "1.000894",
        "ward_code": ward,
        "code": code,
        "channel": 1,
        "received_at": timing["received_at"],
        "appointment_date": timing["appointment_date"],
        "documents": [{"name": f"Giấy khai sinh của {markers['applicant_name']}"}],
        **markers,
    }
    mutation = device.mutation("dossier", str(uuid.uuid4()), ward, fields)
    [result] = push(client, [mutation])
    assert result["status"] == "applied", result
    return mutation


def _upload(client, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    assert client.post("/attachments", json={"sha256": sha, "size": len(data)}).status_code == 200
    half = len(data) // 2
    for start, end in ((0, half), (half, len(data))):  # resumed at the server's offset
        answer = client.patch(
            f"/attachments/{sha}", content=data[start:end], headers={"Upload-Offset": str(start)}
        )
        assert answer.status_code == 200, answer.text
    assert answer.json() == {"offset": len(data), "complete": True}
    return sha


def test_no_personal_value_in_a_copy_while_devices_get_them_exactly(at_rest_server):
    server, cluster = at_rest_server
    ward = new_ward()
    user = new_name("officer")
    first = server.enrol(user, "officer", [ward])
    second = server.enrol(user, device_name="second tablet")
    markers = _markers()
    code = f"000.00.53.H48-{secrets.randbelow(999999):06d}-0001"
    tablet_a, tablet_b = Device(), Device()
    note_b = f"Bổ sung giấy tờ của bà Hoà {secrets.token_hex(4)}"
    note_a = f"Đã gọi điện cho người nộp {secrets.token_hex(4)}"
    filename = f"CCCD mặt trước Đánh Dấu {secrets.token_hex(4)}.jpg"
    blob = (
        b"\xff\xd8 marker-bytes "
        + secrets.token_hex(8).encode()
        + " ảnh căn cước công dân ".encode()
        + os.urandom(200_000)
    )
    with server.client(first.token) as a, server.client(second.token) as b:
        dossier = _push_dossier(a, tablet_a, ward, markers, code)
        dossier_id = dossier["entity_id"]
        # The same field edited on both tablets from version 1: a conflict record holds both.
        edit_b = tablet_b.mutation("dossier", dossier_id, ward, {"notes": note_b}, base_version=1)
        edit_a = tablet_a.mutation("dossier", dossier_id, ward, {"notes": note_a}, base_version=1)
        assert push(b, [edit_b])[0]["status"] == "applied"
        assert push(a, [edit_a])[0]["status"] == "conflict"
        sha = _upload(a, blob)
        attachment = tablet_a.mutation(
            "attachment",
            str(uuid.uuid4()),
            ward,
            {
                "owner_entity": "dossier",
                "owner_id": dossier_id,
                "ward_code": ward,
                "sha256": sha,
                "size": len(blob),
                "mime": "image/jpeg",
                "filename": filename,
            },
        )
        assert push(a, [attachment])[0]["status"] == "applied"

        changes, _ = pull_all(b)
        by_id = {c["entity_id"]: c for c in changes}
        got = {k: v["value"] for k, v in by_id[dossier_id]["fields"].items()}
        winner = got["notes"]
        assert winner in (note_a, note_b)
        expected = {k: v["value"] for k, v in dossier["fields"].items()} | {"notes": winner}
        assert got == expected
        assert by_id[attachment["entity_id"]]["fields"]["filename"]["value"] == filename
        conflict = next(c for c in changes if c["entity"] == "conflict")
        lost = {v["value"] for v in conflict["fields"]["values"]["value"]}
        assert lost == {note_a, note_b}
        download = b.get(f"/attachments/{sha}")
        assert download.status_code == 200 and download.content == blob

    personal = [*markers.values(), note_a, note_b, filename]
    database = _database_copy(server, cluster)
    assert code.encode() in database  # the scan sees what is stored readable
    assert _hits(database, personal) == []
    attachments = _attachment_copy(server)
    assert len(attachments) > len(blob)
    assert blob[:40] not in attachments and blob[-64:] not in attachments
    assert _hits(attachments, [" ảnh căn cước công dân "]) == []


def test_folders_are_0700_and_files_0600(at_rest_server):
    server, _ = at_rest_server
    officer = server.enrol(new_name("officer"), "officer", [new_ward()])
    with server.client(officer.token) as client:
        _upload(client, os.urandom(70_000))
    root = server.data_dir
    key_file = root / "keys" / "server.key"
    assert key_file.is_file()
    blobs = list((root / "server" / "attachments").rglob("*"))
    assert any(p.is_file() for p in blobs)
    checked = 0
    for path in [root, *root.rglob("*")]:
        if path.name in ROOT_OWNED:
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
        checked += 1
    assert checked >= 6
    if server.db_url.startswith("sqlite"):
        database = Path(make_url(server.db_url).database)
        assert database.with_name(database.name + "-wal").exists()  # checked above too


def test_a_tampered_envelope_is_refused_on_read(at_rest_server):
    server, _ = at_rest_server
    ward = new_ward()
    officer = server.enrol(new_name("officer"), "officer", [ward])
    with server.client(officer.token) as client:
        dossier = _push_dossier(client, Device(), ward, _markers(), "000.00.53.H48-250101-0002")
    sealing.install(sealing.load_keyring(server.data_dir / "keys" / "server.key", env={}))
    with server.engine.begin() as conn:
        row = conn.execute(
            select(Record.id, Record.fields).where(Record.entity_id == dossier["entity_id"])
        ).one()
    assert "value" not in row.fields["applicant_name"]
    opened = sealing.open_fields("dossier", dossier["entity_id"], row.fields)
    assert opened["applicant_name"]["value"] == dossier["fields"]["applicant_name"]["value"]
    swapped = dict(row.fields)
    swapped["applicant_name"] = row.fields["applicant_address"] | {
        "hlc": row.fields["applicant_name"]["hlc"]
    }
    with pytest.raises(SealError):
        sealing.open_fields("dossier", dossier["entity_id"], swapped)
    with pytest.raises(SealError):  # the whole row copied under another record's id
        sealing.open_fields("dossier", str(uuid.uuid4()), row.fields)


def _tamper(server: ApiServer, entity_id: str, name: str) -> None:
    """Flip one byte of a stored envelope, as someone writing the database directly would."""
    with server.engine.begin() as conn:
        row = conn.execute(select(Record.id, Record.fields).where(Record.entity_id == entity_id))
        record_id, fields = row.one()
        envelope = fields[name]["sealed"]
        at = len(envelope) - 20  # inside the ciphertext (the last characters may be padding)
        flipped = envelope[:at] + ("A" if envelope[at] != "A" else "B") + envelope[at + 1 :]
        fields = {**fields, name: {**fields[name], "sealed": flipped}}
        conn.execute(update(Record).where(Record.id == record_id).values(fields=fields))


def test_a_tampered_row_refuses_its_push_and_leaves_the_review_list(at_rest_server):
    server, _ = at_rest_server
    ward = new_ward()
    officer = server.enrol(new_name("officer"), "officer", [ward])
    auditor = server.enrol(new_name("auditor"), "auditor", [ward])
    supervisor = server.enrol(new_name("sup"), "supervisor", [ward])
    tablet = Device()
    with server.client(officer.token) as client:
        bad = _push_dossier(client, tablet, ward, _markers(), "000.00.53.H48-250101-0004")
        good = _push_dossier(client, tablet, ward, _markers(), "000.00.53.H48-250101-0005")
        _tamper(server, bad["entity_id"], "applicant_name")
        edits = [
            tablet.mutation(
                "dossier", record["entity_id"], ward, {"notes": "Đã bổ sung"}, base_version=1
            )
            for record in (bad, good)
        ]
        results = push(client, edits)
        assert [r["status"] for r in results] == ["rejected", "applied"]
        assert results[0]["reason"] == "record_unreadable"
    reader = server.enrol(new_name("officer"), "officer", [ward])
    with server.client(reader.token) as client:  # the pull sets the row aside, serves the rest
        pulled = {c["entity_id"] for c in pull_all(client)[0]}
        assert good["entity_id"] in pulled and bad["entity_id"] not in pulled
    audits = [new_audit(tablet, ward, state="submitted", auditor="Phạm Thị Lan") for _ in "ab"]
    with server.client(auditor.token) as client:
        assert [r["status"] for r in push(client, audits)] == ["applied", "applied"]
    _tamper(server, audits[0]["entity_id"], "auditor")
    with server.client(supervisor.token) as client:
        listed = client.get("/reviews", params={"state": "submitted"})
        assert listed.status_code == 200
        ids = {a["audit_id"] for a in listed.json()["audits"]}
        assert ids == {audits[1]["entity_id"]}
        decided = client.post(
            f"/reviews/{audits[0]['entity_id']}", json={"decision": "approved", "comment": "ok"}
        )
        assert decided.status_code == 409
        assert decided.json()["error"]["message"] == "record_unreadable"


def _commune(data_dir: Path, *args: str) -> str:
    command = [sys.executable, "-c", _MAIN, "--data-dir", str(data_dir), *args]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != sealing.KEY_ENV},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _key_ids(server: ApiServer) -> set[str]:
    with server.engine.begin() as conn:
        rows = conn.execute(select(Record.entity, Record.fields)).all()
    return {
        entry["sealed"].split(".")[1]
        for entity, fields in rows
        for entry in fields.values()
        if "sealed" in entry
    }


def test_rotate_key_reseals_records_and_attachments_and_devices_see_no_change(tmp_path):
    server = start_api_server(sqlite_url(tmp_path), tmp_path)
    try:
        ward = new_ward()
        user = new_name("officer")
        first = server.enrol(user, "officer", [ward])
        second = server.enrol(user, device_name="second tablet")
        blob = b"rotation marker " + os.urandom(100_000)
        with server.client(first.token) as client:
            dossier = _push_dossier(client, Device(), ward, _markers(), "000.00.53.H48-250101-0003")
            sha = _upload(client, blob)
            attachment = Device().mutation(
                "attachment",
                str(uuid.uuid4()),
                ward,
                {
                    "owner_entity": "dossier",
                    "owner_id": dossier["entity_id"],
                    "sha256": sha,
                    "size": len(blob),
                    "mime": "image/jpeg",
                    "ward_code": ward,
                },
            )
            [answer] = push(client, [attachment])
            assert answer["status"] == "applied", answer
        old_ids = _key_ids(server)
        assert len(old_ids) == 1
        server.stop()
        out = _commune(tmp_path, "api", "rotate-key", "--db", server.db_url)
        key_file = tmp_path / "keys" / "server.key"
        ring = sealing.read_key_file(key_file)
        assert len(ring) == 2 and "re-sealed" in out
        new_id = sealing.key_id(ring[0])
        assert _key_ids(server) == {new_id} and new_id not in old_ids
        blob_file = next((tmp_path / "server" / "attachments").glob("??/*"))
        assert new_id.encode() in blob_file.read_bytes()
        assert next(iter(old_ids)).encode() not in blob_file.read_bytes()
        server.start()  # the file's first key seals, the old one still opens
        with server.client(second.token) as client:
            changes, _ = pull_all(client)
            got = next(c for c in changes if c["entity_id"] == dossier["entity_id"])
            assert {k: v["value"] for k, v in got["fields"].items()} == {
                k: v["value"] for k, v in dossier["fields"].items()
            }
            assert client.get(f"/attachments/{sha}").content == blob
        server.stop()
        _commune(tmp_path, "api", "rotate-key", "--db", server.db_url, "--retire-old")
        assert len(sealing.read_key_file(key_file)) == 1
        server.start()
        with server.client(second.token) as client:
            assert client.get(f"/attachments/{sha}").content == blob
            changes, _ = pull_all(client)
            assert dossier["entity_id"] in {c["entity_id"] for c in changes}
    finally:
        server.stop()


def test_a_plain_database_from_an_older_server_is_sealed_at_start(tmp_path):
    from server import migrate
    from server.core.db import make_engine

    url = sqlite_url(tmp_path)
    engine = make_engine(url)
    migrate.upgrade(engine)
    ward = new_ward()
    markers = _markers()
    dossier_id = str(uuid.uuid4())
    stamp = Device().clock.now()
    fields = {
        "status": 1,
        "ward_code": ward,
        "procedure_code": "1.000894",
        **markers,
    }
    blob = b"old plain attachment " + markers["applicant_name"].encode() + os.urandom(5000)
    sha = hashlib.sha256(blob).hexdigest()
    old_blob = tmp_path / "server" / "attachments" / sha[:2] / sha
    old_blob.parent.mkdir(parents=True)
    old_blob.write_bytes(blob)
    os.chmod(old_blob, 0o644)
    attachment_id = str(uuid.uuid4())
    attachment_fields = {"owner_entity": "dossier", "owner_id": dossier_id, "sha256": sha}
    with engine.begin() as conn:
        for entity, entity_id, values in (
            ("dossier", dossier_id, fields),
            ("attachment", attachment_id, attachment_fields),
        ):
            conn.execute(
                insert(Record.__table__),
                {
                    "entity": entity,
                    "entity_id": entity_id,
                    "ward_code": ward,
                    "family": "dossier",
                    "version": 1,
                    "fields": {
                        k: {"value": v, "hlc": stamp, "changed_version": 1}
                        for k, v in values.items()
                    },
                    "blob_sha256": sha if entity == "attachment" else None,
                    "updated_at": utcnow(),
                },
            )
            conn.execute(
                insert(ChangeLog.__table__),
                {
                    "entity": entity,
                    "entity_id": entity_id,
                    "ward_code": ward,
                    "family": "dossier",
                    "version": 1,
                },
            )
        # The scope may read the file (what migration 0004 grants an older server's uploads).
        conn.execute(
            insert(BlobGrant.__table__),
            {"sha256": sha, "ward_code": ward, "family": "dossier", "created_at": utcnow()},
        )
    engine.dispose()
    database = Path(make_url(url).database)
    before = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert _hits(before, [markers["applicant_name"]])  # plain before the upgrade

    server = start_api_server(url, tmp_path)
    try:
        server.stop()  # the copy is taken with the server stopped, as a backup would be
        copy = database.read_bytes() + _attachment_copy(server)
        wal = database.with_name(database.name + "-wal")
        copy += wal.read_bytes() if wal.exists() else b""
        assert _hits(copy, list(markers.values())) == []
        assert old_blob.read_bytes().startswith(MAGIC)
        assert stat.S_IMODE(old_blob.stat().st_mode) == 0o600
        server.start()
        officer = server.enrol(new_name("officer"), "officer", [ward])
        with server.client(officer.token) as client:
            changes, _ = pull_all(client)
            got = next(c for c in changes if c["entity_id"] == dossier_id)
            assert {k: v["value"] for k, v in got["fields"].items()} == fields
            assert client.get(f"/attachments/{sha}").content == blob
        assert server.count("audit_log WHERE action = 'seal_at_rest'") == 1
    finally:
        server.stop()


def test_the_key_can_come_from_the_environment_instead_of_a_file(tmp_path):
    raw = sealing.new_key()
    env = {sealing.KEY_ENV: sealing.encode_key(raw)}
    server = start_api_server(sqlite_url(tmp_path), tmp_path, extra_env=env)
    try:
        ward = new_ward()
        officer = server.enrol(new_name("officer"), "officer", [ward])
        with server.client(officer.token) as client:
            _push_dossier(client, Device(), ward, _markers(), "000.00.53.H48-250101-0006")
        assert _key_ids(server) == {sealing.key_id(raw)}
        assert not (tmp_path / "keys" / "server.key").exists()  # nothing written to disk
    finally:
        server.stop()


def test_reseal_seals_a_plain_partial_upload_which_then_resumes(tmp_path):
    server = start_api_server(sqlite_url(tmp_path), tmp_path)
    try:
        officer = server.enrol(new_name("officer"), "officer", [new_ward()])
        data = b"half an upload from an older server " + os.urandom(90_000)
        sha = hashlib.sha256(data).hexdigest()
        with server.client(officer.token) as client:
            client.post("/attachments", json={"sha256": sha, "size": len(data)})
            first = client.patch(
                f"/attachments/{sha}", content=data[:40_000], headers={"Upload-Offset": "0"}
            )
            assert first.json() == {"offset": 40_000, "complete": False}
        server.stop()
        (partial,) = (tmp_path / "server" / "attachments" / "partial").glob("*")  # this user's
        partial.write_bytes(data[:40_000])  # as an older server left it: plain
        out = _commune(tmp_path, "api", "reseal", "--db", server.db_url)
        assert "1 partial uploads rewritten" in out
        assert partial.read_bytes().startswith(MAGIC) and data[:30] not in partial.read_bytes()
        server.start()
        with server.client(officer.token) as client:
            assert client.get(f"/attachments/{sha}/offset").json()["offset"] == 40_000
            rest = client.patch(
                f"/attachments/{sha}", content=data[40_000:], headers={"Upload-Offset": "40000"}
            )
            assert rest.json() == {"offset": len(data), "complete": True}
    finally:
        server.stop()
