"""Request dependencies: the app context and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from app.domain.hlc import Clock
from server.core.config import Settings
from server.core.middleware import Counters
from server.core.security import RateLimiter
from server.errors import ApiError
from server.scope import Caller
from server.services import identity
from server.storage import BlobStore


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    blobs: BlobStore
    clock: Clock
    counters: Counters = field(default_factory=Counters)
    login_limiter: RateLimiter | None = None  # failures per address and username
    login_address_limiter: RateLimiter | None = None  # failures per address, any username
    enrol_limiter: RateLimiter | None = None


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


bearer = HTTPBearer(auto_error=False, description="token from /auth/enrol or /auth/login")


def get_caller(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "unauthorized", "a bearer token is required")
    return identity.authenticate(ctx.engine, credentials.credentials)


def get_reviewer(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    if not caller.is_reviewer:
        raise ApiError(403, "forbidden", "only supervisors and admins review audits")
    return caller


def get_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    if caller.role != "admin":
        raise ApiError(403, "forbidden", "admins only")
    return caller


Ctx = Annotated[AppContext, Depends(get_ctx)]
CurrentCaller = Annotated[Caller, Depends(get_caller)]
Reviewer = Annotated[Caller, Depends(get_reviewer)]
Admin = Annotated[Caller, Depends(get_admin)]
