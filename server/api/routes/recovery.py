"""GET /recovery/key (the organisation's recovery public key) and PUT /recovery/escrow (this
device's data key sealed to it). The private half is never on the server (app.storage.recovery)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from server.api.deps import Ctx, CurrentCaller
from server.errors import ApiError
from server.services import recovery

router = APIRouter(prefix="/recovery", tags=["recovery"])


class RecoveryKeyOut(BaseModel):
    kid: str
    public_key: str


class EscrowIn(BaseModel):
    escrow: dict[str, Any]


@router.get("/key", response_model=RecoveryKeyOut)
def key(caller: CurrentCaller, ctx: Ctx) -> RecoveryKeyOut:
    found = recovery.active_public_key(ctx.engine)
    if found is None:
        raise ApiError(404, "no_recovery_key", "no recovery key is set")
    return RecoveryKeyOut(kid=found.kid, public_key=found.public_key)


class EscrowOut(BaseModel):
    kid: str


@router.put("/escrow", response_model=EscrowOut)
def escrow(body: EscrowIn, caller: CurrentCaller, ctx: Ctx) -> EscrowOut:
    recovery.put_escrow(ctx.engine, caller, body.escrow)
    return EscrowOut(kid=str(body.escrow["kid"]))
