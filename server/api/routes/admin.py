"""Admin over HTTP (desktop admins): users, enrolment codes, devices. The CLI does the same.

An admin manages only users whose wards lie inside the admin's own scope ('*': everyone);
users and devices outside it are invisible (404) and out of reach (403 for a new user)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.domain.catalogue import MAX_ROWS, parse_rows
from app.domain.mutations import WireText
from server.api.deps import Admin, Ctx
from server.api.params import IdPath
from server.errors import ApiError
from server.schemas import (
    DeviceList,
    DeviceOut,
    EnrolCodeOut,
    EnrolCodeRequest,
    UserCreate,
    UserOut,
)
from server.services import identity, reference, sync

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
    sync.CURSOR_NOTES.flush(ctx.engine)  # the pull cursors this process noted, written first
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


# ---------------------------------------------------------------------------------------------
# Reference data (server/services/reference.py): the province's, so only an admin of every
# ward ('*') publishes it; a ward-scoped admin gets 403 out_of_scope.


class CalendarIn(BaseModel):
    make_up_days: list[dt.date] = Field(default_factory=list, max_length=400)
    extra_holidays: list[dt.date] = Field(default_factory=list, max_length=400)


# Cells are plain text here: the text rule is checked per cell, so a bad one is a line error.
Row = Annotated[dict[str, str | int | float | None], Field(max_length=20)]


class CatalogueIn(BaseModel):
    """The file's rows as cells by column (the CLI's reader gives the same); `first_line` is
    the file line of the first row, so errors name the file's lines."""

    rows: list[Row] = Field(max_length=MAX_ROWS)
    first_line: int = Field(default=2, ge=1, le=1_000_000)
    source: WireText = Field(default="", max_length=300)


def _province_admin(caller) -> None:
    if not caller.all_wards:
        raise ApiError(403, "out_of_scope", "only an admin of every ward publishes reference data")


@router.put("/calendar")
def publish_calendar(body: CalendarIn, caller: Admin, ctx: Ctx) -> dict:
    _province_admin(caller)
    try:
        version = reference.set_calendar(
            ctx.engine, body.make_up_days, body.extra_holidays, actor=caller.username
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_calendar", str(exc)) from exc
    return {"version": version}


@router.post("/catalogue", status_code=201)
def publish_catalogue(body: CatalogueIn, caller: Admin, ctx: Ctx) -> dict:
    _province_admin(caller)
    numbered = ((body.first_line + i, dict(row)) for i, row in enumerate(body.rows))
    found, errors = parse_rows(numbered)
    if errors:
        raise ApiError(
            422, "catalogue_lines", f"{len(errors)} bad line(s); nothing stored",
            lines=[{"line": e.line, "reason": e.reason} for e in errors[:200]],
        )
    version = reference.import_catalogue(
        ctx.engine, found, actor=caller.username, source=body.source
    )
    return {"version": version, "procedures": len(found)}
