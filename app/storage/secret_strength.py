"""How strong a secret must be where no OS keystore holds the device secret.

Without a keystore the device secret sits in a file beside the wrapped key, so a copied data
folder can be attacked offline at Argon2 speed with the PIN as the only unknown. The rule: the
accepted secret's counted keyspace must exceed what `ATTACK_CORES` cores guess in
`KeySettings.offline_years` years at `GUESS_SECONDS_FLOOR` seconds a guess (the production Argon2
cost on a core faster than ours; scaled by the cost a store actually uses). The arithmetic is in
docs/security.md, "Device keys".

The count is deliberately pessimistic, not an estimate of human habits: a run of letters counts
as one word from a 2,048-word vocabulary (or 26^n if shorter), digits 10^n, other characters
33^n; words are separated by spaces. "bốn con mèo đen" is 2,048^4 ≈ 1.8e13; "123456" is 1e6.
"""

from __future__ import annotations

import math
import unicodedata

SECONDS_PER_YEAR = 365.25 * 24 * 3600
ATTACK_CORES = 16
# Seconds one attacker core needs for one guess at the production cost (time 3, 64 MiB, 2 lanes).
# Measured here at 0.09 s (idle) to 0.5 s (loaded); 0.05 s keeps a margin for an attacker's
# faster cores.
GUESS_SECONDS_FLOOR = 0.05
_PRODUCTION_COST = 3 * 64 * 1024  # argon2 time_cost * memory_cost (KiB) of KeySettings()
WORD_CHOICES = 2048
_OTHER_CHOICES = 33


def offline_guesses(years: float, guess_seconds: float, cores: int = ATTACK_CORES) -> float:
    """Guesses `cores` cores make in `years` years at `guess_seconds` each."""
    return years * SECONDS_PER_YEAR * cores / guess_seconds


def guess_seconds_for(time_cost: int, memory_cost: int) -> float:
    """The floor scaled to a store's Argon2 cost (the work grows with time x memory)."""
    return GUESS_SECONDS_FLOOR * (time_cost * memory_cost) / _PRODUCTION_COST


def required_keyspace(years: float, time_cost: int, memory_cost: int) -> float:
    if years <= 0:
        return 0.0
    return offline_guesses(years, guess_seconds_for(time_cost, memory_cost))


def keyspace(secret: str) -> float:
    """The pessimistic count of secrets of this shape (see the module docstring)."""
    total = 1.0
    seen: set[str] = set()
    for run, kind in _runs(unicodedata.normalize("NFC", secret)):
        if run.casefold() in seen:
            continue  # "mèo mèo mèo" is one word, not three
        seen.add(run.casefold())
        if kind == "letters":
            total *= min(float(WORD_CHOICES), 26.0 ** len(run))
        elif kind == "digits":
            total *= 10.0 ** len(run)
        elif kind == "other":
            total *= float(_OTHER_CHOICES) ** len(run)
    return total


def bits(value: float) -> float:
    return math.log2(value) if value > 0 else 0.0


def _runs(text: str) -> list[tuple[str, str]]:
    runs: list[tuple[str, str]] = []
    for ch in text:
        kind = "space" if ch.isspace() else "letters" if ch.isalpha() else (
            "digits" if ch.isdigit() else "other")
        if runs and runs[-1][1] == kind:
            runs[-1] = (runs[-1][0] + ch, kind)
        else:
            runs.append((ch, kind))
    return runs
