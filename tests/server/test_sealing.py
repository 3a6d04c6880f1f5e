"""The server data key, sealed fields and sealed attachment files (real AES-GCM, real files)."""

from __future__ import annotations

import base64
import hashlib
import os
import stat

import pytest

from server.core import sealing
from server.core.sealing import SealError
from server.storage import MAGIC, LocalDiskStore

STAMP = "0001763900000000:0000:dev-a"


def _entry(value, hlc: str = STAMP) -> dict:
    return {"value": value, "hlc": hlc, "changed_version": 1}


@pytest.fixture
def ring():
    return sealing.install(sealing.Keyring.of([sealing.new_key()]))


def test_key_file_is_made_0600_in_a_0700_folder_and_read_back(tmp_path):
    key_file = tmp_path / "keys" / "server.key"
    first = sealing.load_keyring(key_file, env={})
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    again = sealing.load_keyring(key_file, env={})
    assert again.current == first.current  # made once, then read
    raw = sealing.new_key()
    from_env = sealing.load_keyring(key_file, env={sealing.KEY_ENV: sealing.encode_key(raw)})
    assert from_env.current == sealing.key_id(raw)  # the variable wins over the file
    with pytest.raises(sealing.KeyConfigError):
        sealing.load_keyring(key_file, env={sealing.KEY_ENV: base64.b64encode(b"short").decode()})


def test_sealed_fields_hide_values_keep_stamps_and_open_exactly(ring):
    fields = {
        "applicant_name": _entry("Nguyễn Thị Hoà"),
        "documents": _entry([{"name": "Giấy khai sinh", "copies": 2}]),
        "notes": _entry(None),
        "status": _entry(4),
    }
    stored = sealing.seal_fields("dossier", "d1", fields)
    assert stored["status"] == fields["status"]  # readable fields stay as they are
    for name in ("applicant_name", "documents", "notes"):
        assert "value" not in stored[name] and stored[name]["hlc"] == STAMP
        assert stored[name]["sealed"].startswith(f"sv1.{ring.current}.")
    assert "Hoà" not in repr(stored) and "khai" not in repr(stored)
    assert sealing.open_fields("dossier", "d1", stored) == fields


@pytest.mark.parametrize(
    "move",
    ["other_row", "other_field", "other_stamp", "edited_byte", "plain_value", "unknown_key"],
)
def test_an_envelope_moved_edited_or_replaced_does_not_open(ring, move):
    stored = sealing.seal_fields(
        "dossier",
        "d1",
        {"applicant_name": _entry("Trần Văn Bình"), "applicant_address": _entry("Hà Nội")},
    )
    entity_id, fields = "d1", {k: dict(v) for k, v in stored.items()}
    if move == "other_row":
        entity_id = "d2"
    elif move == "other_field":
        fields["applicant_name"]["sealed"] = stored["applicant_address"]["sealed"]
    elif move == "other_stamp":
        fields["applicant_name"]["hlc"] = "0001763900000001:0000:dev-a"
    elif move == "edited_byte":
        envelope = fields["applicant_name"]["sealed"]
        body = bytearray(base64.urlsafe_b64decode(envelope.split(".")[2]))
        body[-1] ^= 1
        fields["applicant_name"]["sealed"] = (
            envelope.rsplit(".", 1)[0] + "." + base64.urlsafe_b64encode(bytes(body)).decode()
        )
    elif move == "plain_value":
        fields["applicant_name"] = _entry("Kẻ Giả Mạo")
    else:
        kid = fields["applicant_name"]["sealed"].split(".")[1]
        fields["applicant_name"]["sealed"] = fields["applicant_name"]["sealed"].replace(
            kid, "000000000000"
        )
    with pytest.raises(SealError):
        sealing.open_fields("dossier", entity_id, fields)


def test_rotation_new_writes_use_the_new_key_old_envelopes_still_open(ring):
    old = sealing.seal_fields("audit", "a1", {"auditor": _entry("Lê Thị Thu")})
    new_raw = sealing.new_key()
    sealing.install(sealing.Keyring.of([new_raw]))
    new = sealing.seal_fields("audit", "a1", {"auditor": _entry("Lê Thị Thu")})
    assert new["auditor"]["sealed"].split(".")[1] == sealing.key_id(new_raw)
    assert sealing.open_fields("audit", "a1", old)["auditor"]["value"] == "Lê Thị Thu"
    assert sealing.is_plain_or_stale("audit", old, sealing.key_id(new_raw))
    assert not sealing.is_plain_or_stale("audit", new, sealing.key_id(new_raw))


def _upload(store: LocalDiskStore, data: bytes, cut: int) -> str:
    sha = hashlib.sha256(data).hexdigest()
    assert store.write_at(sha, 0, data[:cut]) == cut
    assert store.partial_size(sha) == cut  # the resume offset is of plaintext
    assert store.write_at(sha, cut, data[cut:]) == len(data)
    assert store.finish(sha)
    return sha


def test_blob_is_sealed_on_disk_resumes_by_plaintext_offset_and_streams_back(tmp_path, ring):
    store = LocalDiskStore(tmp_path / "att")
    data = b"Bien ban kiem tra " + "Biên bản kiểm tra".encode() * 1000 + os.urandom(2_300_000)
    sha = hashlib.sha256(data).hexdigest()
    store.write_at(sha, 0, data[:700_000])
    # A chunk rewritten from inside an earlier frame (the client re-sent from an older offset).
    assert store.write_at(sha, 500_000, data[500_000:1_800_000]) == 1_800_000
    assert store.partial_size(sha) == 1_800_000
    store.write_at(sha, 1_800_000, data[1_800_000:])
    assert store.finish(sha)
    on_disk = store.path(sha).read_bytes()
    assert on_disk.startswith(MAGIC) and b"kiem tra" not in on_disk
    assert "kiểm".encode() not in on_disk
    assert store.size(sha) == len(data)
    assert b"".join(store.read_chunks(sha)) == data
    assert stat.S_IMODE(store.path(sha).stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path(sha).parent.stat().st_mode) == 0o700


def test_a_bad_chunk_fails_the_hash_and_leaves_nothing(tmp_path, ring):
    store = LocalDiskStore(tmp_path / "att")
    data = os.urandom(50_000)
    sha = hashlib.sha256(data).hexdigest()
    store.write_at(sha, 0, data[:-1] + bytes([data[-1] ^ 1]))
    assert not store.finish(sha) and store.partial_size(sha) == 0 and not store.exists(sha)


@pytest.mark.parametrize("damage", ["flip", "cut_end", "swap_blob"])
def test_a_damaged_blob_is_refused(tmp_path, ring, damage):
    store = LocalDiskStore(tmp_path / "att")
    first = _upload(store, os.urandom(1_500_000), 600_000)
    path = store.path(first)
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(MAGIC) + 100] ^= 1
    elif damage == "cut_end":
        raw = raw[: -(6 + 12 + 28 + 8)]  # the final frame (header, key id, nonce+tag, size)
    else:  # the frames of another blob under this name
        other = _upload(store, os.urandom(1_500_000), 600_000)
        raw = bytearray(store.path(other).read_bytes())
    path.write_bytes(bytes(raw))
    with pytest.raises(SealError):
        store.size(first)
        b"".join(store.read_chunks(first))


def test_reseal_moves_blobs_to_the_current_key_and_seals_plain_ones(tmp_path, ring):
    store = LocalDiskStore(tmp_path / "att")
    data = os.urandom(300_000)
    sha = _upload(store, data, 100_000)
    plain = b"plain file from an older server " * 100
    plain_sha = hashlib.sha256(plain).hexdigest()
    store.path(plain_sha).parent.mkdir(exist_ok=True)
    store.path(plain_sha).write_bytes(plain)
    assert store.reseal(sha) is False  # already under the current key
    assert store.reseal(plain_sha) is True
    assert store.path(plain_sha).read_bytes().startswith(MAGIC)
    sealing.install(sealing.Keyring.of([sealing.new_key()]))
    assert store.reseal(sha) is True
    assert b"".join(store.read_chunks(sha)) == data
    assert b"".join(store.read_chunks(plain_sha)) == plain


def test_audit_answers_positions_and_conflict_values_are_sealed_scores_are_not(ring):
    audit = sealing.seal_fields(
        "audit",
        "a1",
        {
            "answers.net.backup": _entry({"value": "Sao lưu hằng tuần", "photo": None}),
            "position": _entry({"lat": 21.03, "lon": 105.85}),
            "score": _entry(82.5),
            "review_state": _entry("submitted"),
        },
    )
    assert {k for k, v in audit.items() if "sealed" in v} == {"answers.net.backup", "position"}
    conflict = sealing.seal_fields(
        "conflict",
        "c1",
        {"values": _entry([{"value": "A", "hlc": STAMP}]), "field": _entry("notes")},
    )
    assert "sealed" in conflict["values"] and conflict["field"]["value"] == "notes"
