"""The sync wire schema, shared by the device's outbox, the sync client and the server."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from app.domain.hlc import is_stamp
from app.domain.text import text_problem

MAX_FIELDS = 300
# What this server reads beyond the original wire form, told in every push summary.
READS = ("one_clock", "derived_ids", "batches")


def refuse_nul(text: str) -> str:
    """Wire text follows the text rule (`app.domain.text.text_problem`): no NUL (PostgreSQL text
    cannot hold it), no lone surrogate (no UTF-8 reply could carry it back), no control
    characters but newline and tab."""
    reason = text_problem(text)
    if reason is not None:
        raise ValueError(
            "must not contain NUL (\\x00), lone surrogates or control characters other than "
            f"newline and tab ({reason})"
        )
    return text


# A string of the wire: every str of a request body or path goes through this type.
WireText = Annotated[str, AfterValidator(refuse_nul)]


class FieldValue(BaseModel):
    value: Any = None
    hlc: WireText

    @field_validator("hlc")
    @classmethod
    def _stamp(cls, v: str) -> str:
        if not is_stamp(v):
            raise ValueError("hlc must be a clock stamp 'wall:counter:node'")
        return v


def spread_clock(data: Any) -> Any:
    """A record whose fields share one clock may carry it once, as the mutation's (or the
    change's) `hlc`; each field without its own stamp takes it (see `one_clock`)."""
    if not isinstance(data, dict) or not isinstance(data.get("hlc"), str):
        return data
    shared = data["hlc"]
    fields = data.get("fields")
    rest = {k: v for k, v in data.items() if k != "hlc"}
    if isinstance(fields, dict):
        rest["fields"] = {
            name: {"hlc": shared, **fv} if isinstance(fv, dict) else fv
            for name, fv in fields.items()
        }
    return rest


class Mutation(BaseModel):
    mutation_id: str
    device_id: WireText = Field(min_length=1, max_length=100)
    entity: WireText = Field(min_length=1, max_length=30)
    entity_id: WireText = Field(min_length=1, max_length=40)
    ward_code: WireText = Field(min_length=1, max_length=10)
    base_version: int = Field(ge=0)
    fields: dict[WireText, FieldValue] = Field(max_length=MAX_FIELDS)

    @field_validator("mutation_id")
    @classmethod
    def _uuid(cls, v: str) -> str:
        return str(uuid.UUID(v))

    @model_validator(mode="before")
    @classmethod
    def _one_clock(cls, data: Any) -> Any:
        return spread_clock(data)


def derived_mutation_id(
    entity: str,
    entity_id: str,
    base_version: int,
    hlc: str,
    names: list[str],
    incarnation: str = "",
) -> str:
    """The id of a local write made from its record, base version, clock and field names, so
    that a push may leave it out and the server make the same one (one write per record per
    clock tick: two writes share an id only if they are the same write). Laid out as a UUIDv7
    (the clock's milliseconds first, then 74 bits of SHA-256), so that ids sent in full still
    compress like the time-ordered ids they replace.

    `incarnation` is the store's (app.storage: new in every backup's copy). A store put back
    from a backup starts again from the clock mark it had then; with a clock that does not
    advance (a tablet whose clock was reset) it would stamp a write exactly as a write made
    after the backup was, and without the incarnation share its id, which the server would
    answer as already applied: a write lost in silence."""
    parts = [entity, entity_id, str(base_version), hlc, ",".join(sorted(names))]
    key = "\x1f".join(parts + ([incarnation] if incarnation else []))
    digest = hashlib.sha256(key.encode()).digest()
    head = hlc[:16]
    wall_ms = int(head) % 2**48 if head.isdigit() else 0
    raw = bytearray(wall_ms.to_bytes(6, "big") + digest[:10])
    raw[6] = (raw[6] & 0x0F) | 0x70  # version 7 layout
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(raw)))


def _derived_id_of(wire: Any, incarnation: str = "") -> Any:
    """A wire mutation without `mutation_id` but with one clock (`hlc`) gets its derived id;
    anything else is left for the schema to judge (a missing id is refused there)."""
    if not isinstance(wire, dict) or "mutation_id" in wire or not isinstance(wire.get("hlc"), str):
        return wire
    fields, entity_id = wire.get("fields"), wire.get("entity_id")
    version = wire.get("base_version")
    if not (isinstance(fields, dict) and isinstance(entity_id, str) and type(version) is int):
        return wire
    mid = derived_mutation_id(
        str(wire.get("entity")), entity_id, version, wire["hlc"], [*fields], incarnation
    )
    return {"mutation_id": mid, **wire}


def leave_out_derived_id(wire: dict, incarnation: str = "") -> dict:
    """A mutation as JSON without its id when the server can derive it (one clock carried
    once and the id made by `derived_mutation_id`); unchanged otherwise."""
    hlc = wire.get("hlc")
    if not isinstance(hlc, str):
        return wire
    derived = derived_mutation_id(
        wire["entity"], wire["entity_id"], wire["base_version"], hlc, [*wire["fields"]],
        incarnation,
    )
    if derived != wire["mutation_id"]:
        return wire
    return {k: v for k, v in wire.items() if k != "mutation_id"}


# A push batch's id, made by its client: letters, digits, "-" and "_", at most 40.
BATCH_ID_PATTERN = r"^[0-9A-Za-z_-]{0,40}$"
MAX_BATCH_IDS = 32  # ids asked about in one POST /sync/batches


class PushRequest(BaseModel):
    mutations: list[Mutation] = Field(max_length=2000)
    incarnation: WireText = Field(default="", max_length=64)  # the sending store's, for ids
    # The id its client gave this batch (clients since issue 13): see `BatchesRequest`.
    batch: str = Field(default="", pattern=BATCH_ID_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _derive_ids(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("mutations"), list):
            return data
        incarnation = data.get("incarnation")
        incarnation = incarnation if isinstance(incarnation, str) else ""
        return {**data, "mutations": [_derived_id_of(m, incarnation) for m in data["mutations"]]}
    # "summary": answer with a PushSummary (ranges of applied positions, then the others);
    # "results" (the default, what older clients get): one PushResult per mutation.
    answer: Literal["results", "summary"] = "results"


PushStatus = Literal["applied", "conflict", "rejected"]


class PushResult(BaseModel):
    mutation_id: str
    status: PushStatus
    reason: str | None = None
    version: int = 0


def one_clock(wire: dict) -> dict:
    """A mutation as JSON with its fields' shared clock carried once (`hlc` on the mutation,
    fields as {"value"}); unchanged when the fields carry different clocks."""
    stamps = {f["hlc"] for f in wire["fields"].values()}
    if len(stamps) != 1:
        return wire
    fields = {name: {"value": f["value"]} for name, f in wire["fields"].items()}
    return {**wire, "hlc": stamps.pop(), "fields": fields}


class PushResponse(BaseModel):
    results: list[PushResult]


class PushException(BaseModel):
    """An answer of a summary that is not a plain `applied`, by the mutation's position."""

    index: int = Field(ge=0)
    status: PushStatus
    reason: str | None = None
    version: int = 0


class PushSummary(BaseModel):
    """The compact push answer: positions (in the request) answered `applied`, as [start, stop)
    ranges, then only the exceptions. A position in neither was not answered."""

    applied: list[tuple[int, int]]
    exceptions: list[PushException]
    # The wire forms this server reads beyond the original (`READS`); absent from older
    # servers, which read one clock per record but not derived ids.
    reads: list[str] = Field(default_factory=list)


def summarise(results: list[PushResult]) -> PushSummary:
    ranges: list[tuple[int, int]] = []
    exceptions: list[PushException] = []
    for index, r in enumerate(results):
        if r.status == "applied":
            if ranges and ranges[-1][1] == index:
                ranges[-1] = (ranges[-1][0], index + 1)
            else:
                ranges.append((index, index + 1))
        else:
            exceptions.append(
                PushException(index=index, status=r.status, reason=r.reason, version=r.version)
            )
    return PushSummary(applied=ranges, exceptions=exceptions, reads=list(READS))


def expand(summary: PushSummary, mutation_ids: list[str]) -> list[PushResult]:
    """The per-mutation results a summary stands for, for the ids sent in that order; a
    position the summary leaves out gets no result (the client keeps it queued). ValueError
    for a position outside the request."""
    n = len(mutation_ids)
    out: dict[int, PushResult] = {}
    for start, stop in summary.applied:
        if not 0 <= start < stop <= n:
            raise ValueError("push summary: range outside the request")
        for i in range(start, stop):
            out[i] = PushResult(mutation_id=mutation_ids[i], status="applied")
    for e in summary.exceptions:
        if e.index >= n:
            raise ValueError("push summary: position outside the request")
        out[e.index] = PushResult(
            mutation_id=mutation_ids[e.index], status=e.status, reason=e.reason, version=e.version
        )
    return [out[i] for i in sorted(out)]


class Change(BaseModel):
    seq: int
    entity: str
    entity_id: str
    ward_code: str
    version: int
    fields: dict[str, FieldValue]

    @model_validator(mode="before")
    @classmethod
    def _one_clock(cls, data: Any) -> Any:
        return spread_clock(data)


class PullResponse(BaseModel):
    changes: list[Change]
    next_cursor: int
    has_more: bool


def new_mutation_id() -> str:
    return str(uuid.uuid4())


class BatchesRequest(BaseModel):
    """POST /sync/batches: which of these push batches (ids the caller's device gave them) did
    the server commit? Asked after a cut, for the pushes whose answers never came."""

    ids: list[Annotated[str, Field(min_length=1, pattern=BATCH_ID_PATTERN)]] = Field(
        max_length=MAX_BATCH_IDS
    )


class BatchesResponse(BaseModel):
    """The committed ones of the ids asked, each with the answer its push was given (a
    `PushSummary` of the batch as it was sent); an id left out is not known: its rows go
    again (the server answers a mutation it applied from its stored result)."""

    batches: dict[str, PushSummary]
