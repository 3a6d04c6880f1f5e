"""The one-stop counter's ward-wide duplicate check (docs/security.md "Ward-wide duplicate
check"): ward keys for the caller's wards, and a check by keyed term, never by ID number."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.domain.duplicates import MAX_WARDS_PER_CHECK, is_term
from server.api.deps import Ctx, CurrentCaller
from server.errors import ApiError
from server.schemas import DuplicateAnswer, DuplicateCheck, DuplicateFound, IndexKeys
from server.scope import DOSSIER_FAMILY
from server.services import duplicates

router = APIRouter(prefix="/counter", tags=["counter"])


def _needs_dossiers(caller) -> None:
    if DOSSIER_FAMILY not in caller.families:
        raise ApiError(403, "forbidden", "the duplicate check is counter work")


@router.get("/index-keys", response_model=IndexKeys)
def index_keys(
    caller: CurrentCaller,
    ward: Annotated[list[str] | None, Query(max_length=MAX_WARDS_PER_CHECK)] = None,
) -> IndexKeys:
    _needs_dossiers(caller)
    wards = [w for w in (ward or []) if 0 < len(w) <= 10]
    return IndexKeys(key_id=duplicates.current_key_id(), wards=duplicates.ward_keys(caller, wards))


@router.post("/duplicates", response_model=DuplicateAnswer)
def find_duplicates(body: DuplicateCheck, caller: CurrentCaller, ctx: Ctx) -> DuplicateAnswer:
    _needs_dossiers(caller)
    if not all(is_term(t) for t in body.terms.values()):
        raise ApiError(422, "validation_error", "a term is 32 lower-case hex characters")
    try:
        found = duplicates.find_open(
            ctx.engine, caller, body.procedure_code, body.key_id, body.terms
        )
    except duplicates.StaleIndexKey:
        raise ApiError(409, "stale_index_key", "ask /counter/index-keys again") from None
    return DuplicateAnswer(
        duplicates=[
            DuplicateFound(code=f.code, received_day=f.received_day, ward_code=f.ward_code)
            for f in found
        ]
    )
