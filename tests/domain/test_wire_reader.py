"""The server's push reader (`read_push`) refuses exactly what the `PushRequest` model refuses
and reads the same mutations from what it accepts: a table of hostile bodies, then random
changes of a good one, each run through both."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.domain.columns import to_columns
from app.domain.mutations import (
    MAX_FIELDS,
    MAX_MUTATIONS,
    Change,
    PushRequest,
    WireError,
    clock_table,
    lean_change,
    read_push,
)

STAMP = "0001733000000000:0000:dev1"
OTHER = "0001733000000000:0001:dev1"
ID = "0193a0b0-0000-7000-8000-000000000001"


def good_mutation(**over: Any) -> dict:
    m = {
        "mutation_id": ID,
        "device_id": "dev1",
        "entity": "dossier",
        "entity_id": "d-1",
        "ward_code": "00004",
        "base_version": 0,
        "fields": {"title": {"value": "Hồ sơ", "hlc": STAMP}, "n": {"value": 3, "hlc": OTHER}},
    }
    m.update(over)
    return m


def table_mutation(**over: Any) -> dict:
    """Several clocks written once each (`clock_table`), as clients since the fourth round send."""
    m = clock_table(good_mutation())
    m.update(over)
    return m


def one_clock_mutation(**over: Any) -> dict:
    """Derived id, one clock carried once (as clients since issue 13 send)."""
    m = good_mutation(hlc=STAMP, fields={"title": {"value": "a"}, "n": {"value": None}})
    del m["mutation_id"]
    m.update(over)
    return m


def reading(push: Any) -> tuple:
    """A push as read (the model or the reader), as a comparable value."""
    mutations = [
        (
            m.mutation_id, m.device_id, m.entity, m.entity_id, m.ward_code, m.base_version,
            {k: (f.value, f.hlc) for k, f in m.fields.items()},
        )
        for m in push.mutations
    ]
    return mutations, push.incarnation, push.answer, push.batch


def read_both(body: Any) -> tuple[Any, Any]:
    """(model's reading or "refused", reader's reading or "refused"), as comparable values."""
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    try:
        model = reading(PushRequest.model_validate(json.loads(raw)))
    except ValidationError:
        model = "refused"
    try:
        reader = reading(read_push(raw))
    except WireError:
        reader = "refused"
    return model, reader


def fields_of(n: int) -> dict:
    return {f"f{i}": {"value": i, "hlc": STAMP} for i in range(n)}


CASES: list[tuple[str, Any, bool]] = [
    # (what, body, accepted by the model)
    ("plain", {"mutations": [good_mutation()]}, True),
    ("one clock, derived id", {"mutations": [one_clock_mutation()]}, True),
    (
        "summary answer, incarnation",
        {"mutations": [one_clock_mutation()], "incarnation": "a1b2", "answer": "summary"},
        True,
    ),
    (
        "in columns (issue 13's ninth round)",
        {"columns": to_columns([good_mutation(), one_clock_mutation(), good_mutation()])},
        True,
    ),
    (
        "in columns, positions with a gap",
        {"columns": [{**to_columns([good_mutation()])[0], "at": [2]}]},
        False,
    ),
    (
        "in columns, one bad mutation among good ones",
        {"columns": to_columns([good_mutation(), good_mutation(ward_code="")])},
        False,
    ),
    ("in columns, not blocks", {"columns": {"paths": []}}, False),
    (
        "in columns, past the bound",
        {"columns": to_columns([one_clock_mutation()] * (MAX_MUTATIONS + 1))},
        False,
    ),
    ("rows beside columns: the rows are read", {"mutations": [], "columns": 5}, True),
    ("a batch id", {"mutations": [], "batch": "b-1"}, True),
    ("a batch id with a space", {"mutations": [], "batch": "b 1"}, False),
    ("a batch id of 41 characters", {"mutations": [], "batch": "b" * 41}, False),
    ("a batch id that is a number", {"mutations": [], "batch": 7}, False),
    ("unknown top-level key is ignored", {"mutations": [], "extra": {"x": 1}}, True),
    ("unknown mutation key is ignored", {"mutations": [good_mutation(extra=1)]}, True),
    (
        "uuid in upper case is made canonical",
        {"mutations": [good_mutation(mutation_id=ID.upper())]},
        True,
    ),
    ("uuid with braces", {"mutations": [good_mutation(mutation_id="{" + ID + "}")]}, True),
    (
        "field's own clock beats the shared one",
        {"mutations": [one_clock_mutation(fields={"a": {"value": 1, "hlc": OTHER}})]},
        True,
    ),
    (
        "field without value is None",
        {"mutations": [good_mutation(fields={"a": {"hlc": STAMP}})]},
        True,
    ),
    ("base_version as integral float", {"mutations": [good_mutation(base_version=2.0)]}, True),
    ("base_version as numeric string", {"mutations": [good_mutation(base_version="2")]}, True),
    (
        "no fields at all (the service refuses it per row)",
        {"mutations": [good_mutation(fields={})]},
        True,
    ),
    ("MAX_FIELDS fields", {"mutations": [good_mutation(fields=fields_of(MAX_FIELDS))]}, True),
    (
        "shared clock not a string is ignored, fields carry theirs",
        {"mutations": [good_mutation(hlc=5)]},
        True,
    ),
    ("not an object", [1, 2], False),
    ("no mutations", {}, False),
    ("mutations not a list", {"mutations": {"a": 1}}, False),
    ("too many mutations", {"mutations": [good_mutation()] * (MAX_MUTATIONS + 1)}, False),
    ("mutation not an object", {"mutations": [3]}, False),
    ("bad uuid", {"mutations": [good_mutation(mutation_id="nope")]}, False),
    ("uuid not a string", {"mutations": [good_mutation(mutation_id=7)]}, False),
    (
        "missing id and no clock to derive it",
        {"mutations": [{k: v for k, v in good_mutation().items() if k != "mutation_id"}]},
        False,
    ),
    ("empty device", {"mutations": [good_mutation(device_id="")]}, False),
    ("long device", {"mutations": [good_mutation(device_id="d" * 101)]}, False),
    ("long entity", {"mutations": [good_mutation(entity="e" * 31)]}, False),
    ("long entity id", {"mutations": [good_mutation(entity_id="e" * 41)]}, False),
    ("long ward", {"mutations": [good_mutation(ward_code="1" * 11)]}, False),
    ("NUL in ward", {"mutations": [good_mutation(ward_code="0\x00")]}, False),
    ("lone surrogate in entity id", {"mutations": [good_mutation(entity_id="a\ud800")]}, False),
    ("control char in entity", {"mutations": [good_mutation(entity="a\x07")]}, False),
    ("negative base_version", {"mutations": [good_mutation(base_version=-1)]}, False),
    ("fractional base_version", {"mutations": [good_mutation(base_version=1.5)]}, False),
    ("base_version null", {"mutations": [good_mutation(base_version=None)]}, False),
    ("fields not an object", {"mutations": [good_mutation(fields=[1])]}, False),
    ("too many fields", {"mutations": [good_mutation(fields=fields_of(MAX_FIELDS + 1))]}, False),
    ("field not an object", {"mutations": [good_mutation(fields={"a": 1})]}, False),
    ("field without a clock", {"mutations": [good_mutation(fields={"a": {"value": 1}})]}, False),
    (
        "field's clock null beats the shared one",
        {"mutations": [one_clock_mutation(fields={"a": {"value": 1, "hlc": None}})]},
        False,
    ),
    (
        "field's clock not a string",
        {"mutations": [good_mutation(fields={"a": {"value": 1, "hlc": 12}})]},
        False,
    ),
    (
        "field's clock not a stamp",
        {"mutations": [good_mutation(fields={"a": {"value": 1, "hlc": "yesterday"}})]},
        False,
    ),
    ("shared clock not a stamp", {"mutations": [one_clock_mutation(hlc="0:0:x")]}, False),
    (
        "NUL in a clock",
        {"mutations": [good_mutation(fields={"a": {"value": 1, "hlc": STAMP + "\x00"}})]},
        False,
    ),
    (
        "NUL in a field name",
        {"mutations": [good_mutation(fields={"a\x00": {"value": 1, "hlc": STAMP}})]},
        False,
    ),
    (
        "lone surrogate in a field name",
        {"mutations": [good_mutation(fields={"\udc00": {"value": 1, "hlc": STAMP}})]},
        False,
    ),
    ("incarnation too long", {"mutations": [], "incarnation": "i" * 65}, False),
    ("incarnation with NUL", {"mutations": [], "incarnation": "i\x00"}, False),
    ("incarnation not a string", {"mutations": [], "incarnation": 5}, False),
    ("unknown answer", {"mutations": [], "answer": "all"}, False),
    ("a clock table", {"mutations": [table_mutation()]}, True),
    (
        "a clock table with a full stamp of another node",
        {"mutations": [table_mutation(clocks=[STAMP, "0001733000000005:0000:dev2"])]},
        True,
    ),
    ("a clock table of one clock", {"mutations": [table_mutation(clocks=[STAMP])]}, False),
    ("a clock table that is not a list", {"mutations": [table_mutation(clocks=STAMP)]}, False),
    ("a clock table led by a step", {"mutations": [table_mutation(clocks=[[1, 0], STAMP])]}, False),
    ("a clock step back in time", {"mutations": [table_mutation(clocks=[STAMP, [-1, 0]])]}, False),
    ("a clock step of floats", {"mutations": [table_mutation(clocks=[STAMP, [1.0, 0]])]}, False),
    ("a clock step of booleans", {"mutations": [table_mutation(clocks=[STAMP, [True, 0]])]}, False),
    ("a clock step of three", {"mutations": [table_mutation(clocks=[STAMP, [1, 0, 0]])]}, False),
    ("a counter past four digits", {"mutations": [table_mutation(clocks=[STAMP, [0, 10_000]])]},
     False),
    ("a wall past sixteen digits",
     {"mutations": [table_mutation(clocks=[STAMP, [10**15, 0], [10**15, 0]] + [[10**15, 0]] * 9)]},
     False),
    ("a field naming no clock of the table",
     {"mutations": [table_mutation(fields={"title": {"value": "a", "c": 2}})]},
     False),
    ("a field naming its clock by a string",
     {"mutations": [table_mutation(fields={"title": {"value": "a", "c": "0"}})]},
     False),
    ("a field with its own stamp beside a table",
     {"mutations": [table_mutation(fields={"title": {"value": "a", "hlc": OTHER}})]},
     True),
    (
        "one bad mutation among good ones",
        {"mutations": [good_mutation(), good_mutation(ward_code="")]},
        False,
    ),
]


@pytest.mark.parametrize("what,body,accepted", CASES, ids=[c[0] for c in CASES])
def test_the_reader_refuses_what_the_model_refuses(what: str, body: Any, accepted: bool) -> None:
    model, reader = read_both(body)
    assert (model != "refused") is accepted, what  # the table itself is right about the model
    assert reader == model, what


def test_a_clock_table_reads_back_every_fields_own_stamp() -> None:
    stamps = [
        "0001733000000000:0000:dev1",
        "0001733000000000:0003:dev1",
        "0001733000065000:0000:dev1",
        "0001733000065000:0000:dev2",  # another node: written whole
        "0001733009999999:0001:dev2",
    ]
    fields = {f"answers.q{i}": {"value": i, "hlc": stamps[i % 5]} for i in range(12)}
    m = good_mutation(fields=fields)
    table = clock_table(m)
    assert table["clocks"] == [stamps[0], [0, 3], [65000, 0], stamps[3], [9934999, 1]]
    assert all(set(f) == {"value", "c"} for f in table["fields"].values())
    for read in (PushRequest.model_validate({"mutations": [table]}), read_push(json.dumps(
            {"mutations": [table]}))):
        assert {k: (f.value, f.hlc) for k, f in read.mutations[0].fields.items()} == {
            k: (f["value"], f["hlc"]) for k, f in fields.items()}
    assert clock_table(one := good_mutation(fields={"a": {"value": 1, "hlc": STAMP}})) is one
    assert len(json.dumps(table)) < len(json.dumps(m))


def test_a_lean_change_reads_back_as_the_whole_one() -> None:
    whole = {
        "seq": 41, "entity": "dossier", "entity_id": "d-1", "ward_code": "00004", "version": 3,
        "fields": {"ward_code": {"value": "00004"}, "status": {"value": 2}}, "hlc": STAMP,
    }
    lean = lean_change(whole)
    assert "seq" not in lean and "ward_code" not in lean
    assert Change.model_validate(lean) == Change.model_validate({**whole, "seq": 0})
    # A ward the fields do not repeat stays: a change of another ward is never rebuilt wrong.
    moved = {**whole, "fields": {**whole["fields"], "ward_code": {"value": "00007"}}}
    assert lean_change(moved)["ward_code"] == "00004"
    assert Change.model_validate(lean_change(moved)).ward_code == "00004"
    # Without a ward anywhere (or a ward that is not text) the change is refused, as before.
    for fields in ({"status": {"value": 2}}, {"ward_code": {"value": 4}}):
        with pytest.raises(ValidationError):
            Change.model_validate({**lean, "fields": fields})


def test_a_refusal_names_where_the_fault_is() -> None:
    body = {"mutations": [good_mutation(), good_mutation(fields={"a": {"value": 1, "hlc": "x"}})]}
    with pytest.raises(WireError) as refused:
        read_push(json.dumps(body))
    assert [e["loc"] for e in refused.value.errors] == [("mutations", 1, "fields", "a", "hlc")]


def test_a_body_that_is_not_json_is_a_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        read_push(b'{"mutations": [')


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from([STAMP, OTHER, ID, "", "\x00", "\ud800", "-1"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_KEYS = [
    "mutation_id",
    "device_id",
    "entity",
    "entity_id",
    "ward_code",
    "base_version",
    "fields",
    "hlc",
    "clocks",
]


@settings(max_examples=300, deadline=None)
@given(
    start=st.sampled_from(["plain", "one clock", "clock table"]),
    edits=st.lists(
        st.tuples(
            st.sampled_from(
                _KEYS + ["fields.title", "fields.title.hlc", "fields.title.value", "fields.new",
                         "fields.title.c"]
            ),
            st.one_of(st.just("<delete>"), _json),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_random_changes_of_a_good_mutation_read_alike(start: str, edits: list) -> None:
    starts = {
        "plain": good_mutation, "one clock": one_clock_mutation, "clock table": table_mutation
    }
    m = copy.deepcopy(starts[start]())
    for path, value in edits:
        where, *rest = path.split(".")
        target: Any = m
        keys = [where, *rest]
        for key in keys[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        if value == "<delete>":
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value
    model, reader = read_both({"mutations": [m], "answer": "summary"})
    assert reader == model
    # The same mutations in columns read the same, or are refused alike.
    assert read_both({"columns": to_columns([m, m]), "answer": "summary"}) == read_both(
        {"mutations": [m, m], "answer": "summary"}
    )


def test_a_derived_id_is_the_uuid_of_its_bytes() -> None:
    """`derived_mutation_id` formats its 16 bytes itself: the same text `uuid.UUID` writes (a
    device and the server must make the same id)."""
    import hashlib
    import uuid

    from app.domain.mutations import derived_mutation_id

    for n in range(50):
        stamp = f"{1733000000000 + n * 7919:016d}:{n:04d}:dev{n}"
        made = derived_mutation_id("dossier", f"d-{n}", n % 3, stamp, ["b", "a"], "i" * (n % 2))
        parts = ["dossier", f"d-{n}", str(n % 3), stamp, "a,b"] + (["i"] if n % 2 else [])
        digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
        raw = bytearray((1733000000000 + n * 7919).to_bytes(6, "big") + digest[:10])
        raw[6] = (raw[6] & 0x0F) | 0x70
        raw[8] = (raw[8] & 0x3F) | 0x80
        assert made == str(uuid.UUID(bytes=bytes(raw)))
