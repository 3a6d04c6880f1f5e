"""Resumable, content-addressed attachment transfer (the shape of tus).

An upload asks the server where it stands (`POST /attachments` answers the offset it holds) and
sends chunks from there. After a dropped link it asks again (`GET .../offset`) and carries on from
the server's offset, so a 2 MB photo on a 2G link cut at 1.5 MB sends the last 0.5 MB, not 2 MB.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from app.sync.transport import (
    ChecksumMismatch,
    Offline,
    OffsetMismatch,
    ServerError,
    SyncError,
    Transport,
    UploadState,
)

CHUNK_BYTES = 256 * 1024
MAX_RESUMES = 8  # dropped links survived per file per run
MAX_RESTARTS = 1  # whole-file restarts after a checksum mismatch


@dataclass
class UploadOutcome:
    sha256: str
    size: int
    bytes_sent: int = 0
    resumed_from: list[int] = field(default_factory=list)  # offsets the server reported


class IntegrityError(SyncError):
    """Downloaded bytes do not hash to the name they were asked by."""


def upload(
    transport: Transport, sha256: str, data: bytes, chunk_bytes: int = CHUNK_BYTES
) -> UploadOutcome:
    """Send `data` under its SHA-256 name, from wherever the server already is."""
    outcome = UploadOutcome(sha256, len(data))
    state = transport.upload_start(sha256, len(data))
    outcome.resumed_from.append(state.offset)
    drops = restarts = 0
    while not state.complete:
        chunk = data[state.offset : state.offset + chunk_bytes]
        try:
            outcome.bytes_sent += len(chunk)
            state = transport.upload_chunk(sha256, state.offset, chunk)
        except OffsetMismatch as exc:
            state = _state_at(transport, sha256, exc.server_offset)
        except ChecksumMismatch:
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise
            state = transport.upload_start(sha256, len(data))
        except (Offline, ServerError):
            drops += 1
            if drops > MAX_RESUMES:
                raise
            transport.backoff(drops - 1)
            state = transport.upload_offset(sha256)  # itself retried; raises Offline if gone
            outcome.resumed_from.append(state.offset)
    return outcome


def download(transport: Transport, sha256: str) -> bytes:
    data = transport.download(sha256)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IntegrityError(f"attachment {sha256[:12]}… arrived damaged")
    return data


def _state_at(transport: Transport, sha256: str, offset: int) -> UploadState:
    if offset < 0:
        return transport.upload_offset(sha256)
    return UploadState(offset, False)
