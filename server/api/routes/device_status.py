"""POST /device-status: is this (locked) tablet revoked? It answers without a bearer token, to a
device that proves itself with the SHA-256 of its token, so a revoked tablet erases its keys
at its next contact even if nobody unlocks it (app.sync.locked_check)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from server.api.deps import Ctx
from server.services import recovery

router = APIRouter(tags=["devices"])


class DeviceStatusIn(BaseModel):
    device_id: str = Field(min_length=1, max_length=40, pattern=r"^[0-9a-f]+$")
    token_hash: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")


class DeviceStatusOut(BaseModel):
    revoked: bool


@router.post("/device-status", response_model=DeviceStatusOut)
def device_status(body: DeviceStatusIn, ctx: Ctx) -> DeviceStatusOut:
    return DeviceStatusOut(revoked=recovery.device_revoked(ctx.engine, body.device_id,
                                                           body.token_hash))
