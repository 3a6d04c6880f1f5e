"""Ask the server, without the PIN, whether this tablet was revoked; erase it if so.

A locked tablet (the app at start before the PIN, or sitting locked) reads `device_contact.json`
(server address, device id, SHA-256 of its token; app.storage.escrow) and POSTs it to
/device-status. Revoked: the keys are destroyed at once (`wipe_store`), nobody needs to unlock.
Offline, an unknown device or any other answer: nothing happens (the next contact asks again).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from app.storage import wipe_store
from app.storage.escrow import CONTACT_FILE

TIMEOUT_S = 10.0


def check_while_locked(data_dir: Path, timeout_s: float = TIMEOUT_S) -> bool:
    """True when the server said this device is revoked and its store was erased."""
    try:
        contact = json.loads((Path(data_dir) / CONTACT_FILE).read_text())
        url = str(contact["server_url"]).rstrip("/") + "/device-status"
        body = {"device_id": contact["device_id"], "token_hash": contact["token_hash"]}
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        resp = httpx.post(url, json=body, timeout=timeout_s)
    except httpx.HTTPError:
        return False
    if resp.status_code != 200:
        return False
    try:
        revoked = resp.json().get("revoked") is True
    except ValueError:
        return False
    if revoked:
        wipe_store(Path(data_dir))
    return revoked
