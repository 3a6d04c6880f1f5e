"""Whether a device can read a record: the one check behind "kept aside, shown as unreadable".

A pulled record whose fields do not fit the entity (a dossier without its appointment date, a
status that is not a number, an entity this version does not know) is stored like any other,
sealed, and marked unreadable instead of failing every list, export and screen that meets it.
`read_model` is the one way values become a model; `records.validate_record` uses it too, so
what the server accepts is what a device can read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from app.domain import entities as E
from app.domain.models import AttachmentMeta, Audit, AuditAnswer, Conflict, Dossier, DossierEvent
from app.domain.oversight import REPORT_SNAPSHOT

_PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
UNKNOWN_FIELD = ":unknown_field"  # the end of validate_fields' reason for a field it does not know


def _plain(model: type[BaseModel], drop: tuple[str, ...] = ()) -> Callable[[dict], Any]:
    def build(values: dict[str, Any]) -> Any:
        kept = {k: v for k, v in values.items() if v is not None and k not in drop}
        return model.model_validate(kept | {"id": _PLACEHOLDER_ID})

    return build


def _audit(values: dict[str, Any]) -> Any:
    answers = {
        name[len(E.ANSWER_PREFIX) :]: AuditAnswer.model_validate(value)
        for name, value in values.items()
        if name.startswith(E.ANSWER_PREFIX) and value is not None
    }
    plain = {
        k: v for k, v in values.items() if v is not None and not k.startswith(E.ANSWER_PREFIX)
    }
    return Audit.model_validate(plain | {"id": _PLACEHOLDER_ID, "answers": answers})


def _event(values: dict[str, Any]) -> Any:
    kept = {k: v for k, v in values.items() if v is not None and k != "ward_code"}
    return DossierEvent.model_validate({"from_status": None} | kept | {"id": _PLACEHOLDER_ID})


def _conflict(values: dict[str, Any]) -> Any:
    kept = {k: v for k, v in values.items() if k in {"entity", "entity_id", "field", "values"}}
    return Conflict.model_validate(kept | {"id": _PLACEHOLDER_ID, "ward_code": ""})


# How the device's services turn each entity's values into the model they show.
_READERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    E.DOSSIER: _plain(Dossier),
    E.DOSSIER_EVENT: _event,
    E.AUDIT: _audit,
    E.AUDIT_COMMENT: lambda values: None,  # shown as its plain values
    E.ATTACHMENT: _plain(AttachmentMeta),
    E.CONFLICT: _conflict,
    E.AUDIT_ACTION: lambda values: None,  # shown as its plain values
}


def _not_utf8(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if depth > E.MAX_JSON_DEPTH:
        return False  # validate_fields already refused anything this deep
    if isinstance(value, dict):
        return any(_not_utf8(v, depth + 1) for item in value.items() for v in item)
    if isinstance(value, list | tuple):
        return any(_not_utf8(v, depth + 1) for v in value)
    return False


def read_model(entity: str, values: dict[str, Any]) -> Any:
    """The model a device shows for `entity` built from its values (None for entities shown
    as plain values). Raises pydantic's ValidationError, or TypeError/ValueError/KeyError, when
    the values do not make one. The push path's whole-record check (`records`) builds the same."""
    return _READERS[entity](values)


def unreadable_reason(entity: str, values: dict[str, Any]) -> str | None:
    """None when a device can show the record; else one reason, as `field:problem`
    (`appointment_date:missing`, `status:type`, `entity:unknown`). Unknown fields are
    ignored (a newer version's), as the models ignore them."""
    if entity == REPORT_SNAPSHOT:
        return None  # figures only the server writes; the oversight service reads them
    reader = _READERS.get(entity)
    if reader is None or entity not in E.ENTITIES:
        return "entity:unknown"
    found = E.validate_fields(entity, values)
    problems = [p for p in found if not p.endswith(UNKNOWN_FIELD)]
    if problems:
        return problems[0]
    # A lone surrogate: no screen, file or terminal can show it. A field with a spec that
    # passed has none (every string in it met the text rule, which refuses them), so only the
    # fields validate_fields does not know are walked (issue 13: the pull's CPU).
    unknown = {p[: -len(UNKNOWN_FIELD)] for p in found}
    for name, value in values.items():
        if name in unknown and _not_utf8(value):
            return f"{name}:not_utf8"
    try:
        reader(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        return f"{where}:{first['type']}"
    except (TypeError, ValueError, KeyError):
        return "record:invalid"
    return None
