"""Device enrolment (one-time code) and desktop login, both rate-limited per IP (+ username)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.api.deps import Ctx
from server.core.security import RateLimiter
from server.errors import ApiError
from server.schemas import EnrolRequest, EnrolResponse, LoginRequest, LoginResponse
from server.services import identity

router = APIRouter(prefix="/auth", tags=["auth"])


def _limit(limiter: RateLimiter | None, key: str) -> None:
    if limiter is not None and not limiter.hit(key):
        retry = str(limiter.retry_after())
        raise ApiError(
            429, "rate_limited", "too many attempts, wait a minute", headers={"Retry-After": retry}
        )


def _ip(request: Request) -> str:
    return request.client.host if request.client else "?"


@router.post("/enrol", response_model=EnrolResponse)
def enrol(body: EnrolRequest, request: Request, ctx: Ctx) -> EnrolResponse:
    _limit(ctx.enrol_limiter, f"enrol|{_ip(request)}")
    done = identity.enrol(ctx.engine, body.code, body.device_name)
    return EnrolResponse(
        device_id=done.device_id,
        token=done.token,
        code_slot=done.code_slot,
        user=done.user,
        role=done.role,
        wards=done.wards,
    )


@router.post("/login", response_model=LoginResponse)
def login(body: LoginRequest, request: Request, ctx: Ctx) -> LoginResponse:
    _limit(ctx.login_limiter, f"login|{_ip(request)}|{body.username.lower()}")
    done = identity.login(ctx.engine, body.username, body.password)
    return LoginResponse(
        token=done.token,
        device_id=done.device_id,
        user=done.user,
        role=done.role,
        wards=done.wards,
    )
