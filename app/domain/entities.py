"""What each synced entity holds: its fields, their types, and which are sealed on devices.

Sealed fields name or describe a person, or are free text; the client stores them only inside
AES-GCM envelopes. Readable fields are the query keys that name nobody.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

from app.domain.status import Channel, DossierStatus

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


def field_spec(entity: str, name: str) -> FieldSpec | None:
    """The spec of one field, or None when the entity has no such field."""
    if entity == AUDIT and name.startswith(ANSWER_PREFIX):
        return AUDIT_ANSWER_SPEC if _ITEM_ID.match(name[len(ANSWER_PREFIX) :]) else None
    return ENTITIES.get(entity, {}).get(name)


def sealed_fields(entity: str, names: list[str] | None = None) -> set[str]:
    names = names if names is not None else list(ENTITIES[entity])
    return {n for n in names if (spec := field_spec(entity, n)) and spec.sealed}


def check_value(spec: FieldSpec, value: Any) -> str | None:
    """None when the value fits the spec, else a machine-readable reason. None values clear."""
    if value is None:
        return None
    kind = spec.kind
    if kind == "str":
        if not isinstance(value, str):
            return "type"
        if "\x00" in value:
            return "nul_char"
        return "too_long" if len(value) > spec.max_len else None
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return "type"
        return "choice" if spec.choices is not None and value not in spec.choices else None
    if kind == "float":
        if not isinstance(value, int | float) or isinstance(value, bool):
            return "type"
        return None if math.isfinite(value) else "not_finite"
    if kind == "bool":
        return None if isinstance(value, bool) else "type"
    if kind == "date":
        return _iso(value, dt.date.fromisoformat)
    if kind == "datetime":
        return _iso(value, dt.datetime.fromisoformat)
    return json_problem(value)  # json: any strict JSON value


MAX_JSON_DEPTH = 32


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why a value is not strict, storable JSON, or None.

    Python's json reads NaN and Infinity, which no JSON column (PostgreSQL's json type, or a
    JSON reply) accepts, and PostgreSQL text cannot hold NUL characters.
    """
    if depth > MAX_JSON_DEPTH:
        return "too_deep"
    if isinstance(value, float):
        return None if math.isfinite(value) else "not_finite"
    if isinstance(value, str):
        return "nul_char" if "\x00" in value else None
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    for item in items:
        if (reason := json_problem(item, depth + 1)) is not None:
            return reason
    return None


def _iso(value: Any, parse) -> str | None:
    if not isinstance(value, str):
        return "type"
    try:
        parse(value)
    except ValueError:
        return "format"
    return None


def validate_fields(entity: str, fields: dict[str, Any]) -> list[str]:
    """Reasons, one per bad field, as 'field:reason'. Empty when all is well."""
    if entity not in ENTITIES:
        return [f"entity:{entity}:unknown"]
    problems = []
    for name, value in fields.items():
        spec = field_spec(entity, name)
        if spec is None:
            problems.append(f"{name}:unknown_field")
        elif (reason := check_value(spec, value)) is not None:
            problems.append(f"{name}:{reason}")
    return problems
