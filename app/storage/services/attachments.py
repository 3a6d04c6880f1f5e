"""Photos and scans: sealed content-addressed files plus an `attachment` record that syncs."""

from __future__ import annotations

import datetime as dt

from app.domain import entities as E
from app.domain.models import AttachmentMeta
from app.storage.db import Database
from app.storage.files import SealedFileStore
from app.storage.services.dossiers import iso_utc
from app.storage.services.records import Record, RecordStore, readable_only
from app.storage.tables import new_id


def to_meta(record: Record) -> AttachmentMeta:
    values = {k: v for k, v in record.values().items() if v is not None}
    return AttachmentMeta(id=record.entity_id, **values)


class AttachmentService:
    def __init__(self, db: Database, records: RecordStore, files: SealedFileStore) -> None:
        self._db = db
        self._records = records
        self.files = files

    def add(
        self,
        owner_entity: str,
        owner_id: str,
        ward_code: str,
        data: bytes,
        *,
        mime: str = "application/octet-stream",
        filename: str = "",
        taken_at: dt.datetime | None = None,
        position: dict[str, float] | None = None,
    ) -> AttachmentMeta:
        """Seal the file first (an orphan sealed file is harmless), then record and queue it."""
        sha = self.files.put(data)
        fields = {
            "owner_entity": owner_entity,
            "owner_id": owner_id,
            "ward_code": ward_code,
            "sha256": sha,
            "size": len(data),
            "mime": mime,
            "filename": filename,
            "taken_at": iso_utc(taken_at) if taken_at else None,
            "position": position,
        }
        with self._db.write() as conn:
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO blobs (sha256, size, uploaded) VALUES (?, ?, 0)",
                (sha, len(data)),
            )
            record = self._records.write_local(
                conn, E.ATTACHMENT, new_id(), ward_code, fields
            )
        return to_meta(record)

    def read(self, sha256: str) -> bytes:
        """The plaintext; FileNotFoundError when not on this device, TamperError if altered."""
        return self.files.get(sha256)

    def has(self, sha256: str) -> bool:
        return self.files.exists(sha256)

    def list(self, owner_id: str) -> list[AttachmentMeta]:
        with self._db.read() as conn:
            records = self._records.select_each(
                conn, "WHERE parent_id = ? AND entity = ? ORDER BY id", (owner_id, E.ATTACHMENT)
            )
        return readable_only(records, to_meta)
