"""Push (apply each mutation at most once, field-level merge, domain rules) and pull.

A push batch is applied in one transaction (`_apply_batch`): the batch's records are read in a
few set-based queries, each mutation is checked and merged in memory against the state the
earlier mutations of the batch left (validate, then apply: a refused mutation stores nothing
and never fails the batch), and the records, change log, audit log and applied mutation ids
are then written with one executemany per table. Every mutation id goes into
`applied_mutation` in that transaction, so the unique key still decides between two
connections pushing the same batch: the loser's transaction fails, and it starts again from
the stored answers. A batch that keeps failing (or a value the database refuses) falls back
to one transaction per mutation (`apply_once`), which isolates the row at fault.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Text, and_, bindparam, cast, func, insert, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlmodel import Session, select

from app.domain import audit as A
from app.domain import entities as E
from app.domain.columns import Flat, blocks_of, flatten
from app.domain.hlc import Clock, is_stamp, node_of
from app.domain.merge import MergeOutcome, Stamped, merge_fields
from app.domain.mutations import (
    Mutation,
    PushResult,
    PushSummary,
    WireField,
    WireMutation,
    clock_table,
    lean_change,
    summarise,
)
from app.domain.records import SERVER_COMPUTED, computed_score, validate_record
from server.core.config import SERVER_NODE
from server.core.db import (
    PerEngine,
    by_id_chunks,
    id_in,
    insert_rows,
    read_session,
    take_log_lock,
    update_rows,
    write_session,
    writer_turn,
)
from server.core.sealing import SEALED, SealError, open_fields, seal_fields
from server.models import (
    AppliedMutation,
    AuditLog,
    ChangeLog,
    Device,
    PushBatch,
    Record,
    utcnow,
)
from server.scope import Caller, family_of
from server.services import attachments, reference, reports

ATTEMPTS = 4
# A mutation as the push route reads it (`read_push`), or a model built by a service (reviews).
Pushed = Mutation | WireMutation
_log = logging.getLogger("commune.server.sync")


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class RecordRow:
    """One `record` row, read and written with Core statements (the ORM's unit of work costs
    more than the whole merge on this hot path)."""

    id: int | None
    entity: str
    entity_id: str
    ward_code: str
    family: str
    version: int
    fields: dict[str, Any]


@dataclass
class Applied:
    record: RecordRow
    races: int


RECORD = Record.__table__
CHANGE_LOG = ChangeLog.__table__
AUDIT_LOG = AuditLog.__table__
APPLIED = AppliedMutation.__table__
# Statements built once: building them per mutation cost more than running them.
SELECT_RECORD = (
    select(
        RECORD.c.id,
        RECORD.c.entity,
        RECORD.c.entity_id,
        RECORD.c.ward_code,
        RECORD.c.family,
        RECORD.c.version,
        RECORD.c.fields,
    )
    .where(RECORD.c.entity == bindparam("p_entity"), RECORD.c.entity_id == bindparam("p_id"))
    .with_for_update()
)
SELECT_BATCH = select(
    RECORD.c.id,
    RECORD.c.entity,
    RECORD.c.entity_id,
    RECORD.c.ward_code,
    RECORD.c.family,
    RECORD.c.version,
    RECORD.c.fields,
)
PREFETCH = tuple(
    SELECT_BATCH.where(RECORD.c.entity == bindparam("p_entity"), ids)
    .order_by(RECORD.c.entity_id)
    .with_for_update()
    for ids in id_in(RECORD.c.entity_id, "p_ids")
)
SELECT_APPLIED = tuple(
    select(APPLIED.c.mutation_id, APPLIED.c.device_id, APPLIED.c.status, APPLIED.c.version).where(
        ids
    )
    for ids in id_in(APPLIED.c.mutation_id, "p_ids")
)
INSERT_RECORD = insert(RECORD)
UPDATE_RECORD = update(RECORD).where(RECORD.c.id == bindparam("p_row"))
INSERT_CHANGE = insert(CHANGE_LOG)
INSERT_AUDIT = insert(AUDIT_LOG)
INSERT_APPLIED = insert(APPLIED)
PUSH_BATCH = PushBatch.__table__
INSERT_BATCH = insert(PUSH_BATCH)
# Each device keeps its last KEPT_BATCHES batch ids (a client has at most two unanswered): the
# same id again, and the older ones, go as the new one comes.
KEPT_BATCHES = 16
PRUNE_BATCHES = text(
    "DELETE FROM push_batch WHERE device_id = :device AND (batch_id = :batch OR id <= "
    "(SELECT id FROM push_batch WHERE device_id = :device ORDER BY id DESC LIMIT 1 "
    "OFFSET :older))"
)


def push(
    engine: Engine, caller: Caller, mutations: list[Pushed], clock: Clock, batch: str = ""
) -> list[PushResult]:
    return push_and_head(engine, caller, mutations, clock, batch)[0]


def push_and_head(
    engine: Engine, caller: Caller, mutations: list[Pushed], clock: Clock, batch: str = ""
) -> tuple[list[PushResult], int | None]:
    """Each mutation applied at most once, answered in order. `batch`: the id the client gave
    this push; the answer is kept under it (`push_batch`), in the transaction that applies the
    batch, for a client whose answer is lost (`committed_batches`). Also returns the change
    log's head once the push was committed when its transaction read it (a push that wrote to
    the log), else None (`log_head` reads it).

    The push first joins the pushes waiting in this process for the writer's turn, which go
    together in one transaction (`_apply_group`); a group that fails leaves each of its pushes
    to go alone, as before grouping."""
    answers: dict[str, PushResult] = {}
    kept = False
    with _applying(caller.device_id, batch):
        job = _Job(caller, mutations, batch)
        if job.pending and _push_queue(engine).run(engine, job, clock):
            answers, kept = job.answers, bool(batch)
        else:
            answers, kept = _push_alone(engine, caller, mutations, clock, batch)
        results = [answers[m.mutation_id] for m in mutations]
        if batch and not kept:  # answered from stored results, or one mutation at a time
            _keep_batch_alone(engine, caller, batch, results)
    return results, job.head if job.done else None


def _push_alone(
    engine: Engine, caller: Caller, mutations: list[Pushed], clock: Clock, batch: str
) -> tuple[dict[str, PushResult], bool]:
    """One push in a transaction of its own (retried when a twin committed first), then one
    transaction per mutation for what is still unanswered. Returns (answers, batch kept)."""
    ids = list(dict.fromkeys(m.mutation_id for m in mutations))
    answers: dict[str, PushResult] = {}
    kept = False
    for _ in range(ATTEMPTS):
        answers = _stored(engine, caller, ids)
        pending = _first_of_each(m for m in mutations if m.mutation_id not in answers)
        if not pending:
            break
        keep = _keeper(caller, batch, mutations, answers) if batch else None
        try:
            answers.update(_apply_batch(engine, caller, pending, clock, keep))
            kept = bool(batch)
            break
        except (IntegrityError, OperationalError):
            continue  # a twin or a creator of the same record committed first: look again
        except DataError:
            break  # a value the database refuses: one transaction per mutation finds it
    for m in _first_of_each(m for m in mutations if m.mutation_id not in answers):
        answers[m.mutation_id] = apply_once(engine, caller, m, clock)
    return answers, kept


# --- pushes grouped into one transaction ------------------------------------------------------
#
# A push of 20 mutations spent about as much on its transaction (the applied-id look-up, the
# prefetch, six statements, the commit) as on checking and merging its mutations, and on SQLite
# the pushes of a process wait for one writer anyway. So a push that finds the writer's turn
# taken queues; whoever takes the turn next applies every queued push (up to GROUP_MUTATIONS)
# in one transaction, each mutation checked under its own caller, each push's answer kept
# under its own batch id. The group shares one `Batch`, so a record two pushes touch is merged
# in order, as within one push. Any exception fails the whole group: its pushes then go alone
# (`_push_alone`) in their own threads, where a push at fault fails by itself.

GROUP_MUTATIONS = 1000  # a bigger push goes alone in its turn; smaller ones fill a group to this


class _Job:
    """One push waiting for, or applied in, a group."""

    def __init__(self, caller: Caller, mutations: list[Pushed], batch: str) -> None:
        self.caller = caller
        self.mutations = mutations
        self.batch = batch
        self.pending = _first_of_each(mutations)
        self.answers: dict[str, PushResult] = {}
        self.head: int | None = None  # the change log's head at the group's commit
        self.done = False  # applied in a group
        self.failed = False  # its group failed: it goes alone


class _PushQueue:
    """The pushes to one engine waiting for the writer's turn, and the turn itself."""

    def __init__(self) -> None:
        self.turn = threading.Lock()
        self.guard = threading.Lock()
        self.waiting: list[_Job] = []

    def run(self, engine: Engine, job: _Job, clock: Clock) -> bool:
        """True once `job` was applied in a group (its answers complete, its batch kept);
        False when its group failed."""
        with self.guard:
            self.waiting.append(job)
        with self.turn:
            while not (job.done or job.failed):
                self._apply(engine, self._take(), clock)
        return job.done

    def _take(self) -> list[_Job]:
        """The oldest waiting pushes, up to GROUP_MUTATIONS (at least one)."""
        group: list[_Job] = []
        size = 0
        with self.guard:
            for queued in self.waiting:
                if group and size + len(queued.pending) > GROUP_MUTATIONS:
                    break
                group.append(queued)
                size += len(queued.pending)
            del self.waiting[: len(group)]
        return group

    @staticmethod
    def _apply(engine: Engine, group: list[_Job], clock: Clock) -> None:
        try:
            _apply_group(engine, group, clock)
        except BaseException as error:
            for member in group:
                member.failed = True
            if not isinstance(error, Exception):
                raise
            _log.info("a group of %d pushes failed: %s", len(group), type(error).__name__)
        else:
            for member in group:
                member.done = True


_QUEUES: PerEngine[_PushQueue] = PerEngine(_PushQueue)


def _push_queue(engine: Engine) -> _PushQueue:
    return _QUEUES.of(engine)


def _apply_group(engine: Engine, group: list[_Job], clock: Clock) -> None:
    """Every push of `group` in one transaction: answers from the stored results, from a
    push earlier in the group with the same mutation id, or from applying it; each push's
    answer kept under its batch id. Raises what the database raises (nothing is kept)."""
    ids = list(dict.fromkeys(m.mutation_id for job in group for m in job.pending))
    with write_session(engine) as session:
        stored = _applied_rows(session, ids)
        batch = Batch(
            _prefetch(session, [m for j in group for m in j.pending if m.mutation_id not in stored])
        )
        session.info[_BATCH] = batch
        try:
            applied_here: dict[str, tuple[str, PushResult]] = {}  # id: (device, answer)
            for job in group:
                job.answers = _answers_in_group(session, job, stored, applied_here, clock)
            batch.write(session)
            # Written under the change-log lock, held to the commit: no later seq is committed
            # before this one, so the head read here is the head once the group is committed.
            head = _head_in(session) if batch.changes else None
            for job in group:
                if job.batch:
                    results = [job.answers[m.mutation_id] for m in job.mutations]
                    _keep_batch(session, job.caller, job.batch, results)
                job.head = head
        finally:
            session.info.pop(_BATCH, None)


def _answers_in_group(
    session: Session,
    job: _Job,
    stored: dict[str, Any],
    applied_here: dict[str, tuple[str, PushResult]],
    clock: Clock,
) -> dict[str, PushResult]:
    answers: dict[str, PushResult] = {}
    for m in job.pending:
        key = m.mutation_id
        if key in stored:
            answers[key] = _result(stored[key], job.caller)
        elif key in applied_here:
            device, answer = applied_here[key]
            answers[key] = answer if device == job.caller.device_id else _taken(key)
        else:
            answers[key] = _apply_checked(session, job.caller, m, clock)
            if answers[key].status != "rejected":  # a refusal stores nothing: the id is free
                applied_here[key] = (job.caller.device_id, answers[key])
    return answers


def log_head(engine: Engine) -> int:
    """The change log's last seq (0 when empty): what is committed up to now. Read after a
    push, it is at least every seq that push wrote (the log is written under one lock)."""
    with engine.connect() as conn:
        return int(conn.execute(LOG_HEAD).scalar() or 0)


LOG_HEAD = select(func.max(CHANGE_LOG.c.seq))


def _head_in(session: Session) -> int:
    return int(session.execute(LOG_HEAD).scalar() or 0)


# (device, batch) of the pushes being applied in this process: an ask about one waits for it.
_IN_PROGRESS: dict[tuple[str, str], threading.Event] = {}
_IN_PROGRESS_LOCK = threading.Lock()
BATCH_WAIT_S = 10.0


@contextmanager
def _applying(device_id: str, batch: str):
    if not batch:
        yield
        return
    done = threading.Event()
    key = (device_id, batch)
    with _IN_PROGRESS_LOCK:
        _IN_PROGRESS[key] = done
    try:
        yield
    finally:
        with _IN_PROGRESS_LOCK:
            if _IN_PROGRESS.get(key) is done:
                del _IN_PROGRESS[key]
        done.set()


def _keeper(
    caller: Caller, batch: str, mutations: list[Pushed], stored: dict[str, PushResult]
) -> Callable[[Session, dict[str, PushResult]], None]:
    """What keeps the batch's whole answer (`stored`, then the batch transaction's own)."""

    def keep(session: Session, fresh: dict[str, PushResult]) -> None:
        whole = {**stored, **fresh}
        _keep_batch(session, caller, batch, [whole[m.mutation_id] for m in mutations])

    return keep


def _keep_batch(session: Session, caller: Caller, batch: str, results: list[PushResult]) -> None:
    """The batch's answer under its id, and the device's older batch ids pruned."""
    older = {"device": caller.device_id, "batch": batch, "older": KEPT_BATCHES - 1}
    session.execute(PRUNE_BATCHES, older)
    answer = summarise(results).model_dump(mode="json", exclude={"reads", "through"})
    session.execute(
        INSERT_BATCH,
        {
            "device_id": caller.device_id,
            "batch_id": batch,
            "answer": answer,
            "committed_at": utcnow(),
        },
    )


def _keep_batch_alone(
    engine: Engine, caller: Caller, batch: str, results: list[PushResult]
) -> None:
    """A batch answered without its own transaction, kept in one of its own. Not kept (a busy
    database) only costs the client a resend, which the stored results answer."""
    try:
        with write_session(engine) as session:
            _keep_batch(session, caller, batch, results)
    except (IntegrityError, OperationalError) as exc:
        _log.warning("push batch %s not kept: %s", _safe(batch), type(exc).__name__)


def committed_batches(engine: Engine, caller: Caller, batch_ids: list[str]) -> dict[str, dict]:
    """{batch id: its push summary} for the ids the caller's own device committed (another
    device's ids, even the same ones, are never looked at). A batch this process is still
    applying is waited for (up to `BATCH_WAIT_S`): a client that resumes before the push it
    lost has ended must not send it again."""
    wanted = list(dict.fromkeys(batch_ids))
    deadline = time.monotonic() + BATCH_WAIT_S
    for batch in wanted:
        with _IN_PROGRESS_LOCK:
            done = _IN_PROGRESS.get((caller.device_id, batch))
        if done is not None:
            done.wait(max(0.0, deadline - time.monotonic()))
    if not wanted:
        return {}
    with read_session(engine) as session:
        rows = session.execute(
            select(PUSH_BATCH.c.batch_id, PUSH_BATCH.c.answer).where(
                PUSH_BATCH.c.device_id == caller.device_id, PUSH_BATCH.c.batch_id.in_(wanted)
            )
        ).all()
    return {
        batch: PushSummary.model_validate(answer).model_dump(mode="json") for batch, answer in rows
    }


def _first_of_each(mutations) -> list[Pushed]:
    """The mutations with a repeated id left out (a repeat gets the first one's answer)."""
    seen: dict[str, Pushed] = {}
    for m in mutations:
        seen.setdefault(m.mutation_id, m)
    return list(seen.values())


class Batch:
    """The writes of one push batch, held until the batch has been checked, then written with
    one statement per table; and the batch's records as the earlier mutations left them."""

    def __init__(self, records: dict[tuple[str, str], RecordRow | SealError]) -> None:
        self.records = records
        self.inserts: dict[tuple[str, str], dict] = {}
        self.updates: dict[int, dict] = {}
        self.changes: list[dict] = []
        self.audits: list[dict] = []
        self.applied: list[dict] = []
        self.facts: dict[str, dict] = {}  # dossier_fact rows by dossier id

    def record(self, entity: str, entity_id: str) -> RecordRow | None:
        found = self.records.get((entity, entity_id))
        if isinstance(found, SealError):
            raise found
        return found

    def save(self, record: RecordRow, values: dict) -> None:
        key = (record.entity, record.entity_id)
        self.records[key] = record
        if record.id is None:
            self.inserts[key] = {**values, "entity": record.entity, "entity_id": record.entity_id}
        else:
            self.updates[record.id] = {"p_row": record.id, **values}
        fact = reports.fact_of(record)
        if fact is not None:  # the last save of a dossier in the batch is its fact
            self.facts[record.entity_id] = fact

    def write(self, session: Session) -> None:
        if self.changes:
            take_log_lock(session)
        insert_rows(session, RECORD, list(self.inserts.values()))
        update_rows(session, RECORD, list(self.updates.values()), UPDATE_RECORD, "p_row")
        for rows, table in (
            (self.changes, CHANGE_LOG),
            (self.audits, AUDIT_LOG),
            (self.applied, APPLIED),
        ):
            insert_rows(session, table, rows)
        reports.write_facts(session, list(self.facts.values()))


_BATCH = "push_batch"  # key of the current Batch in session.info


def _batch_of(session: Session) -> Batch | None:
    return session.info.get(_BATCH)


def _apply_batch(
    engine: Engine,
    caller: Caller,
    mutations: list[Pushed],
    clock: Clock,
    keep: Callable[[Session, dict[str, PushResult]], None] | None = None,
) -> dict[str, PushResult]:
    """Apply mutations (distinct ids, none applied before) in one transaction; raises what the
    database raises (the caller starts again or falls back to one mutation at a time). `keep`
    is given the answers in that transaction, before it commits."""
    answers: dict[str, PushResult] = {}
    with write_session(engine) as session:
        taken = _stored_in(session, caller, [m.mutation_id for m in mutations])
        answers.update(taken)
        fresh = [m for m in mutations if m.mutation_id not in taken]
        batch = Batch(_prefetch(session, fresh))
        session.info[_BATCH] = batch
        try:
            for mutation in fresh:
                answers[mutation.mutation_id] = _apply_checked(session, caller, mutation, clock)
            batch.write(session)
            if keep is not None:
                keep(session, answers)
        finally:
            session.info.pop(_BATCH, None)
    return answers


def _apply_checked(session: Session, caller: Caller, mutation: Pushed, clock: Clock) -> PushResult:
    """One mutation of a batch: merged into the batch's writes, or refused with nothing kept."""
    batch = _batch_of(session)
    try:
        applied = apply_in(session, caller, mutation, clock)
    except Rejected as rejected:
        return PushResult(
            mutation_id=mutation.mutation_id, status="rejected", reason=rejected.reason
        )
    except SealError:
        return PushResult(
            mutation_id=mutation.mutation_id, status="rejected", reason="record_unreadable"
        )
    status = "conflict" if applied.races else "applied"
    if applied.record.entity == E.ATTACHMENT:
        sha256 = _value_of(applied.record.fields, "sha256")
        record = applied.record
        attachments.note_record(session, caller, sha256, record.ward_code, record.family)
    batch.applied.append(
        {
            "mutation_id": mutation.mutation_id,
            "device_id": caller.device_id,
            "status": status,
            "version": applied.record.version,
            "applied_at": utcnow(),
        }
    )
    version = applied.record.version
    # Built from values known good (the id was read by the wire's rules): not validated again.
    return PushResult.model_construct(
        mutation_id=mutation.mutation_id, status=status, reason=None, version=version
    )


def _prefetch(
    session: Session, mutations: list[Pushed]
) -> dict[tuple[str, str], RecordRow | SealError]:
    """The batch's stored records, opened (locked on PostgreSQL), a few queries in all."""
    wanted: dict[str, set[str]] = {}
    for m in mutations:
        wanted.setdefault(m.entity, set()).add(m.entity_id)
    found: dict[tuple[str, str], RecordRow | SealError] = {}
    for entity, ids in wanted.items():
        ordered = sorted(ids)  # one lock order for every connection
        for statement, chunk in by_id_chunks(session, PREFETCH, ordered):
            rows = session.execute(statement, {"p_entity": entity, "p_ids": chunk}).mappings()
            for row in rows:
                key = (row["entity"], row["entity_id"])
                try:
                    found[key] = _opened(RecordRow(**row))
                except SealError as error:
                    found[key] = error
    return found


def apply_once(engine: Engine, caller: Caller, mutation: Pushed, clock: Clock) -> PushResult:
    """Apply one mutation in its own transaction, or answer the result stored for its id."""
    for _ in range(ATTEMPTS):
        try:
            with write_session(engine) as session:
                applied = apply_in(session, caller, mutation, clock)
                status = "conflict" if applied.races else "applied"
                if applied.record.entity == E.ATTACHMENT and applied.record.id is not None:
                    _note_attachment(session, caller, applied.record)
                # The unique key: a twin that committed first makes this insert fail.
                session.execute(
                    INSERT_APPLIED,
                    {
                        "mutation_id": mutation.mutation_id,
                        "device_id": caller.device_id,
                        "status": status,
                        "version": applied.record.version,
                        "applied_at": utcnow(),
                    },
                )
            return PushResult(
                mutation_id=mutation.mutation_id, status=status, version=applied.record.version
            )
        except Rejected as rejected:
            return PushResult(
                mutation_id=mutation.mutation_id, status="rejected", reason=rejected.reason
            )
        except SealError:  # the stored record does not open (tampered): refuse, never a 500
            return PushResult(
                mutation_id=mutation.mutation_id, status="rejected", reason="record_unreadable"
            )
        except DataError:  # a value the database refuses: this mutation's input, rolled back
            return PushResult(
                mutation_id=mutation.mutation_id, status="rejected", reason="invalid_data"
            )
        except (IntegrityError, OperationalError):
            # A twin of this mutation, or a creator of the same record, committed first (or
            # PostgreSQL broke a deadlock): look again from a fresh transaction. The twin may
            # be another device's mutation under the same id: `_stored` refuses its result.
            stored = _stored(engine, caller, [mutation.mutation_id]).get(mutation.mutation_id)
            if stored is not None:
                return stored
    return PushResult(mutation_id=mutation.mutation_id, status="rejected", reason="busy_retry")


# A mutation id belongs to the device that applied it first. Another device sending it gets
# this refusal, never that device's result (which would make it drop a change never stored).
MUTATION_ID_TAKEN = "mutation_id_taken"


def _stored(engine: Engine, caller: Caller, mutation_ids: list[str]) -> dict[str, PushResult]:
    """Answers for ids already applied: the stored result when the caller's device applied
    them (a replay: exactly once), `mutation_id_taken` when another device did."""
    with read_session(engine) as session:
        return _stored_in(session, caller, mutation_ids)


def _stored_in(session: Session, caller: Caller, mutation_ids: list[str]) -> dict[str, PushResult]:
    rows = _applied_rows(session, mutation_ids)
    return {mutation_id: _result(row, caller) for mutation_id, row in rows.items()}


def _applied_rows(session: Session, mutation_ids: list[str]) -> dict[str, Any]:
    """{mutation id: its `applied_mutation` row} for the ids already applied."""
    found: dict[str, Any] = {}
    for statement, chunk in by_id_chunks(session, SELECT_APPLIED, mutation_ids):
        found.update({row.mutation_id: row for row in session.execute(statement, {"p_ids": chunk})})
    return found


def _result(row: Any, caller: Caller) -> PushResult:
    if row.device_id != caller.device_id:
        return _taken(row.mutation_id)
    return PushResult(mutation_id=row.mutation_id, status=row.status, version=row.version)


def _taken(mutation_id: str) -> PushResult:
    return PushResult(mutation_id=mutation_id, status="rejected", reason=MUTATION_ID_TAKEN)


def _note_attachment(session: Session, caller: Caller, record: RecordRow) -> None:
    """Bind the file the attachment record names to the record's scope, or claim it there
    (see server.services.attachments): the column `_save` wrote, read back."""
    sha256 = session.execute(
        select(RECORD.c.blob_sha256).where(RECORD.c.id == record.id)
    ).scalar_one_or_none()
    attachments.note_record(session, caller, sha256, record.ward_code, record.family)


def apply_in(session: Session, caller: Caller, mutation: Pushed, clock: Clock) -> Applied:
    """Check and merge one mutation inside the caller's transaction; raises Rejected.

    Nothing is stored unless the record as it will be after the merge passes the domain's
    `validate_record`, the same check the device runs before it queues a change."""
    mutation = _normalised(mutation)
    values = {name: fv.value for name, fv in mutation.fields.items()}
    _check_shape(caller, mutation, values)
    record = _current(session, mutation)
    if record is not None and record.ward_code != mutation.ward_code:
        raise Rejected("ward_mismatch")
    family = record.family if record else family_of(mutation.entity, values, caller.role)
    if family not in caller.families:
        raise Rejected("role_not_permitted")
    current = {k: Stamped(**v) for k, v in (record.fields if record else {}).items()}
    _check_rules(caller, mutation.entity, values, current)
    mutation = _with_computed(mutation, current, clock)
    # One merge serves the whole-record check and the store (it was done twice).
    outcome = merge_fields(
        current,
        {k: Stamped(fv.value, fv.hlc) for k, fv in mutation.fields.items()},
        base_version=mutation.base_version,
        new_version=(record.version if record else 0) + 1,
    )
    _check_record(session, mutation.entity, outcome.fields, record, current, values)
    return _merge_and_store(session, caller, mutation, record, family, current, outcome, clock)


def _current(session: Session, mutation: Pushed) -> RecordRow | None:
    """The record as stored, opened; in a batch, as the batch's earlier mutations left it (a
    copy, so that a refused mutation leaves the batch's state as it was)."""
    batch = _batch_of(session)
    if batch is not None:
        found = batch.record(mutation.entity, mutation.entity_id)
        return replace(found, fields=dict(found.fields)) if found is not None else None
    row = (
        session.execute(SELECT_RECORD, {"p_entity": mutation.entity, "p_id": mutation.entity_id})
        .mappings()
        .first()
    )
    return _opened(RecordRow(**row)) if row is not None else None


def _normalised(mutation: Pushed) -> WireMutation:
    """The mutation (as read by `read_push`, or a `Mutation` model) with every string of its
    values in stored form (NFC, '\\n' line ends). The stamps were checked when the request was
    read, so the fields are not validated again."""
    normalise = E.normalise_value
    fields: dict[str, WireField] = {}
    for name, fv in mutation.fields.items():
        value = normalise(fv.value)
        # A value already in stored form (ASCII, NFC) comes back as the same object: the
        # field read from the wire is kept as it is.
        same = value is fv.value and isinstance(fv, WireField)
        fields[name] = fv if same else WireField(value, fv.hlc)
    return WireMutation(
        mutation.mutation_id,
        mutation.device_id,
        mutation.entity,
        mutation.entity_id,
        mutation.ward_code,
        mutation.base_version,
        fields,
    )


def _with_computed(
    mutation: WireMutation, current: dict[str, Stamped], clock: Clock
) -> WireMutation:
    """Fields the server computes replace what a device sent: an audit's score is the domain's
    scoring of the merged answers, written under the server's clock (so it reaches every
    device, the writer's too, and never races a device's write)."""
    computed = SERVER_COMPUTED.get(mutation.entity, frozenset())
    if not computed:
        return mutation
    fields = {k: fv for k, fv in mutation.fields.items() if k not in computed}
    merged = merge_fields(current, {k: Stamped(fv.value, fv.hlc) for k, fv in fields.items()})
    score = computed_score({k: s.value for k, s in merged.fields.items()})
    stored = current.get("score")
    if score != (stored.value if stored else None):
        if stored is not None:
            clock.observe(stored.hlc)  # the server's stamp must win over the stored one
        fields["score"] = WireField(score, clock.now())
    return replace(mutation, fields=fields)


def _check_record(
    session: Session,
    entity: str,
    after: dict[str, Stamped],
    record: RecordRow | None,
    current: dict[str, Stamped],
    checked: dict[str, Any],
) -> None:
    """The whole record as the merge will leave it, against the domain (`app.domain.records`),
    honouring every published catalogue and calendar (server/services/reference.py).
    `checked`: the mutation's values `_check_shape` passed, not checked twice."""
    honoured = reference.honoured(session)
    before = {k: s.value for k, s in current.items()} if record is not None else None
    problems = validate_record(
        entity,
        {k: s.value for k, s in after.items()},
        before,
        catalogues=honoured.catalogues,
        calendars=honoured.calendars,
        checked=checked,
    )
    if problems:
        raise Rejected(problems[0][:400])


def _check_shape(caller: Caller, mutation: Pushed, values: dict[str, Any]) -> None:
    if mutation.entity not in E.ENTITIES:
        raise Rejected("unknown_entity")
    if not values:
        raise Rejected("no_fields")
    problems = E.validate_fields(mutation.entity, values)
    if problems:
        raise Rejected("invalid_fields:" + ",".join(problems)[:400])
    if "ward_code" in values and values["ward_code"] != mutation.ward_code:
        raise Rejected("ward_mismatch")
    if not caller.sees_ward(mutation.ward_code):
        raise Rejected("ward_out_of_scope")


def _check_rules(
    caller: Caller, entity: str, values: dict[str, Any], current: dict[str, Stamped]
) -> None:
    """The rules that depend on who writes; the record's own rules are `_check_record`'s."""
    if entity == E.AUDIT:
        _check_audit_roles(caller, values, current)
    if entity == E.AUDIT_COMMENT:
        _check_comment(caller, values, current)
    if entity == E.CONFLICT:
        _check_conflict(values, current)


def _check_comment(caller: Caller, values: dict[str, Any], current: dict[str, Stamped]) -> None:
    """A comment speaks for its author only: the caller writes and edits their own comments,
    and only reviewers (who may decide, see /reviews) attach a decision."""
    was = current["author"].value if "author" in current else None
    will_be = values.get("author", was)
    if will_be != caller.username or was not in (None, caller.username):
        raise Rejected("comment_author_not_caller")
    if values.get("decision") is not None and not caller.is_reviewer:
        raise Rejected("comment_decision_role")


# What a device may write on a conflict the server recorded: its resolution.
CONFLICT_RESOLUTION_FIELDS = frozenset({"state", "chosen"})


def _check_conflict(values: dict[str, Any], current: dict[str, Stamped]) -> None:
    if not current:
        raise Rejected("conflict_server_only")  # only the server's merge records conflicts
    fixed = sorted(set(values) - CONFLICT_RESOLUTION_FIELDS)
    if fixed:
        raise Rejected("conflict_read_only:" + ",".join(fixed))
    if values.get("state") not in (None, "open", "resolved"):
        raise Rejected("invalid_fields:state:choice")


def _check_audit_roles(caller: Caller, values: dict[str, Any], current: dict[str, Stamped]) -> None:
    """Who may move an audit along a review edge (the edge itself is `validate_record`'s)."""
    now_state = current["review_state"].value if "review_state" in current else None
    state = now_state or A.ReviewState.DRAFT.value
    target = values.get("review_state", state)
    moves = target != state and A.can_review_transition(state, target)
    if moves and caller.role not in A.who_may(state, target):
        raise Rejected(f"review_role:{state}->{target}")


def _merge_and_store(
    session: Session,
    caller: Caller,
    mutation: Pushed,
    record: RecordRow | None,
    family: str,
    current: dict[str, Stamped],
    outcome: MergeOutcome,
    clock: Clock,
) -> Applied:
    new_version = (record.version if record else 0) + 1
    if record is None:
        record = RecordRow(
            None, mutation.entity, mutation.entity_id, mutation.ward_code, family, 0, {}
        )
    if (outcome.races or outcome.fields != current) and _batch_of(session) is None:
        take_log_lock(session)  # a batch takes it when it writes
    if outcome.fields != current:
        record.fields = {k: _stamp_json(s) for k, s in outcome.fields.items()}
        record.version = new_version
        _save(session, record)  # a concurrent creator of the same record fails here
        touched = [k for k, s in outcome.fields.items() if current.get(k) != s]
        detail = {
            "mutation_id": mutation.mutation_id,
            "fields": sorted(touched),
            "changed": sorted(outcome.changed),
            "values": _readable_values(record.entity, {k: outcome.fields[k] for k in touched}),
        }
        _log_change(session, caller, record, "change", detail)
    for race in outcome.races:
        _record_conflict(session, caller, record, race, clock)
    return Applied(record, len(outcome.races))


def _opened(record: RecordRow) -> RecordRow:
    """The stored row with its sealed values opened (SealError when one does not open)."""
    record.fields = open_fields(record.entity, record.entity_id, record.fields)
    return record


def _save(session: Session, record: RecordRow) -> None:
    """Store the record (its personal fields sealed); in a batch, held for the batch's write."""
    values = {
        "ward_code": record.ward_code,
        "family": record.family,
        "version": record.version,
        "fields": seal_fields(record.entity, record.entity_id, record.fields),
        "updated_at": utcnow(),
        "blob_sha256": _value_of(record.fields, "sha256")
        if record.entity == E.ATTACHMENT
        else None,
    }
    # Oversight's narrow projection of readable facts, in the same transaction (a batch's
    # rollback takes it back too; a batch writes its facts set-based at its end).
    batch = _batch_of(session)
    if batch is not None:
        batch.save(record, values)
        return
    reports.project_record(session, record)
    if record.id is None:
        values.update(entity=record.entity, entity_id=record.entity_id)
        record.id = session.execute(INSERT_RECORD, values).inserted_primary_key[0]
    else:
        session.execute(UPDATE_RECORD, {"p_row": record.id, **values})


def _record_conflict(
    session: Session, caller: Caller, record: RecordRow, race, clock: Clock
) -> None:
    stamp = clock.now()
    fields = {
        "entity": record.entity,
        "entity_id": record.entity_id,
        "ward_code": record.ward_code,
        "field": race.field,
        "values": [
            {"value": race.winner.value, "hlc": race.winner.hlc},
            {"value": race.loser.value, "hlc": race.loser.hlc},
        ],
        "state": "open",
    }
    conflict = RecordRow(
        None,
        E.CONFLICT,
        str(uuid.uuid4()),
        record.ward_code,
        record.family,
        1,
        {k: {"value": v, "hlc": stamp, "changed_version": 1} for k, v in fields.items()},
    )
    _save(session, conflict)
    detail = {"of": f"{record.entity}/{record.entity_id}", "field": race.field}
    if not E.sealed_fields(record.entity, [race.field]):  # readable: both values
        detail |= {"kept": race.winner.value, "lost": race.loser.value}
    _log_change(session, caller, conflict, "conflict", detail)


def _readable_values(entity: str, stamps: dict[str, Stamped]) -> dict[str, Any]:
    """New values for the audit log, of readable fields only.

    Sealed fields (names, ID numbers, free text) are logged by name only: the audit log is
    append-only, so personal data written there could never be corrected or erased.
    """
    sealed = E.sealed_fields(entity, list(stamps))
    return {k: s.value for k, s in sorted(stamps.items()) if k not in sealed}


def _log_change(
    session: Session, caller: Caller, record: RecordRow, action: str, detail: dict
) -> None:
    where = {
        "entity": record.entity,
        "entity_id": record.entity_id,
        "ward_code": record.ward_code,
        "version": record.version,
    }
    change = {"family": record.family, "device_id": caller.device_id, **where}
    audit = {
        "at": utcnow(),
        "user_id": caller.user_id,
        "username": caller.username,
        "device_id": caller.device_id,
        "action": action,
        "detail": detail,
        **where,
    }
    batch = _batch_of(session)
    if batch is not None:
        batch.changes.append(change)
        batch.audits.append(audit)
        return
    session.execute(INSERT_CHANGE, change)
    session.execute(INSERT_AUDIT, audit)


def _stamp_json(stamp: Stamped) -> dict:
    return {"value": stamp.value, "hlc": stamp.hlc, "changed_version": stamp.changed_version}


def _value_of(fields: dict[str, Any], name: str) -> Any:
    return (fields.get(name) or {}).get("value")


# ---------------------------------------------------------------------------------------------
# Pull


@dataclass
class PulledPage:
    """A pull answer already encoded as JSON (nothing left to fail while it is sent), and how
    many rows of the page were set aside because they could not be served."""

    body: bytes
    next_cursor: int
    served: int
    set_aside: int
    has_more: bool = False


@dataclass
class LogRow:
    seq: int
    device_id: str | None


# Pages read on in one pull when a page holds nothing to send (the caller's own records, rows
# set aside): a device pulling after its own big push gets one answer, not one per page.
PULL_READ_ON = 10
PULL_COLUMNS = (
    CHANGE_LOG.c.seq,
    CHANGE_LOG.c.device_id,
    RECORD.c.entity,
    RECORD.c.entity_id,
    RECORD.c.ward_code,
    RECORD.c.version,
    # As text, parsed row by row: one row whose stored JSON is broken must not fail the page.
    cast(RECORD.c.fields, Text),
)


# Pulls read and encode at most this many at once per process: each row a pull reads lets go
# of the GIL inside SQLite, and with dozens of pulls runnable the threads spent more time
# handing the GIL over than working (issue 13's eighth round). A pull past the bound waits.
PULLS_AT_ONCE = 4
_PULL_SLOTS = threading.BoundedSemaphore(PULLS_AT_ONCE)


def _in_a_slot(slots: threading.BoundedSemaphore):
    def bound(function):
        @functools.wraps(function)
        def in_slot(*args, **kwargs):
            with slots:
                return function(*args, **kwargs)

        return in_slot

    return bound


@_in_a_slot(_PULL_SLOTS)
def pull(
    engine: Engine,
    caller: Caller,
    cursor: int,
    limit: int,
    *,
    one_clock: bool = False,
    held_node: str = "",
    own: bool = False,
    clock_tables: bool = False,
    lean: bool = False,
    columns: bool = False,
) -> PulledPage:
    """Whole record states whose latest change is after `cursor`, in change-log order.

    A record the caller already holds as it is here is left out, and the cursor still moves
    past it: its latest version came from the caller's own push, and every field carries the
    caller's stamp (nobody else's write is in it: not another device's, not the server's, as in
    a conflict record or a review decision). The pushing device is thus not sent its own
    records back. A page left with nothing to send reads on, up to `PULL_READ_ON` pages in one
    answer, so pulling after one's own big push costs one round trip, not one per page.

    A stored row that cannot be served (broken fields, a bad stamp, a value that is not strict
    JSON) is set aside: logged without its values, counted, and the cursor moves past it, so
    one bad row never fails a pull (see docs/security.md, "Defence in depth").

    With `held_node` (the clock node of the caller's store, which a client since issue 13
    names) a record of the caller's own push that others also wrote to (an audit and the
    server's score of it) comes without the fields that node stamped, which the caller holds by
    the same reasoning. Only records of the caller's own push: naming another node can only
    cost the caller fields it would have been sent.

    With `own` nothing of the caller's own pushes is left out (and `held_node` is not used):
    a device whose store was put back from a backup does not hold what it pushed after the
    copy was made.

    With `columns` (a client that asked) the page's changes go as blocks of columns
    (`app.domain.columns`): about half the zstd bytes of the same changes row by row."""
    encoded: list = []  # each change as JSON bytes, or taken apart for columns (`Flat`)
    served = _served_changes(engine)
    set_aside = 0
    next_cursor, more = cursor, False
    for _ in range(PULL_READ_ON):
        rows = _pull_rows(engine, caller, next_cursor, limit)
        page = rows[:limit]
        for row in page:
            # Another device's change (or any, with `own`) goes as it is stored: served from
            # the cache when a device of its ward already pulled it.
            key = (
                (*row[:6], one_clock, clock_tables, lean, columns)
                if own or row[1] != caller.device_id
                else None
            )
            if key is not None and (done := served.get(key)) is not None:
                encoded.append(done)
                continue
            try:
                log, record = _pulled_row(row)
                if not own and _held_by(caller, log, record, SERVER_NODE):
                    continue  # before opening: the caller's own rows cost no decryption
                if held_node and not own:  # before opening too: its fields are not sent
                    record = _without_held_fields(caller, log, record, held_node)
                # SealError: set aside like any bad row
                record.fields = open_fields(record.entity, record.entity_id, record.fields)
                change, size = _serving(log, record, one_clock, clock_tables, lean, columns)
                encoded.append(change)
                if key is not None:
                    served.put(key, change, size)
            except Exception as exc:  # noqa: BLE001 (any failure of one row sets that row aside)
                set_aside += 1
                _log.warning(
                    "pull: set aside %s %s (seq %s): %s",
                    _safe(row[2]),
                    _safe(row[3]),
                    row[0],
                    _reason(exc),
                )
        next_cursor = page[-1][0] if page else next_cursor
        more = len(rows) > limit
        if encoded or not more:
            break  # a page with nothing to send reads on: one round trip, not one per page
    if cursor > caller.pull_cursor:
        _note_cursor(engine, caller.device_id, cursor)
    has_more = b"true" if more else b"false"
    body = (_as_columns(encoded) if columns else b'{"changes":[' + b",".join(encoded) + b"]") + (
        b',"next_cursor":' + str(next_cursor).encode() + b',"has_more":' + has_more + b"}"
    )
    return PulledPage(body, next_cursor, len(encoded), set_aside, more)


def _as_columns(flats: list[Flat]) -> bytes:
    """The page's opening with its changes as blocks of columns, from the changes taken apart
    (each already checked as strict JSON, and what the served-changes cache holds for columns:
    building the blocks from encoded rows read back cost more than zstd saved on them)."""
    text = json.dumps(blocks_of(flats), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return b'{"columns":' + text.encode("utf-8")


class _ServedChanges:
    """Changes as a pull sends them, by (seq, device, entity, id, ward, version, form).

    A change is pulled by every device of its ward and every supervisor, and encoding it
    (opening its sealed fields, checking that every value is strict JSON) was most of a pull's
    CPU under load. The key names the change-log row and the record version it joins, whose
    values are never rewritten (a re-seal keeps them), so an entry never goes stale. Per engine
    and per process, bounded in bytes, least recently served first out."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.entries: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()  # (change, bytes)
        self.lock = threading.Lock()

    def get(self, key: tuple) -> Any:
        with self.lock:
            found = self.entries.get(key)
            if found is None:
                return None
            self.entries.move_to_end(key)
            return found[0]

    def put(self, key: tuple, change: Any, size: int) -> None:
        with self.lock:
            if key in self.entries:
                return
            self.entries[key] = (change, size)
            self.size += size
            while self.size > self.max_bytes:
                self.size -= self.entries.popitem(last=False)[1][1]


SERVED_CHANGES_BYTES = 32 * 1024 * 1024  # about 25,000 dossiers' changes per worker
_SERVED: PerEngine[_ServedChanges] = PerEngine(lambda: _ServedChanges(SERVED_CHANGES_BYTES))


def _served_changes(engine: Engine) -> _ServedChanges:
    return _SERVED.of(engine)


_PULL_ALL_WARDS = (
    select(*PULL_COLUMNS)
    .select_from(
        CHANGE_LOG.join(
            RECORD,
            and_(
                RECORD.c.entity == CHANGE_LOG.c.entity,
                RECORD.c.entity_id == CHANGE_LOG.c.entity_id,
                RECORD.c.version == CHANGE_LOG.c.version,  # older log rows are skipped
            ),
        )
    )
    .where(
        CHANGE_LOG.c.seq > bindparam("p_cursor"),
        CHANGE_LOG.c.family.in_(bindparam("p_families", expanding=True)),
    )
    .order_by(CHANGE_LOG.c.seq)
    .limit(bindparam("p_limit"))
)
# Built once, like the push's statements (building it per pull was a tenth of its CPU).
_PULL_WARDS = _PULL_ALL_WARDS.where(
    CHANGE_LOG.c.ward_code.in_(bindparam("p_wards", expanding=True))
)


def _pull_rows(engine: Engine, caller: Caller, cursor: int, limit: int) -> list[Any]:
    """Up to `limit` + 1 change-log rows after `cursor` with their records, for the caller."""
    params = {"p_cursor": cursor, "p_families": sorted(caller.families), "p_limit": limit + 1}
    query = _PULL_ALL_WARDS
    if not caller.all_wards:
        query, params["p_wards"] = _PULL_WARDS, sorted(caller.wards)
    with engine.connect() as conn:
        return list(conn.execute(query, params).all())


class Unservable(ValueError):
    """A stored row the pull cannot send as it is; the message is a reason code, no value."""


_HELD = frozenset({"value", SEALED})  # a stored field holds its value plain or sealed


def _pulled_row(row: Any) -> tuple[LogRow, RecordRow]:
    seq, device_id, entity, entity_id, ward_code, version, fields_text = row
    fields = json.loads(fields_text) if isinstance(fields_text, str | bytes) else fields_text
    if not isinstance(fields, dict):
        raise Unservable("fields_not_an_object")
    for name, stamped in fields.items():
        if not isinstance(stamped, dict) or "hlc" not in stamped or not _HELD.intersection(stamped):
            raise Unservable(f"field_without_value_or_hlc:{_safe(name)}")
    record = RecordRow(None, entity, entity_id, ward_code, "", version, fields)
    return LogRow(seq, device_id), record


# A change taken apart holds Python objects: 2.25 times its JSON's bytes in memory on the
# benchmark's register (tracemalloc; its shape shared with its like, `flatten`), weighed at 3.
FLAT_BYTES_PER_JSON_BYTE = 3


def _serving(
    log: LogRow, record: RecordRow, one_clock: bool, tables: bool, lean: bool, columns: bool
) -> tuple[bytes | Flat, int]:
    """The change as a pull serves it (JSON bytes, or taken apart for columns), with what it
    weighs in the served-changes cache."""
    change = _change(log, record, one_clock, tables, lean)
    text = _json_bytes(change)  # also for a change taken apart: strict JSON, and its weight
    if not columns:
        return text, len(text)
    return flatten(change), FLAT_BYTES_PER_JSON_BYTE * len(text)


def _json_bytes(change: dict[str, Any]) -> bytes:
    text = json.dumps(change, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


def _change(
    log: LogRow,
    record: RecordRow,
    one_clock: bool = False,
    tables: bool = False,
    lean: bool = False,
) -> dict[str, Any]:
    """The change (the wire's `Change`, built as plain dicts: no model per row) as strict JSON,
    or Unservable: a stamp that is not a clock stamp, no NaN or Infinity, no NUL character
    (checked here, as the push checks values), no lone surrogate (UTF-8 refuses it). With
    `one_clock` (a client that asked), fields sharing one stamp carry it once; with `tables`
    (a client that asked), fields of several stamps name them in a table (`clock_table`); with
    `lean` (a client that asked), without what the reader rebuilds (`lean_change`)."""
    fields = {}
    for name, stored in record.fields.items():
        value, hlc = stored["value"], stored["hlc"]
        if not is_stamp(hlc) or E.json_problem(hlc):
            raise Unservable(f"bad_stamp:{_safe(name)}")
        if problem := E.json_problem(name) or E.json_problem(value):
            raise Unservable(f"{problem}:{_safe(name)}")
        fields[name] = {"value": value, "hlc": hlc}
    if problem := E.json_problem([record.entity, record.entity_id, record.ward_code]):
        raise Unservable(problem)
    change = {
        "seq": log.seq,
        "entity": record.entity,
        "entity_id": record.entity_id,
        "ward_code": record.ward_code,
        "version": record.version,
        "fields": fields,
    }
    stamps = {f["hlc"] for f in fields.values()}
    if one_clock and len(stamps) == 1:
        change["hlc"] = stamps.pop()
        change["fields"] = {name: {"value": f["value"]} for name, f in fields.items()}
    elif tables and len(stamps) > 1:
        change = clock_table(change)
    if lean:
        change = lean_change(change)
    return change


def _reason(exc: Exception) -> str:
    """Why a row was set aside, without any stored value (a pydantic error quotes its input)."""
    if isinstance(exc, Unservable):
        return str(exc)
    if isinstance(exc, ValidationError):
        return "invalid:" + ",".join(
            f"{'.'.join(_safe(p) for p in e['loc'])}:{e['type']}" for e in exc.errors()[:5]
        )
    return type(exc).__name__


def _safe(text: Any, limit: int = 60) -> str:
    """A name or id fit for a log line: printable ASCII, bounded."""
    return "".join(c if " " < c < "\x7f" else "?" for c in str(text)[:limit])


def _held_by(caller: Caller, log: LogRow, record: RecordRow, server_node: str) -> bool:
    """Whether the caller's device holds the record as it is here: the change log row of its
    latest version (the one joined) came from the caller's push, and every field carries one
    device's stamp, which is then the caller's (the fields it won carry its stamp)."""
    return (
        log.device_id == caller.device_id
        and record.entity != E.CONFLICT
        and _one_writer(record.fields) not in (None, server_node)
    )


def _without_held_fields(caller: Caller, log: LogRow, record: RecordRow, node: str) -> RecordRow:
    """The record without the fields `node` (the caller's) stamped, when its latest version
    came from the caller's push (as in `_held_by`); a field another node stamped (the
    server's, another device's) is kept."""
    if log.device_id != caller.device_id or record.entity == E.CONFLICT:
        return record
    others = {name: f for name, f in record.fields.items() if node_of(f["hlc"]) != node}
    return replace(record, fields=others) if others else record


def _one_writer(fields: dict[str, Any]) -> str | None:
    """The clock node that stamped every field, when there is one. The server's own node
    stamps what it writes on someone's behalf (a review decision and its comment): such a
    record was not written by the device, which must be sent it."""
    nodes = {node_of(f["hlc"]) for f in fields.values()}
    return nodes.pop() if len(nodes) == 1 else None


class _CursorNotes:
    """Confirmed pull cursors, written to `device` at most once a second in one transaction.

    They feed the lag metric and the admin's device list only; a write transaction per pull
    queued every pull behind the pushes for SQLite's one writer (issue 13, server load). The
    metric flushes first, so it reads every cursor noted in this process; a crash loses at
    most a second of notes, which the device's next pull gives again."""

    INTERVAL_S = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Engine, dict[str, int]] = {}
        self._flushed_at = time.monotonic()

    def note(self, engine: Engine, device_id: str, cursor: int) -> None:
        with self._lock:
            pending = self._pending.setdefault(engine, {})
            pending[device_id] = max(cursor, pending.get(device_id, 0))
            due = time.monotonic() - self._flushed_at >= self.INTERVAL_S
        if due:
            self.flush(engine)

    def flush(self, engine: Engine) -> None:
        with self._lock:
            pending = self._pending.pop(engine, {})
            self._flushed_at = time.monotonic()
        if not pending:
            return
        rows = [{"p_id": d, "p_cursor": c, "p_seen": utcnow()} for d, c in sorted(pending.items())]
        try:
            with writer_turn(engine), engine.begin() as conn:
                conn.execute(_NOTE_CURSOR, rows)
        except OperationalError:  # busy or cut: kept for the next flush, the pull still answers
            _log.warning("pull cursors not written this time (%s devices)", len(rows))
            with self._lock:
                again = self._pending.setdefault(engine, {})
                for device, cursor in pending.items():
                    again[device] = max(cursor, again.get(device, 0))


_DEVICE = Device.__table__
_NOTE_CURSOR = (
    update(_DEVICE)
    .where(_DEVICE.c.id == bindparam("p_id"), _DEVICE.c.last_pull_cursor < bindparam("p_cursor"))
    .values(last_pull_cursor=bindparam("p_cursor"), last_seen_at=bindparam("p_seen"))
)
CURSOR_NOTES = _CursorNotes()


def _note_cursor(engine: Engine, device_id: str, cursor: int) -> None:
    """Remember how far the device has confirmed (the cursor it asks from), for the lag metric."""
    CURSOR_NOTES.note(engine, device_id, cursor)


def sync_lag(engine: Engine) -> dict[str, int]:
    CURSOR_NOTES.flush(engine)
    with read_session(engine) as session:
        head = session.exec(select(func.max(ChangeLog.seq))).one() or 0
        active = select(Device).where(Device.revoked.is_(False), Device.kind == "tablet")
        cursors = [d.last_pull_cursor for d in session.exec(active)]
    behind = [head - c for c in cursors if c < head]
    return {
        "head": head,
        "devices": len(cursors),
        "devices_behind": len(behind),
        "lag_max": max(behind, default=0),
        "lag_sum": sum(behind),
    }
