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


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in the
# thread pool, and each such hop (a worker thread woken, the GIL handed over and back) cost a
# sync request more CPU than its caller's look-up (issue 13's tenth round).
async def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


bearer = HTTPBearer(auto_error=False, description="token from /auth/enrol or /auth/login")


async def get_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The bearer token as sent (401 without one); not yet checked."""
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "unauthorized", "a bearer token is required")
    return credentials.credentials


def get_caller(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    token: Annotated[str, Depends(get_token)],
) -> Caller:
    return identity.authenticate(ctx.engine, token)


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
# For a route whose own work runs in the thread pool anyway: it authenticates there
# (`identity.authenticate`) first thing, saving the dependency's own hop to a thread.
BearerToken = Annotated[str, Depends(get_token)]
Reviewer = Annotated[Caller, Depends(get_reviewer)]
Admin = Annotated[Caller, Depends(get_admin)]
