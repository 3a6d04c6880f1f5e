"""The organisation's recovery public key, device escrows, and the audit of every recovery."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import select

from server.core.db import read_session, write_session
from server.errors import ApiError
from server.models import DeviceEscrow, RecoveryKey, utcnow
from server.scope import Caller
from server.services.identity import _log_as

ESCROW_MAX_FIELD = 512


def set_public_key(engine: Engine, public_b64: str, kid: str) -> None:
    """The new active key (older ones stay listed, inactive: their escrows still open)."""
    try:
        if len(base64.b64decode(public_b64, validate=True)) != 32:
            raise ValueError
    except (ValueError, binascii.Error) as exc:
        raise ApiError(422, "bad_key", "not an X25519 public key") from exc
    with write_session(engine) as session:
        session.execute(update(RecoveryKey).values(active=False))
        existing = session.get(RecoveryKey, kid)
        if existing is None:
            session.add(RecoveryKey(kid=kid, public_key=public_b64, active=True))
        else:
            existing.active = True
        _log_as(session, "recovery_key", "cli", detail={"kid": kid})


def active_public_key(engine: Engine) -> RecoveryKey | None:
    with read_session(engine) as session:
        return session.exec(select(RecoveryKey).where(RecoveryKey.active)).first()


def put_escrow(engine: Engine, caller: Caller, escrow: dict[str, Any]) -> None:
    _check_escrow(escrow)
    with write_session(engine) as session:
        if session.get(RecoveryKey, str(escrow["kid"])) is None:
            raise ApiError(422, "unknown_recovery_key", "escrow sealed to an unknown key")
        row = session.get(DeviceEscrow, caller.device_id)
        if row is None:
            session.add(DeviceEscrow(device_id=caller.device_id, kid=escrow["kid"], escrow=escrow))
        else:
            row.kid, row.escrow, row.updated_at = escrow["kid"], escrow, utcnow()
            session.add(row)


def _check_escrow(escrow: dict[str, Any]) -> None:
    """Bounded and of the escrow's shape (strings without NUL, a small version number)."""
    texts = ("kid", "epk", "nonce", "ct", "store_id", "device_id")
    ok = (
        len(escrow) <= 10
        and all(len(k) <= 32 and "\x00" not in k for k in escrow)
        and escrow.get("v") == 1
        and all(isinstance(escrow.get(k), str) for k in texts)
        and all(
            v is None or (isinstance(v, str) and len(v) <= ESCROW_MAX_FIELD and "\x00" not in v)
            for k, v in escrow.items() if k != "v"
        )
        and len(escrow["kid"]) <= 16
    )
    if not ok:
        raise ApiError(422, "bad_escrow", "not an escrow")


def escrow_of(engine: Engine, device_id: str) -> dict[str, Any] | None:
    with read_session(engine) as session:
        row = session.get(DeviceEscrow, device_id)
        return dict(row.escrow) if row else None


def log_recovery(engine: Engine, device_id: str | None, detail: dict[str, Any]) -> None:
    """Every recovery, in the append-only audit log."""
    with write_session(engine) as session:
        _log_as(session, "recover_device", "cli", device_id=device_id, detail=detail)


def device_revoked(engine: Engine, device_id: str, token_hash: str) -> bool:
    """Whether this device is revoked, for a locked tablet that proves it is the device with
    the SHA-256 of its token (the token itself stays sealed until unlock). Unknown device or a
    wrong hash: 404, the same answer, so nothing is learned about other devices."""
    from server.models import Device

    with read_session(engine) as session:
        device = session.get(Device, device_id[:40])
    if device is None or not hmac.compare_digest(device.token_hash, token_hash):
        raise ApiError(404, "device_not_found", "no such device")
    return bool(device.revoked)
