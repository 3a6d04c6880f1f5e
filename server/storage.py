"""Attachment blobs, named by their SHA-256: an interface and its local-disk implementation.

Uploads land in `partial/<sha256>` at the offsets the client sends; the last chunk triggers a
hash check, and only a verified file moves to `<aa>/<sha256>`. Another store (an object store)
fits behind the same methods.

On disk every file is sealed with the server data key (`server.core.sealing`): a magic header,
then frames, each `flag (1) | key id length (1) | body length (4, big-endian) | key id |
nonce | AES-GCM ciphertext`, of at most 1 MiB of plaintext. A frame's associated data binds the
blob's name and the plaintext offset where the frame starts, so frames cannot be reordered,
dropped or moved to another blob; a verified blob ends with a final frame holding the size,
so a cut-off file fails too. Offsets, sizes and the SHA-256 are all of the plaintext: a
resumed upload appends frames at the plaintext offset the server reported, and a download
streams the plaintext. Folders are 0700, files 0600.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from app.domain.models import SHA256_HEX
from server.core import sealing
from server.core.private_files import open_private, private_dir
from server.core.sealing import SealError

MAGIC = b"CFSB\x01\n"  # commune-field sealed blob, format 1
FRAME_PLAIN = 1 << 20
_HEAD = struct.Struct(">BBI")
_DATA, _END = 0, 1
_OVERHEAD = sealing.NONCE_BYTES + sealing.TAG_BYTES


class BlobStore(Protocol):
    def exists(self, sha256: str) -> bool: ...
    def partial_size(self, sha256: str) -> int: ...
    def write_at(self, sha256: str, offset: int, data: bytes) -> int: ...
    def finish(self, sha256: str, partial_name: str | None = None) -> bool: ...
    def discard(self, sha256: str) -> None: ...
    def path(self, sha256: str) -> Path: ...
    def size(self, sha256: str) -> int: ...
    def read_chunks(self, sha256: str) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class Frame:
    at: int  # byte position of the frame header in the file
    end: int  # byte position just past the frame
    flag: int
    kid: str
    offset: int  # plaintext offset where the frame's bytes start
    plain_len: int


class LocalDiskStore:
    def __init__(self, root: Path) -> None:
        self.root = private_dir(Path(root))
        private_dir(self.root / "partial")

    def path(self, sha256: str) -> Path:
        _check(sha256)
        return self.root / sha256[:2] / sha256

    def _partial(self, sha256: str) -> Path:
        _check(sha256)
        return self.root / "partial" / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def partial_size(self, sha256: str) -> int:
        partial = self._partial(sha256)
        if not partial.exists():
            return 0
        with open(partial, "rb") as fh:
            return _data_end(list(_frames(fh, partial.stat().st_size, complete_only=True)))

    def write_at(self, sha256: str, offset: int, data: bytes) -> int:
        """Write `data` at plaintext `offset` (dropping anything past it); returns the new size."""
        partial = self._partial(sha256)
        fd = open_private(partial, os.O_RDWR | os.O_CREAT)
        with os.fdopen(fd, "r+b") as fh:
            frames = list(_frames(fh, os.fstat(fd).st_size, complete_only=True))
            keep, head = _cut(frames, offset)
            if keep is None:  # a new or unreadable file: start it
                fh.truncate(0)
                fh.write(MAGIC)
                position, written = len(MAGIC), 0
            else:
                position, written = keep
            if head is not None:  # the offset falls inside a frame: keep its first part
                frame = head
                fh.seek(frame.at)
                kept = _read_frame(fh, sha256, frame)[: offset - frame.offset]
                position, written = frame.at, frame.offset
                data = kept + data
                offset = frame.offset
            fh.truncate(position)
            fh.seek(position)
            if written < offset:  # past the end: zeros, as a sparse write would give
                data = bytes(offset - written) + data
            _write_frames(fh, sha256, written, data)
            fh.flush()
            os.fsync(fh.fileno())
            return written + len(data)

    def finish(self, sha256: str, partial_name: str | None = None) -> bool:
        """Move the partial file into place if its plaintext hashes to `sha256`.

        `partial_name` names the partial file when it is not `sha256`: each user's upload of a
        file has its own (the verified bytes still land once, under `sha256`). The frames are
        re-sealed on the way, bound to the final name, and closed by the final frame."""
        name = partial_name or sha256
        partial = self._partial(name)
        final = self.path(sha256)
        private_dir(final.parent)
        tmp = final.with_name(f".{name}.finish")
        digest = hashlib.sha256()
        try:
            with open(partial, "rb") as src:
                out_fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                with os.fdopen(out_fd, "wb") as out:
                    out.write(MAGIC)
                    frames = list(_frames(src, partial.stat().st_size, complete_only=True))
                    for frame in (f for f in frames if f.flag == _DATA):
                        plain = _read_frame(src, name, frame)
                        digest.update(plain)
                        _write_frames(out, sha256, frame.offset, plain)
                    if digest.hexdigest() != sha256:
                        raise SealError("hash mismatch")
                    _write_end(out, sha256, _data_end(frames))
                    out.flush()
                    os.fsync(out.fileno())
        except (SealError, FileNotFoundError):
            partial.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)
            return False
        os.replace(tmp, final)
        partial.unlink(missing_ok=True)
        return True

    def discard(self, sha256: str) -> None:
        self._partial(sha256).unlink(missing_ok=True)

    # --- reading --------------------------------------------------------------------------

    def size(self, sha256: str) -> int:
        """The plaintext size of a verified blob; SealError when it is not whole and sealed."""
        path = self.path(sha256)
        with open(path, "rb") as fh:
            return _sealed_size(fh, sha256, path.stat().st_size)

    def read_chunks(self, sha256: str) -> Iterator[bytes]:
        return read_blob(self.root, sha256)

    # --- upgrade and rotation -------------------------------------------------------------

    def blob_names(self) -> list[str]:
        return sorted(
            p.name for p in self.root.glob("??/*") if p.is_file() and SHA256_HEX.fullmatch(p.name)
        )

    def partial_names(self) -> list[str]:
        folder = self.root / "partial"
        return sorted(p.name for p in folder.iterdir() if SHA256_HEX.fullmatch(p.name))

    def reseal(self, sha256: str, partial: bool = False) -> bool:
        """Rewrite one file with the current key (a plain file of the old layout gets sealed).
        Returns whether anything changed. A final blob whose content matches neither form is
        left alone and raises SealError."""
        path = self._partial(sha256) if partial else self.path(sha256)
        if not path.exists():
            return False
        current = sealing.process_ring().current
        with open(path, "rb") as fh:
            total = path.stat().st_size
            if fh.read(len(MAGIC)) == MAGIC:
                if not partial:
                    _sealed_size(fh, sha256, total)  # a damaged blob is not "repaired"
                frames = list(_frames(fh, total, complete_only=partial))
                if all(f.kid == current for f in frames):
                    return False
                plain = b"".join(_plain_chunks(fh, sha256, frames))
            else:
                fh.seek(0)
                plain = fh.read()
                if not partial and hashlib.sha256(plain).hexdigest() != sha256:
                    raise SealError(f"attachment {sha256}: neither sealed nor its plain content")
        _rewrite(path, sha256, plain, whole=not partial)
        return True


def _rewrite(path: Path, sha256: str, plain: bytes, whole: bool) -> None:
    tmp = path.with_name(f".{path.name}.reseal")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "wb") as fh:
        fh.write(MAGIC)
        _write_frames(fh, sha256, 0, plain)
        if whole:
            _write_end(fh, sha256, len(plain))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_blob(root: Path, sha256: str) -> Iterator[bytes]:
    """The plaintext of a verified blob under `root`, frame by frame. Its structure (every frame
    there, the final frame last) is checked before the first byte; each frame opens as it comes.
    Reads only: no folder is made and no mode changed (a report reads a photo this way)."""
    _check(sha256)
    path = Path(root) / sha256[:2] / sha256
    fh = open(path, "rb")  # noqa: SIM115 (closed by the generator)
    try:
        _sealed_size(fh, sha256, path.stat().st_size)
        frames = list(_frames(fh, path.stat().st_size))
    except BaseException:
        fh.close()
        raise
    return _closing(fh, _plain_chunks(fh, sha256, frames))


def _closing(fh: BinaryIO, chunks: Iterator[bytes]) -> Iterator[bytes]:
    with fh:
        yield from chunks


def _write_frames(fh: BinaryIO, sha256: str, offset: int, data: bytes) -> None:
    for start in range(0, len(data), FRAME_PLAIN):
        piece = data[start : start + FRAME_PLAIN]
        _write_frame(fh, _DATA, *sealing.seal_frame(sha256, offset + start, piece))


def _write_end(fh: BinaryIO, sha256: str, size: int) -> None:
    kid, body = sealing.seal_frame(sha256, size, struct.pack(">Q", size), final=True)
    _write_frame(fh, _END, kid, body)


def _write_frame(fh: BinaryIO, flag: int, kid: str, body: bytes) -> None:
    kid_bytes = kid.encode("ascii")
    fh.write(_HEAD.pack(flag, len(kid_bytes), len(body)) + kid_bytes + body)


def _frames(fh: BinaryIO, total: int, complete_only: bool = False) -> Iterator[Frame]:
    """The frames' headers, seeking over bodies. `complete_only`: a torn last frame (a crash
    mid-write) ends the walk instead of raising; a file without the header yields nothing."""
    fh.seek(0)
    if fh.read(len(MAGIC)) != MAGIC:
        if complete_only:
            return
        raise SealError("not a sealed attachment")
    at, offset = len(MAGIC), 0
    while at < total:
        head = fh.read(_HEAD.size)
        flag, kid_len, body_len = _HEAD.unpack(head) if len(head) == _HEAD.size else (9, 0, 0)
        end = at + _HEAD.size + kid_len + body_len
        if flag not in (_DATA, _END) or body_len < _OVERHEAD or end > total:
            if complete_only:
                return
            raise SealError("a damaged frame in a sealed attachment")
        kid = fh.read(kid_len).decode("ascii", "replace")
        plain_len = body_len - _OVERHEAD
        yield Frame(at, end, flag, kid, offset, plain_len)
        offset += plain_len if flag == _DATA else 0
        at = end
        fh.seek(at)


def _data_end(frames: list[Frame]) -> int:
    data = [f for f in frames if f.flag == _DATA]
    return data[-1].offset + data[-1].plain_len if data else 0


def _cut(frames: list[Frame], offset: int) -> tuple[tuple[int, int] | None, Frame | None]:
    """Where to write plaintext `offset`: ((file position, plaintext there), frame to split)."""
    data = [f for f in frames if f.flag == _DATA]
    if not frames and not data:
        return None, None
    position, written = len(MAGIC), 0
    for frame in data:
        if frame.offset + frame.plain_len <= offset:
            position, written = frame.end, frame.offset + frame.plain_len
        elif frame.offset < offset:
            return (position, written), frame
        else:
            break
    return (position, written), None


def _read_frame(fh: BinaryIO, sha256: str, frame: Frame) -> bytes:
    fh.seek(frame.at + _HEAD.size + len(frame.kid.encode("ascii")))
    body = fh.read(frame.plain_len + _OVERHEAD)
    return sealing.open_frame(sha256, frame.offset, frame.kid, body, frame.flag == _END)


def _plain_chunks(fh: BinaryIO, sha256: str, frames: list[Frame]) -> Iterator[bytes]:
    for frame in frames:
        if frame.flag == _DATA:
            yield _read_frame(fh, sha256, frame)


def _sealed_size(fh: BinaryIO, sha256: str, total: int) -> int:
    frames = list(_frames(fh, total))
    if not frames or frames[-1].flag != _END or any(f.flag == _END for f in frames[:-1]):
        raise SealError(f"attachment {sha256}: not a whole sealed blob")
    end = frames[-1]
    fh.seek(end.at + _HEAD.size + len(end.kid.encode("ascii")))
    body = fh.read(end.plain_len + _OVERHEAD)
    size_bytes = sealing.open_frame(sha256, _data_end(frames), end.kid, body, final=True)
    (size,) = struct.unpack(">Q", size_bytes)
    if size != _data_end(frames):
        raise SealError(f"attachment {sha256}: its frames do not add up to its size")
    return size


def _check(sha256: str) -> None:
    if not SHA256_HEX.fullmatch(sha256):
        raise ValueError("not a lowercase hex SHA-256")
