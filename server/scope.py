"""Who sees and writes what: roles, ward scopes and the two record families.

Every record belongs to a family: `dossier` (one-stop counter work) or `audit` (infrastructure
audits). Officers see and write the dossier family, auditors and supervisors the audit family,
admins both; everyone only in the wards of their scope. Supervisors see dossiers only as the
report snapshots (family `report`: figures and the codes and dates behind them, no applicant's
data), so a dossier, its history and its documents never reach a supervisor's machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.domain import entities as E
from server.models import ALL_WARDS

OFFICER, AUDITOR, SUPERVISOR, ADMIN = "officer", "auditor", "supervisor", "admin"
ROLES = (OFFICER, AUDITOR, SUPERVISOR, ADMIN)
DOSSIER_FAMILY, AUDIT_FAMILY = "dossier", "audit"
REPORT_FAMILY = "report"
FAMILIES_OF_ROLE = {
    OFFICER: frozenset({DOSSIER_FAMILY}),
    AUDITOR: frozenset({AUDIT_FAMILY}),
    # report: the oversight snapshots (figures per ward, no personal data), server-written;
    # a supervisor's only view of dossiers
    SUPERVISOR: frozenset({AUDIT_FAMILY, REPORT_FAMILY}),
    ADMIN: frozenset({DOSSIER_FAMILY, AUDIT_FAMILY, REPORT_FAMILY}),
}
_ENTITY_FAMILY = {
    E.DOSSIER: DOSSIER_FAMILY,
    E.DOSSIER_EVENT: DOSSIER_FAMILY,
    E.AUDIT: AUDIT_FAMILY,
    E.AUDIT_COMMENT: AUDIT_FAMILY,
    E.AUDIT_ACTION: AUDIT_FAMILY,
}


def family_of(entity: str, fields: dict[str, Any], role: str) -> str:
    """The family of a record from its entity; attachments and conflicts follow their owner."""
    if entity in _ENTITY_FAMILY:
        return _ENTITY_FAMILY[entity]
    owner = fields.get("owner_entity" if entity == E.ATTACHMENT else "entity")
    if owner in _ENTITY_FAMILY:
        return _ENTITY_FAMILY[owner]
    return DOSSIER_FAMILY if role == OFFICER else AUDIT_FAMILY


@dataclass(frozen=True)
class Caller:
    user_id: int
    username: str
    role: str
    wards: frozenset[str]
    device_id: str
    pull_cursor: int = 0  # the device's confirmed pull cursor when the request came in

    @property
    def all_wards(self) -> bool:
        return ALL_WARDS in self.wards

    @property
    def families(self) -> frozenset[str]:
        return FAMILIES_OF_ROLE.get(self.role, frozenset())

    def sees_ward(self, ward_code: str) -> bool:
        return self.all_wards or ward_code in self.wards

    def may_access(self, ward_code: str, family: str) -> bool:
        return self.sees_ward(ward_code) and family in self.families

    @property
    def is_reviewer(self) -> bool:
        return self.role in (SUPERVISOR, ADMIN)


def normalise_wards(wards: Iterable[str]) -> list[str]:
    cleaned = sorted({w.strip() for w in wards if w and w.strip()})
    return [ALL_WARDS] if ALL_WARDS in cleaned else cleaned


def wards_overlap(a: Iterable[str], b: Iterable[str]) -> bool:
    a, b = set(a), set(b)
    return ALL_WARDS in a or ALL_WARDS in b or bool(a & b)


def manages(admin: Caller, user_wards: Iterable[str]) -> bool:
    """An admin manages a user whose whole scope lies inside the admin's (a city department's
    admin for some wards manages the people of those wards, not those of others)."""
    wards = set(user_wards)
    if admin.all_wards:
        return True
    return bool(wards) and ALL_WARDS not in wards and wards <= admin.wards
