"""Keeps this store's escrow (its data key sealed to the organisation's recovery key) current.

Used by `LocalStore` (which holds the data key) and by the sync engine, which fetches the public
key when the store has none and uploads the escrow once per key and store id."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from app.storage.recovery import ESCROW_FILE, key_id, make_escrow, read_escrow

PUBLIC_KEY_SETTING = "recovery_public_key"
UPLOADED_SETTING = "escrow_uploaded"
ASKED_SETTING = "recovery_key_asked_at"
CONTACT_FILE = "device_contact.json"
ASK_EVERY_S = 24 * 3600  # a server without a recovery key is asked again once a day


class EscrowKeeper:
    def __init__(self, data_dir: Path, data_key: bytes, store_id: str, device_id: str,
                 settings: Any) -> None:
        self.data_dir = Path(data_dir)
        self._data_key = data_key
        self.store_id = store_id
        self.device_id = device_id
        self.settings = settings

    def public_key(self) -> str | None:
        return self.settings.get(PUBLIC_KEY_SETTING)

    def due_to_ask(self, now: float | None = None) -> bool:
        last = self.settings.get(ASKED_SETTING)
        now = time.time() if now is None else now
        return not isinstance(last, int | float) or not 0 <= now - last < ASK_EVERY_S

    def asked(self, now: float | None = None) -> None:
        self.settings.set(ASKED_SETTING, time.time() if now is None else now)

    def set_public_key(self, public_b64: str) -> dict[str, Any] | None:
        self.settings.set(PUBLIC_KEY_SETTING, public_b64)
        return self.refresh()

    def refresh(self) -> dict[str, Any] | None:
        """The escrow for the current key, rewritten when missing or made for another key,
        store id or device; None while no recovery key is known."""
        from app.storage.keys import _write_atomic

        public = self.public_key()
        if not public:
            return None
        current = read_escrow(self.data_dir)
        wanted = {"kid": key_id(public), "store_id": self.store_id, "device_id": self.device_id}
        server_id = self.settings.get("server_device_id")
        if current and all(current.get(k) == v for k, v in wanted.items()) and (
            current.get("server_device_id") == server_id
        ):
            return current
        escrow = make_escrow(public, self._data_key, self.store_id, self.device_id)
        escrow["server_device_id"] = server_id  # for the admin's lookup; outside the AAD
        _write_atomic(self.data_dir / ESCROW_FILE, json.dumps(escrow).encode())
        return escrow

    def refresh_contact(self) -> None:
        """`device_contact.json`: what a locked tablet needs to ask whether it is revoked (the
        server address, its device id and the SHA-256 of its token, never the token)."""
        from app.storage.keys import _write_atomic

        url, device, token = (self.settings.get(k) for k in
                              ("server_url", "server_device_id", "device_token"))
        path = self.data_dir / CONTACT_FILE
        if not (url and device and token):
            return
        body = {"server_url": url, "device_id": device,
                "token_hash": hashlib.sha256(token.encode()).hexdigest()}
        try:
            if json.loads(path.read_text()) == body:
                return
        except (OSError, ValueError):
            pass
        _write_atomic(path, json.dumps(body).encode())

    def pending_upload(self) -> dict[str, Any] | None:
        escrow = self.refresh()
        if escrow is None or self.settings.get(UPLOADED_SETTING) == _mark(escrow):
            return None
        return escrow

    def mark_uploaded(self, escrow: dict[str, Any]) -> None:
        self.settings.set(UPLOADED_SETTING, _mark(escrow))


def _mark(escrow: dict[str, Any]) -> str:
    return f"{escrow['kid']}/{escrow['store_id']}/{escrow.get('server_device_id')}"
