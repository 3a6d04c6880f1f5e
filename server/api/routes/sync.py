"""POST /sync/push and GET /sync/pull (the contract is in docs/ARCHITECTURE.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.domain.mutations import (
    BatchesRequest,
    BatchesResponse,
    PullResponse,
    PushRequest,
    PushResponse,
    PushSummary,
    summarise,
)
from server.api.deps import Ctx, CurrentCaller
from server.services import reference, sync

router = APIRouter(prefix="/sync", tags=["sync"])
PULL_LIMIT_MAX = 1000


@router.post("/push", response_model=PushResponse | PushSummary)
def push(body: PushRequest, caller: CurrentCaller, ctx: Ctx) -> PushResponse | PushSummary:
    results = sync.push(ctx.engine, caller, body.mutations, ctx.clock, body.batch)
    for result in results:
        ctx.counters.add(f"mutations_{result.status}")
    if body.answer == "summary":  # applied ranges, then only the exceptions
        return summarise(results)
    return PushResponse(results=results)


@router.post("/batches", response_model=BatchesResponse)
def batches(body: BatchesRequest, caller: CurrentCaller, ctx: Ctx) -> BatchesResponse:
    """Which of these push batches (the ids the caller's device gave them) were committed, each
    with the answer its push was given; asked after a cut (clients since issue 13)."""
    found = sync.committed_batches(ctx.engine, caller, body.ids)
    return BatchesResponse.model_validate({"batches": found})


@router.get("/pull", response_model=PullResponse)
def pull(
    caller: CurrentCaller,
    ctx: Ctx,
    cursor: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=PULL_LIMIT_MAX)] = 500,
    clocks: Literal["each", "one"] = "each",
    held: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The body is encoded row by row by the service (a row that cannot be encoded is set
    aside there), so serialising the answer cannot fail on a stored value."""
    limit = min(limit, ctx.settings.pull_limit_max)
    # "one": a record whose fields share one clock carries it once (clients since issue 13).
    # `held`: the caller's clock node; of its own records, only the fields others wrote
    # (clients since issue 13).
    page = sync.pull(ctx.engine, caller, cursor, limit, one_clock=clocks == "one", held_node=held)
    if page.set_aside:
        ctx.counters.add("pull_rows_set_aside", page.set_aside)
    return Response(content=page.body, media_type="application/json")


@router.get("/reference")
def reference_data(
    caller: CurrentCaller,
    ctx: Ctx,
    catalogue: Annotated[int, Query(ge=0, le=2**31)] = 0,
    calendar: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> dict:
    """The procedure catalogue and working calendar in force, each only when newer than the
    version the device holds (`null` otherwise): `{"catalogue": {"version", "procedures"} |
    null, "calendar": {"version", "make_up_days", "extra_holidays"} | null}`."""
    return reference.answer_for(ctx.engine, catalogue, calendar)
