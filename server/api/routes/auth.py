"""Device enrolment (one-time code), desktop login and logout, token renewal.

Failures are rate-limited per client address (login: per address and username, and per address
whatever the username, so cycling usernames from one address is stopped too)."""

from __future__ import annotations

from contextlib import contextmanager

from fastapi import APIRouter, Request

from server.api.deps import Ctx, CurrentCaller
from server.core.security import RateLimiter
from server.errors import ApiError
from server.schemas import (
    EnrolRequest,
    EnrolResponse,
    LoginRequest,
    LoginResponse,
    RefreshRequest,
    RefreshResponse,
)
from server.services import identity

router = APIRouter(prefix="/auth", tags=["auth"])


@contextmanager
def _limited(*limits: tuple[RateLimiter | None, str]):
    """Refuse while any (limiter, key) has too many recent failures; count a failure in all."""
    for limiter, key in limits:
        if limiter is not None and limiter.blocked(key):
            raise ApiError(
                429,
                "rate_limited",
                "too many failed attempts, wait a minute",
                headers={"Retry-After": str(limiter.retry_after(key))},
            )
    try:
        yield
    except ApiError as exc:
        if exc.status == 401:
            for limiter, key in limits:
                if limiter is not None:
                    limiter.fail(key)
        raise


def _ip(request: Request) -> str:
    return request.client.host if request.client else "?"


@router.post("/enrol", response_model=EnrolResponse)
def enrol(body: EnrolRequest, request: Request, ctx: Ctx) -> EnrolResponse:
    with _limited((ctx.enrol_limiter, f"enrol|{_ip(request)}")):
        done = identity.enrol(ctx.engine, body.code, body.device_name, _lifetimes(ctx))
    return EnrolResponse(
        device_id=done.device_id,
        token=done.token,
        code_slot=done.code_slot,
        user=done.user,
        role=done.role,
        wards=done.wards,
        refresh_token=done.refresh_token,
        expires_at=done.expires_at,
    )


@router.post("/login", response_model=LoginResponse)
def login(body: LoginRequest, request: Request, ctx: Ctx) -> LoginResponse:
    ip = _ip(request)
    with _limited(
        (ctx.login_limiter, f"login|{ip}|{body.username.lower()}"),
        (ctx.login_address_limiter, f"login|{ip}"),
    ):
        done = identity.login(ctx.engine, body.username, body.password, _lifetimes(ctx))
    return LoginResponse(
        token=done.token,
        device_id=done.device_id,
        user=done.user,
        role=done.role,
        wards=done.wards,
        refresh_token=done.refresh_token,
        expires_at=done.expires_at,
    )


@router.post("/refresh", response_model=RefreshResponse)
def refresh(body: RefreshRequest, request: Request, ctx: Ctx) -> RefreshResponse:
    """A new bearer token for a refresh token (enrolled tablets and desktop logins)."""
    with _limited((ctx.enrol_limiter, f"refresh|{_ip(request)}")):
        done = identity.renew(ctx.engine, body.refresh_token, _lifetimes(ctx))
    return RefreshResponse(
        token=done.token, refresh_token=done.refresh_token, expires_at=done.expires_at
    )


@router.post("/logout", status_code=204)
def logout(caller: CurrentCaller, ctx: Ctx) -> None:
    """End this desktop login: its token and refresh token stop working at once."""
    identity.logout(ctx.engine, caller)


def _lifetimes(ctx) -> identity.Lifetimes:
    return identity.Lifetimes.of(ctx.settings)
