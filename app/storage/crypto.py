"""Sealing of record values: AES-256-GCM bound to the row it belongs to.

A sealed value is `FORMAT (1 byte) | nonce (12 bytes) | ciphertext+tag`. The associated data binds
the format, table, row id and version, so a value copied into another row, another table or an
older/newer version of the same row fails to open, exactly like an edited byte does.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.storage.errors import TamperError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SEAL_FORMAT = 1
_FORMAT_BYTE = bytes([SEAL_FORMAT])
_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES

_SUBKEY_LABELS = {
    "seal": b"commune-field/v1/seal",
    "index": b"commune-field/v1/blind-index",
    "files": b"commune-field/v1/files",
    "sqlcipher": b"commune-field/v1/sqlcipher",
}


@dataclass(frozen=True, repr=False)
class SubKeys:
    """Independent 32-byte keys for each use of the data key (repr hides them)."""

    seal: bytes
    index: bytes
    files: bytes
    sqlcipher: bytes

    def __repr__(self) -> str:
        return "SubKeys(<hidden>)"


def hkdf(key: bytes, info: bytes, length: int = KEY_BYTES, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def derive_subkeys(data_key: bytes) -> SubKeys:
    """One data key, four purpose-bound keys: a leak of one use never exposes another."""
    _check_key(data_key)
    return SubKeys(**{name: hkdf(data_key, label) for name, label in _SUBKEY_LABELS.items()})


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise ValueError("key must be 32 bytes")


_LENGTH = struct.Struct(">H")
_VERSION = struct.Struct(">q")


@lru_cache(maxsize=64)
def _table_part(table: str) -> bytes:
    t = table.encode()
    return _FORMAT_BYTE + _LENGTH.pack(len(t)) + t


def _associated_data(table: str, row_id: str, version: int) -> bytes:
    # Length-prefixed so ("ab", "c") and ("a", "bc") can never produce the same bytes.
    r = str(row_id).encode()
    return b"".join((_table_part(table), _LENGTH.pack(len(r)), r, _VERSION.pack(version)))


class Sealer:
    """Seals and opens record values. Reuses one AESGCM object: this is on every insert."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._aead = AESGCM(bytes(key))

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    def seal(self, plaintext: bytes, *, table: str, row_id: str, version: int) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        aad = _associated_data(table, row_id, version)
        return _FORMAT_BYTE + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, *, table: str, row_id: str, version: int) -> bytes:
        if not isinstance(blob, bytes | bytearray | memoryview) or len(blob) < _OVERHEAD:
            raise TamperError("sealed value too short")
        blob = bytes(blob)
        if blob[0] != SEAL_FORMAT:
            raise TamperError("unknown sealed format")
        aad = _associated_data(table, row_id, version)
        try:
            return self._aead.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
        except InvalidTag:
            raise TamperError(f"{table}/{row_id}@{version}") from None

    def seal_json(self, obj: Any, *, table: str, row_id: str, version: int) -> bytes:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        return self.seal(text.encode(), table=table, row_id=row_id, version=version)

    def open_json(self, blob: bytes, *, table: str, row_id: str, version: int) -> Any:
        plain = self.open(blob, table=table, row_id=row_id, version=version)
        return json.loads(plain.decode())
