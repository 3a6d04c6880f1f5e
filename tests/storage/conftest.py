"""Fixtures for the local store: real SQLite files in tmp_path, real encryption, cheap Argon2."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from app.domain import reference
from app.domain.models import Procedure, ReceiveDossier
from app.storage import KeySettings, LocalStore, create_store

PIN = "2468"
TEST_KEYS = KeySettings.for_tests(base_delay_s=0.0)  # no lock-out delay between test attempts
WARD = "00070"


@pytest.fixture
def procedure() -> Procedure:
    """A catalogue procedure with a processing time of at least one working day."""
    return next(p for p in reference.procedures() if p.processing_days > 0)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path, procedure: Procedure):
    s = create_store(data_dir, PIN, settings=TEST_KEYS)
    yield s
    s.close()


def request(procedure: Procedure, **overrides) -> ReceiveDossier:
    fields = dict(
        procedure_code=procedure.code,
        ward_code=WARD,
        applicant_name="Nguyễn Thị Hương",
        applicant_id_number="001088012345",
        applicant_phone="0912345678",
        applicant_address="Số 5 ngõ 10 phố Huế, Hai Bà Trưng, Hà Nội",
        received_at=dt.datetime(2025, 11, 21, 2, 0, tzinfo=dt.UTC),  # Friday 09:00 in Hanoi
    )
    return ReceiveDossier(**(fields | overrides))


def receive(store: LocalStore, procedure: Procedure, **overrides):
    return store.dossiers.receive(request(procedure, **overrides))
