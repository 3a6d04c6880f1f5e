"""Where the device is. The prebuilt web and desktop clients have no location service, so the
default provider has none and the auditor types the position; a mobile build gives one backed by
flet-geolocator (`app.views.device`), a test a stand-in whose `locate()` answers. Pure, no Flet."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    lat: float
    lon: float
    accuracy_m: float | None = None

    def as_field(self) -> dict[str, float]:
        """The audit's `position` field: {"lat", "lon"} and the accuracy when known."""
        value = {"lat": self.lat, "lon": self.lon}
        if self.accuracy_m is not None:
            value["accuracy_m"] = self.accuracy_m
        return value


class PositionProvider:
    """No location service: `available` is False and `locate()` finds nothing."""

    available = False

    async def locate(self) -> Position | None:
        return None
