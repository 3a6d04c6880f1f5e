"""Supervisor review: list audits in scope, decide one or many."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server.api.deps import Ctx, Reviewer
from server.api.params import IdPath
from server.errors import ApiError
from server.schemas import BulkReview, BulkReviewResult, ReviewDecision, ReviewList, ReviewResult
from server.services import reviews

router = APIRouter(prefix="/reviews", tags=["reviews"])


@router.get("", response_model=ReviewList)
def list_reviews(
    caller: Reviewer, ctx: Ctx, state: Annotated[str | None, Query(max_length=30)] = None
) -> ReviewList:
    return ReviewList(audits=reviews.list_audits(ctx.engine, caller, state))


@router.post("/bulk", response_model=BulkReviewResult)
def decide_many(body: BulkReview, caller: Reviewer, ctx: Ctx) -> BulkReviewResult:
    results = [
        reviews.decide(ctx.engine, caller, ctx.clock, audit_id, body.decision, body.comment)
        for audit_id in dict.fromkeys(body.audit_ids)
    ]
    return BulkReviewResult(results=results)


@router.post("/{audit_id}", response_model=ReviewResult)
def decide_one(
    audit_id: IdPath,
    body: ReviewDecision,
    caller: Reviewer,
    ctx: Ctx,
) -> ReviewResult:
    result = reviews.decide(ctx.engine, caller, ctx.clock, audit_id, body.decision, body.comment)
    if result.reason == "audit_not_found":
        raise ApiError(404, "audit_not_found", "no such audit in your scope")
    if result.status == "rejected":
        raise ApiError(409, "review_refused", result.reason or "refused")
    return result
