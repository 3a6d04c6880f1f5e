"""Builders for wire mutations and unique names, shared by the server tests."""

from __future__ import annotations

import datetime as dt
import random
import uuid

from app.domain import codes, reference
from app.domain.calendar import WorkingCalendar
from app.domain.hlc import Clock
from app.domain.records import expected_appointment

_codes = [w.code for w in reference.wards()]
random.Random().shuffle(_codes)
_wards = iter(_codes)
PROCEDURE = "1.000894"


def new_ward() -> str:
    """A real ward code (the server refuses others) no other test of this run uses."""
    return next(_wards)


def new_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


class Device:
    """A device's clock: stamps that increase, like a real device's."""

    def __init__(self, node: str | None = None) -> None:
        self.clock = Clock(node or uuid.uuid4().hex[:8])

    def mutation(
        self,
        entity: str,
        entity_id: str,
        ward: str,
        fields: dict,
        base_version: int = 0,
        mutation_id: str | None = None,
    ) -> dict:
        stamp = self.clock.now()
        return {
            "mutation_id": mutation_id or str(uuid.uuid4()),
            "device_id": self.clock.node,
            "entity": entity,
            "entity_id": entity_id,
            "ward_code": ward,
            "base_version": base_version,
            "fields": {k: {"value": v, "hlc": stamp} for k, v in fields.items()},
        }


def dossier_fields(ward: str, status: int = 1, **extra) -> dict:
    """A whole dossier the server accepts: every required field, a well-formed code and the
    appointment date of the working calendar."""
    received = dt.datetime.now(dt.UTC).replace(microsecond=0)
    fields = {
        "code": f"{codes.default_agency_code('00070')}-{received:%y%m%d}-"
        f"{random.randint(1, 9999):04d}",  # well-formed even for a malformed test ward
        "procedure_code": PROCEDURE,
        "ward_code": ward,
        "applicant_name": "Nguyễn Văn An",
        "received_at": received.isoformat(),
        "status": status,
        "channel": 1,
    }
    fields["appointment_date"] = expected_appointment(
        fields["received_at"], PROCEDURE, WorkingCalendar()
    ).isoformat()
    return {**fields, **extra}


def new_dossier(device: Device, ward: str, status: int = 1, **extra) -> dict:
    fields = dossier_fields(ward, status, **extra)
    return device.mutation("dossier", str(uuid.uuid4()), ward, fields)


def new_audit(device: Device, ward: str, state: str = "draft", **extra) -> dict:
    fields = {
        "template_version": "2025.1",
        "review_state": state,
        "ward_code": ward,
        "started_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        **extra,
    }
    return device.mutation("audit", str(uuid.uuid4()), ward, fields)


def push(client, mutations: list[dict]) -> list[dict]:
    response = client.post("/sync/push", json={"mutations": mutations})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def pull_all(client, cursor: int = 0, limit: int = 500) -> tuple[list[dict], int]:
    """Every change after `cursor`, following pages (bounded)."""
    changes: list[dict] = []
    for _ in range(1000):
        response = client.get("/sync/pull", params={"cursor": cursor, "limit": limit})
        assert response.status_code == 200, response.text
        body = response.json()
        changes += body["changes"]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return changes, cursor
    raise AssertionError("pull never finished")
