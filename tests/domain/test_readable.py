"""`unreadable_reason` walks for lone surrogates only the fields the entity does not know (issue
13, fourth round): the same reason as walking every field, since a known field that passed its
check met the text rule, which refuses them."""

from __future__ import annotations

import itertools

from app.domain import entities as E
from app.domain import readable
from app.domain.readable import unreadable_reason
from tests.domain.test_records import audit, dossier


def _walking_every_field(entity: str, values: dict) -> str | None:
    """The check as it was: every field's value walked for lone surrogates."""
    if entity not in E.ENTITIES:
        return unreadable_reason(entity, values)
    problems = [p for p in E.validate_fields(entity, values) if not p.endswith(":unknown_field")]
    if problems:
        return problems[0]
    for name, value in values.items():
        if readable._not_utf8(value):
            return f"{name}:not_utf8"
    try:
        readable.read_model(entity, values)
    except Exception:  # noqa: BLE001 - the reason's text is unreadable_reason's to give
        return unreadable_reason(entity, values)
    return None


BAD = "a\ud800b"
CHANGES = [
    {},
    {"notes": BAD},
    {"notes": "fine"},
    {"future_field": BAD},
    {"future_field": {"k": [1, BAD]}},
    {"future_field": {BAD: 1}},
    {"future_field": ["ok", {"deep": "ok"}]},
    {"documents": [{"name": BAD}]},
    {"documents": [{"name": "giấy tờ", BAD: 1}]},
    {"status": BAD},
    {"received_at": "2025-11-21T02:00:00+00:0\ud800"},
    {"answers.ups": {"value": BAD}},
    {"answers.UPS!": {"value": BAD}},  # not an item id: an unknown field
    {"answers.ups": {"value": True, "photos": [{"sha": BAD}]}},
]


def test_the_reason_is_the_one_walking_every_field_gives():
    seen = set()
    for entity, base in ((E.DOSSIER, dossier()), (E.AUDIT, audit()), ("nope", {})):
        for a, b in itertools.combinations_with_replacement(CHANGES, 2):
            values = {**base, **a, **b}
            reason = unreadable_reason(entity, values)
            assert reason == _walking_every_field(entity, values), (entity, values)
            seen.add(reason)
    # the cases reach both kinds of refusal and acceptance
    assert None in seen and "future_field:not_utf8" in seen and "notes:lone_surrogate" in seen
