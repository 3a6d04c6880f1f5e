"""Users, enrolment codes, devices and bearer tokens. Used by the routes and the admin CLI."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.domain.codes import SLOTS
from server.core import security
from server.core.db import read_session, take_log_lock, write_session
from server.errors import ApiError
from server.models import ALL_WARDS, AuditLog, Device, EnrolCode, User, utcnow
from server.scope import (
    ADMIN,
    ROLES,
    SUPERVISOR,
    Caller,
    manages,
    normalise_wards,
    wards_overlap,
)

WARD_CODE = re.compile(r"^[0-9]{5}$")
# A revoked device's code slot stays taken this long: its codes of the day may still be synced.
SLOT_QUARANTINE = dt.timedelta(days=2)


@dataclass(frozen=True)
class Lifetimes:
    """How long a bearer token lives, and how long its refresh token may go unused."""

    token: dt.timedelta = dt.timedelta(hours=12)
    device_refresh: dt.timedelta = dt.timedelta(days=30)  # enrolled tablets
    login_refresh: dt.timedelta = dt.timedelta(days=7)  # desktop logins

    @classmethod
    def of(cls, settings) -> Lifetimes:
        return cls(
            dt.timedelta(minutes=settings.token_ttl_minutes),
            dt.timedelta(days=settings.device_refresh_days),
            dt.timedelta(days=settings.login_refresh_days),
        )

    def refresh(self, kind: str) -> dt.timedelta:
        return self.login_refresh if kind == "desktop" else self.device_refresh


@dataclass(frozen=True)
class Enrolment:
    device_id: str
    token: str
    code_slot: int | None
    user: str
    role: str
    wards: list[str]
    refresh_token: str = ""
    expires_at: str = ""  # ISO 8601, UTC: when `token` stops working (renew before)


@dataclass(frozen=True)
class Renewal:
    token: str
    refresh_token: str
    expires_at: str


def create_user(
    engine: Engine,
    username: str,
    role: str,
    wards: list[str],
    password: str | None = None,
    by: Caller | None = None,
) -> User:
    """A new user. `by`: the admin asking over HTTP (None: the CLI, which may do anything)."""
    username = username.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{2,100}", username):
        raise ApiError(422, "invalid_username", "2-100 letters, digits or _ . @ -")
    if role not in ROLES:
        raise ApiError(422, "invalid_role", f"role must be one of {', '.join(ROLES)}")
    wards = normalise_wards(wards)
    bad = [w for w in wards if w != ALL_WARDS and not WARD_CODE.match(w)]
    if bad:
        raise ApiError(422, "invalid_ward", f"ward codes are 5 digits: {', '.join(bad)}")
    if ALL_WARDS in wards and role not in (SUPERVISOR, ADMIN):
        raise ApiError(422, "invalid_ward", "only supervisors and admins may hold all wards")
    if not wards:
        raise ApiError(422, "invalid_ward", "a user needs at least one ward")
    if by is not None and not manages(by, wards):
        raise ApiError(403, "out_of_scope", "you may only create users inside your ward scope")
    user = User(
        username=username,
        role=role,
        wards=wards,
        password_hash=security.hash_password(password) if password else None,
    )
    with write_session(engine) as session:
        if session.exec(select(User).where(User.username == username)).first():
            raise ApiError(409, "user_exists", f"user {username} exists")
        session.add(user)
        session.flush()
        _log(session, "create_user", by, {"user": username, "role": role, "wards": wards})
    return user


def create_enrol_code(
    engine: Engine, username: str, ttl_minutes: int = 60, by: Caller | None = None
) -> str:
    if not 1 <= ttl_minutes <= 7 * 24 * 60:
        raise ApiError(422, "invalid_ttl", "ttl must be 1 minute to 7 days")
    code = security.new_enrol_code()
    with write_session(engine) as session:
        user = _user_by_name(session, username, by)
        session.add(
            EnrolCode(
                code_hash=security.code_hash(code),
                user_id=user.id,
                expires_at=utcnow() + dt.timedelta(minutes=ttl_minutes),
            )
        )
        _log(session, "enrol_code", by, {"user": username, "ttl_minutes": ttl_minutes})
    return code


def _issue(
    device: Device, lifetimes: Lifetimes, now: dt.datetime, refresh: str | None = None
) -> tuple[str, str]:
    """A new bearer token for the device row, and a refresh token unless one is given (both
    kept only as hashes). The refresh token's idle lifetime starts again."""
    token = security.new_token()
    device.token_hash = security.sha256_hex(token)
    device.token_expires_at = now + lifetimes.token
    if refresh is None:
        refresh = security.new_token()
        device.refresh_hash = _refresh_hash(refresh)
    device.refresh_expires_at = now + lifetimes.refresh(device.kind)
    return token, refresh


def _refresh_hash(refresh: str) -> str:
    return security.sha256_hex("refresh:" + refresh)


def enrol(
    engine: Engine, code: str, device_name: str, lifetimes: Lifetimes | None = None
) -> Enrolment:
    lifetimes = lifetimes or Lifetimes()
    now = utcnow()
    with write_session(engine) as session:
        take_log_lock(session)  # code slots are chosen one enrolment at a time
        spent = session.execute(
            update(EnrolCode)
            .where(EnrolCode.code_hash == security.code_hash(code))
            .where(EnrolCode.used_at.is_(None))
            .where(EnrolCode.expires_at > now)
            .values(used_at=now)
            .returning(EnrolCode.user_id)
        ).first()
        if spent is None:
            raise ApiError(401, "invalid_code", "the code is unknown, used or expired")
        user = session.get(User, spent[0])
        if user is None or user.disabled:
            raise ApiError(401, "invalid_code", "the code's user is disabled")
        device = Device(
            id=uuid.uuid4().hex,
            user_id=user.id,
            name=device_name[:200],
            kind="tablet",
            wards=list(user.wards),
            code_slot=_free_slot(session, user.wards, now),
        )
        token, refresh = _issue(device, lifetimes, now)
        session.add(device)
        _log_as(session, "enrol", user.username, user.id, device.id, {"name": device.name})
    return Enrolment(
        device.id,
        token,
        device.code_slot,
        user.username,
        user.role,
        user.wards,
        refresh,
        device.token_expires_at.isoformat(),
    )


def _free_slot(session: Session, wards: list[str], now: dt.datetime) -> int:
    taken = set()
    for other in session.exec(select(Device).where(Device.code_slot.is_not(None))):
        if other.revoked and other.revoked_at and _aware(other.revoked_at) < now - SLOT_QUARANTINE:
            continue
        if wards_overlap(wards, other.wards):
            taken.add(other.code_slot)
    free = next((slot for slot in range(SLOTS) if slot not in taken), None)
    if free is None:
        raise ApiError(409, "no_code_slot", "every dossier code slot of this ward is taken")
    return free


def login(
    engine: Engine, username: str, password: str, lifetimes: Lifetimes | None = None
) -> Enrolment:
    lifetimes = lifetimes or Lifetimes()
    with write_session(engine) as session:
        user = session.exec(select(User).where(User.username == username)).first()
        ok = security.verify_password(user.password_hash if user else None, password)
        if not ok or user is None or user.disabled:
            raise ApiError(401, "invalid_credentials", "wrong username or password")
        device = Device(
            id=uuid.uuid4().hex,
            user_id=user.id,
            name="login",
            kind="desktop",
            wards=list(user.wards),
        )
        token, refresh = _issue(device, lifetimes, utcnow())
        session.add(device)
        _log_as(session, "login", user.username, user.id, device.id)
    return Enrolment(
        device.id,
        token,
        None,
        user.username,
        user.role,
        user.wards,
        refresh,
        device.token_expires_at.isoformat(),
    )


def renew(engine: Engine, refresh_token: str, lifetimes: Lifetimes | None = None) -> Renewal:
    """A new bearer token for the refresh token's device (the old token stops at once).

    The refresh token itself stays (its idle lifetime starts again): an answer lost on a bad
    link must not lock a tablet out, so asking twice is harmless. A revoked device, a disabled
    user or an ended session gets 401 and nothing new."""
    lifetimes = lifetimes or Lifetimes()
    now = utcnow()
    with write_session(engine) as session:
        device = session.exec(
            select(Device).where(Device.refresh_hash == _refresh_hash(refresh_token))
        ).first()
        if device is None:
            raise ApiError(401, "invalid_refresh", "unknown refresh token")
        if device.revoked:
            raise ApiError(401, "device_revoked", "this device was revoked")
        if device.refresh_expires_at is None or _aware(device.refresh_expires_at) <= now:
            raise ApiError(401, "session_expired", "the session ended: log in or enrol again")
        user = session.get(User, device.user_id)
        if user is None or user.disabled:
            raise ApiError(401, "user_disabled", "this user is disabled")
        token, refresh = _issue(device, lifetimes, now, refresh_token)
        session.add(device)
    return Renewal(token, refresh, device.token_expires_at.isoformat())


def logout(engine: Engine, caller: Caller) -> None:
    """End a desktop login: its token and refresh token stop working at once."""
    now = utcnow()
    with write_session(engine) as session:
        device = session.get(Device, caller.device_id)
        if device is None or device.kind != "desktop":
            raise ApiError(403, "not_a_login", "only desktop logins log out; tablets are revoked")
        device.token_expires_at = now
        device.refresh_hash = None
        device.refresh_expires_at = now
        session.add(device)
        _log_as(session, "logout", caller.username, caller.user_id, caller.device_id)


_D, _U = Device.__table__, User.__table__
# Every request's token, device and user in one statement built once (no ORM objects: this
# runs on every request; the two ORM lookups it replaces were a tenth of the server's CPU
# under bench/server_load.py). Nothing is cached: a revoked device, an expired token, a
# disabled user or a narrowed scope counts on the very next request.
_AUTHENTICATE = (
    sa_select(
        _D.c.id,
        _D.c.revoked,
        _D.c.token_expires_at,
        _D.c.last_pull_cursor,
        _U.c.id.label("user_id"),
        _U.c.username,
        _U.c.role,
        _U.c.wards,
        _U.c.disabled,
    )
    .select_from(_D.outerjoin(_U, _U.c.id == _D.c.user_id))
    .where(_D.c.token_hash == bindparam("p_hash"))
)


def authenticate(engine: Engine, token: str) -> Caller:
    with engine.connect() as conn:
        row = conn.execute(_AUTHENTICATE, {"p_hash": security.sha256_hex(token)}).first()
    if row is None:
        raise ApiError(401, "unauthorized", "unknown token")
    if row.revoked:
        raise ApiError(401, "device_revoked", "this device was revoked")
    if row.token_expires_at is None or _aware(row.token_expires_at) <= utcnow():
        raise ApiError(401, "token_expired", "the token expired: renew it at /auth/refresh")
    if row.user_id is None or row.disabled:
        raise ApiError(401, "user_disabled", "this user is disabled")
    # The user's current scope counts, so narrowing a scope takes effect at once.
    return Caller(
        row.user_id,
        row.username,
        row.role,
        frozenset(row.wards),
        row.id,
        row.last_pull_cursor,
    )


def revoke_device(engine: Engine, device_id: str, by: Caller | None = None) -> Device:
    with write_session(engine) as session:
        device = session.get(Device, device_id)
        owner = session.get(User, device.user_id) if device is not None else None
        if device is None or (by is not None and not (owner and manages(by, owner.wards))):
            raise ApiError(404, "device_not_found", f"no device {device_id}")
        if not device.revoked:
            device.revoked = True
            device.revoked_at = utcnow()
            session.add(device)
            _log(session, "revoke_device", by, {"device": device_id, "user": owner.username})
    return device


def list_devices(engine: Engine, by: Caller | None = None) -> list[tuple[Device, str]]:
    """Devices with their user's name; for an admin over HTTP, only users inside their scope."""
    with read_session(engine) as session:
        rows = session.exec(select(Device, User).join(User).order_by(Device.created_at)).all()
    return [
        (device, user.username) for device, user in rows if by is None or manages(by, user.wards)
    ]


def _user_by_name(session: Session, username: str, by: Caller | None = None) -> User:
    """The user; one outside the asking admin's scope is as unknown as a missing one."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or (by is not None and not manages(by, user.wards)):
        raise ApiError(404, "user_not_found", f"no user {username}")
    return user


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _log(session: Session, action: str, by: Caller | None, detail: dict) -> None:
    """An admin action: who did it, from which device (the CLI has neither)."""
    if by is None:
        _log_as(session, action, "cli", detail=detail)
    else:
        _log_as(session, action, by.username, by.user_id, by.device_id, detail)


def _log_as(
    session: Session,
    action: str,
    username: str,
    user_id: int | None = None,
    device_id: str | None = None,
    detail: dict | None = None,
) -> None:
    session.add(
        AuditLog(
            action=action,
            username=username,
            user_id=user_id,
            device_id=device_id,
            detail=detail or {},
        )
    )
