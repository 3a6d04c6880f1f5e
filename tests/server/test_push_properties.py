"""Property: whatever JSON value a device pushes as whatever field of whatever entity, the real
server (SQLite and PostgreSQL) either refuses it or stores it so that it is served back exactly
as stored (text NFC-normalised), and every other device's pull still answers 200."""

from __future__ import annotations

import json
import unicodedata
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import entities as E
from tests.server.helpers import Device, dossier_fields, new_name, new_ward

EXAMPLES = 50
NOW = "2025-11-20T03:00:00+00:00"

_special_text = st.sampled_from(
    [
        "a\ud800b",  # lone surrogates
        "\udfff",
        "nul\x00",
        "bell\x07",
        "cr\r\nlf",
        "tab\tnewline\n",
        "c1\x85",
        unicodedata.normalize("NFD", "Nguyễn Thị Hương"),
        "e\u0301",
        "😀 Tiếng Việt",
        "",
        "x" * 5000,
    ]
)
_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30),  # mostly fine
    st.text(st.characters(exclude_categories=()), max_size=30),  # surrogates, controls too
    _special_text,
)
_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2**53, 2**53 - 1, 1e15, 1e16, -0.0, 1e-300, 1.7976931348623157e308]),
)
_leaves = st.one_of(st.none(), st.booleans(), _numbers, _text)


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


_json = st.one_of(
    st.recursive(
        _leaves,
        lambda children: st.lists(children, max_size=4)
        | st.dictionaries(_text, children, max_size=4),
        max_leaves=12,
    ),
    st.sampled_from(
        [
            _nested(E.MAX_JSON_DEPTH + 5),
            list(range(E.MAX_JSON_ITEMS + 10)),
            {"name": "Giấy tờ", "originals": 1, "copies": 0},
            [{"name": "Tờ khai", "originals": 1, "copies": 2}],
            {"value": True, "note": "ghi chú", "photos": []},
            {"value": 150},
            {"lat": 21.03, "lon": 105.85},
        ]
    ),
)
_of_kind = {
    "str": _text,
    "int": _numbers,
    "float": _numbers,
    "date": st.one_of(st.dates().map(str), _text),
    "datetime": st.one_of(st.datetimes().map(lambda d: d.isoformat()), _text),
    "json": _json,
}


def _values(target: tuple[str, str]):
    """Any JSON value, or more often one of the field's own kind (to reach the storing path)."""
    entity, name = target
    kind = E.field_spec(entity, name).kind
    return st.one_of(_json, *[_of_kind[kind]] * 3)


# Every field of every entity, and an audit answer.
_FIELDS = [(entity, name) for entity, specs in E.ENTITIES.items() for name in specs] + [
    (E.AUDIT, "answers.personnel.it_officer"),
    (E.AUDIT, "answers.equipment.digital_signature_pct"),
]


def _base(entity: str, ward: str, author: str) -> dict[str, Any]:
    """A record of `entity` the server accepts, for the value under test to land in."""
    if entity == E.DOSSIER:
        return dossier_fields(ward, status=2)
    if entity == E.DOSSIER_EVENT:
        return {"dossier_id": str(uuid.uuid4()), "ward_code": ward, "at": NOW, "to_status": 2}
    if entity == E.AUDIT:
        return {"template_version": "2025.1", "review_state": "draft", "ward_code": ward,
                "started_at": NOW}
    if entity == E.AUDIT_COMMENT:
        return {"audit_id": str(uuid.uuid4()), "ward_code": ward, "at": NOW, "author": author}
    if entity == E.ATTACHMENT:
        return {"owner_entity": "dossier", "owner_id": str(uuid.uuid4()), "ward_code": ward,
                "sha256": "a" * 64, "size": 10, "mime": "image/jpeg"}
    return {"entity": "dossier", "entity_id": str(uuid.uuid4()), "ward_code": ward}


def _same(served: Any, stored: Any) -> bool:
    """Equal values of the same JSON kinds (True is not 1, 1.0 and 1 are the same number)."""
    if isinstance(stored, bool) or isinstance(served, bool):
        return type(stored) is type(served) and stored == served
    if isinstance(stored, dict):
        return (
            isinstance(served, dict)
            and served.keys() == stored.keys()
            and all(_same(served[k], v) for k, v in stored.items())
        )
    if isinstance(stored, list):
        return (
            isinstance(served, list)
            and len(served) == len(stored)
            and all(_same(a, b) for a, b in zip(served, stored, strict=True))
        )
    if isinstance(stored, int | float):
        return isinstance(served, int | float) and served == stored
    return type(served) is type(stored) and served == stored


def test_any_value_is_refused_or_served_back_as_stored(api_server):
    api = api_server
    ward = new_ward()
    officer = api.enrol(new_name("officer"), "officer", [ward])
    auditor = api.enrol(new_name("auditor"), "auditor", [ward])
    readers = [
        api.enrol(new_name("reader"), "officer", [ward]),
        api.enrol(new_name("sup"), "supervisor", [ward]),
    ]
    device = Device()
    stored: dict[str, tuple[str, Any]] = {}  # entity_id -> (field, value as stored)
    outcomes = {"applied": 0, "refused": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(target_and_value=st.sampled_from(_FIELDS).flatmap(
        lambda target: st.tuples(st.just(target), _values(target))
    ))
    def check(target_and_value: tuple[tuple[str, str], Any]) -> None:
        (entity, name), value = target_and_value
        pusher = auditor if entity in (E.AUDIT, E.AUDIT_COMMENT) else officer
        fields = {**_base(entity, ward, pusher.user), name: value}
        mutation = device.mutation(entity, str(uuid.uuid4()), ward, fields)
        body = json.dumps({"mutations": [mutation]}).encode()  # NaN and surrogates escaped
        with api.client(pusher.token) as client:
            response = client.post(
                "/sync/push", content=body, headers={"Content-Type": "application/json"}
            )
        assert response.status_code in (200, 422), response.text[:500]
        result = response.json()["results"][0] if response.status_code == 200 else None
        if result is not None and result["status"] == "applied":
            outcomes["applied"] += 1
            stored[mutation["entity_id"]] = (name, E.normalise_value(value))
        else:
            outcomes["refused"] += 1

    check()
    served: dict[str, dict] = {}
    for reader in readers:
        with api.client(reader.token) as client:
            cursor = 0
            for _ in range(100):
                response = client.get("/sync/pull", params={"cursor": cursor, "limit": 500})
                assert response.status_code == 200, response.text[:500]
                page = response.json()
                served.update({c["entity_id"]: c["fields"] for c in page["changes"]})
                cursor = page["next_cursor"]
                if not page["has_more"]:
                    break
    assert outcomes["applied"] and outcomes["refused"], outcomes
    for entity_id, (name, value) in stored.items():
        if name == "score":
            continue  # computed by the server, whatever was sent
        got = served[entity_id][name]["value"]
        assert _same(got, value), (name, value, got)
