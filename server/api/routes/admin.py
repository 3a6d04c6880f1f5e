"""Admin over HTTP (desktop admins): users, enrolment codes, devices. The CLI does the same.

An admin manages only users whose wards lie inside the admin's own scope ('*': everyone);
users and devices outside it are invisible (404) and out of reach (403 for a new user)."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import Admin, Ctx
from server.api.params import IdPath
from server.schemas import (
    DeviceList,
    DeviceOut,
    EnrolCodeOut,
    EnrolCodeRequest,
    UserCreate,
    UserOut,
)
from server.services import identity

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserCreate, caller: Admin, ctx: Ctx) -> UserOut:
    user = identity.create_user(
        ctx.engine, body.username, body.role, body.wards, body.password, by=caller
    )
    return UserOut(id=user.id, username=user.username, role=user.role, wards=user.wards)


@router.post("/enrol-codes", response_model=EnrolCodeOut, status_code=201)
def enrol_code(body: EnrolCodeRequest, caller: Admin, ctx: Ctx) -> EnrolCodeOut:
    code = identity.create_enrol_code(ctx.engine, body.username, body.ttl_minutes, by=caller)
    return EnrolCodeOut(code=code, expires_in_minutes=body.ttl_minutes)


@router.get("/devices", response_model=DeviceList)
def devices(caller: Admin, ctx: Ctx) -> DeviceList:
    return DeviceList(
        devices=[device_out(d, user) for d, user in identity.list_devices(ctx.engine, caller)]
    )


@router.post("/devices/{device_id}/revoke", response_model=DeviceOut)
def revoke(device_id: IdPath, caller: Admin, ctx: Ctx) -> DeviceOut:
    device = identity.revoke_device(ctx.engine, device_id, by=caller)
    return device_out(device, "")


def device_out(device, username: str) -> DeviceOut:
    return DeviceOut(
        device_id=device.id,
        user=username,
        name=device.name,
        kind=device.kind,
        code_slot=device.code_slot,
        revoked=device.revoked,
        last_pull_cursor=device.last_pull_cursor,
        created_at=device.created_at.isoformat(),
    )
