"""The data key and the PIN that unlocks it.

A random 32-byte data key encrypts everything (through `crypto.derive_subkeys`). It is stored only
wrapped, with AES-256-GCM, under a key-encryption key (KEK):

    KEK = HKDF-SHA256(Argon2id(PIN, salt) || device secret, salt=store id, info="…/kek")

The device secret lives in the OS keystore when one is usable (`KeyringSecretStore`), else in a
0600 file next to the store (`FileSecretStore`). Changing the PIN re-wraps the same data key; no
record is re-encrypted. Files in `data_dir`:

- `key.json`: format, store id, Argon2 parameters, attempt policy, salt, nonce, wrapped key. The
  parameters and policy are the associated data of the wrap, so editing them breaks the unlock.
- `unlock_state.json`: failed attempts and the time of the last one. It is written BEFORE each
  attempt is checked (pessimistic counting), so killing the process mid-attempt still spends it.
- `device.secret`: only with the file fallback.

Limits: the attempt counter and delays slow down guessing through the app. Someone who copies the
whole disk can guess offline at Argon2 speed; with a keystore-held device secret they also need
the keystore, with the file fallback they do not (the PIN alone protects the data then).
Overwriting before deleting is best effort on flash storage; the erase that counts is losing the
wrapped key and the device secret.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import keyring
import keyring.backend
import keyring.errors
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.storage.crypto import KEY_BYTES, NONCE_BYTES, hkdf
from app.storage.errors import (
    LockedOut,
    NoStore,
    PinTooShort,
    StorageError,
    StoreDestroyed,
    WeakSecretWithoutKeystore,
    WrongPin,
)
from app.storage.secret_strength import bits, keyspace, required_keyspace

KEY_FILE = "key.json"
STATE_FILE = "unlock_state.json"
SECRET_FILE = "device.secret"
KEYRING_SERVICE = "commune-field"
KEY_FORMAT = 1
MIN_PIN_CHARS = 4
_KEK_INFO = b"commune-field/v1/kek"
_ATTEMPTS_INFO = b"commune-field/v1/attempts"


@dataclass(frozen=True)
class KeySettings:
    """Unlock policy and Argon2id cost. Stored with the wrapped key at create/change_pin time."""

    max_attempts: int = 10
    base_delay_s: float = 1.0
    max_delay_s: float = 300.0
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 64 * 1024  # KiB (64 MiB): ~0.15 s on a laptop core, fine on a tablet
    argon2_parallelism: int = 2
    # Without a keystore, the secret must resist this many years of 16 cores guessing offline
    # (app.storage.secret_strength). 0 turns the rule off: tests' cheap Argon2, demo data.
    offline_years: float = 10.0

    @classmethod
    def for_tests(cls, **overrides: Any) -> KeySettings:
        """Cheap Argon2 for tests; the attempt policy stays the production one unless overridden."""
        cheap: dict[str, Any] = dict(
            argon2_time_cost=1, argon2_memory_cost=8, argon2_parallelism=1, offline_years=0.0
        )
        return cls(**(cheap | overrides))

    def check_secret_without_keystore(self, secret: str) -> None:
        """WeakSecretWithoutKeystore unless `secret` resists `offline_years` of offline guessing
        at this cost."""
        need = required_keyspace(self.offline_years, self.argon2_time_cost, self.argon2_memory_cost)
        have = keyspace(secret)
        if have < need:
            raise WeakSecretWithoutKeystore(bits(have), bits(need))

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after the n-th consecutive failure: base, 2*base, 4*base, … capped."""
        if failures <= 0:
            return 0.0
        return min(self.max_delay_s, self.base_delay_s * 2.0 ** (failures - 1))


# ---------------------------------------------------------------- device secret stores


class DeviceSecretStore(ABC):
    """Where the 32-byte device secret lives, keyed by the store id."""

    kind: str

    @abstractmethod
    def put(self, store_id: str, secret: bytes) -> None: ...

    @abstractmethod
    def get(self, store_id: str) -> bytes | None: ...

    @abstractmethod
    def delete(self, store_id: str) -> None: ...

    # The attempts anchor: the serial of the last unlock-state write, kept where the secret is,
    # so a deleted or restored `unlock_state.json` is seen (see `KeyVault._load_state`).
    @abstractmethod
    def put_anchor(self, store_id: str, serial: int) -> None: ...

    @abstractmethod
    def get_anchor(self, store_id: str) -> int | None: ...


class KeyringSecretStore(DeviceSecretStore):
    """The OS keystore through `keyring` (service "commune-field", username = store id)."""

    kind = "keyring"

    def put(self, store_id: str, secret: bytes) -> None:
        keyring.set_password(KEYRING_SERVICE, store_id, base64.b64encode(secret).decode())

    def get(self, store_id: str) -> bytes | None:
        try:
            value = keyring.get_password(KEYRING_SERVICE, store_id)
        except keyring.errors.KeyringError:
            return None
        return base64.b64decode(value) if value else None

    def delete(self, store_id: str) -> None:
        for username in (store_id, _anchor_name(store_id)):
            with contextlib.suppress(keyring.errors.KeyringError):
                keyring.delete_password(KEYRING_SERVICE, username)

    def put_anchor(self, store_id: str, serial: int) -> None:
        keyring.set_password(KEYRING_SERVICE, _anchor_name(store_id), str(serial))

    def get_anchor(self, store_id: str) -> int | None:
        try:
            value = keyring.get_password(KEYRING_SERVICE, _anchor_name(store_id))
        except keyring.errors.KeyringError:
            return None
        return int(value) if value and value.isdigit() else None


def _anchor_name(store_id: str) -> str:
    return f"{store_id}/attempts"


class FileSecretStore(DeviceSecretStore):
    """Fallback: `data_dir/device.secret`, mode 0600.

    This gives no protection beyond the PIN when the whole disk (or data directory) is copied: the
    secret travels with the wrapped key. It still binds the store to its directory's secret and is
    erased with the key. Used where no OS keystore is reachable (headless Linux, tests).
    """

    kind = "file"

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / SECRET_FILE

    def put(self, store_id: str, secret: bytes) -> None:
        body = {"store_id": store_id, "secret": base64.b64encode(secret).decode()}
        _write_atomic(self.path, json.dumps(body).encode())

    def get(self, store_id: str) -> bytes | None:
        body = self._body(store_id)
        return base64.b64decode(body["secret"]) if body else None

    def delete(self, store_id: str) -> None:
        _shred(self.path)

    def put_anchor(self, store_id: str, serial: int) -> None:
        body = self._body(store_id)
        if body is None:
            return  # no secret here: nothing to anchor (the unlock fails anyway)
        _write_atomic(self.path, json.dumps(body | {"attempts_serial": serial}).encode())

    def get_anchor(self, store_id: str) -> int | None:
        body = self._body(store_id)
        value = body.get("attempts_serial") if body else None
        return value if isinstance(value, int) else None

    def _body(self, store_id: str) -> dict[str, Any] | None:
        try:
            body = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(body, dict) or body.get("store_id") != store_id:
            return None
        return body


def keyring_is_usable(backend: keyring.backend.KeyringBackend | None = None) -> bool:
    """True when `keyring` has a real backend (not fail/null, not an empty chainer)."""
    try:
        backend = backend or keyring.get_keyring()
        from keyring.backends import chainer, fail, null

        if isinstance(backend, fail.Keyring | null.Keyring):
            return False
        if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
            return False
        return float(backend.priority) > 0
    except Exception:  # a broken backend is an unusable one
        return False


_platform_store: DeviceSecretStore | None = None


def use_platform_secret_store(store: DeviceSecretStore | None) -> None:
    """A mobile build's keystore (app.storage.secure_storage), preferred over everything else."""
    global _platform_store
    _platform_store = store


def default_secret_store(data_dir: Path) -> DeviceSecretStore:
    """Keystore first: the platform's (mobile), the OS keyring (desktop), a file only if neither."""
    if _platform_store is not None:
        return _platform_store
    return KeyringSecretStore() if keyring_is_usable() else FileSecretStore(data_dir)


def _secret_store_of_kind(kind: str, data_dir: Path) -> DeviceSecretStore:
    if _platform_store is not None and kind == _platform_store.kind:
        return _platform_store
    if kind == KeyringSecretStore.kind:
        return KeyringSecretStore()
    return FileSecretStore(data_dir)


# ---------------------------------------------------------------- file helpers


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file (0600) in the same directory, fsync, rename over: never a half-written key."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _shred(path: Path) -> None:
    """Overwrite with random bytes, fsync, delete. Missing file: nothing to do."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(secrets.token_bytes(max(size, 1)))
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
    except FileNotFoundError:
        return
    _fsync_dir(path.parent)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


# ---------------------------------------------------------------- the vault


@dataclass
class _UnlockState:
    failures: int = 0
    last_failure_at: float = 0.0
    destroyed: bool = False
    serial: int = 0  # +1 on every write; the anchor in the secret store holds the latest

    def body(self) -> dict[str, Any]:
        return asdict(self)

    def mac(self, mac_key: bytes) -> str:
        text = json.dumps(self.body(), sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(mac_key, text, hashlib.sha256).hexdigest()


@dataclass
class _KeyFile:
    store_id: str
    secret_store: str
    settings: KeySettings
    salt: bytes
    nonce: bytes
    wrapped: bytes
    format: int = KEY_FORMAT

    def header(self) -> dict[str, Any]:
        """Everything but the ciphertext; it is the associated data of the wrap."""
        return {
            "format": self.format,
            "store_id": self.store_id,
            "secret_store": self.secret_store,
            "settings": _settings_record(self.settings),
            "salt": _b64(self.salt),
        }

    def aad(self) -> bytes:
        return json.dumps(self.header(), sort_keys=True, separators=(",", ":")).encode()

    def to_bytes(self) -> bytes:
        body = self.header() | {"nonce": _b64(self.nonce), "wrapped": _b64(self.wrapped)}
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> _KeyFile:
        try:
            body = json.loads(data)
            if body["format"] != KEY_FORMAT:
                raise StorageError(f"unknown key file format {body['format']}")
            return cls(
                store_id=body["store_id"],
                secret_store=body["secret_store"],
                settings=KeySettings(**body["settings"]),
                salt=_unb64(body["salt"]),
                nonce=_unb64(body["nonce"]),
                wrapped=_unb64(body["wrapped"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError("Tệp khóa bị hỏng / The key file is damaged") from exc


class KeyVault:
    """Creates, unlocks, re-wraps and erases the data key kept in `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        settings: KeySettings | None = None,
        *,
        secret_store: DeviceSecretStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`settings` apply to create, and to change_pin when given (else the stored ones are
        kept); unlock always uses those stored with the key.
        `secret_store` overrides the keystore choice; `clock` (wall-clock seconds) lets tests step
        time; wall clock because the delay must survive a restart."""
        self.data_dir = Path(data_dir)
        self.settings = settings or KeySettings()
        self._settings_given = settings is not None
        self._secret_store = secret_store
        self._clock = clock

    @property
    def key_path(self) -> Path:
        return self.data_dir / KEY_FILE

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    def exists(self) -> bool:
        return self.key_path.is_file()

    def store_id(self) -> str:
        return _KeyFile.from_bytes(self.key_path.read_bytes()).store_id

    def replace_key(self, pin: str, data_key: bytes, settings: KeySettings | None = None) -> None:
        """Recovery: wrap `data_key` (already proven to open the store) under a new PIN with a
        new device secret; the old key file, secret and counter go. The new PIN is checked
        first, so a refused PIN leaves the old key in place."""
        pin = _normalise_pin(pin)
        if settings is None:
            settings = self.stored_settings() if self.exists() else self.settings
        store = self._secret_store or default_secret_store(self.data_dir)
        if store.kind == FileSecretStore.kind:
            settings.check_secret_without_keystore(pin)
        self.destroy()
        KeyVault(self.data_dir, settings, secret_store=self._secret_store, clock=self._clock
                 ).create(pin, data_key=data_key)

    def stored_settings(self) -> KeySettings:
        """The Argon2 cost and attempt policy kept with the wrapped key."""
        return _KeyFile.from_bytes(self.key_path.read_bytes()).settings

    def has_keystore(self) -> bool:
        """Whether the device secret is (or, for a new store, would be) in an OS keystore."""
        if self.exists():
            with contextlib.suppress(OSError, StorageError):
                return _KeyFile.from_bytes(self.key_path.read_bytes()).secret_store != "file"
        store = self._secret_store or default_secret_store(self.data_dir)
        return store.kind != FileSecretStore.kind

    def destroyed(self) -> bool:
        """The key was crypto-erased here (wrong PINs, revocation, wipe) and not recreated."""
        if self.exists():
            return False
        state, _ = self._read_state_file()
        return state is not None and state.destroyed

    # -- public operations

    def create(self, pin: str, data_key: bytes | None = None) -> bytes:
        """A new random data key (or `data_key`, a restored backup's), wrapped under the PIN with
        a new device secret. Refuses to overwrite an existing key."""
        pin = _normalise_pin(pin)
        if self.exists():
            raise StorageError("Kho dữ liệu đã tồn tại / A data store already exists here")
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.data_dir, 0o700)  # also a folder that existed (COMMUNE_DATA_DIR)
        store_id = secrets.token_hex(16)
        device_secret = secrets.token_bytes(KEY_BYTES)
        store = self._put_device_secret(store_id, device_secret)
        if store.kind == FileSecretStore.kind:
            try:
                self.settings.check_secret_without_keystore(pin)
            except WeakSecretWithoutKeystore:
                store.delete(store_id)
                raise
        data_key = data_key or secrets.token_bytes(KEY_BYTES)
        keyfile = self._write_key_file(
            data_key, pin, store_id, store.kind, device_secret, self.settings
        )
        self._save_state(keyfile, device_secret, _UnlockState())
        return data_key

    def unlock(self, pin: str) -> bytes:
        """The data key, or WrongPin / LockedOut / StoreDestroyed / NoStore."""
        pin = _normalise_pin(pin)
        keyfile, device_secret = self._load()
        return self._attempt(keyfile, device_secret, pin)

    def change_pin(self, old: str, new: str) -> None:
        """Re-wrap the same data key under `new`. A wrong `old` counts as a failed attempt."""
        old, new = _normalise_pin(old), _normalise_pin(new)
        keyfile, device_secret = self._load()
        settings = self.settings if self._settings_given else keyfile.settings
        if keyfile.secret_store == FileSecretStore.kind:
            settings.check_secret_without_keystore(new)  # before spending an attempt
        data_key = self._attempt(keyfile, device_secret, old)
        self._write_key_file(
            data_key, new, keyfile.store_id, keyfile.secret_store, device_secret, settings
        )

    def destroy(self) -> None:
        """Crypto-erase: overwrite and delete the wrapped key, erase the device secret."""
        store_id, kind = None, FileSecretStore.kind
        with contextlib.suppress(OSError, StorageError):
            keyfile = _KeyFile.from_bytes(self.key_path.read_bytes())
            store_id, kind = keyfile.store_id, keyfile.secret_store
        _shred(self.key_path)
        if store_id is not None:
            self._store_of(kind).delete(store_id)
        _shred(self.data_dir / SECRET_FILE)  # whatever store was used, leave no secret file
        if self.data_dir.is_dir():  # no secret left to authenticate it: it only says "erased"
            _write_atomic(self.state_path, json.dumps(_UnlockState(destroyed=True).body()).encode())

    # -- internals

    def _load(self) -> tuple[_KeyFile, bytes]:
        if not self.exists():
            if self.destroyed():
                raise StoreDestroyed()
            raise NoStore()
        keyfile = _KeyFile.from_bytes(self.key_path.read_bytes())
        device_secret = self._store_of(keyfile.secret_store).get(keyfile.store_id)
        if device_secret is None:
            raise StorageError(
                "Không tìm thấy khóa thiết bị, không thể mở kho dữ liệu / "
                "The device secret is missing; the data store cannot be opened"
            )
        return keyfile, device_secret

    def _attempt(self, keyfile: _KeyFile, device_secret: bytes, pin: str) -> bytes:
        policy = keyfile.settings
        state = self._load_state(keyfile, device_secret)
        now = self._clock()
        if state.failures:
            elapsed = max(0.0, now - state.last_failure_at)  # a clock moved back never shortens
            remaining = policy.delay_after(state.failures) - elapsed
            if remaining > 0:
                raise LockedOut(remaining)
        # Spend the attempt before checking it: a kill during the check cannot save it.
        pending = _UnlockState(
            failures=state.failures + 1, last_failure_at=now, serial=state.serial + 1
        )
        self._save_state(keyfile, device_secret, pending)
        try:
            data_key = self._unwrap(keyfile, device_secret, pin)
        except InvalidTag:
            self._failed(policy, pending)
        self._save_state(keyfile, device_secret, _UnlockState(serial=pending.serial + 1))
        return data_key

    def _failed(self, policy: KeySettings, state: _UnlockState) -> NoReturn:
        if state.failures >= policy.max_attempts:
            self.destroy()
            raise StoreDestroyed()
        raise WrongPin(policy.max_attempts - state.failures, policy.delay_after(state.failures))

    def _unwrap(self, keyfile: _KeyFile, device_secret: bytes, pin: str) -> bytes:
        kek = _kek(pin, keyfile.salt, keyfile.store_id, device_secret, keyfile.settings)
        return AESGCM(kek).decrypt(keyfile.nonce, keyfile.wrapped, keyfile.aad())

    def _write_key_file(
        self,
        data_key: bytes,
        pin: str,
        store_id: str,
        kind: str,
        device_secret: bytes,
        settings: KeySettings,
    ) -> _KeyFile:
        keyfile = _KeyFile(
            store_id=store_id,
            secret_store=kind,
            settings=settings,
            salt=secrets.token_bytes(16),
            nonce=secrets.token_bytes(NONCE_BYTES),
            wrapped=b"",
        )
        kek = _kek(pin, keyfile.salt, store_id, device_secret, settings)
        keyfile.wrapped = AESGCM(kek).encrypt(keyfile.nonce, data_key, keyfile.aad())
        _write_atomic(self.key_path, keyfile.to_bytes())
        return keyfile

    def _put_device_secret(self, store_id: str, secret: bytes) -> DeviceSecretStore:
        store = self._secret_store or default_secret_store(self.data_dir)
        try:
            store.put(store_id, secret)
        except keyring.errors.KeyringError:
            store = FileSecretStore(self.data_dir)  # a locked or broken keystore: fall back
            store.put(store_id, secret)
        return store

    def _store_of(self, kind: str) -> DeviceSecretStore:
        if self._secret_store is not None and self._secret_store.kind == kind:
            return self._secret_store
        return _secret_store_of_kind(kind, self.data_dir)

    def _read_state_file(self) -> tuple[_UnlockState | None, str | None]:
        """The unlock state as written and its MAC; (None, None) when missing or unreadable."""
        try:
            body = json.loads(self.state_path.read_bytes())
            mac = body.pop("mac", None)
            state = _UnlockState(
                failures=int(body.get("failures", 0)),
                last_failure_at=float(body.get("last_failure_at", 0.0)),
                destroyed=bool(body.get("destroyed", False)),
                serial=int(body.get("serial", 0)),
            )
        except (OSError, ValueError, TypeError, AttributeError):
            return None, None
        return state, mac if isinstance(mac, str) else None

    def _load_state(self, keyfile: _KeyFile, device_secret: bytes) -> _UnlockState:
        """The counter, trusted only when its MAC holds and it is not older than the anchor.

        Missing, edited or rolled back (an older copy put back, or deleted): every attempt but
        one counts as spent, so no file operation can ever give a guesser more tries."""
        state, mac = self._read_state_file()
        anchor = self._store_of(keyfile.secret_store).get_anchor(keyfile.store_id) or 0
        expected = state.mac(_attempts_mac_key(keyfile, device_secret)) if state else ""
        if state and mac and hmac.compare_digest(mac, expected) and state.serial >= anchor:
            return state
        last_chance = max(0, keyfile.settings.max_attempts - 1)
        serial = max(anchor, state.serial if state else 0)
        return _UnlockState(failures=last_chance, last_failure_at=0.0, serial=serial)

    def _save_state(self, keyfile: _KeyFile, device_secret: bytes, state: _UnlockState) -> None:
        """State file first, then the anchor: a crash between them leaves a state newer than
        the anchor, which is accepted; an older one never is."""
        mac = state.mac(_attempts_mac_key(keyfile, device_secret))
        _write_atomic(self.state_path, json.dumps(state.body() | {"mac": mac}).encode())
        with contextlib.suppress(keyring.errors.KeyringError):
            self._store_of(keyfile.secret_store).put_anchor(keyfile.store_id, state.serial)


def _settings_record(settings: KeySettings) -> dict[str, Any]:
    """The settings as stored (and authenticated); `offline_years` only when not the default,
    so key files written before it existed keep the same associated data."""
    record = asdict(settings)
    if record["offline_years"] == KeySettings.offline_years:
        del record["offline_years"]
    return record


def _attempts_mac_key(keyfile: _KeyFile, device_secret: bytes) -> bytes:
    return hkdf(device_secret, _ATTEMPTS_INFO, salt=keyfile.store_id.encode())


def _normalise_pin(pin: str) -> str:
    # NFC: the same Vietnamese passphrase typed on two keyboards must give the same bytes.
    pin = unicodedata.normalize("NFC", pin or "")
    if len(pin) < MIN_PIN_CHARS:
        raise PinTooShort(MIN_PIN_CHARS)
    return pin


def _kek(pin: str, salt: bytes, store_id: str, device_secret: bytes, s: KeySettings) -> bytes:
    stretched = argon2id(
        pin.encode(), salt, s.argon2_time_cost, s.argon2_memory_cost, s.argon2_parallelism
    )
    return hkdf(stretched + device_secret, _KEK_INFO, salt=store_id.encode())


def argon2id(secret: bytes, salt: bytes, time_cost: int, memory_cost: int, lanes: int) -> bytes:
    """Argon2id, 32 bytes. argon2-cffi first; `cryptography`'s Argon2id (identical output) where
    argon2-cffi has no wheel, e.g. a mobile build."""
    try:
        from argon2.low_level import Type, hash_secret_raw
    except ImportError:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        kdf = Argon2id(
            salt=salt, length=KEY_BYTES, iterations=time_cost, lanes=lanes, memory_cost=memory_cost
        )
        return kdf.derive(secret)
    return hash_secret_raw(
        secret=secret,
        salt=salt,
        time_cost=time_cost,
        memory_cost=memory_cost,
        parallelism=lanes,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )
