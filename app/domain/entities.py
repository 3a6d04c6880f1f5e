"""What each synced entity holds: its fields, their types, and which are sealed on devices.

Sealed fields name or describe a person, or are free text; the client stores them only inside
AES-GCM envelopes. Readable fields are the query keys that name nobody.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from app.domain.status import DIGITISATION_CHOICES, Channel, DossierStatus
from app.domain.text import normalise_text, text_problem

DOSSIER = "dossier"
DOSSIER_EVENT = "dossier_event"
AUDIT = "audit"
AUDIT_COMMENT = "audit_comment"
ATTACHMENT = "attachment"
CONFLICT = "conflict"
AUDIT_ACTION = "audit_action"  # a failing item made a task: owner, due date, tracked until met

ANSWER_PREFIX = "answers."  # audit fields 'answers.<item_id>' hold one answer each


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # str | int | float | bool | date | datetime | json
    sealed: bool = False
    max_len: int = 2000
    choices: frozenset[int] | None = None


def _s(sealed: bool = False, max_len: int = 2000) -> FieldSpec:
    return FieldSpec("str", sealed, max_len)


STATUS_CHOICES = frozenset(int(s) for s in DossierStatus)
CHANNEL_CHOICES = frozenset(int(c) for c in Channel)

ENTITIES: dict[str, dict[str, FieldSpec]] = {
    DOSSIER: {
        "code": _s(max_len=40),
        "procedure_code": _s(max_len=40),
        "ward_code": _s(max_len=10),
        "applicant_name": _s(True, 200),
        "applicant_id_number": _s(True, 20),
        "applicant_phone": _s(True, 20),
        "applicant_address": _s(True, 500),
        "channel": FieldSpec("int", choices=CHANNEL_CHOICES),
        "received_at": FieldSpec("datetime"),
        "appointment_date": FieldSpec("date"),
        "status": FieldSpec("int", choices=STATUS_CHOICES),
        "documents": FieldSpec("json", sealed=True),
        "notes": _s(True, 4000),
        "result": _s(True, 4000),
        "result_digitised": FieldSpec("int", choices=DIGITISATION_CHOICES),  # names nobody
        "finished_at": FieldSpec("datetime"),
        "returned_at": FieldSpec("datetime"),
        "fee": FieldSpec("int"),
    },
    DOSSIER_EVENT: {
        "dossier_id": _s(max_len=40),
        "ward_code": _s(max_len=10),
        "at": FieldSpec("datetime"),
        "from_status": FieldSpec("int", choices=STATUS_CHOICES),
        "to_status": FieldSpec("int", choices=STATUS_CHOICES),
        "actor": _s(True, 200),
        "note": _s(True, 4000),
        "appointment_date": FieldSpec("date"),
    },
    AUDIT: {
        "ward_code": _s(max_len=10),
        "template_version": _s(max_len=20),
        "review_state": _s(max_len=30),
        "auditor": _s(True, 200),
        "started_at": FieldSpec("datetime"),
        "submitted_at": FieldSpec("datetime"),
        "position": FieldSpec("json", sealed=True),
        "score": FieldSpec("float"),
        "notes": _s(True, 4000),
    },
    AUDIT_COMMENT: {
        "audit_id": _s(max_len=40),
        "ward_code": _s(max_len=10),
        "at": FieldSpec("datetime"),
        "author": _s(True, 200),
        "decision": _s(max_len=30),
        "text": _s(True, 4000),
        # changes requested: the answers' values at that moment (old → new on resubmission)
        "answers_before": FieldSpec("json", sealed=True),
    },
    AUDIT_ACTION: {
        "audit_id": _s(max_len=40),
        "ward_code": _s(max_len=10),
        "item_id": _s(max_len=60),
        "owner": _s(True, 200),
        "due_date": FieldSpec("date"),
        "state": _s(max_len=20),  # open | dropped (met is computed from later audits)
        "created_at": FieldSpec("datetime"),
        "note": _s(True, 4000),
    },
    ATTACHMENT: {
        "owner_entity": _s(max_len=30),
        "owner_id": _s(max_len=40),
        "ward_code": _s(max_len=10),
        "sha256": _s(max_len=64),
        "size": FieldSpec("int"),
        "mime": _s(max_len=100),
        "filename": _s(True, 300),
        "taken_at": FieldSpec("datetime"),
        "position": FieldSpec("json", sealed=True),
    },
    CONFLICT: {
        "entity": _s(max_len=30),
        "entity_id": _s(max_len=40),
        "ward_code": _s(max_len=10),
        "field": _s(max_len=100),
        "values": FieldSpec("json", sealed=True),
        "state": _s(max_len=20),  # open | resolved
        "chosen": FieldSpec("json", sealed=True),
    },
}

AUDIT_ANSWER_SPEC = FieldSpec("json", sealed=True)
_ITEM_ID = re.compile(r"^[a-z0-9_.-]{1,60}$")


_NO_FIELDS: dict[str, FieldSpec] = {}


def field_spec(entity: str, name: str) -> FieldSpec | None:
    """The spec of one field, or None when the entity has no such field."""
    spec = ENTITIES.get(entity, _NO_FIELDS).get(name)
    if spec is None and entity == AUDIT and name.startswith(ANSWER_PREFIX):
        return AUDIT_ANSWER_SPEC if _ITEM_ID.match(name[len(ANSWER_PREFIX) :]) else None
    return spec


# The sealed names of each entity's declared fields (an audit's answers are sealed too).
_SEALED_NAMES = {
    entity: frozenset(name for name, spec in specs.items() if spec.sealed)
    for entity, specs in ENTITIES.items()
}


def sealed_fields(entity: str, names: list[str] | None = None) -> set[str]:
    if names is None:
        return set(_SEALED_NAMES[entity])
    declared = _SEALED_NAMES.get(entity, frozenset())
    if entity != AUDIT:
        return {n for n in names if n in declared}
    return {n for n in names if n in declared or field_spec(entity, n) is AUDIT_ANSWER_SPEC}


def check_value(spec: FieldSpec, value: Any) -> str | None:
    """None when the value fits the spec, else a machine-readable reason. None values clear.

    Strings follow the text rule (`app.domain.text.text_problem`); numbers stay in the range
    every replica and both databases hold exactly (see "Bounds" in docs/security.md)."""
    if value is None:
        return None
    kind = spec.kind
    if kind == "str":
        if not isinstance(value, str):
            return "type"
        if (reason := text_problem(value)) is not None:
            return reason
        return "too_long" if len(value) > spec.max_len else None
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return "type"
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return "out_of_range"
        return "choice" if spec.choices is not None and value not in spec.choices else None
    if kind == "float":
        if not isinstance(value, int | float) or isinstance(value, bool):
            return "type"
        return _number_problem(value)
    if kind == "bool":
        return None if isinstance(value, bool) else "type"
    if kind == "date":
        return _iso(value, dt.date.fromisoformat, _DATE_FORM)
    if kind == "datetime":
        return _iso(value, dt.datetime.fromisoformat, _DATETIME_FORM)
    return json_problem(value)  # json: any strict JSON value within the bounds


# Bounds of a JSON field value (documents, positions, audit answers, conflict values).
MAX_JSON_DEPTH = 16
MAX_JSON_ITEMS = 2000  # values and keys in one field value, at every depth together
MAX_JSON_BYTES = 64 * 1024  # its UTF-8 JSON text
MAX_JSON_STRING = 4000  # characters of one string inside it
MAX_JSON_KEY = 200  # characters of one object key
# Numbers: integers JSON readers hold exactly (IEEE doubles), and floats below 1e15, which
# PostgreSQL's jsonb writes back in the same positional form (it drops exponents: 1e16 would
# come back as the integer 10000000000000000).
MAX_SAFE_INT = 2**53 - 1
MAX_FLOAT = 1e15


def _number_problem(value: float) -> str | None:
    if isinstance(value, int):
        return None if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else "out_of_range"
    if not math.isfinite(value):
        return "not_finite"
    return None if -MAX_FLOAT < value < MAX_FLOAT else "out_of_range"


def json_problem(value: Any) -> str | None:
    """Why a value is not strict, storable, bounded JSON, or None.

    Python's json reads NaN and Infinity, which no JSON column (PostgreSQL's json type, or a
    JSON reply) accepts; strings follow the text rule.
    """
    budget = [MAX_JSON_ITEMS, 0]  # items left; at most this many bytes of JSON text so far
    reason = _json_problem(value, 0, budget)
    # Only an object or a list can pass the checks above and still be too large (a string of
    # MAX_JSON_STRING characters is at most 6 bytes each as JSON), so scalars skip the dump;
    # so does a value whose JSON text the walk bounds below the limit (issue 13, sixth round:
    # every audit answer was dumped to be measured).
    container = isinstance(value, dict | list | tuple)
    bounded = budget[1] <= MAX_JSON_BYTES
    if reason is None and container and not bounded and _json_size(value) > MAX_JSON_BYTES:
        return "too_large"
    return reason


# Bytes of compact JSON (`compact_json`, UTF-8) a value takes at most: a number's text (an
# integer within MAX_SAFE_INT, a float's shortest repr) or a literal; each character of a
# string 6 (`\uXXXX`; raw UTF-8 takes at most 4) and its quotes 2; an object's or a list's
# brackets 2, and a colon and a comma for each entry.
_SCALAR_BYTES = 32
_STRING_CHAR_BYTES = 6


def _json_problem(value: Any, depth: int, budget: list[int]) -> str | None:
    budget[0] -= 1
    if budget[0] < 0:
        return "too_many_items"
    if value is None or isinstance(value, bool):
        budget[1] += _SCALAR_BYTES
        return None
    if isinstance(value, int | float):
        budget[1] += _SCALAR_BYTES
        return _number_problem(value)
    if isinstance(value, str):
        budget[1] += _STRING_CHAR_BYTES * len(value) + 2
        return text_problem(value) or ("too_long" if len(value) > MAX_JSON_STRING else None)
    if depth >= MAX_JSON_DEPTH:
        return "too_deep"
    if isinstance(value, dict):
        budget[1] += 2
        for key, item in value.items():
            if not isinstance(key, str):
                return "type"
            budget[0] -= 1
            budget[1] += _STRING_CHAR_BYTES * len(key) + 4
            if (reason := text_problem(key)) is not None:
                return reason
            if len(key) > MAX_JSON_KEY:
                return "too_long"
            if (reason := _json_problem(item, depth + 1, budget)) is not None:
                return reason
        return None
    if isinstance(value, list | tuple):
        budget[1] += 2 + len(value)
        for item in value:
            if (reason := _json_problem(item, depth + 1, budget)) is not None:
                return reason
        return None
    return "type"


# A value as compact JSON text (the size rule here, the server's sealing): json.dumps with
# arguments builds an encoder per call, this one is built once (the same text).
compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json_size(value: Any) -> int:
    return len(compact_json(value).encode())


def normalise_value(value: Any) -> Any:
    """The stored form of a field value: every string in it, object keys too, normalised by
    `app.domain.text.normalise_text` (NFC). Anything else is returned as it is, for the checks
    to judge; an object whose keys would collide once normalised becomes a value no check
    accepts."""
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, list | tuple):
        return [normalise_value(item) for item in value]
    if isinstance(value, dict):
        return _normal_dict(value)
    return value


def _normal_dict(value: dict) -> Any:
    out: dict[Any, Any] = {}
    for key, item in value.items():
        new_key = normalise_text(key) if isinstance(key, str) else key
        if new_key in out:  # keys that differ only in normal form: refused as a collision
            return _Collision()
        out[new_key] = normalise_value(item)
    return out


class _Collision:
    """Stands for an object whose keys collide once normalised: no check accepts it."""


# The one text form of dates and instants every replica writes (ISO 8601, extended format):
# Python reads more ('20240101'), which other readers take for something else.
_DATE_FORM = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_FORM = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?"
)


def _iso(value: Any, parse, form: re.Pattern) -> str | None:
    if not isinstance(value, str):
        return "type"
    if not form.fullmatch(value):
        return "format"
    try:
        parse(value)
    except ValueError:
        return "format"
    return None


def validate_fields(entity: str, fields: dict[str, Any]) -> list[str]:
    """Reasons, one per bad field, as 'field:reason'. Empty when all is well."""
    specs = ENTITIES.get(entity)
    if specs is None:
        return [f"entity:{entity}:unknown"]
    problems = []
    for name, value in fields.items():
        # `field_spec`, its common case first (issue 13, sixth round: a pull checks every
        # field of every record it stores)
        spec = specs.get(name)
        if spec is None:
            spec = field_spec(entity, name)
        if spec is None:
            problems.append(f"{name}:unknown_field")
        elif (reason := check_value(spec, value)) is not None:
            problems.append(f"{name}:{reason}")
    return problems
