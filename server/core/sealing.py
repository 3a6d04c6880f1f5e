"""The server data key: personal fields and attachment bytes sealed at rest (AES-256-GCM).

The key lives outside the database: `COMMUNE_SERVER_KEY` (comma-separated base64 keys), else a
key file (default `<data dir>/keys/server.key`, one base64 key a line, created 0600 on first
start). The first key seals; every listed key opens, so a rotation adds a key in front and
`commune api reseal` moves every envelope to it. Each key's id (a hash of the key) is written in
every envelope, so the right key is found without trying them all.

A sealed field is stored as `{"sealed": "sv1.<key id>.<base64 nonce|ciphertext>", "hlc",
"changed_version"}`: the stamp stays readable for the merge and the pull, the value does not.
The associated data binds entity, entity id, field name and stamp, so a value moved to another
row or field, or paired with another stamp, fails to open (`SealError`), as an edited byte does.

The keys this process knows are one process-wide ring (`install`): sync, pull and reviews reach
it without passing it through every call. Several apps in one process (tests) add their keys to
it; the newest app's first key seals.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.domain import entities as E

KEY_ENV = "COMMUNE_SERVER_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
FIELD_PREFIX = "sv1"
SEALED = "sealed"  # the entry key of a sealed field's envelope (readable fields keep "value")
_FIELD_LABEL = b"commune-field/server/v1/fields"
_BLOB_LABEL = b"commune-field/server/v1/blobs"
_INDEX_LABEL = b"commune-field/server/v1/duplicate-index"
_KEY_FILE_HEADER = (
    "# commune-field server data key ring: the first key seals, every key opens.\n"
    "# Keep this file 0600 and back it up apart from the database and its backups.\n"
)


class SealError(Exception):
    """A sealed value or blob that does not open: tampered with, moved to another row or field,
    stored plain where it must be sealed, or sealed with a key this server does not hold."""


class KeyConfigError(Exception):
    """The server data key is missing or malformed."""


@dataclass(frozen=True, repr=False)
class ServerKey:
    key_id: str
    fields: AESGCM
    blobs: AESGCM
    index: bytes  # the duplicate check's index key (app/domain/duplicates.py): terms, not data

    @classmethod
    def from_bytes(cls, raw: bytes) -> ServerKey:
        if len(raw) != KEY_BYTES:
            raise KeyConfigError(f"a server data key is {KEY_BYTES} bytes (base64 encoded)")
        return cls(
            key_id(raw),
            AESGCM(_hkdf(raw, _FIELD_LABEL)),
            AESGCM(_hkdf(raw, _BLOB_LABEL)),
            _hkdf(raw, _INDEX_LABEL),
        )


@dataclass(repr=False)
class Keyring:
    """Keys by id; `current` seals."""

    keys: dict[str, ServerKey] = field(default_factory=dict)
    current: str | None = None

    @classmethod
    def of(cls, raw_keys: Iterable[bytes]) -> Keyring:
        ring = cls()
        for raw in raw_keys:
            ring.add(ServerKey.from_bytes(raw), make_current=ring.current is None)
        if ring.current is None:
            raise KeyConfigError("no server data key")
        return ring

    def add(self, key: ServerKey, make_current: bool) -> None:
        self.keys[key.key_id] = key
        if make_current:
            self.current = key.key_id

    def sealing_key(self) -> ServerKey:
        if self.current is None:
            raise KeyConfigError("no server data key installed")
        return self.keys[self.current]

    def key(self, kid: str) -> ServerKey:
        try:
            return self.keys[kid]
        except KeyError:
            raise SealError(f"sealed with key {kid!r}, which this server does not hold") from None

    def __repr__(self) -> str:
        return f"Keyring(current={self.current!r}, keys={sorted(self.keys)})"


def key_id(raw: bytes) -> str:
    return hashlib.sha256(b"commune-field/server-key-id\x00" + raw).hexdigest()[:12]


def _hkdf(raw: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(raw)


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def encode_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decode_key(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise KeyConfigError("a server data key is not valid base64") from exc


# --- where the keys come from -----------------------------------------------------------------


def load_keyring(key_file: Path, env: dict[str, str] | None = None) -> Keyring:
    """The ring from `COMMUNE_SERVER_KEY` when set, else from the key file (made if missing)."""
    env = os.environ if env is None else env
    if env.get(KEY_ENV, "").strip():
        return Keyring.of(_decode_key(k) for k in env[KEY_ENV].split(",") if k.strip())
    if not key_file.exists():
        write_key_file(key_file, [new_key()], exclusive=True)
    return Keyring.of(read_key_file(key_file))


def read_key_file(key_file: Path) -> list[bytes]:
    lines = key_file.read_text(encoding="ascii").splitlines()
    return [_decode_key(line) for line in lines if line.strip() and not line.startswith("#")]


def write_key_file(key_file: Path, keys: list[bytes], exclusive: bool = False) -> None:
    """Write the ring (first key current) 0600 in a 0700 folder, atomically."""
    from server.core.private_files import private_dir, write_private

    private_dir(key_file.parent)
    body = _KEY_FILE_HEADER + "".join(encode_key(k) + "\n" for k in keys)
    write_private(key_file, body.encode("ascii"), exclusive=exclusive)


_RING = Keyring()
_RING_LOCK = threading.Lock()


def install(ring: Keyring) -> Keyring:
    """Make the ring's keys known to this process; its current key seals from now on."""
    with _RING_LOCK:
        for kid, key in ring.keys.items():
            _RING.add(key, make_current=kid == ring.current)
    return _RING


def process_ring() -> Keyring:
    return _RING


# --- record fields ----------------------------------------------------------------------------


def _field_ad(entity: str, entity_id: str, name: str, hlc: str) -> bytes:
    return "\x00".join(("commune-field/server/v1/field", entity, entity_id, name, hlc)).encode()


def seal_value(entity: str, entity_id: str, name: str, hlc: str, value: Any) -> str:
    key = _RING.sealing_key()
    nonce = os.urandom(NONCE_BYTES)
    plain = E.compact_json(value).encode("utf-8")
    sealed = key.fields.encrypt(nonce, plain, _field_ad(entity, entity_id, name, hlc))
    return f"{FIELD_PREFIX}.{key.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_value(entity: str, entity_id: str, name: str, hlc: str, envelope: Any) -> Any:
    parts = envelope.split(".") if isinstance(envelope, str) else []
    if len(parts) != 3 or parts[0] != FIELD_PREFIX:
        raise SealError(f"{entity}/{entity_id}: field {name!r} is not a server envelope")
    key = _RING.key(parts[1])
    try:
        blob = base64.urlsafe_b64decode(parts[2])
        plain = key.fields.decrypt(
            blob[:NONCE_BYTES], blob[NONCE_BYTES:], _field_ad(entity, entity_id, name, hlc)
        )
    except (InvalidTag, ValueError) as exc:
        raise SealError(f"{entity}/{entity_id}: field {name!r} does not open") from exc
    return json.loads(plain)


def seal_fields(entity: str, entity_id: str, fields: dict[str, dict]) -> dict[str, dict]:
    """What is stored: the values of the entity's sealed fields replaced by envelopes."""
    sealed = E.sealed_fields(entity, list(fields))
    if not sealed:
        return fields
    out = dict(fields)
    for name in sealed:
        entry = fields[name]
        if SEALED in entry:  # already sealed (a reseal pass hands stored rows back)
            continue
        hlc = entry["hlc"]
        out[name] = {
            SEALED: seal_value(entity, entity_id, name, hlc, entry["value"]),
            "hlc": hlc,
            "changed_version": entry.get("changed_version"),
        }
    return out


def open_fields(entity: str, entity_id: str, stored: dict[str, dict]) -> dict[str, dict]:
    """The stored fields with every sealed value opened; raises SealError on any that fails,
    and on a plain value where the entity's rules say sealed (written around this module)."""
    sealed = E.sealed_fields(entity, list(stored))
    out = dict(stored)
    for name in sealed:
        entry = stored[name]
        if SEALED not in entry:
            raise SealError(f"{entity}/{entity_id}: field {name!r} is stored plain")
        hlc = entry["hlc"]
        out[name] = {
            "value": open_value(entity, entity_id, name, hlc, entry[SEALED]),
            "hlc": hlc,
            "changed_version": entry.get("changed_version"),
        }
    return out


def is_plain_or_stale(entity: str, stored: dict[str, dict], current_key: str | None) -> bool:
    """Whether a stored row needs sealing: a sealed field held plain, or (with `current_key`)
    an envelope under another key."""
    for name in E.sealed_fields(entity, list(stored)):
        entry = stored[name]
        if SEALED not in entry:
            return True
        if current_key is not None and _kid_of(entry[SEALED]) != current_key:
            return True
    return False


def _kid_of(envelope: Any) -> str | None:
    parts = envelope.split(".") if isinstance(envelope, str) else []
    return parts[1] if len(parts) == 3 else None


def open_legacy(entity: str, entity_id: str, stored: dict[str, dict]) -> dict[str, dict]:
    """Like `open_fields`, but plain values pass (the upgrade of a database sealed by none)."""
    plain = {k: v for k, v in stored.items() if SEALED not in v}
    opened = open_fields(entity, entity_id, {k: v for k, v in stored.items() if SEALED in v})
    return {**opened, **plain}


# --- blob frames ------------------------------------------------------------------------------


def blob_ad(sha256: str, offset: int, final: bool) -> bytes:
    return f"commune-field/server/v1/blob\x00{sha256}\x00{offset}\x00{int(final)}".encode()


def seal_frame(sha256: str, offset: int, data: bytes, final: bool = False) -> tuple[str, bytes]:
    """(key id, nonce|ciphertext) of one frame of a blob, bound to its name and offset."""
    key = _RING.sealing_key()
    nonce = os.urandom(NONCE_BYTES)
    return key.key_id, nonce + key.blobs.encrypt(nonce, data, blob_ad(sha256, offset, final))


def open_frame(sha256: str, offset: int, kid: str, body: bytes, final: bool = False) -> bytes:
    key = _RING.key(kid)
    try:
        return key.blobs.decrypt(
            body[:NONCE_BYTES], body[NONCE_BYTES:], blob_ad(sha256, offset, final)
        )
    except (InvalidTag, ValueError) as exc:
        raise SealError(f"attachment {sha256}: a frame at {offset} does not open") from exc
