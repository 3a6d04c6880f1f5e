from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from app.storage.errors import TamperError
from app.storage.files import CHUNK_BYTES, HEADER_BYTES, SealedFileStore

SEALED_CHUNK = CHUNK_BYTES + 16
MARKER = "BIÊN BẢN KIỂM TRA hạ tầng – Nguyễn Thị Hương CCCD 001085012345"


@pytest.fixture
def store(tmp_path: Path, key: bytes) -> SealedFileStore:
    return SealedFileStore(tmp_path / "files", key)


def sealed_path(store: SealedFileStore, sha: str) -> Path:
    (path,) = [p for p in store.root.rglob("*") if p.name == store.address_of(sha)]
    return path


def document(size: int) -> bytes:
    """Deterministic content with the readable marker repeated through it."""
    unit = (MARKER + "\n").encode() + MARKER.encode("utf-16-le")
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 77]
)
def test_round_trip_at_chunk_boundaries(store: SealedFileStore, size: int) -> None:
    data = document(size)
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.exists(sha) and store.get(sha) == data
    assert store.size(sha) == size
    assert all(len(c) <= CHUNK_BYTES for c in store.iter_chunks(sha))


def test_put_stream_matches_put_with_odd_pieces(store: SealedFileStore) -> None:
    data = os.urandom(2 * CHUNK_BYTES + 1000)
    pieces = [data[i : i + 10_000] for i in range(0, len(data), 10_000)]
    sha = store.put_stream(iter(pieces))
    assert sha == hashlib.sha256(data).hexdigest() and store.get(sha) == data
    assert store.put(data) == sha  # already there: no second copy
    assert len([p for p in store.root.rglob("*") if p.is_file()]) == 1
    assert store.put_stream([]) == hashlib.sha256(b"").hexdigest()


def test_no_plaintext_and_no_hash_on_disk(store: SealedFileStore) -> None:
    shas = [store.put(document(3 * CHUNK_BYTES)), store.put_stream([document(5000)])]
    needles = [MARKER.encode(), MARKER.encode("utf-16-le"), b"001085012345"]
    for sha in shas:
        needles += [sha.encode(), bytes.fromhex(sha)]
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert len(files) == 2
    for path in files:
        content = path.read_bytes()
        assert not any(n in content for n in needles)
        assert not any(sha[:8] in str(path.relative_to(store.root)) for sha in shas)
    assert not list(store.root.rglob(".tmp-*"))


def test_same_content_under_another_key_gets_another_name(tmp_path: Path, key: bytes) -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    one = SealedFileStore(tmp_path / "a", key).address_of(sha)
    two = SealedFileStore(tmp_path / "b", os.urandom(32)).address_of(sha)
    assert one != two and sha not in (one, two)


def test_flipped_bytes_are_detected(store: SealedFileStore) -> None:
    sha = store.put(document(2 * CHUNK_BYTES + 10))
    path = sealed_path(store, sha)
    original = path.read_bytes()
    spots = [0, 4, HEADER_BYTES - 1, HEADER_BYTES, SEALED_CHUNK, len(original) - 1]
    for offset in spots:
        edited = bytearray(original)
        edited[offset] ^= 0x40
        path.write_bytes(bytes(edited))
        with pytest.raises(TamperError):
            store.get(sha)
    path.write_bytes(original)
    assert store.get(sha) == document(2 * CHUNK_BYTES + 10)


def test_truncation_is_detected(store: SealedFileStore) -> None:
    sha = store.put(document(3 * CHUNK_BYTES + 5))
    path = sealed_path(store, sha)
    original = path.read_bytes()
    for length in (
        HEADER_BYTES + 2 * SEALED_CHUNK,
        HEADER_BYTES + SEALED_CHUNK,
        HEADER_BYTES,
        len(original) - 1,
        3,
    ):
        path.write_bytes(original[:length])
        with pytest.raises(TamperError):
            store.get(sha)


def test_reordered_chunks_are_detected(store: SealedFileStore) -> None:
    sha = store.put(document(3 * CHUNK_BYTES))
    path = sealed_path(store, sha)
    raw = path.read_bytes()
    header, body = raw[:HEADER_BYTES], raw[HEADER_BYTES:]
    chunks = [body[i : i + SEALED_CHUNK] for i in range(0, len(body), SEALED_CHUNK)]
    assert len(chunks) == 3
    path.write_bytes(header + chunks[1] + chunks[0] + chunks[2])
    with pytest.raises(TamperError):
        store.get(sha)
    path.write_bytes(header + chunks[0] + chunks[1] + chunks[1])  # duplicated middle chunk
    with pytest.raises(TamperError):
        store.get(sha)


def test_swapped_files_are_detected(store: SealedFileStore) -> None:
    sha_a, sha_b = store.put(b"photo A" * 100), store.put(b"photo B" * 100)
    path_a, path_b = sealed_path(store, sha_a), sealed_path(store, sha_b)
    a_bytes = path_a.read_bytes()
    path_a.write_bytes(path_b.read_bytes())
    with pytest.raises(TamperError):
        store.get(sha_a)
    path_a.write_bytes(a_bytes)
    assert store.get(sha_a) == b"photo A" * 100


def test_another_key_cannot_read(tmp_path: Path, key: bytes) -> None:
    root = tmp_path / "files"
    sha = SealedFileStore(root, key).put(b"secret photo")
    other = SealedFileStore(root, os.urandom(32))
    assert not other.exists(sha)  # other key, other name
    target = root / other.address_of(sha)[:2] / other.address_of(sha)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(sealed_path(SealedFileStore(root, key), sha).read_bytes())
    with pytest.raises(TamperError):
        other.get(sha)


def test_delete_and_missing(store: SealedFileStore) -> None:
    sha = store.put(b"to delete")
    store.delete(sha)
    assert not store.exists(sha)
    store.delete(sha)  # idempotent
    with pytest.raises(FileNotFoundError):
        store.get(sha)


def test_names_are_validated(store: SealedFileStore) -> None:
    for bad in ("../../etc/passwd", "abc", "g" * 64):
        with pytest.raises(ValueError):
            store.exists(bad)
    sha = store.put(b"case")
    assert store.get(sha.upper()) == b"case"


def test_failed_stream_leaves_no_file(store: SealedFileStore) -> None:
    def broken():
        yield document(CHUNK_BYTES * 2)
        raise OSError("camera stream dropped")

    with pytest.raises(OSError):
        store.put_stream(broken())
    assert [p for p in store.root.rglob("*") if p.is_file()] == []
