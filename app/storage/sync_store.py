"""What `app/sync` calls: the outbox to push, push results, pulled pages, conflicts, files.

The sync client never sees SQL or keys; it moves `Mutation`/`Change` models and bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from app.domain import entities as E
from app.domain.merge import MergeOutcome, Stamped, merge_fields
from app.domain.models import Conflict
from app.domain.mutations import Change, Mutation, PushResult
from app.domain.readable import unreadable_reason
from app.storage.backup import PULL_OWN_RECORDS
from app.storage.db import Database
from app.storage.errors import TamperError
from app.storage.files import SealedFileStore
from app.storage.outbox import RefusedRow
from app.storage.services.records import Record, RecordStore, readable_only
from app.storage.settings import SettingsStore
from app.storage.tables import CONFLICT, PENDING, REJECTED, SYNCED, UNREADABLE, in_parts

log = logging.getLogger(__name__)
OPEN = "open"
RESOLVED = "resolved"


LOCK_FILE = "sync.lock"
LOCK_POLL_S = 0.1
# Where an outbox row the client's own schema refused is kept, unchanged, for a person to see.
SET_ASIDE_PREFIX = "outbox_set_aside:"
# A push sent and not answered yet, by the id the engine gave it: what it carried (app.sync).
UNANSWERED_PREFIX = "push_unanswered:"


@dataclass(frozen=True)
class RecordState:
    state: str  # pending | synced | rejected | conflict
    reason: str | None = None


@dataclass(frozen=True)
class SyncSummary:
    pending: int  # outbox rows (the engine's unit)
    conflicts: int
    rejected: int
    last_synced_at: dt.datetime | None
    unreadable: int = 0  # pulled records kept aside as unreadable (any entity)
    waiting: int = 0  # what the user made that waits: dossiers, audits, decisions


# What a person made, by entity; the records that belong to one (a dossier's history entries,
# attachments, conflict resolutions) count as their owner. A decision (an audit comment) also
# moves its audit: that audit is counted as the decision, not a second time.
USER_ENTITIES = (E.DOSSIER, E.AUDIT, E.AUDIT_COMMENT)
WAITING_SHOWN = 200  # records listed at most


@dataclass(frozen=True)
class WaitingRecord:
    """One thing the user made that is not on the server yet, or that the server refused."""

    entity: str  # dossier | audit | audit_comment
    entity_id: str
    ward_code: str
    code: str  # a dossier's code; "" for others
    parent_id: str  # a decision's audit
    state: str  # pending | rejected | conflict
    reason: str | None  # the last error the server (or this client) gave
    rows: int  # outbox rows that carry it


class SyncStore:
    def __init__(
        self,
        db: Database,
        records: RecordStore,
        files: SealedFileStore,
        crypto_erase: Callable[[], None],
    ) -> None:
        self._db = db
        self._records = records
        self._files = files
        self._erase = crypto_erase
        self._kept = SettingsStore(db, records.sealer)
        self.escrow: Any = None  # the store's EscrowKeeper, set by LocalStore
        self.reference: Any = None  # the store's ReferenceStore, set by LocalStore
        self._set_aside: list[PushResult] = []

    @property
    def device_id(self) -> str:
        return self._records.device_id

    @property
    def incarnation(self) -> str:
        """This copy of the store's, sent with a push so the server derives the same ids."""
        return self._records.incarnation

    @contextlib.contextmanager
    def sync_lock(self, wait_s: float = 0.0) -> Iterator[bool]:
        """One syncer per store, across processes: an exclusive lock on a file next to the
        database, held for a whole run. Yields True when held; False when another syncer still
        held it after `wait_s` seconds (then do nothing). The system drops the lock when its
        holder dies, even by SIGKILL."""
        fd = os.open(self._db.path.with_name(LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + wait_s
            held = _try_lock(fd)
            while not held and time.monotonic() < deadline:
                time.sleep(LOCK_POLL_S)
                held = _try_lock(fd)
            yield held
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    # ------------------------------------------------------------------ push

    def pending_mutations(
        self,
        max_bytes: int = 512 * 1024,
        skip: Collection[str] = (),
        max_rows: int | None = None,
    ) -> list[Mutation]:
        """The next batch to push (at most `max_rows` rows when given), without the rows in
        `skip` (a push in flight). A row that makes no valid mutation (an older version's or a
        damaged write) is set aside first, so that it never blocks the queue: see
        `take_set_aside`."""
        refused: list[RefusedRow] = []
        with self._db.read() as conn:
            batch = self._records.outbox.pending(
                conn, max_bytes, self._records.load_values, refused, skip,
                self._records.load_values_many, max_rows,
            )
        if refused:
            self._set_aside_rows(refused)
        return batch

    def take_set_aside(self) -> list[PushResult]:
        """The rows set aside since the last call, as local rejections with their reasons."""
        taken, self._set_aside = self._set_aside, []
        return taken

    def set_aside_rows(self) -> dict[str, dict]:
        """Every outbox row ever set aside, by mutation id: the row as it was, and why."""
        with self._db.read() as conn:
            keys = conn.exec_driver_sql(
                "SELECT key FROM settings WHERE substr(key, 1, ?) = ? ORDER BY key",
                (len(SET_ASIDE_PREFIX), SET_ASIDE_PREFIX),
            ).all()
            return {k[len(SET_ASIDE_PREFIX) :]: self._kept.get_in(conn, k) for (k,) in keys}

    def _set_aside_rows(self, refused: list[RefusedRow]) -> None:
        """Like a server rejection (the record shows `rejected` and the reason), except that
        the row is kept: moved, unchanged, out of the queue into a sealed setting."""
        with self._db.write() as conn:
            for row in refused:
                kept = self._records.outbox.take_out(conn, row.mutation_id)
                if kept is None:
                    continue  # gone since the read (another run already set it aside)
                kept["reason"] = row.reason
                self._kept.set_in(conn, SET_ASIDE_PREFIX + row.mutation_id, kept)
                self._mark_many(conn, {row.entity_id: (REJECTED, row.reason)})
                self._set_aside.append(
                    PushResult(mutation_id=row.mutation_id, status="rejected", reason=row.reason)
                )

    def remember_batch(self, batch_id: str, sent: Any) -> None:
        """A push about to go: what it carries (JSON), kept until `forget_batches`."""
        self._kept.set(UNANSWERED_PREFIX + batch_id, sent)

    def forget_batches(self, batch_ids: Collection[str]) -> None:
        if batch_ids:
            with self._db.write() as conn:
                for batch_id in batch_ids:
                    conn.exec_driver_sql(
                        "DELETE FROM settings WHERE key = ?", (UNANSWERED_PREFIX + batch_id,)
                    )

    def unanswered_batches(self) -> dict[str, Any]:
        """{batch id: what it carried} of the pushes remembered and not forgotten."""
        with self._db.read() as conn:
            keys = conn.exec_driver_sql(
                "SELECT key FROM settings WHERE substr(key, 1, ?) = ? ORDER BY key",
                (len(UNANSWERED_PREFIX), UNANSWERED_PREFIX),
            ).all()
            return {k[len(UNANSWERED_PREFIX) :]: self._kept.get_in(conn, k) for (k,) in keys}

    def record_push_results(self, results: list[PushResult]) -> None:
        outbox = self._records.outbox
        with self._db.write() as conn:
            owners = outbox.entity_of(conn, [r.mutation_id for r in results])
            outbox.drop(conn, [r.mutation_id for r in results])
            marks: dict[str, tuple[str, str | None]] = {}  # by record: its last result's
            for result in results:
                owner = owners.get(result.mutation_id)
                if owner is None:
                    continue  # already handled (a retried push answered twice)
                if result.status == "rejected":
                    marks[owner[1]] = (REJECTED, result.reason or "rejected")
                else:
                    marks[owner[1]] = (SYNCED, None)  # settled below, in a few queries
            settled = [i for i, (state, _) in marks.items() if state == SYNCED]
            for part in in_parts(settled):
                for entity_id, state in self._settled_states(conn, part).items():
                    marks[entity_id] = (state, None)
            # The version stays the one last pulled: the server's answer may count other
            # devices' edits this device has not seen, and a later edit's base version must
            # not claim them (the server would miss the race).
            self._mark_many(conn, marks)

    @staticmethod
    def _mark_many(conn: Connection, marks: dict[str, tuple[str, str | None]]) -> None:
        """Each record's sync state and reason, in one statement. A record kept aside as
        unreadable stays so until a pull brings a readable state."""
        if marks:
            conn.exec_driver_sql(
                "UPDATE records SET sync_state = ?, sync_reason = ? WHERE entity_id = ? "
                "AND sync_state != ?",
                [(state, reason, i, UNREADABLE) for i, (state, reason) in marks.items()],
            )

    def _settle_pulled(self, conn: Connection, merged: Record, state: str | None = None) -> None:
        """The sync state of a record just merged from a pull (`state`: already worked out for
        the page). One the device cannot read is kept aside: stored and sealed like any other,
        marked unreadable with the reason, and shown as one "unreadable record" line; a later
        readable version replaces it."""
        reason = unreadable_reason(merged.entity, merged.values())
        if reason is not None:
            merged.sync_state, merged.sync_reason = UNREADABLE, reason
            log.warning("pulled %s %s kept aside as unreadable: %s",
                        merged.entity, merged.entity_id, reason)
        else:
            merged.sync_state = state or self._settled_state(conn, merged.entity_id)
            merged.sync_reason = None

    def _settled_state(self, conn: Connection, entity_id: str) -> str:
        """After the server answered: pending while later edits wait, conflict while one is open."""
        if self._records.outbox.has_pending(conn, entity_id):
            return PENDING
        row = conn.exec_driver_sql(
            "SELECT 1 FROM records WHERE entity = ? AND parent_id = ? AND state = ? LIMIT 1",
            (E.CONFLICT, entity_id, OPEN),
        ).first()
        return CONFLICT if row else SYNCED

    # ------------------------------------------------------------------ pull

    def pull_cursor(self) -> int:
        with self._db.read() as conn:
            return conn.exec_driver_sql("SELECT cursor FROM sync_state WHERE id = 1").scalar_one()

    def pulls_own_records(self) -> bool:
        """Whether the next pull must ask for this device's own pushes too: a store put back
        from a backup until it has pulled to the end once (`backup.PULL_OWN_RECORDS`)."""
        with self._db.read() as conn:
            return conn.exec_driver_sql(
                "SELECT 1 FROM meta WHERE key = ?", (PULL_OWN_RECORDS,)
            ).first() is not None

    def pulled_to_the_end(self) -> None:
        """A pull reached the server's last change: from now on this store holds whatever it
        pushes, and the server may leave it out of its pulls again."""
        with self._db.write() as conn:
            conn.exec_driver_sql("DELETE FROM meta WHERE key = ?", (PULL_OWN_RECORDS,))

    def apply_pull_page(self, changes: list[Change], next_cursor: int) -> None:
        """Merge a page of server changes field by field (greatest clock wins) and save the
        cursor, all in one transaction: a crash re-pulls the page, never skips it. The page's
        records are read, settled and written with a few set-based statements (issue 13)."""
        records = self._records
        with self._db.write() as conn:
            touched_targets: set[str] = set()
            latest = ""
            ids = [c.entity_id for c in changes]
            batched = len(set(ids)) == len(ids)  # a record twice in a page: one at a time
            locals_ = records.load_many(conn, ids) if batched and ids else {}
            settled = self._settled_states(conn, ids) if batched and ids else {}
            saved: list[tuple[Record, Record | None]] = []
            for change in changes:
                if batched:
                    local = locals_[change.entity_id]
                    if isinstance(local, Exception):
                        raise local
                else:
                    local = records.load(conn, change.entity_id)
                latest = max([latest, *(f.hlc for f in change.fields.values())])
                merged, changed = _merged(change, local)
                self._settle_pulled(conn, merged, settled.get(change.entity_id))
                if local is not None and changed:
                    records.outbox.freeze_before_overwrite(conn, local, changed)
                if batched:
                    saved.append((merged, local))
                else:
                    records.save(conn, merged, local)
                if change.entity == E.CONFLICT:
                    touched_targets.add(str(merged.value("entity_id")))
            records.save_many(conn, saved)
            for target in touched_targets:
                conn.exec_driver_sql(
                    "UPDATE records SET sync_state = ? WHERE entity_id = ? "
                    "AND sync_state NOT IN (?, ?)",
                    (self._settled_state(conn, target), target, REJECTED, UNREADABLE),
                )
            if latest:
                records.clock.observe(latest)
                conn.exec_driver_sql(
                    "UPDATE meta SET value = ? WHERE key = 'clock'", (records.clock.now(),)
                )
            # Never backwards: a late or replayed page must not make the next pull start over.
            conn.exec_driver_sql(
                "UPDATE sync_state SET cursor = max(cursor, ?) WHERE id = 1", (next_cursor,)
            )

    def _settled_states(self, conn: Connection, entity_ids: list[str]) -> dict[str, str]:
        """`_settled_state` of many records in two queries (conflicts pulled in the same page
        are settled again afterwards, as their targets are)."""
        marks = ",".join("?" * len(entity_ids))
        pending = {
            r[0]
            for r in conn.exec_driver_sql(
                f"SELECT DISTINCT entity_id FROM outbox WHERE entity_id IN ({marks})",
                tuple(entity_ids),
            )
        }
        conflicted = {
            r[0]
            for r in conn.exec_driver_sql(
                f"SELECT parent_id FROM records WHERE entity = ? AND state = ? "
                f"AND parent_id IN ({marks})",
                (E.CONFLICT, OPEN, *entity_ids),
            )
        }
        return {
            i: PENDING if i in pending else CONFLICT if i in conflicted else SYNCED
            for i in entity_ids
        }

    # ------------------------------------------------------------------ states

    def record_states(self) -> dict[str, str]:
        with self._db.read() as conn:
            rows = conn.exec_driver_sql("SELECT entity_id, sync_state FROM records").all()
        return {entity_id: state for entity_id, state in rows}

    def state_of(self, entity: str, entity_id: str) -> RecordState:
        with self._db.read() as conn:
            row = conn.exec_driver_sql(
                "SELECT sync_state, sync_reason FROM records WHERE entity = ? AND entity_id = ?",
                (entity, entity_id),
            ).first()
        if row is None:
            raise KeyError(f"{entity} {entity_id}")
        return RecordState(row[0], row[1])

    def waiting(self, limit: int = WAITING_SHOWN) -> list[WaitingRecord]:
        """What waits to be sent, by what the user made (not outbox rows), and what the
        server refused, each with its state and last error; oldest first."""
        with self._db.read() as conn:
            rows = conn.exec_driver_sql(
                "SELECT o.entity_id, count(*), min(o.id) FROM outbox o GROUP BY o.entity_id"
            ).all()
            queued = {entity_id: (n, first) for entity_id, n, first in rows}
            refused = conn.exec_driver_sql(
                "SELECT entity_id FROM records WHERE sync_state = ?", (REJECTED,)
            ).all()
            ids = list(dict.fromkeys([*queued, *(r[0] for r in refused)]))
            info: dict[str, tuple] = {}
            for chunk in in_parts(ids):
                marks = ",".join("?" * len(chunk))
                for row in conn.exec_driver_sql(
                    "SELECT entity_id, entity, ward_code, code, parent_id, sync_state, "
                    f"sync_reason FROM records WHERE entity_id IN ({marks})",
                    tuple(chunk),
                ).all():
                    info[row[0]] = row[1:]
            owners = self._owner_info(conn, info)
        return _waiting_records(ids, queued, info, owners)[:limit]

    @staticmethod
    def _owner_info(conn: Connection, info: dict[str, tuple]) -> dict[str, tuple]:
        """The records owning the queued children (a dossier's history entry, a file)."""
        wanted = {
            row[3]
            for row in info.values()
            if row[0] not in USER_ENTITIES and row[3] and row[3] not in info
        }
        owners: dict[str, tuple] = {}
        for owner_id in wanted:
            row = conn.exec_driver_sql(
                "SELECT entity_id, entity, ward_code, code, parent_id, sync_state, sync_reason "
                "FROM records WHERE entity_id = ?",
                (owner_id,),
            ).first()
            if row is not None:
                owners[row[0]] = tuple(row[1:])
        return owners

    def pending_count(self) -> int:
        """Outbox rows waiting (the engine's progress total)."""
        with self._db.read() as conn:
            return self._records.outbox.count(conn)

    def summary(self) -> SyncSummary:
        waiting = sum(1 for w in self.waiting(limit=10**9) if w.state != REJECTED)
        with self._db.read() as conn:
            pending = self._records.outbox.count(conn)
            conflicts = conn.exec_driver_sql(
                "SELECT count(*) FROM records WHERE entity = ? AND state = ?", (E.CONFLICT, OPEN)
            ).scalar_one()
            rejected = conn.exec_driver_sql(
                "SELECT count(*) FROM records WHERE sync_state = ?", (REJECTED,)
            ).scalar_one()
            last = conn.exec_driver_sql(
                "SELECT last_synced_at FROM sync_state WHERE id = 1"
            ).scalar_one()
            unreadable = conn.exec_driver_sql(
                "SELECT count(*) FROM records WHERE sync_state = ?", (UNREADABLE,)
            ).scalar_one()
        return SyncSummary(
            pending,
            conflicts,
            rejected,
            dt.datetime.fromisoformat(last) if last else None,
            unreadable=unreadable,
            waiting=waiting,
        )

    def set_last_synced(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        with self._db.write() as conn:
            conn.exec_driver_sql(
                "UPDATE sync_state SET last_synced_at = ? WHERE id = 1", (at.isoformat(),)
            )

    # ------------------------------------------------------------------ conflicts

    def open_conflicts(self) -> list[Conflict]:
        with self._db.read() as conn:
            records = self._records.select_each(
                conn, "WHERE entity = ? AND state = ? ORDER BY id", (E.CONFLICT, OPEN)
            )
        return readable_only(records, _to_conflict)

    def resolve_conflict(self, conflict_id: str, chosen_value) -> None:
        """Write the chosen value to the field and close the conflict: two mutations, one
        transaction."""
        records = self._records
        with self._db.write() as conn:
            conflict = records.get(conn, E.CONFLICT, conflict_id)
            target = records.get(
                conn, str(conflict.value("entity")), str(conflict.value("entity_id"))
            )
            records.write_local_many(
                conn,
                [
                    (
                        target.entity,
                        target.entity_id,
                        target.ward_code,
                        {str(conflict.value("field")): chosen_value},
                        target,
                    ),
                    (
                        E.CONFLICT,
                        conflict_id,
                        conflict.ward_code,
                        {"state": RESOLVED, "chosen": chosen_value},
                        conflict,
                    ),
                ],
            )

    # ------------------------------------------------------------------ attachments

    def pending_uploads(self) -> list[str]:
        with self._db.read() as conn:
            rows = conn.exec_driver_sql(
                "SELECT sha256 FROM blobs WHERE uploaded = 0 ORDER BY rowid"
            ).all()
        return [r[0] for r in rows]

    def read_attachment(self, sha256: str) -> bytes:
        return self._files.get(sha256)

    def mark_uploaded(self, sha256: str) -> None:
        with self._db.write() as conn:
            conn.exec_driver_sql("UPDATE blobs SET uploaded = 1 WHERE sha256 = ?", (sha256,))

    def has_attachment(self, sha256: str) -> bool:
        """Whether the file's bytes are on this device (added here, or downloaded before)."""
        return self._files.exists(sha256.lower())

    def missing_downloads(self) -> list[str]:
        """SHA-256 of attachments that pulled records name but this device does not hold."""
        with self._db.read() as conn:
            rows = conn.exec_driver_sql(
                "SELECT DISTINCT code FROM records WHERE entity = ? AND code IS NOT NULL",
                (E.ATTACHMENT,),
            ).all()
        return [sha for (sha,) in rows if not self._files.exists(sha)]

    def store_downloaded(self, sha256: str, data: bytes) -> None:
        actual = hashlib.sha256(data).hexdigest()
        if not hmac.compare_digest(actual, sha256.lower()):
            raise TamperError("downloaded file does not match its SHA-256")
        self._files.put(data)
        with self._db.write() as conn:
            conn.exec_driver_sql(
                "INSERT INTO blobs (sha256, size, uploaded) VALUES (?, ?, 1) "
                "ON CONFLICT(sha256) DO UPDATE SET uploaded = 1",
                (sha256.lower(), len(data)),
            )

    def crypto_erase(self) -> None:
        """Revoked device: destroy the key, then the files (see LocalStore.wipe)."""
        self._erase()


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _to_conflict(record: Record) -> Conflict:
    values = record.value("values") or []
    return Conflict(
        id=record.entity_id,
        entity=str(record.value("entity", "")),
        entity_id=str(record.value("entity_id", "")),
        ward_code=record.ward_code,
        field=str(record.value("field", "")),
        values=values,
        state=str(record.value("state", OPEN)),
    )


def _waiting_records(
    ids: list[str],
    queued: dict[str, tuple[int, int]],
    info: dict[str, tuple],
    owners: dict[str, tuple],
) -> list[WaitingRecord]:
    """Fold queued and refused records into what the user made (see USER_ENTITIES)."""
    known = info | owners
    found: dict[str, dict] = {}
    order: dict[str, int] = {}

    def owner_of(entity_id: str) -> str | None:
        row = known.get(entity_id)
        if row is None:
            return None
        entity, parent = row[0], row[3]
        if entity in USER_ENTITIES:
            return entity_id
        return parent if parent in known and known[parent][0] in USER_ENTITIES else None

    for entity_id in ids:
        owner = owner_of(entity_id)
        if owner is None:
            continue
        entity, ward, code, parent, state, reason = known[owner]
        n, first = queued.get(entity_id, (0, 1 << 62))
        entry = found.setdefault(
            owner,
            {
                "entity": entity,
                "ward": ward,
                "code": code or "",
                "parent": parent or "",
                "state": state,
                "reason": reason,
                "rows": 0,
            },
        )
        entry["rows"] += n
        own_state, own_reason = info.get(entity_id, (None,) * 6)[4:6]
        if own_state == REJECTED:  # a refused child makes its owner's entry refused
            entry["state"], entry["reason"] = REJECTED, own_reason or entry["reason"]
        order[owner] = min(order.get(owner, first), first)
    # A decision's audit change travels with the decision: one entry, the decision.
    decided = {e["parent"] for e in found.values() if e["entity"] == E.AUDIT_COMMENT}
    for audit_id in decided & set(found):
        if found[audit_id]["entity"] == E.AUDIT and found[audit_id]["state"] != REJECTED:
            del found[audit_id]
    return [
        WaitingRecord(
            entity=e["entity"],
            entity_id=owner,
            ward_code=e["ward"],
            code=e["code"],
            parent_id=e["parent"],
            state=e["state"] if e["state"] in (REJECTED, CONFLICT) else PENDING,
            reason=e["reason"],
            rows=e["rows"],
        )
        for owner, e in sorted(found.items(), key=lambda kv: order[kv[0]])
    ]


def _merged(change: Change, local: Record | None) -> tuple[Record, list[str]]:
    """A pulled change merged into the local record: the record to save, and the names of
    the fields the merge changed."""
    incoming = {n: Stamped(f.value, f.hlc) for n, f in change.fields.items()}
    if local is None:  # a record new here: the merge into nothing is the change itself
        outcome = MergeOutcome(incoming, list(incoming), [])
    else:
        outcome = merge_fields(local.fields, incoming, base_version=None)
    # The merge's own dict: its stamps carry no server version here (new_version 0, and a
    # record read from the store has none), so copying each one again made the same record.
    merged = Record(
        change.entity,
        change.entity_id,
        change.ward_code,
        outcome.fields,
        max(change.version, local.version if local else 0),
        local.local_rev if local else 0,
        rowid=local.rowid if local else 0,
    )
    return merged, outcome.changed
