"""Sealed, content-addressed attachment files.

A file's identity is the SHA-256 of its plaintext (what the server and the records use). On disk
it is stored under `address_of(sha256)`, an HMAC of that hash, so names reveal nothing about the
content (a known photo's hash cannot be looked up), in a two-character fan-out directory.

Format (STREAM construction over AES-256-GCM):

    header   = MAGIC "CFSF" | FORMAT 0x01 | 7-byte random nonce prefix
    chunk i  = AES-GCM(nonce = prefix | i (4 bytes BE) | final (1 byte),
                       aad   = header | address | i | final, 64 KiB of plaintext) + 16-byte tag

Every chunk but the last holds exactly 64 KiB; the last one (possibly empty) carries final = 1.
Truncation (the new last chunk was not sealed as final), reordering (index), swapping files
(address) and any edited byte all fail authentication -> `TamperError`. After the last chunk the
plaintext's SHA-256 is checked against the name asked for.

Writes go to a temp file in the same directory, then `os.replace`: a crash leaves either nothing
or a whole file, and the temp file only ever holds ciphertext.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import struct
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.domain.models import SHA256_HEX
from app.storage.crypto import TAG_BYTES, hkdf
from app.storage.errors import TamperError

CHUNK_BYTES = 64 * 1024
MAGIC = b"CFSF"
FILE_FORMAT = 1
PREFIX_BYTES = 7
HEADER_BYTES = len(MAGIC) + 1 + PREFIX_BYTES
_SEALED_CHUNK = CHUNK_BYTES + TAG_BYTES


def _check_sha(sha256_hex: str) -> str:
    sha = sha256_hex.lower() if isinstance(sha256_hex, str) else ""
    if not SHA256_HEX.fullmatch(sha):
        raise ValueError("expected a SHA-256 as 64 hex characters")
    return sha


class _ChunkCipher:
    """Seals/opens the chunks of one file: header and address are fixed, index and flag vary."""

    def __init__(self, aead: AESGCM, header: bytes, address: bytes) -> None:
        self._aead = aead
        self._header = header
        self._prefix = header[len(MAGIC) + 1 :]
        self._address = address

    def _nonce_aad(self, index: int, final: bool) -> tuple[bytes, bytes]:
        tail = struct.pack(">IB", index, int(final))
        return self._prefix + tail, self._header + self._address + tail

    def seal(self, index: int, final: bool, plain: bytes) -> bytes:
        nonce, aad = self._nonce_aad(index, final)
        return self._aead.encrypt(nonce, plain, aad)

    def open(self, index: int, final: bool, sealed: bytes) -> bytes:
        nonce, aad = self._nonce_aad(index, final)
        try:
            return self._aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise TamperError(f"file chunk {index}") from None


def _rechunk(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bool]]:
    """(64 KiB piece, is_last) from arbitrary pieces; one piece is held back to know the last."""
    buf = bytearray()
    for piece in chunks:
        buf += piece
        while len(buf) > CHUNK_BYTES:
            yield bytes(buf[:CHUNK_BYTES]), False
            del buf[:CHUNK_BYTES]
    yield bytes(buf), True


class SealedFileStore:
    """Attachments sealed on disk under `root`, named by an HMAC of their SHA-256."""

    def __init__(self, root: Path, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("key must be 32 bytes")
        self.root = Path(root)
        self._address_key = hkdf(bytes(key), b"commune-field/v1/files/address")
        self._aead = AESGCM(hkdf(bytes(key), b"commune-field/v1/files/seal"))

    def __repr__(self) -> str:
        return f"SealedFileStore({self.root.name!r}, <key hidden>)"

    # -- naming

    def address_of(self, sha256_hex: str) -> str:
        sha = _check_sha(sha256_hex)
        return hmac.new(self._address_key, bytes.fromhex(sha), hashlib.sha256).hexdigest()

    def _path(self, address: str) -> Path:
        return self.root / address[:2] / address

    # -- writing

    def put(self, data: bytes) -> str:
        """Seal `data`; returns its SHA-256 hex. Storing the same content twice is a no-op."""
        sha = hashlib.sha256(data).hexdigest()
        view = memoryview(data)
        pieces = (view[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES))
        self._write(sha, _rechunk(bytes(p) for p in pieces))
        return sha

    def put_stream(self, chunks: Iterable[bytes]) -> str:
        """Seal a stream of unknown length; returns its SHA-256 hex.

        The address (part of every chunk's associated data) depends on the SHA-256, known only
        at the end, so the stream is first spooled to a temp file sealed under a one-off key,
        then re-sealed under its address. Plaintext never touches the disk.
        """
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        hasher = hashlib.sha256()
        spool_key = AESGCM.generate_key(bit_length=256)
        spool = _ChunkCipher(AESGCM(spool_key), self._new_header(), b"spool")
        with tempfile.TemporaryFile(dir=self.root) as tmp:
            count = 0
            for count, (piece, last) in enumerate(_rechunk(chunks), start=1):
                hasher.update(piece)
                tmp.write(spool.seal(count - 1, last, piece))
            sha = hasher.hexdigest()
            if self.exists(sha):
                return sha
            tmp.seek(0)
            self._write(sha, _rechunk(self._read_spool(tmp, spool, count)))
        return sha

    @staticmethod
    def _read_spool(tmp: BinaryIO, spool: _ChunkCipher, count: int) -> Iterator[bytes]:
        for index in range(count):
            yield spool.open(index, index == count - 1, tmp.read(_SEALED_CHUNK))

    def _new_header(self) -> bytes:
        return MAGIC + bytes([FILE_FORMAT]) + secrets.token_bytes(PREFIX_BYTES)

    def _write(self, sha: str, pieces: Iterable[tuple[bytes, bool]]) -> None:
        address = self.address_of(sha)
        final_path = self._path(address)
        if final_path.exists():
            for _ in pieces:  # drain a generator-backed source so its temp file closes
                pass
            return
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        final_path.parent.mkdir(exist_ok=True, mode=0o700)
        header = self._new_header()
        cipher = _ChunkCipher(self._aead, header, bytes.fromhex(address))
        fd, tmp_name = tempfile.mkstemp(dir=final_path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(header)
                for index, (piece, last) in enumerate(pieces):
                    out.write(cipher.seal(index, last, piece))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, final_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise

    # -- reading

    def exists(self, sha256_hex: str) -> bool:
        return self._path(self.address_of(sha256_hex)).is_file()

    def size(self, sha256_hex: str) -> int:
        """Plaintext size from the sealed file's length (no decryption; not authenticated)."""
        sealed = self._path(self.address_of(sha256_hex)).stat().st_size - HEADER_BYTES
        chunks = max(1, -(-sealed // _SEALED_CHUNK))
        return sealed - chunks * TAG_BYTES

    def iter_chunks(self, sha256_hex: str) -> Iterator[bytes]:
        """Plaintext in 64 KiB chunks, each authenticated before it is yielded.

        Raises FileNotFoundError when absent, TamperError on any tampering (truncation is seen at
        the last chunk, a content mismatch after it: consumers must not act before the end).
        """
        sha = _check_sha(sha256_hex)
        address = self.address_of(sha)
        hasher = hashlib.sha256()
        with open(self._path(address), "rb") as f:
            header = f.read(HEADER_BYTES)
            if len(header) != HEADER_BYTES or header[:5] != MAGIC + bytes([FILE_FORMAT]):
                raise TamperError("file header")
            cipher = _ChunkCipher(self._aead, header, bytes.fromhex(address))
            for index, (sealed, last) in enumerate(_sealed_chunks(f)):
                plain = cipher.open(index, last, sealed)
                hasher.update(plain)
                yield plain
        if not hmac.compare_digest(hasher.hexdigest(), sha):
            raise TamperError("file content does not match its name")

    def get(self, sha256_hex: str) -> bytes:
        return b"".join(self.iter_chunks(sha256_hex))

    def delete(self, sha256_hex: str) -> None:
        """Remove the sealed file; absent is fine. The content is unreadable once the key goes."""
        with contextlib.suppress(FileNotFoundError):
            self._path(self.address_of(sha256_hex)).unlink()


def _sealed_chunks(f: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """(sealed chunk, is_last): a full-size chunk is the last one only when EOF follows it."""
    current = f.read(_SEALED_CHUNK)
    if not current:
        raise TamperError("file has no chunks")
    while True:
        if len(current) < _SEALED_CHUNK:
            yield current, True
            return
        following = f.read(_SEALED_CHUNK)
        yield current, not following
        if not following:
            return
        current = following
