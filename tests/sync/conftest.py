"""Sync tests run against the REAL API process on 127.0.0.1 and real encrypted client stores.

One server serves the whole `tests/sync` folder (it starts in a few seconds, and the budget is
tight); each test takes its own ward, so one test's records never reach another test's devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.domain import reference
from app.domain.models import ReceiveDossier
from app.domain.mutations import MAX_MUTATIONS, rows_from_columns
from app.storage import KeySettings, LocalStore, create_store
from app.sync.engine import SyncEngine, SyncReport
from app.sync.transport import RetryPolicy, Timeouts, Transport
from tests.support.postgres import postgres_server  # noqa: F401  (fixture)
from tests.support.server_proc import (  # noqa: F401  (fixture)
    ApiServer,
    postgres_api_server,
    sqlite_url,
    start_api_server,
)

PIN = "2468"
TEST_KEYS = KeySettings.for_tests(base_delay_s=0.0)
FAST_RETRY = RetryPolicy(attempts=6, base_s=0.02, cap_s=0.2)
TEMPLATE = "2025.1"
PROCEDURE = "1.000894"
_HANOI_WARDS = [w.code for w in reference.wards("01")]
_ward_iter = itertools.cycle(_HANOI_WARDS)
_names = itertools.count(1)


@pytest.fixture(scope="session")
def sync_server() -> Iterator[ApiServer]:
    with tempfile.TemporaryDirectory(prefix="commune-sync-api-") as tmp:
        server = start_api_server(sqlite_url(Path(tmp)), Path(tmp))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def ward() -> str:
    """A ward code no other test in this session uses (126 in Hanoi, fewer tests than that)."""
    return next(_ward_iter)


@dataclass
class Device:
    name: str
    data_dir: Path
    store: LocalStore
    transport: Transport
    engine: SyncEngine
    revoked_calls: list[str] = field(default_factory=list)
    server_device_id: str = ""

    def sync(self) -> SyncReport:
        return self.engine.run_once()

    def close(self) -> None:
        self.transport.close()
        with contextlib.suppress(Exception):  # an erased store may already be gone
            self.store.close()


class Devices:
    """Makes enrolled client devices with their own real stores; closes them at the end."""

    def __init__(self, server: ApiServer, root: Path) -> None:
        self.server = server
        self.root = root
        self.made: list[Device] = []

    def user(self, role: str, wards: list[str]) -> str:
        username = f"{role}{next(_names)}"
        self.server.add_user(username, role, wards)
        return username

    def enrol(
        self, username: str, *, url: str | None = None, timeouts: Timeouts | None = None
    ) -> Device:
        from app.sync.enrolment import save_enrolment
        from server.services import identity

        name = f"dev{len(self.made) + 1}-{username}"
        data_dir = self.root / name
        store = create_store(data_dir, PIN, settings=TEST_KEYS)
        code = identity.create_enrol_code(self.server.engine, username, 10)
        # The redeeming service itself, not POST /auth/enrol: that endpoint allows 10 tries a
        # minute per address, and this folder enrols more devices than that (the CLI test
        # goes through the endpoint).
        answer = dataclasses.asdict(identity.enrol(self.server.engine, code, name))
        save_enrolment(store.settings, self.server.url, answer)
        transport = Transport.from_settings(
            store.settings,
            server_url=url,
            retry=FAST_RETRY,
            timeouts=timeouts or Timeouts(connect=5, read=20, write=20),
            rng=random.Random(len(self.made)),
            zstd_level=3,
        )
        device = Device(
            name, data_dir, store, transport, None, server_device_id=answer["device_id"]
        )  # type: ignore[arg-type]
        device.engine = SyncEngine(
            store.sync, transport, on_revoked=lambda: device.revoked_calls.append("called")
        )
        self.made.append(device)
        return device

    def close(self) -> None:
        for d in self.made:
            d.close()


@pytest.fixture
def devices(sync_server: ApiServer, tmp_path: Path) -> Iterator[Devices]:
    made = Devices(sync_server, tmp_path)
    yield made
    made.close()


def sent_mutations(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A push body's mutations, row by row or read back from its columns."""
    return rows_from_columns(body, "mutations", MAX_MUTATIONS)["mutations"]


def server_state(server: ApiServer, ward: str) -> dict[str, dict[str, Any]]:
    """Every record of a ward on the server, as {entity_id: {field: value}} (with entity).

    Personal fields are sealed at rest: they are opened with the server's own key file."""
    from sqlalchemy import text

    from server.core import sealing

    sealing.install(sealing.load_keyring(server.data_dir / "keys" / "server.key", env={}))

    out: dict[str, dict[str, Any]] = {}
    with server.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT entity, entity_id, fields FROM record WHERE ward_code = :w"), {"w": ward}
        ).all()
    for entity, entity_id, fields in rows:
        if isinstance(fields, str):
            import json

            fields = json.loads(fields)
        fields = sealing.open_fields(entity, entity_id, fields)
        out[entity_id] = {"_entity": entity} | {k: v["value"] for k, v in fields.items()}
    return out


def audit_view(store: LocalStore, audit_id: str) -> dict[str, Any]:
    """What a person sees of an audit: the fields that sync, without local sync bookkeeping."""
    a = store.audits.get(audit_id)
    return {
        "notes": a.notes,
        "score": a.score,
        "review_state": a.review_state,
        "answers": {k: v.model_dump() for k, v in a.answers.items()},
    }


def server_audit_view(state: dict[str, Any]) -> dict[str, Any]:
    answers = {
        k[len("answers.") :]: {"value": None, "note": "", "photos": []} | (v or {})
        for k, v in state.items()
        if k.startswith("answers.") and v is not None
    }
    return {
        "notes": state.get("notes") or "",
        "score": state.get("score"),
        "review_state": state.get("review_state"),
        "answers": answers,
    }


def receive_dossiers(store, ward: str, n: int, name: str = "Nguyễn Thị Hương") -> list[str]:
    """`n` dossiers received at the counter of `ward` (applicants `name 0`, `name 1`, ...)."""
    ids = []
    for i in range(n):
        d = store.dossiers.receive(
            ReceiveDossier(
                procedure_code=PROCEDURE,
                ward_code=ward,
                applicant_name=f"{name} {i}",
                applicant_id_number=f"0010880{i:05d}",
                received_at=dt.datetime(2025, 11, 21, 2, 0, tzinfo=dt.UTC),
            )
        )
        ids.append(d.id)
    return ids
