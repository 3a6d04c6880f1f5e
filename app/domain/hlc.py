"""Hybrid logical clocks: wall time that never runs backwards, with a counter and a node id.

The string form sorts like the clock, so comparing two stamps is comparing two strings, in
Python, in SQL and on every replica alike.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

_WALL_DIGITS = 16
_COUNTER_DIGITS = 4


@dataclass(frozen=True, order=True)
class Timestamp:
    wall_ms: int
    counter: int
    node: str

    def __str__(self) -> str:
        return f"{self.wall_ms:0{_WALL_DIGITS}d}:{self.counter:0{_COUNTER_DIGITS}d}:{self.node}"

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        try:
            wall, counter, node = text.split(":", 2)
            if len(wall) != _WALL_DIGITS or len(counter) != _COUNTER_DIGITS or not node:
                raise ValueError
            return cls(int(wall), int(counter), node)
        except ValueError as exc:
            raise ValueError(f"not a clock stamp: {text!r}") from exc


def node_of(stamp: str) -> str:
    """The node that made a well-formed stamp (the part after the second colon)."""
    return stamp.split(":", 2)[2]


# The common form, checked without building a Timestamp (every field of every push and pull
# is checked); anything else still goes through `Timestamp.parse`, so the rule is the same.
_PLAIN_STAMP = re.compile(rf"[0-9]{{{_WALL_DIGITS}}}:[0-9]{{{_COUNTER_DIGITS}}}:.", re.DOTALL)


def is_stamp(text: object) -> bool:
    if not isinstance(text, str):
        return False
    if _PLAIN_STAMP.match(text):
        return True
    try:
        Timestamp.parse(text)
    except ValueError:
        return False
    return True


ZERO = "0" * _WALL_DIGITS + ":" + "0" * _COUNTER_DIGITS + ":"


class Clock:
    """One node's clock. `now()` stamps a local event; `observe()` folds in a remote stamp."""

    def __init__(self, node: str, wall_ms=lambda: int(time.time() * 1000)) -> None:
        if not node or ":" in node:
            raise ValueError("node id must be non-empty and contain no ':'")
        self.node = node
        self._wall_ms = wall_ms
        self._last = Timestamp(0, 0, node)
        self._lock = threading.Lock()

    def now(self) -> str:
        with self._lock:
            wall = self._wall_ms()
            if wall > self._last.wall_ms:
                self._last = Timestamp(wall, 0, self.node)
            else:
                self._last = Timestamp(self._last.wall_ms, self._last.counter + 1, self.node)
            return str(self._last)

    def observe(self, stamp: str) -> None:
        remote = Timestamp.parse(stamp)
        with self._lock:
            wall = max(self._wall_ms(), self._last.wall_ms, remote.wall_ms)
            counter = 0
            if wall == self._last.wall_ms and wall == remote.wall_ms:
                counter = max(self._last.counter, remote.counter) + 1
            elif wall == self._last.wall_ms:
                counter = self._last.counter + 1
            elif wall == remote.wall_ms:
                counter = remote.counter + 1
            self._last = Timestamp(wall, counter, self.node)
