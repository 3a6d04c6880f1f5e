"""Passwords (Argon2id), bearer tokens and one-time codes (stored only as SHA-256), rate limits."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import deque

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
    """Failed attempts per key in a sliding window, in this process's memory.

    Only failures count (a good enrolment code or password is not an attack), so a site
    enrolling many tablets from one address is not slowed down. The window slides: each key
    keeps the instants of its last `limit` failures, so no boundary lets a guesser start again
    from zero (fixed windows allowed twice the limit across one). With several workers each
    keeps its own counts, so the effective limit is workers x limit; that still caps guessing,
    and needs no shared store.
    """

    _MAX_KEYS = 100_000

    def __init__(self, limit: int, window_seconds: float, clock=time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        """The key's failures inside the window ending now (older ones dropped)."""
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._recent(key, self._clock())) >= self.limit

    def fail(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= self._MAX_KEYS:
                self._forget_quiet_keys(now)
            times = self._recent(key, now)
            times.append(now)
            while len(times) > self.limit:  # only the last `limit` can decide a refusal
                times.popleft()
            self._failures[key] = times

    def _forget_quiet_keys(self, now: float) -> None:
        since = now - self.window
        self._failures = {k: t for k, t in self._failures.items() if t and t[-1] > since}

    def retry_after(self, key: str) -> int:
        """Whole seconds until the key's oldest counted failure leaves the window."""
        with self._lock:
            times = self._recent(key, self._clock())
            if len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[0] + self.window - self._clock()))
