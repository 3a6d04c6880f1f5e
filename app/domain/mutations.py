"""The sync wire schema, shared by the device's outbox, the sync client and the server."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from app.domain.columns import from_columns
from app.domain.hlc import Timestamp, is_stamp
from app.domain.text import text_problem

MAX_FIELDS = 300
MAX_MUTATIONS = 2000  # per push
MAX_INCARNATION = 64
# What this server reads beyond the original wire form, told in every push summary.
# "then_pull" (issue 13's sixth round): a push may ask for the first pull page after it
# (`?pull=<cursor>`), answered in the summary's "pull" member as GET /sync/pull answers it.
# "columns" (issue 13's ninth round): a push's mutations may come as blocks of columns
# (`app.domain.columns`) in "columns" instead of "mutations".
READS = ("one_clock", "derived_ids", "batches", "clock_table", "then_pull", "columns")


# Short wire strings already found to follow a rule (field names, clock stamps, ids, wards):
# a push or a pull repeats the same few thousands of times (issue 13, fourth round). Only
# plain `str` is kept, so equality is the string's own; the memo is emptied when full.
_MEMO_MAX = 4096
_MEMO_LEN = 80
_TEXT_OK: dict[str, None] = {}
_STAMP_OK: dict[str, None] = {}


def _remember(memo: dict[str, None], text: str) -> None:
    if type(text) is str and len(text) <= _MEMO_LEN:
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[text] = None


def refuse_nul(text: str) -> str:
    """Wire text follows the text rule (`app.domain.text.text_problem`): no NUL (PostgreSQL text
    cannot hold it), no lone surrogate (no UTF-8 reply could carry it back), no control
    characters but newline and tab."""
    if type(text) is str and text in _TEXT_OK:
        return text
    reason = text_problem(text)
    if reason is not None:
        raise ValueError(
            "must not contain NUL (\\x00), lone surrogates or control characters other than "
            f"newline and tab ({reason})"
        )
    _remember(_TEXT_OK, text)
    return text


# A string of the wire: every str of a request body or path goes through this type.
WireText = Annotated[str, AfterValidator(refuse_nul)]


def stamp_rule(text: str) -> str:
    """A field's `hlc` is a clock stamp (`app.domain.hlc.is_stamp`)."""
    if type(text) is str and text in _STAMP_OK:
        return text
    if not is_stamp(text):
        raise ValueError("hlc must be a clock stamp 'wall:counter:node'")
    _remember(_STAMP_OK, text)
    return text


_WIRE_STAMP_OK: dict[str, None] = {}


def wire_stamp(text: str) -> str:
    """A field's `hlc`: wire text (`refuse_nul`) that is a clock stamp (`stamp_rule`), checked
    in that order, with their errors; in one call per field (issue 13, sixth round: a push or
    a pull checks tens of thousands, nearly all stamps seen before)."""
    if type(text) is str and text in _WIRE_STAMP_OK:
        return text
    stamp_rule(refuse_nul(text))
    _remember(_WIRE_STAMP_OK, text)
    return text


class FieldValue(BaseModel):
    value: Any = None
    hlc: Annotated[str, AfterValidator(wire_stamp)]


MAX_WALL_STEP = 10**15  # milliseconds between two clocks of a table (about 31,700 years)


def clock_table(wire: dict) -> dict:
    """A mutation as JSON whose fields carry several clocks (an audit's answers, each stamped
    when given), with each distinct clock written once in `clocks`, in order, and each field
    naming its clock by position (`{"value", "c"}`). After the first, a clock of the same node
    as the one before it is `[milliseconds since it, counter]`: an audit's answers, minutes
    apart, cost a few digits each instead of a whole stamp (issue 13). Unchanged when the
    fields share one clock (`one_clock`) or already carry none."""
    fields = wire["fields"]
    if any("hlc" not in f for f in fields.values()):
        return wire
    stamps = sorted({f["hlc"] for f in fields.values()})
    if len(stamps) < 2:
        return wire
    parsed = [Timestamp.parse(t) for t in stamps]
    table: list[Any] = [stamps[0]]
    for before, stamp, text in zip(parsed, parsed[1:], stamps[1:], strict=False):
        same_node = stamp.node == before.node and stamp.wall_ms >= before.wall_ms
        table.append([stamp.wall_ms - before.wall_ms, stamp.counter] if same_node else text)
    at = {t: i for i, t in enumerate(stamps)}
    carried = {name: {"value": f["value"], "c": at[f["hlc"]]} for name, f in fields.items()}
    return {**wire, "clocks": table, "fields": carried}


def _table_stamps(table: Any) -> list[str] | None:
    """The stamps a `clocks` table stands for; None when it is not one (the fields then lack
    their clocks, which the schema refuses)."""
    if not isinstance(table, list) or not 2 <= len(table) <= MAX_FIELDS:
        return None
    if not is_stamp(table[0]):
        return None
    stamps = [table[0]]
    before = Timestamp.parse(table[0])
    for entry in table[1:]:
        if is_stamp(entry):
            before = Timestamp.parse(entry)
        elif (
            isinstance(entry, list) and len(entry) == 2
            and all(type(n) is int for n in entry)
            and 0 <= entry[0] <= MAX_WALL_STEP and 0 <= entry[1] < 10_000
            and before.wall_ms + entry[0] < 10**16
        ):
            before = Timestamp(before.wall_ms + entry[0], entry[1], before.node)
        else:
            return None
        stamps.append(str(before))
    return stamps


def spread_clock_table(data: Any) -> Any:
    """A mutation carrying a `clocks` table (`clock_table`) as one whose fields each carry
    their own `hlc`; anything else as it came. A field naming no clock of the table is left
    without one, and refused as any field without its clock is."""
    if not isinstance(data, dict) or "clocks" not in data:
        return data
    stamps = _table_stamps(data["clocks"])
    rest = {k: v for k, v in data.items() if k != "clocks"}
    fields = data.get("fields")
    if stamps is None or not isinstance(fields, dict):
        return rest
    spread = {}
    for name, fv in fields.items():
        at = fv.get("c") if isinstance(fv, dict) and "hlc" not in fv else None
        if type(at) is int and 0 <= at < len(stamps):
            fv = {"hlc": stamps[at], **{k: v for k, v in fv.items() if k != "c"}}
        spread[name] = fv
    return {**rest, "fields": spread}


def spread_clock(data: Any) -> Any:
    """A record whose fields share one clock may carry it once, as the mutation's (or the
    change's) `hlc`; each field without its own stamp takes it (see `one_clock`). A record
    whose fields carry several may carry them as a table (`clock_table`)."""
    data = spread_clock_table(data)
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


class MutationHead(BaseModel):
    """A mutation's keys but its fields, with their rules: `Mutation` (the schema, the device's
    outbox) and the server's reader (`read_push`) both take them from here."""

    mutation_id: str
    device_id: WireText = Field(min_length=1, max_length=100)
    entity: WireText = Field(min_length=1, max_length=30)
    entity_id: WireText = Field(min_length=1, max_length=40)
    ward_code: WireText = Field(min_length=1, max_length=10)
    base_version: int = Field(ge=0)

    @field_validator("mutation_id")
    @classmethod
    def _uuid(cls, v: str) -> str:
        return str(uuid.UUID(v))


class Mutation(MutationHead):
    fields: dict[WireText, FieldValue] = Field(max_length=MAX_FIELDS)

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
    h = raw.hex()  # str(uuid.UUID(bytes=raw)), without building the UUID
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
    mutations: list[Mutation] = Field(max_length=MAX_MUTATIONS)
    incarnation: WireText = Field(default="", max_length=MAX_INCARNATION)  # the store's, for ids
    # The id its client gave this batch (clients since issue 13): see `BatchesRequest`.
    batch: str = Field(default="", pattern=BATCH_ID_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _derive_ids(cls, data: Any) -> Any:
        return _with_derived_ids(data)

    # "summary": answer with a PushSummary (ranges of applied positions, then the others);
    # "results" (the default, what older clients get): one PushResult per mutation.
    answer: Literal["results", "summary"] = "results"


def rows_from_columns(data: Any, rows: str, bound: int) -> Any:
    """A body (a push, a pull page) whose list `rows` came as blocks of columns ("columns"),
    with it read back (at most `bound` rows); any other body as it is. A malformed block:
    ValueError, which refuses the body whole."""
    if isinstance(data, dict) and "columns" in data and rows not in data:
        read = from_columns(data["columns"], bound)
        return {**{k: v for k, v in data.items() if k != "columns"}, rows: read}
    return data


def _with_derived_ids(data: Any) -> Any:
    data = rows_from_columns(data, "mutations", MAX_MUTATIONS)
    if not isinstance(data, dict) or not isinstance(data.get("mutations"), list):
        return data
    incarnation = data.get("incarnation")
    incarnation = incarnation if isinstance(incarnation, str) else ""
    return {**data, "mutations": [_derived_id_of(m, incarnation) for m in data["mutations"]]}


# ---------------------------------------------------------------------------------------------
# The server's reader of a push body: the same rules as `PushRequest`, without a model per
# field. The request's and each mutation's own keys go through pydantic models that share
# `PushRequest`'s and `MutationHead`'s fields; each field of `fields` is checked here against
# the rules `FieldValue` and `Mutation.fields` state (`refuse_nul` for the name and the stamp,
# `stamp_rule`, one clock spread as `spread_clock` does, at most MAX_FIELDS).


class WireField(NamedTuple):
    """A field as read from the wire (what `FieldValue` holds)."""

    value: Any
    hlc: str


@dataclass(slots=True)
class WireMutation:
    """A mutation as the server reads it (the attributes of `Mutation`)."""

    mutation_id: str
    device_id: str
    entity: str
    entity_id: str
    ward_code: str
    base_version: int
    fields: dict[str, WireField]


@dataclass(slots=True)
class WirePush:
    mutations: list[WireMutation]
    incarnation: str = ""
    answer: Literal["results", "summary"] = "results"
    batch: str = ""


class _ReadMutation(MutationHead):
    fields: dict[str, Any] = Field(max_length=MAX_FIELDS)  # each field: `_read_fields`
    hlc: Any = None  # the one clock, spread by `_read_fields`

    @model_validator(mode="before")
    @classmethod
    def _clock_table(cls, data: Any) -> Any:
        return spread_clock_table(data)


class _ReadPush(BaseModel):
    mutations: list[_ReadMutation] = Field(max_length=MAX_MUTATIONS)
    incarnation: WireText = Field(default="", max_length=MAX_INCARNATION)
    answer: Literal["results", "summary"] = "results"
    batch: str = Field(default="", pattern=BATCH_ID_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _derive_ids(cls, data: Any) -> Any:
        return _with_derived_ids(data)


class WireError(ValueError):
    """A push body the wire rules refuse; `errors` as pydantic lists them (loc, msg, type)."""

    def __init__(self, errors: list[dict]) -> None:
        super().__init__(f"{len(errors)} wire error(s): {errors[:1]}")
        self.errors = errors


def read_push(body: bytes | str) -> WirePush:
    """A push body (JSON) read against the rules of `PushRequest`: what the model refuses, this
    refuses (WireError, or json.JSONDecodeError / UnicodeDecodeError for a body that is not
    JSON); what it accepts reads the same (`tests/domain/test_wire_reader.py`)."""
    return read_push_data(json.loads(body))


def read_push_data(data: Any) -> WirePush:
    try:
        head = _ReadPush.model_validate(data)
    except ValidationError as error:
        raise WireError(error.errors(include_url=False)) from None
    errors: list[dict] = []
    out: list[WireMutation] = []
    for index, m in enumerate(head.mutations):
        fields = _read_fields(m.fields, m.hlc if isinstance(m.hlc, str) else None, index, errors)
        out.append(
            WireMutation(
                m.mutation_id, m.device_id, m.entity, m.entity_id, m.ward_code, m.base_version,
                fields,
            )
        )
    if errors:
        raise WireError(errors)
    return WirePush(out, head.incarnation, head.answer, head.batch)


def _read_fields(
    raw: dict[str, Any], shared: str | None, index: int, errors: list[dict]
) -> dict[str, WireField]:
    out: dict[str, WireField] = {}
    good: set[str] = set()  # stamps found good (a record's fields mostly share one)
    # The text rule looks at single characters: the names joined break it where one does.
    names_ok = text_problem("".join(raw)) is None
    for name, fv in raw.items():
        at = ("mutations", index, "fields", name)
        problem = None if names_ok else _rule_problem(refuse_nul, name)
        if problem:
            errors.append({"type": "value_error", "loc": (*at, "[key]"), "msg": problem})
        if not isinstance(fv, dict):
            msg = "Input should be a valid dictionary or instance of FieldValue"
            errors.append({"type": "model_type", "loc": at, "msg": msg})
            continue
        if "hlc" in fv:
            hlc = fv["hlc"]
        elif shared is not None:
            hlc = shared
        else:
            errors.append({"type": "missing", "loc": (*at, "hlc"), "msg": "Field required"})
            continue
        if not isinstance(hlc, str):
            msg = "Input should be a valid string"
            errors.append({"type": "string_type", "loc": (*at, "hlc"), "msg": msg})
            continue
        if hlc not in good:
            problem = _rule_problem(refuse_nul, hlc) or _rule_problem(stamp_rule, hlc)
            if problem:
                errors.append({"type": "value_error", "loc": (*at, "hlc"), "msg": problem})
                continue
            good.add(hlc)
        out[name] = WireField(fv.get("value"), hlc)
    return out


def _rule_problem(rule, text: str) -> str | None:
    try:
        rule(text)
    except ValueError as error:
        return f"Value error, {error}"
    return None


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
    # The change log's last seq once this push was committed (servers since issue 13's sixth
    # round): a pull page read from a head at least this high holds what the push wrote.
    through: int | None = None


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
    """A record's state in a pull page. `seq` (its change-log position) is informational: the
    page's `next_cursor` is what a client keeps, and a lean page (`lean_change`) leaves it out,
    as it leaves out `ward_code` when the fields carry the same."""

    seq: int = 0
    entity: str
    entity_id: str
    ward_code: str
    version: int
    fields: dict[str, FieldValue]

    @model_validator(mode="before")
    @classmethod
    def _one_clock(cls, data: Any) -> Any:
        return spread_clock(ward_code_from_fields(data))


def lean_change(change: dict[str, Any]) -> dict[str, Any]:
    """A pulled change without what its reader can rebuild (issue 13: about 9% of a pull's
    zstd bytes): its `seq`, and its `ward_code` when the fields carry the same ward as a plain
    value (`ward_code_from_fields` puts it back)."""
    out = {k: v for k, v in change.items() if k != "seq"}
    carried = out.get("fields", {}).get("ward_code")
    if isinstance(carried, dict) and carried.get("value") == out.get("ward_code"):
        del out["ward_code"]
    return out


def ward_code_from_fields(data: Any) -> Any:
    """A lean change's `ward_code` taken back from its fields (left alone when present, or
    when the fields have no plain ward: the model then refuses the change as before)."""
    if not isinstance(data, dict) or "ward_code" in data:
        return data
    fields = data.get("fields")
    carried = fields.get("ward_code") if isinstance(fields, dict) else None
    if isinstance(carried, dict) and isinstance(carried.get("value"), str):
        return {**data, "ward_code": carried["value"]}
    return data


# A pull answer's head repeats what its body ends with (`PullHead`), so that a client may ask
# for the next page while the body is still on its way (issue 13's fifth round).
PULL_NEXT_HEADER = "Sync-Pull-Next"


@dataclass(frozen=True)
class PullHead:
    """What a pull answer's head says of its body (`Sync-Pull-Next`, servers since issue 13's
    fifth round): the next cursor, whether more follows, and how many changes the page holds.
    Read before the body arrives; the body is still what counts."""

    next_cursor: int
    has_more: bool
    changes: int

    def header(self) -> str:
        """The header's value, as the server writes it."""
        return f"cursor={self.next_cursor}; more={int(self.has_more)}; changes={self.changes}"

    @classmethod
    def parse(cls, value: str | None) -> PullHead | None:
        """None for a missing or malformed header (an older server, a proxy that rewrote it)."""
        if not value:
            return None
        parts: dict[str, str] = {}
        for part in value.split(";"):
            name, sep, number = part.strip().partition("=")
            if not sep or not number.strip().isdigit():
                return None
            parts[name.strip()] = number.strip()
        try:
            more = int(parts["more"])
            head = cls(int(parts["cursor"]), more == 1, int(parts["changes"]))
        except (KeyError, ValueError):
            return None
        return head if more in (0, 1) else None


# The most changes one pull page may hold (a server clamps its pages to at most this).
PULL_PAGE_LIMIT = 4000


class PullResponse(BaseModel):
    """A pull page. Its changes come row by row ("changes"), or as blocks of columns
    ("columns", `app.domain.columns`: servers since issue 13's ninth round, to a client that
    asked), read back into the same rows before they are checked."""

    changes: list[Change]
    next_cursor: int
    has_more: bool

    @model_validator(mode="before")
    @classmethod
    def _rows_from_columns(cls, data: Any) -> Any:
        return rows_from_columns(data, "changes", PULL_PAGE_LIMIT)


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
