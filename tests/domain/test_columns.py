"""Changes as blocks of columns (issue 13's ninth round): any page reads back exactly as it
was written, in its order; a malformed page is refused whole."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.columns import flatten, from_columns, to_columns
from app.domain.mutations import PullResponse

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
# Few names, so that shapes repeat and blocks hold several changes; "fields" of every form.
_NAMES = st.sampled_from(["code", "ward_code", "answers.a.b", "", "fields", "at"])
_MEMBERS = st.dictionaries(st.sampled_from(["value", "hlc", "c"]), _VALUES, max_size=3)
_FIELDS = st.dictionaries(_NAMES, _MEMBERS, max_size=4) | _VALUES
_CHANGES = st.lists(
    st.fixed_dictionaries(
        {"entity": st.sampled_from(["dossier", "audit"]), "entity_id": st.text(max_size=6)},
        optional={"version": st.integers(0, 9), "hlc": _VALUES, "fields": _FIELDS},
    ),
    max_size=30,
)


@settings(max_examples=400, deadline=None)
@given(_CHANGES)
def test_any_page_reads_back_as_it_was_written_in_its_order(changes):
    blocks = json.loads(json.dumps(to_columns(changes)))  # as it crosses the wire
    assert from_columns(blocks, max_changes=len(changes)) == changes


def test_a_page_of_two_shapes_is_two_blocks_with_each_value_once():
    dossier = {"entity": "dossier", "entity_id": "d1", "fields": {"code": {"value": "A"}}}
    event = {"entity": "dossier_event", "entity_id": "e1", "fields": {"at": {"value": 1}}}
    changes = [dossier, event, {**dossier, "entity_id": "d2"}, {**event, "entity_id": "e2"}]
    blocks = to_columns(changes)
    assert [b["paths"] for b in blocks] == [
        [["entity"], ["entity_id"], ["fields", "code", "value"]],
        [["entity"], ["entity_id"], ["fields", "at", "value"]],
    ]
    assert [b["at"] for b in blocks] == [[1, 2], [2, 2]]  # positions 0, 2 and 1, 3
    assert blocks[0]["cols"][1] == ["d1", "d2"]
    assert from_columns(blocks, 4) == changes


def _block(**parts):
    block = {
        "paths": [["entity"], ["fields", "code", "value"]],
        "at": [1, 1],
        "cols": [["dossier", "dossier"], ["A", "B"]],
    }
    return {**block, **parts}


@pytest.mark.parametrize(
    ("blocks", "why"),
    [
        ({"paths": []}, "not a list of blocks"),
        ([_block(extra=1)], "is not {paths, at, cols}"),
        ([_block(at=[1])], "do not match"),
        ([_block(cols=[["dossier", "dossier"]])], "do not match"),
        ([_block(paths=[["entity"], ["fields", "code"]])], "neither"),
        ([_block(paths=[["entity"], ["entity", "x", "y"]])], "neither"),
        ([_block(paths=[["entity"], [1]])], "neither"),
        ([_block(paths=[["entity"], ["entity"]])], "twice in a block"),
        ([_block(paths=[["fields"], ["fields", "code", "value"]])], "both whole and spread"),
        ([_block(at=[1, 0])], "does not follow"),
        ([_block(at=[1, True])], "does not follow"),
        ([_block(at=[1, 1.0])], "does not follow"),
        ([_block(at=[2, 1])], "leave a gap"),
        ([_block(), _block()], "taken twice"),
        ([_block(at=[1, 3])], "past the bound"),
    ],
)
def test_a_malformed_page_is_refused_whole(blocks, why):
    with pytest.raises(ValueError, match=why):
        from_columns(blocks, max_changes=3)


def test_a_pull_page_reads_either_form_into_the_same_changes():
    change = {
        "entity": "dossier_event",
        "entity_id": "01a252b5-e31c-7001-a39d-7ad6cf3bcc93",
        "version": 1,
        "hlc": "0001796683981606:0000:bf96653a-e3c9-4ce4-8c1b-e28139e83ba6",
        "fields": {"ward_code": {"value": "00004"}, "to_status": {"value": 2}},
    }
    rows = {"changes": [change], "next_cursor": 9, "has_more": False}
    cols = {"columns": to_columns([change]), "next_cursor": 9, "has_more": False}
    assert PullResponse.model_validate(cols) == PullResponse.model_validate(rows)
    broken = {**cols, "columns": [{**cols["columns"][0], "at": [2]}]}
    with pytest.raises(ValueError, match="leave a gap"):
        PullResponse.model_validate(broken)


def test_changes_of_one_shape_share_one_tuple_of_paths():
    """A server keeps changes taken apart; each holding its own paths weighed 5.4 times the
    change's JSON, shared 2.25 times (the served-changes cache's bound counts on it)."""
    first = flatten({"entity": "dossier", "fields": {"code": {"value": "A"}}})
    second = flatten({"entity": "dossier", "fields": {"code": {"value": "B"}}})
    assert first[0] is second[0] and first[1] == ["dossier", "A"]
