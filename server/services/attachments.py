"""Resumable, content-addressed uploads (the shape of tus) and scoped downloads.

Files are bound to the scopes that hold their bytes legitimately. A scope is a ward and a record
family (dossier | audit); `blob_grant` lists the scopes that hold each file. A scope gets a grant
when one of its users has sent the whole file, verified against its hash, or pushes a record
naming a file they can already read. A download needs a grant and an attachment record of the
same scope naming the file, in the caller's scope; naming another scope's hash in one's own
record gives nothing.

Every user uploads for themselves (`blob_upload`, one row per file and user; the user's devices
share it). Whether anyone else, in any scope, holds or is sending the same bytes never shows:
the answers to declare, offset and chunk are those for an unknown file, and the uploader sends
every byte. The verified bytes are stored once (deduplicated); the answers are not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import and_, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.domain import entities as E
from server.core.db import read_session, write_session
from server.errors import ApiError
from server.models import BlobClaim, BlobGrant, Record, Upload, utcnow
from server.scope import Caller
from server.storage import BlobStore

GRANTS = BlobGrant.__table__
CLAIMS = BlobClaim.__table__


def start(engine: Engine, blobs: BlobStore, caller: Caller, sha256: str, size: int, limit: int):
    """Declare an upload: the caller's own offset; complete only for what they already hold."""
    if size > limit:
        raise ApiError(413, "too_large", f"attachments are limited to {limit} bytes")
    try:
        with write_session(engine) as session:
            upload = session.get(Upload, (sha256, caller.user_id), with_for_update=True)
            if upload is not None and upload.complete and blobs.exists(sha256):
                return upload.size, True
            if _readable(session, caller, sha256) and blobs.exists(sha256):
                # The caller may read these bytes already: nothing to send, and records of
                # theirs naming the file in their other scopes may have them too.
                _settle_claims(session, caller, sha256)
                return size, True
            if upload is None:
                upload = Upload(
                    sha256=sha256, user_id=caller.user_id, size=size, device_id=caller.device_id
                )
            elif upload.complete or upload.size != size:
                # A new declaration starts over; so does a finished upload whose bytes the
                # store no longer holds.
                upload.size, upload.offset, upload.complete = size, 0, False
                blobs.discard(partial_name(sha256, caller.user_id))
            upload.device_id = caller.device_id
            session.add(upload)
            return upload.offset, upload.complete
    except IntegrityError:  # a twin start (another device of the user) won the insert
        got, _size, complete = state(engine, blobs, caller, sha256)
        return got, complete


def state(engine: Engine, blobs: BlobStore, caller: Caller, sha256: str) -> tuple[int, int, bool]:
    with read_session(engine) as session:
        upload = _own_upload(session, caller, sha256)
    return upload.offset, upload.size, upload.complete and blobs.exists(sha256)


def append(
    engine: Engine, blobs: BlobStore, caller: Caller, sha256: str, offset: int, chunk: bytes
):
    """Write one chunk at the server's offset; the last one is checked against the hash."""
    with write_session(engine) as session:
        upload = _own_upload(session, caller, sha256, for_update=True)
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
        partial = partial_name(sha256, caller.user_id)
        blobs.write_at(partial, offset, chunk)
        damaged = end == upload.size and not blobs.finish(sha256, partial)
        # The one rejection that changes state: the server cannot tell which chunk was
        # damaged, so the bytes it holds are useless and the upload starts over from 0 (the
        # store has dropped them); the answer says so. Committed before the 422 is raised.
        upload.offset = 0 if damaged else end
        upload.complete = end == upload.size and not damaged
        upload.device_id = caller.device_id
        session.add(upload)
        if upload.complete:  # the user has sent every byte: their records' scopes hold them
            _settle_claims(session, caller, sha256)
    if damaged:
        raise ApiError(
            422,
            "checksum_mismatch",
            "the bytes do not hash to the name; start again from offset 0",
            offset=0,
        )
    return upload.offset, upload.complete


def partial_name(sha256: str, user_id: int) -> str:
    """The name of one user's partial file for `sha256` (hex, like the store's names): two
    users sending the same file never write into each other's bytes."""
    return hashlib.sha256(f"upload:{sha256}:{user_id}".encode()).hexdigest()


def _own_upload(session: Session, caller: Caller, sha256: str, for_update: bool = False):
    """The caller's user's upload (any of their devices may resume it), else 404: the same
    answer whether or not anyone else holds or sends the file."""
    upload = session.get(Upload, (sha256, caller.user_id), with_for_update=for_update)
    if upload is None:
        raise ApiError(404, "upload_not_found", "start the upload with POST /attachments")
    return upload


def note_record(
    session: Session, caller: Caller, sha256: str | None, ward_code: str, family: str
) -> None:
    """The caller's push left an attachment record of (ward, family) naming `sha256`.

    The scope gets a grant if the caller's user has sent the whole file or can read it already;
    otherwise the caller holds a claim, settled when they send the bytes. Called inside the
    push's transaction, after the caller's scope was checked for the record."""
    if not sha256 or session.get(BlobGrant, (sha256, ward_code, family)) is not None:
        return
    scope = {"sha256": sha256, "ward_code": ward_code, "family": family, "created_at": utcnow()}
    if _uploaded_by(session, caller, sha256) or _readable(session, caller, sha256):
        _insert_once(session, GRANTS, scope)
    else:
        _insert_once(session, CLAIMS, {**scope, "user_id": caller.user_id})


def _uploaded_by(session: Session, caller: Caller, sha256: str) -> bool:
    upload = session.get(Upload, (sha256, caller.user_id))
    return upload is not None and upload.complete


def _settle_claims(session: Session, caller: Caller, sha256: str) -> None:
    """Turn the caller's claims on `sha256` into grants, in the scopes they still have."""
    claims = session.exec(
        select(BlobClaim).where(BlobClaim.sha256 == sha256, BlobClaim.user_id == caller.user_id)
    ).all()
    settled = [c for c in claims if caller.may_access(c.ward_code, c.family)]
    for claim in settled:
        scope = {"ward_code": claim.ward_code, "family": claim.family}
        _insert_once(session, GRANTS, {"sha256": sha256, "created_at": utcnow(), **scope})
        session.execute(
            delete(CLAIMS).where(
                CLAIMS.c.sha256 == sha256,
                CLAIMS.c.user_id == caller.user_id,
                CLAIMS.c.ward_code == claim.ward_code,
                CLAIMS.c.family == claim.family,
            )
        )


def _insert_once(session: Session, table, values: dict) -> None:
    """Insert unless the row is there (a twin transaction may have just made it)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing())


def _readable(session: Session, caller: Caller, sha256: str) -> bool:
    """An attachment record naming the file in a scope that holds it, in the caller's scope."""
    scopes = session.exec(
        select(Record.ward_code, Record.family)
        .join(
            BlobGrant,
            and_(
                BlobGrant.sha256 == Record.blob_sha256,
                BlobGrant.ward_code == Record.ward_code,
                BlobGrant.family == Record.family,
            ),
        )
        .where(Record.entity == E.ATTACHMENT, Record.blob_sha256 == sha256)
        .distinct()
    ).all()
    return any(caller.may_access(ward, family) for ward, family in scopes)


def readable_path(engine: Engine, blobs: BlobStore, caller: Caller, sha256: str) -> Path:
    """The blob, if the caller may read it (see `_readable`); else the same 404 for every
    reason: unknown, not uploaded, out of scope, or named without the bytes reaching the scope."""
    with read_session(engine) as session:
        allowed = _readable(session, caller, sha256)
    if not allowed or not blobs.exists(sha256):
        raise ApiError(404, "attachment_not_found", "no such attachment in your scope")
    return blobs.path(sha256)
