"""Resumable, content-addressed uploads (the shape of tus) and scoped downloads."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.domain import entities as E
from server.core.db import read_session, write_session
from server.errors import ApiError
from server.models import Device, Record, Upload
from server.scope import Caller
from server.storage import BlobStore


def start(engine: Engine, blobs: BlobStore, caller: Caller, sha256: str, size: int, limit: int):
    if size > limit:
        raise ApiError(413, "too_large", f"attachments are limited to {limit} bytes")
    if blobs.exists(sha256):
        return size, True
    try:
        with write_session(engine) as session:
            upload = session.get(Upload, sha256, with_for_update=True)
            if upload is None:
                upload = Upload(sha256=sha256, size=size, device_id=caller.device_id)
            elif not upload.complete and not _owned_by(session, upload, caller):
                if not _uploader_revoked(session, upload):
                    raise ApiError(
                        409, "upload_in_progress", "another user's device is uploading this file"
                    )
                # A revoked (lost) tablet never finishes: whoever holds the file starts over.
                upload.device_id, upload.size, upload.offset = caller.device_id, size, 0
                blobs.discard(sha256)
            elif upload.size != size and not upload.complete:
                upload.size, upload.offset = size, 0  # a new declaration starts over
                blobs.discard(sha256)
            session.add(upload)
            return upload.offset, upload.complete
    except IntegrityError:  # a twin start won the insert: its row is as good as ours
        got, _size, complete = state(engine, blobs, caller, sha256)
        return got, complete


def state(engine: Engine, blobs: BlobStore, caller: Caller, sha256: str) -> tuple[int, int, bool]:
    with read_session(engine) as session:
        upload = _owned_upload(session, caller, sha256)
    return upload.offset, upload.size, upload.complete and blobs.exists(sha256)


def append(
    engine: Engine, blobs: BlobStore, caller: Caller, sha256: str, offset: int, chunk: bytes
):
    """Write one chunk at the server's offset; the last one is checked against the hash."""
    with write_session(engine) as session:
        upload = _owned_upload(session, caller, sha256, for_update=True)
        if upload.complete:
            return upload.size, True
        if offset != upload.offset:
            raise ApiError(
                409,
                "offset_mismatch",
                f"the server has {upload.offset} bytes",
                headers={"Upload-Offset": str(upload.offset)},
                offset=upload.offset,
            )
        end = offset + len(chunk)
        if end > upload.size:
            raise ApiError(
                422, "too_long", "the chunk runs past the declared size", offset=upload.offset
            )
        blobs.write_at(sha256, offset, chunk)
        damaged = end == upload.size and not blobs.finish(sha256)
        # The one rejection that changes state: the server cannot tell which chunk was
        # damaged, so the bytes it holds are useless and the upload starts over from 0 (the
        # store has dropped them); the answer says so. Committed before the 422 is raised.
        upload.offset = 0 if damaged else end
        upload.complete = end == upload.size and not damaged
        session.add(upload)
    if damaged:
        raise ApiError(
            422,
            "checksum_mismatch",
            "the bytes do not hash to the name; start again from offset 0",
            offset=0,
        )
    return upload.offset, upload.complete


def _owned_upload(session: Session, caller: Caller, sha256: str, for_update: bool = False):
    """The upload, if the caller's device or another device of the same user started it.

    Anyone else gets the same 404 as for an unknown upload: an upload in progress is nobody
    else's business, and appending to it could only spoil it.
    """
    upload = session.get(Upload, sha256, with_for_update=for_update)
    if upload is None or not _owned_by(session, upload, caller):
        raise ApiError(404, "upload_not_found", "start the upload with POST /attachments")
    return upload


def _owned_by(session: Session, upload: Upload, caller: Caller) -> bool:
    if upload.device_id == caller.device_id:
        return True
    uploader = session.get(Device, upload.device_id)
    return uploader is not None and uploader.user_id == caller.user_id


def _uploader_revoked(session: Session, upload: Upload) -> bool:
    uploader = session.get(Device, upload.device_id)
    return uploader is None or uploader.revoked


def readable_path(engine: Engine, blobs: BlobStore, caller: Caller, sha256: str) -> Path:
    """The blob, if the caller's scope holds an attachment record naming it; else 404."""
    with read_session(engine) as session:
        records = session.exec(
            select(Record.ward_code, Record.family).where(
                Record.entity == E.ATTACHMENT, Record.blob_sha256 == sha256
            )
        ).all()
    allowed = any(caller.may_access(ward, family) for ward, family in records)
    if not allowed or not blobs.exists(sha256):
        raise ApiError(404, "attachment_not_found", "no such attachment in your scope")
    return blobs.path(sha256)
