"""The reference data this device received from the server (`GET /sync/reference`): the
province's procedure catalogue and the published working calendar, kept in the sealed settings.

The catalogue is put in force for the process when the store opens and whenever a new version
arrives (`app.domain.reference.use_catalogue`), so intake, the slip and the device's record
check all use it; a store that never received one uses the shipped catalogue. The calendar goes
to the store's `CalendarStore`, where it replaces the device's own days.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.domain import reference as R
from app.domain.catalogue import Catalogue, merged
from app.domain.models import Procedure
from app.storage.services.calendar import CalendarStore
from app.storage.settings import SettingsStore

CATALOGUE_KEY = "server_catalogue"  # {"version", "procedures": [...]}


class ReferenceStore:
    def __init__(self, settings: SettingsStore, calendar: CalendarStore) -> None:
        self._settings = settings
        self._calendar = calendar

    def versions(self) -> tuple[int, int]:
        """(catalogue version, calendar version) held; 0 for none received."""
        stored = self._settings.get(CATALOGUE_KEY) or {}
        return int(stored.get("version", 0)), self._calendar.server_version()

    def catalogue(self) -> Catalogue:
        stored = self._settings.get(CATALOGUE_KEY)
        if not stored:
            return R.shipped_catalogue()
        items = [Procedure.model_validate(p) for p in stored.get("procedures", [])]
        return merged(R.shipped_catalogue(), items, int(stored["version"]))

    def install(self) -> Catalogue:
        """Put this store's catalogue in force for the process."""
        found = self.catalogue()
        R.use_catalogue(found if found.version else None)
        return found

    def apply(self, answer: dict[str, Any]) -> list[str]:
        """Keep what the server sent (each part checked first; a part that does not read is
        left out and named, the versions held stay as they were for it); what changed."""
        changed = []
        catalogue = answer.get("catalogue")
        if isinstance(catalogue, dict):
            try:
                items = [Procedure.model_validate(p) for p in catalogue["procedures"]]
                version = int(catalogue["version"])
            except (KeyError, TypeError, ValueError, ValidationError):
                changed.append("catalogue:unreadable")
            else:
                self._settings.set(CATALOGUE_KEY, {
                    "version": version,
                    "procedures": [p.model_dump(mode="json") for p in items],
                })
                self.install()
                changed.append(f"catalogue:{version}")
        calendar = answer.get("calendar")
        if isinstance(calendar, dict):
            try:
                self._calendar.set_server_calendar(
                    int(calendar["version"]),
                    list(calendar.get("make_up_days", [])),
                    list(calendar.get("extra_holidays", [])),
                )
            except (KeyError, TypeError, ValueError):
                changed.append("calendar:unreadable")
            else:
                changed.append(f"calendar:{calendar['version']}")
        return changed
