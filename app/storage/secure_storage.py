"""The device secret in a mobile keystore (Android Keystore / iOS Keychain) via flet-secure-storage.

Mobile builds call `use_platform_secret_store(SecureStorageSecretStore(FletSecureStorageBridge(
storage, loop)))` once at start; from then on new stores keep their device secret (and the wrong-PIN
anchor) there, behind the same `DeviceSecretStore` interface as the desktop keyring. The vault is
always called off the UI loop (a worker thread), so the bridge may block on flet's async calls.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Protocol

from app.storage.keys import DeviceSecretStore

_PREFIX = "commune-field"


class SecureStorageBackend(Protocol):
    """Synchronous key-value access to a platform keystore (strings in, strings out)."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str) -> None: ...
    def remove(self, key: str) -> None: ...


class SecureStorageSecretStore(DeviceSecretStore):
    kind = "secure-storage"

    def __init__(self, backend: SecureStorageBackend) -> None:
        self.backend = backend

    def put(self, store_id: str, secret: bytes) -> None:
        self.backend.set(f"{_PREFIX}/{store_id}", base64.b64encode(secret).decode())

    def get(self, store_id: str) -> bytes | None:
        value = self.backend.get(f"{_PREFIX}/{store_id}")
        return base64.b64decode(value) if value else None

    def delete(self, store_id: str) -> None:
        self.backend.remove(f"{_PREFIX}/{store_id}")
        self.backend.remove(f"{_PREFIX}/{store_id}/attempts")

    def put_anchor(self, store_id: str, serial: int) -> None:
        self.backend.set(f"{_PREFIX}/{store_id}/attempts", str(serial))

    def get_anchor(self, store_id: str) -> int | None:
        value = self.backend.get(f"{_PREFIX}/{store_id}/attempts")
        return int(value) if value and value.isdigit() else None


class FletSecureStorageBridge:
    """`flet_secure_storage.SecureStorage` (async get/set/remove) called from a worker thread."""

    def __init__(self, storage: Any, loop: asyncio.AbstractEventLoop, timeout_s: float = 10.0):
        self.storage = storage
        self.loop = loop
        self.timeout_s = timeout_s

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(self.timeout_s)

    def get(self, key: str) -> str | None:
        return self._call(self.storage.get(key))

    def set(self, key: str, value: str) -> None:
        self._call(self.storage.set(key, value))

    def remove(self, key: str) -> None:
        self._call(self.storage.remove(key))
