"""POST /sync/push and GET /sync/pull (the contract is in docs/ARCHITECTURE.md)."""

from __future__ import annotations

import email.message
import json
from collections import Counter
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from app.domain.mutations import (
    PULL_NEXT_HEADER,
    PULL_PAGE_LIMIT,
    READS,
    BatchesRequest,
    BatchesResponse,
    PullHead,
    PullResponse,
    PushRequest,
    PushResponse,
    PushSummary,
    WireError,
    WirePush,
    read_push,
    summarise,
)
from server.api.deps import BearerToken, Ctx, CurrentCaller
from server.scope import Caller
from server.services import identity, reference, sync

router = APIRouter(prefix="/sync", tags=["sync"])
# The largest page a client may ask for (issue 13's fifth round: clients grow their pages from
# 1,000 to this on a slow link); `Settings.pull_limit_max` may clamp it lower. Servers before it
# refused a limit past 1,000 (422), and clients then fall back to 1,000.
PULL_LIMIT_MAX = PULL_PAGE_LIMIT


# The body is read by `read_push` (the rules of `PushRequest` without a model per field); the
# schema shown in the API's docs is still `PushRequest`'s (server.main adds its parts).
PUSH_SCHEMAS = PushRequest.model_json_schema(ref_template="#/components/schemas/{model}")
PUSH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PushRequest"}}},
    }
}


async def _body_bytes(request: Request) -> bytes:
    return await request.body()


def _push_body(request: Request, raw: bytes) -> WirePush:
    """The push body read as FastAPI reads a JSON body model (a JSON content type or none;
    422 for what the schema refuses or for JSON that does not parse, 400 for a body that is not
    text), then checked by `read_push`."""
    kind = request.headers.get("content-type")
    if kind:
        message = email.message.Message()
        message["content-type"] = kind
        subtype = message.get_content_subtype()
        if message.get_content_maintype() != "application" or not (
            subtype == "json" or subtype.endswith("+json")
        ):
            msg = "Input should be a valid dictionary or object to extract fields from"
            raise RequestValidationError(
                [{"type": "model_attributes_type", "loc": ("body",), "msg": msg}]
            )
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required"}]
        )
    try:
        return read_push(raw)
    except WireError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in error.errors]
        ) from None
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", error.pos), "msg": "JSON decode error"}]
        ) from None
    except Exception as error:  # as FastAPI answers a body it cannot decode
        raise HTTPException(400, "There was an error parsing the body") from error


@router.post("/push", response_model=PushResponse | PushSummary, openapi_extra=PUSH_BODY)
def push(
    request: Request,
    raw: Annotated[bytes, Depends(_body_bytes)],
    token: BearerToken,
    ctx: Ctx,
    pull: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=PULL_LIMIT_MAX)] = 500,
    held: Annotated[str, Query(max_length=64)] = "",
    cols: bool = False,
) -> PushResponse | PushSummary | Response:
    """`pull` (with the summary; clients since issue 13's sixth round, on the push that empties
    their outbox): the answer's "pull" member is the page GET /sync/pull would answer from
    that cursor after this push (one clock, clock tables, lean), so the device's pull after its
    push costs no round trip of its own. `through` (every summary): the change log's head once
    this push was committed, read before that page: a page holds every push whose `through`
    is at most its own push's. `cols`: that page's changes as blocks of columns, as GET
    /sync/pull's `cols`."""
    caller = identity.authenticate(ctx.engine, token)  # here: one thread hop, not two
    body = _push_body(request, raw)
    results, head = sync.push_and_head(ctx.engine, caller, body.mutations, ctx.clock, body.batch)
    for status, count in Counter(result.status for result in results).items():
        ctx.counters.add(f"mutations_{status}", count)  # once per status, not per mutation
    if body.answer != "summary":
        return PushResponse(results=results)
    summary = summarise(results)  # applied ranges, then only the exceptions
    # The head once this push was committed, read before the page: the page holds it.
    summary.through = head if head is not None else sync.log_head(ctx.engine)
    if pull is None:
        return summary
    page = _page(
        ctx, caller, pull, limit, held=held, clocks="one", tables=True, lean=True, cols=cols
    )
    return Response(
        content=summary.model_dump_json()[:-1].encode() + b',"pull":' + page.body + b"}",
        media_type="application/json",
    )


@router.post("/batches", response_model=BatchesResponse)
def batches(body: BatchesRequest, caller: CurrentCaller, ctx: Ctx) -> BatchesResponse:
    """Which of these push batches (the ids the caller's device gave them) were committed, each
    with the answer its push was given; asked after a cut (clients since issue 13)."""
    found = sync.committed_batches(ctx.engine, caller, body.ids)
    return BatchesResponse.model_validate({"batches": found})


@router.get("/pull", response_model=PullResponse)
def pull(
    token: BearerToken,
    ctx: Ctx,
    cursor: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=PULL_LIMIT_MAX)] = 500,
    clocks: Literal["each", "one"] = "each",
    held: Annotated[str, Query(max_length=64)] = "",
    own: bool = False,
    tables: bool = False,
    lean: bool = False,
    cols: bool = False,
) -> Response:
    """The body is encoded row by row by the service (a row that cannot be encoded is set
    aside there), so serialising the answer cannot fail on a stored value."""
    # "one": a record whose fields share one clock carries it once (clients since issue 13).
    # `held`: the caller's clock node; of its own records, only the fields others wrote
    # (clients since issue 13). `own`: the caller's own pushes too (a device's store put back
    # from a backup lacks those it made after the copy). `tables`: a record's several clocks
    # written once each (clients since issue 13's fourth round; `clock_table`). `lean`: no
    # `seq`, no `ward_code` the fields repeat (clients since issue 13's fifth round). `cols`:
    # the changes as blocks of columns (`app.domain.columns`; clients since the ninth round).
    caller = identity.authenticate(ctx.engine, token)  # here: one thread hop, not two
    page = _page(
        ctx,
        caller,
        cursor,
        limit,
        held=held,
        own=own,
        clocks=clocks,
        tables=tables,
        lean=lean,
        cols=cols,
    )
    # What the body's end says, in the head too: a client reads the head before the body and
    # asks for the next page while this one is still on its way (issue 13's fifth round).
    head = PullHead(page.next_cursor, page.has_more, page.served).header()
    return Response(
        content=page.body, media_type="application/json", headers={PULL_NEXT_HEADER: head}
    )


def _page(
    ctx: Ctx,
    caller: Caller,
    cursor: int,
    limit: int,
    *,
    held: str,
    clocks: str,
    tables: bool,
    lean: bool,
    own: bool = False,
    cols: bool = False,
) -> sync.PulledPage:
    """One pull page (GET /sync/pull's, or the one a push asked for after it)."""
    page = sync.pull(
        ctx.engine,
        caller,
        cursor,
        min(limit, ctx.settings.pull_limit_max),
        one_clock=clocks == "one",
        held_node=held,
        own=own,
        clock_tables=tables,
        lean=lean,
        columns=cols,
    )
    if page.set_aside:
        ctx.counters.add("pull_rows_set_aside", page.set_aside)
    return page


@router.get("/reference")
def reference_data(
    caller: CurrentCaller,
    ctx: Ctx,
    catalogue: Annotated[int, Query(ge=0, le=2**31)] = 0,
    calendar: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> dict:
    """The procedure catalogue and working calendar in force, each only when newer than the
    version the device holds (`null` otherwise): `{"catalogue": {"version", "procedures"} |
    null, "calendar": {"version", "make_up_days", "extra_holidays"} | null, "reads": [...]}`.
    `reads`: the push forms this server reads (`READS`); a run asks here first, so its first
    push already uses them instead of probing with a short one."""
    return {**reference.answer_for(ctx.engine, catalogue, calendar), "reads": list(READS)}
