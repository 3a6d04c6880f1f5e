"""Attachment blobs, named by their SHA-256: an interface and its local-disk implementation.

Uploads land in `partial/<sha256>` at the offsets the client sends; the last chunk triggers a
hash check, and only a verified file moves to `<aa>/<sha256>`. Another store (an object store)
fits behind the same five methods.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

from app.domain.models import SHA256_HEX


class BlobStore(Protocol):
    def exists(self, sha256: str) -> bool: ...
    def partial_size(self, sha256: str) -> int: ...
    def write_at(self, sha256: str, offset: int, data: bytes) -> int: ...
    def finish(self, sha256: str, partial_name: str | None = None) -> bool: ...
    def discard(self, sha256: str) -> None: ...
    def path(self, sha256: str) -> Path: ...


class LocalDiskStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "partial").mkdir(parents=True, exist_ok=True)

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
        return partial.stat().st_size if partial.exists() else 0

    def write_at(self, sha256: str, offset: int, data: bytes) -> int:
        """Write `data` at `offset` (dropping anything past it); returns the new size."""
        partial = self._partial(sha256)
        mode = "r+b" if partial.exists() else "w+b"
        with open(partial, mode) as fh:
            fh.truncate(offset)
            fh.seek(offset)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            return fh.tell()

    def finish(self, sha256: str, partial_name: str | None = None) -> bool:
        """Move the partial file into place if its content hashes to `sha256`.

        `partial_name` names the partial file when it is not `sha256`: each user's upload of a
        file has its own (the verified bytes still land once, under `sha256`)."""
        partial = self._partial(partial_name or sha256)
        digest = hashlib.sha256()
        with open(partial, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != sha256:
            partial.unlink(missing_ok=True)
            return False
        final = self.path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
        return True

    def discard(self, sha256: str) -> None:
        self._partial(sha256).unlink(missing_ok=True)


def _check(sha256: str) -> None:
    if not SHA256_HEX.fullmatch(sha256):
        raise ValueError("not a lowercase hex SHA-256")
