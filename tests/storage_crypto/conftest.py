"""Fixtures for the storage crypto tests: real files on disk, real ciphers, a steppable clock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.storage.keys import FileSecretStore, KeySettings, KeyVault


class FakeClock:
    """Wall-clock stand-in: the unlock delays are checked by stepping time, not by sleeping."""

    def __init__(self, start: float = 1_763_900_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def make_vault(tmp_path: Path, clock: FakeClock):
    def make(data_dir: Path | None = None, **overrides) -> KeyVault:
        directory = data_dir or tmp_path / "data"
        return KeyVault(
            directory,
            KeySettings.for_tests(**overrides),
            secret_store=FileSecretStore(directory),
            clock=clock,
        )

    return make
