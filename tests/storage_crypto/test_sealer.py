from __future__ import annotations

import os

import pytest

from app.storage.crypto import Sealer, SubKeys, derive_subkeys
from app.storage.errors import TamperError

AAD = {"table": "dossier", "row_id": "7d1c2c9e-0000-4000-8000-000000000001", "version": 3}


def test_round_trip_bytes_and_json(key: bytes) -> None:
    sealer = Sealer(key)
    blob = sealer.seal("Nguyễn Thị Hương".encode(), **AAD)
    assert sealer.open(blob, **AAD).decode() == "Nguyễn Thị Hương"
    record = {"applicant_name": "Trần Văn Đức", "documents": [1, 2], "fee": None}
    assert sealer.open_json(sealer.seal_json(record, **AAD), **AAD) == record


def test_json_is_compact_utf8(key: bytes) -> None:
    sealer = Sealer(key)
    blob = sealer.seal_json({"a": "Đ"}, **AAD)
    assert sealer.open(blob, **AAD) == '{"a":"Đ"}'.encode()


def test_sealing_is_randomised_and_hides_plaintext(key: bytes) -> None:
    sealer = Sealer(key)
    one, two = sealer.seal(b"same secret", **AAD), sealer.seal(b"same secret", **AAD)
    assert one != two
    assert b"same secret" not in one
    assert one[0] == 1  # format version prefix


def test_every_flipped_byte_is_detected(key: bytes) -> None:
    sealer = Sealer(key)
    blob = sealer.seal(b"ho so 000.00.53.H48-220921-0099", **AAD)
    for i in range(len(blob)):
        edited = bytearray(blob)
        edited[i] ^= 0x01
        with pytest.raises(TamperError):
            sealer.open(bytes(edited), **AAD)


@pytest.mark.parametrize(
    "other",
    [
        {**AAD, "row_id": "7d1c2c9e-0000-4000-8000-000000000002"},
        {**AAD, "version": 4},
        {**AAD, "table": "audit"},
    ],
    ids=["other-row", "other-version", "other-table"],
)
def test_swapped_value_fails_to_open(key: bytes, other: dict) -> None:
    sealer = Sealer(key)
    blob = sealer.seal_json({"applicant_name": "Lê Thị Mai"}, **AAD)
    with pytest.raises(TamperError):
        sealer.open_json(blob, **other)


def test_ambiguous_table_row_split_does_not_collide(key: bytes) -> None:
    sealer = Sealer(key)
    blob = sealer.seal(b"x", table="ab", row_id="c", version=1)
    with pytest.raises(TamperError):
        sealer.open(blob, table="a", row_id="bc", version=1)


def test_truncated_empty_and_foreign_key_values_fail(key: bytes) -> None:
    sealer = Sealer(key)
    blob = sealer.seal(b"data", **AAD)
    for bad in (b"", blob[:5], blob[:-1]):
        with pytest.raises(TamperError):
            sealer.open(bad, **AAD)
    with pytest.raises(TamperError):
        Sealer(os.urandom(32)).open(blob, **AAD)


def test_tamper_error_message_is_bilingual() -> None:
    text = str(TamperError())
    assert "sửa đổi" in text and "modified" in text


def test_subkeys_are_distinct_stable_and_hidden(key: bytes) -> None:
    sub = derive_subkeys(key)
    assert isinstance(sub, SubKeys)
    values = [sub.seal, sub.index, sub.files, sub.sqlcipher]
    assert all(len(v) == 32 for v in values)
    assert len(set(values + [key])) == 5
    assert derive_subkeys(key) == sub
    assert derive_subkeys(os.urandom(32)).seal != sub.seal
    assert key.hex() not in repr(sub) and sub.seal.hex() not in repr(sub)


def test_bad_key_length_is_refused() -> None:
    with pytest.raises(ValueError):
        Sealer(b"short")
    with pytest.raises(ValueError):
        derive_subkeys(b"\x00" * 16)
