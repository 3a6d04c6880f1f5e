"""Passwords (Argon2id), bearer tokens and one-time codes (stored only as SHA-256), rate limits."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Enrolment codes are typed on a tablet: no 0/O or 1/I/L to misread.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        _hasher.hash(password)  # same work either way: no timing hint that the user has none
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_enrol_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_hash(code: str) -> str:
    return sha256_hex("enrol:" + normalise_code(code))


class RateLimiter:
    """Failed attempts per key in fixed windows, in this process's memory.

    Only failures count (a good enrolment code or password is not an attack), so a site
    enrolling many tablets from one address is not slowed down. With several workers each keeps
    its own counts, so the effective limit is workers x limit; that still caps guessing, and
    needs no shared store.
    """

    def __init__(self, limit: int, window_seconds: int, clock=time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def _window(self) -> int:
        return int(self._clock() // self.window)

    def blocked(self, key: str) -> bool:
        with self._lock:
            start, count = self._counts.get(key, (self._window(), 0))
            return start == self._window() and count >= self.limit

    def fail(self, key: str) -> None:
        window = self._window()
        with self._lock:
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            start, count = self._counts.get(key, (window, 0))
            self._counts[key] = (window, count + 1 if start == window else 1)

    def retry_after(self) -> int:
        return self.window - int(self._clock() % self.window)
