"""A JSON field value's size rule (issue 13, sixth round): the walk bounds the JSON text's
bytes and the value is dumped only when the bound passes the limit; the answers are those of
dumping every object and list."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import entities as E


def dumped_always(value) -> str | None:
    """json_problem as it was: every object and list that passed the walk dumped."""
    reason = E._json_problem(value, 0, [E.MAX_JSON_ITEMS, 0])
    container = isinstance(value, dict | list | tuple)
    if reason is None and container and E._json_size(value) > E.MAX_JSON_BYTES:
        return "too_large"
    return reason


# Wide characters (3 and 4 bytes of UTF-8, escaped controls, quotes) and long strings, so that
# values land on both sides of the 64 KiB limit.
_TEXT = st.text(
    alphabet=st.sampled_from(["a", "é", "ệ", "😀", '"', "\\", "\n", "\t", "\x7f", "\x01"]),
    max_size=E.MAX_JSON_STRING,
)
_SCALARS = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.floats(
    -1e15 + 1, 1e15 - 1, allow_nan=False
) | _TEXT
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=12)
    | st.dictionaries(st.text(max_size=E.MAX_JSON_KEY), inner, max_size=8),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_the_size_rule_answers_as_dumping_every_value(value):
    assert E.json_problem(value) == dumped_always(value)
    budget = [E.MAX_JSON_ITEMS, 0]
    if E._json_problem(value, 0, budget) is None:
        assert E._json_size(value) <= budget[1]  # the bound never falls short


def test_values_past_the_bound_are_measured_and_judged_by_their_size():
    wide = "\U0001f600" * 4000  # 16,002 bytes as JSON, bounded at 24,002
    assert E.json_problem([wide] * 4) is None  # 64,013 bytes: past the bound, within the limit
    assert E.json_problem([wide] * 5) == "too_large"  # 80,016 bytes
    assert E.json_problem({"a": ["x" * 4000] * 17}) == "too_large"  # 68,058 bytes


def test_an_audit_answer_is_not_dumped_to_be_measured(monkeypatch):
    def dump(value):
        raise AssertionError("dumped")

    monkeypatch.setattr(E, "_json_size", dump)
    answer = {"value": True, "note": "Thiếu bản sao", "photos": ["ab" * 32], "position": None}
    assert E.json_problem(answer) is None
