"""The server's data at rest: private folders, the data key, and sealing what is stored plain.

- `prepare(settings)`: the data folder 0700, the key ring loaded (and made on first start) and
  installed for this process.
- `seal_all(engine, blobs, reseal)`: every record whose sealed fields are plain (a database
  from before sealing) is sealed; with `reseal`, every envelope under an older key moves to the
  current key. Attachment files likewise. Record versions and the change log do not move: the
  content is the same. After sealing plain values, SQLite is vacuumed (and PostgreSQL's `record`
  table rewritten) so no free page keeps the plain text.
- `seal_on_start`: `seal_all` once per database, remembered by an `audit_log` row
  (`seal_at_rest`), which is also the trail of every reseal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine

from server.core import sealing
from server.core.config import Settings
from server.core.db import is_sqlite, read_session, write_session
from server.core.private_files import private_dir, tighten_tree
from server.models import AuditLog, Record, Upload, utcnow
from server.services import attachments
from server.storage import LocalDiskStore

log = logging.getLogger("commune.server")
MARKER = "seal_at_rest"
PAGE = 500


@dataclass
class SealReport:
    records: int = 0
    plain_records: int = 0  # of `records`, those met plain (an upgrade): vacuumed afterwards
    blobs: int = 0
    partials: int = 0
    key_id: str | None = None

    def as_detail(self) -> dict:
        return {
            "records": self.records,
            "plain_records": self.plain_records,
            "blobs": self.blobs,
            "partials": self.partials,
            "key_id": self.key_id,
        }


def prepare(settings: Settings) -> sealing.Keyring:
    private_dir(settings.data_dir)
    if settings.is_sqlite or settings.attachment_dir is None:
        private_dir(settings.data_dir / "server")
    ring = sealing.load_keyring(settings.key_file)
    return sealing.install(ring)


def seal_on_start(engine: Engine, blobs: LocalDiskStore) -> SealReport | None:
    """Seal a database met plain, once (later starts find the marker and do nothing)."""
    if _marked(engine):
        return None
    tighten_tree(blobs.root)
    report = seal_all(engine, blobs, reseal=False)
    _mark(engine, report)
    return report


def seal_all(engine: Engine, blobs: LocalDiskStore, reseal: bool) -> SealReport:
    ring = sealing.process_ring()
    report = SealReport(key_id=ring.current)
    stale_key = ring.current if reseal else None
    last_id = 0
    while True:
        with read_session(engine) as session:
            page = session.execute(
                select(Record.id, Record.entity, Record.fields)
                .where(Record.id > last_id)
                .order_by(Record.id)
                .limit(PAGE)
            ).all()
        if not page:
            break
        last_id = page[-1].id
        for row in page:
            plain = sealing.is_plain_or_stale(row.entity, row.fields, None)
            if plain or sealing.is_plain_or_stale(row.entity, row.fields, stale_key):
                done = _seal_record(engine, row.id, stale_key)
                report.records += done
                report.plain_records += done if plain else 0
    for name in blobs.blob_names():
        report.blobs += blobs.reseal(name)
    report.partials = _reseal_partials(engine, blobs)
    if report.plain_records:
        _compact(engine)
    return report


def _seal_record(engine: Engine, record_id: int, stale_key: str | None) -> int:
    """Seal one row under its lock, re-checked there (a push may have sealed it meanwhile)."""
    with write_session(engine) as session:
        row = session.execute(
            select(Record.entity, Record.entity_id, Record.fields)
            .where(Record.id == record_id)
            .with_for_update()
        ).first()
        if row is None or not sealing.is_plain_or_stale(row.entity, row.fields, stale_key):
            return 0
        plain = sealing.open_legacy(row.entity, row.entity_id, row.fields)
        stored = sealing.seal_fields(row.entity, row.entity_id, plain)
        session.execute(update(Record).where(Record.id == record_id).values(fields=stored))
    return 1


def _reseal_partials(engine: Engine, blobs: LocalDiskStore) -> int:
    """Each upload in progress is resealed under its row's lock, so no chunk lands meanwhile;
    a partial file no upload names (left by an older server) is sealed all the same."""
    with read_session(engine) as session:
        uploads = session.execute(
            select(Upload.sha256, Upload.user_id).where(Upload.complete.is_(False))
        ).all()
    done, named = 0, set()
    for sha256, user_id in uploads:
        name = attachments.partial_name(sha256, user_id)
        named.add(name)
        with write_session(engine) as session:
            session.get(Upload, (sha256, user_id), with_for_update=True)
            done += blobs.reseal(name, partial=True)
    for name in blobs.partial_names():
        if name not in named:
            done += blobs.reseal(name, partial=True)
    return done


def _compact(engine: Engine) -> None:
    """Rewrite the storage so pages that held plain values are gone from the file."""
    try:
        if is_sqlite(engine):
            raw = engine.raw_connection()  # autocommit (see server.core.db): VACUUM needs it
            try:
                checkpoint = "PRAGMA wal_checkpoint(TRUNCATE)"
                for statement in (checkpoint, "VACUUM", checkpoint):
                    raw.cursor().execute(statement)
            finally:
                raw.close()
        else:
            with engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(text("VACUUM FULL record"))
    except Exception as exc:  # the values are sealed; only old pages linger until a vacuum
        log.warning("could not compact the database after sealing: %s", exc)


def _marked(engine: Engine) -> bool:
    with read_session(engine) as session:
        found = session.execute(
            select(AuditLog.id).where(AuditLog.action == MARKER).order_by(AuditLog.id).limit(1)
        ).first()
    return found is not None


def _mark(engine: Engine, report: SealReport) -> None:
    with write_session(engine) as session:
        session.add(AuditLog(at=utcnow(), action=MARKER, detail=report.as_detail()))


def record_reseal(engine: Engine, report: SealReport) -> None:
    _mark(engine, report)
