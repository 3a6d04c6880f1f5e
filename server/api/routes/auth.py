"""Device enrolment (one-time code) and desktop login, both rate-limited per IP (+ username)."""

from __future__ import annotations

from contextlib import contextmanager

from fastapi import APIRouter, Request

from server.api.deps import Ctx
from server.core.security import RateLimiter
from server.errors import ApiError
from server.schemas import EnrolRequest, EnrolResponse, LoginRequest, LoginResponse
from server.services import identity

router = APIRouter(prefix="/auth", tags=["auth"])


@contextmanager
def _limited(limiter: RateLimiter | None, key: str):
    """Refuse while the key has too many recent failures; count this attempt if it fails."""
    if limiter is not None and limiter.blocked(key):
        raise ApiError(
            429,
            "rate_limited",
            "too many failed attempts, wait a minute",
            headers={"Retry-After": str(limiter.retry_after())},
        )
    try:
        yield
    except ApiError as exc:
        if limiter is not None and exc.status == 401:
            limiter.fail(key)
        raise


def _ip(request: Request) -> str:
    return request.client.host if request.client else "?"


@router.post("/enrol", response_model=EnrolResponse)
def enrol(body: EnrolRequest, request: Request, ctx: Ctx) -> EnrolResponse:
    with _limited(ctx.enrol_limiter, f"enrol|{_ip(request)}"):
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
    with _limited(ctx.login_limiter, f"login|{_ip(request)}|{body.username.lower()}"):
        done = identity.login(ctx.engine, body.username, body.password)
    return LoginResponse(
        token=done.token,
        device_id=done.device_id,
        user=done.user,
        role=done.role,
        wards=done.wards,
    )
