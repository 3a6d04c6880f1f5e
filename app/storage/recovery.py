"""Recovery of a forgotten PIN through the organisation's offline recovery key (X25519).

- The organisation's key pair: the private half is written once to a passphrase-encrypted PEM
  file the admin keeps offline (`commune admin recovery-key create --out FILE`); only the public
  half is on the server and on devices.
- Escrow: every store's data key is also sealed to that public key (ECIES: an ephemeral X25519
  key, HKDF-SHA256 of the shared secret, AES-256-GCM with the store and device ids as associated
  data) in `escrow.json` beside the store. It is readable before unlock (it opens only with the
  private half) and travels to the server with sync.
- One-time recovery: `commune recover` writes a request (the escrow and a fresh request public
  key whose private half stays in `recovery_request.json`); the admin opens the escrow with the
  private half and seals the data key to the request key (`commune admin recover-device`); the
  device opens that answer, wraps the data key under a new PIN and deletes the request key, so
  the answer is useless a second time or on any other device.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.storage.crypto import hkdf
from app.storage.errors import StorageError, TamperError

ESCROW_FILE = "escrow.json"
REQUEST_FILE = "recovery_request.json"
_ESCROW_INFO = b"commune-field/v1/escrow"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


class RecoveryError(StorageError):
    def __str__(self) -> str:
        detail = f" ({self.args[0]})" if self.args else ""
        return f"Không khôi phục được / Recovery failed{detail}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def key_id(public_b64: str) -> str:
    return hashlib.sha256(_unb64(public_b64)).hexdigest()[:16]


def public_b64(private: X25519PrivateKey) -> str:
    return _b64(private.public_key().public_bytes(*_RAW))


# ---------------------------------------------------------------- the organisation key


def new_recovery_key(passphrase: str) -> tuple[bytes, str]:
    """(PEM of the private half, encrypted under `passphrase`; the public half, base64)."""
    if len(passphrase) < 12:
        raise RecoveryError("the recovery key passphrase needs at least 12 characters")
    private = X25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    return pem, public_b64(private)


def load_recovery_key(pem: bytes, passphrase: str) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, passphrase.encode())
    except (ValueError, TypeError) as exc:
        raise RecoveryError("wrong passphrase or not a recovery key file") from exc
    if not isinstance(key, X25519PrivateKey):
        raise RecoveryError("not an X25519 recovery key")
    return key


# ---------------------------------------------------------------- sealing to a public key


def seal_to(recipient_b64: str, secret: bytes, context: dict[str, str]) -> dict[str, Any]:
    recipient = X25519PublicKey.from_public_bytes(_unb64(recipient_b64))
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes(*_RAW)
    key = hkdf(ephemeral.exchange(recipient), _ESCROW_INFO, salt=epk + _unb64(recipient_b64))
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, secret, _aad(context))
    return {
        "v": 1, "kid": key_id(recipient_b64), "epk": _b64(epk), "nonce": _b64(nonce),
        "ct": _b64(sealed), **context,
    }


def open_sealed(private: X25519PrivateKey, sealed: dict[str, Any], context_keys: tuple[str, ...]
                ) -> bytes:
    mine = public_b64(private)
    if sealed.get("kid") != key_id(mine):
        raise RecoveryError("sealed to another recovery key")
    try:
        epk = _unb64(sealed["epk"])
        key = hkdf(
            private.exchange(X25519PublicKey.from_public_bytes(epk)), _ESCROW_INFO,
            salt=epk + _unb64(mine),
        )
        context = {k: str(sealed[k]) for k in context_keys}
        return AESGCM(key).decrypt(_unb64(sealed["nonce"]), _unb64(sealed["ct"]), _aad(context))
    except (KeyError, ValueError, TypeError, InvalidTag) as exc:
        raise TamperError("escrow or recovery answer") from exc


def _aad(context: dict[str, str]) -> bytes:
    return json.dumps(context, sort_keys=True, separators=(",", ":")).encode()


ESCROW_CONTEXT = ("store_id", "device_id")


def make_escrow(recovery_public: str, data_key: bytes, store_id: str, device_id: str) -> dict:
    return seal_to(recovery_public, data_key, {"store_id": store_id, "device_id": device_id})


def read_escrow(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(data_dir) / ESCROW_FILE).read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- the one-time request


def new_request(data_dir: Path, escrow: dict[str, Any], server_device_id: str | None) -> dict:
    """A request for the admin; its private half stays in `data_dir` until it is used."""
    from app.storage.keys import _write_atomic

    private = X25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    request_id = secrets.token_hex(8)
    body = {"request_id": request_id, "private": _b64(raw)}
    _write_atomic(Path(data_dir) / REQUEST_FILE, json.dumps(body).encode())
    return {
        "request_id": request_id, "request_key": public_b64(private), "escrow": escrow,
        "server_device_id": server_device_id,
    }


def answer_request(private: X25519PrivateKey, request: dict[str, Any],
                   escrow: dict[str, Any] | None = None) -> dict[str, Any]:
    """The admin's side: open the escrow (the request's own, or `escrow` from the server) and
    seal its data key to the request key."""
    escrow = escrow or request.get("escrow")
    if not escrow:
        raise RecoveryError("no escrow for this device")
    data_key = open_sealed(private, escrow, ESCROW_CONTEXT)
    context = {"request_id": str(request["request_id"]), "store_id": str(escrow["store_id"])}
    return seal_to(request["request_key"], data_key, context)


def open_answer(data_dir: Path, answer: dict[str, Any]) -> tuple[bytes, str]:
    """(data key, store id) from the admin's answer, with the request key kept here."""
    try:
        body = json.loads((Path(data_dir) / REQUEST_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise RecoveryError("no open recovery request on this device") from exc
    if answer.get("request_id") != body["request_id"]:
        raise RecoveryError("this answer is for another request")
    private = X25519PrivateKey.from_private_bytes(_unb64(body["private"]))
    data_key = open_sealed(private, answer, ("request_id", "store_id"))
    return data_key, str(answer["store_id"])


def forget_request(data_dir: Path) -> None:
    from app.storage.keys import _shred

    _shred(Path(data_dir) / REQUEST_FILE)
