"""The wire schema remembers short strings it already accepted (issue 13, fourth round): the
same strings are accepted and refused, with the same errors, as without the memo."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.domain import mutations as M
from app.domain.hlc import Clock

STAMP = Clock("dev-memo").now()


def _mutation(name: str = "notes", hlc: str = STAMP, entity_id: str = "rec-1") -> dict:
    return {
        "mutation_id": M.new_mutation_id(),
        "device_id": "dev-memo",
        "entity": "dossier",
        "entity_id": entity_id,
        "ward_code": "00070",
        "base_version": 0,
        "fields": {name: {"value": "x", "hlc": hlc}},
    }


def _errors(data: dict) -> list[tuple]:
    try:
        M.Mutation.model_validate(data)
    except ValidationError as exc:
        return [(e["loc"], e["msg"]) for e in exc.errors()]
    return []


@pytest.mark.parametrize(
    "bad",
    [
        _mutation(name="no\x00tes"),
        _mutation(hlc="not a stamp"),
        _mutation(hlc=STAMP + "\x00"),
        _mutation(entity_id="a\ud800"),
        _mutation(hlc="9" * 16 + ":0000:"),
    ],
)
def test_a_memo_full_of_accepted_strings_refuses_the_same(bad):
    M._TEXT_OK.clear()
    M._STAMP_OK.clear()
    M._WIRE_STAMP_OK.clear()
    cold = _errors(bad)
    assert cold  # refused without the memo
    for _ in range(3):
        assert _errors(_mutation()) == []  # the good strings are remembered
        assert _errors(bad) == cold  # and the bad one is refused alike, every time
    assert "no\x00tes" not in M._TEXT_OK and "not a stamp" not in M._STAMP_OK
    assert STAMP in M._STAMP_OK and "notes" in M._TEXT_OK and STAMP in M._WIRE_STAMP_OK
    assert STAMP + "\x00" not in M._WIRE_STAMP_OK


@pytest.mark.parametrize(
    "hlc",
    [STAMP, "not a stamp", STAMP + "\x00", "\x00" + STAMP, "9" * 16 + ":0000:", "a\ud800", 12,
     None],
)
@pytest.mark.parametrize("memo", ["cold", "warm"])
def test_a_field_stamp_is_checked_as_wire_text_then_as_a_stamp(hlc, memo):
    """`FieldValue.hlc` in one validator (issue 13, sixth round): the errors of the text rule
    then the stamp rule, the two validators it had before, with or without the memos."""
    if memo == "cold":
        M._TEXT_OK.clear()
        M._STAMP_OK.clear()
        M._WIRE_STAMP_OK.clear()
    else:
        M.FieldValue(value=1, hlc=STAMP)

    class TwoSteps(M.BaseModel):
        value: object = None
        hlc: M.WireText

        @M.field_validator("hlc")
        @classmethod
        def _stamp(cls, v: str) -> str:
            return M.stamp_rule(v)

    def outcome(model):
        try:
            return model.model_validate({"value": 1, "hlc": hlc}).hlc
        except ValidationError as exc:
            return [(e["type"], e["loc"], e["msg"]) for e in exc.errors()]

    assert outcome(M.FieldValue) == outcome(TwoSteps)
    assert outcome(M.FieldValue) == outcome(M.FieldValue)  # the memo changes nothing


def test_the_memo_stays_bounded_and_keeps_plain_short_strings_only():
    class Sly(str):
        pass

    M._TEXT_OK.clear()
    for i in range(M._MEMO_MAX + 10):
        M.refuse_nul(f"name-{i}")
    assert len(M._TEXT_OK) <= M._MEMO_MAX
    M.refuse_nul("x" * (M._MEMO_LEN + 1))
    M.refuse_nul(Sly("sly"))
    assert "x" * (M._MEMO_LEN + 1) not in M._TEXT_OK and "sly" not in M._TEXT_OK
