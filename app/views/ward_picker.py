"""The ward picker's presenter (pure Python, tested in tests/views): 126 wards are too many for a
drop-down on a tablet, so the user types part of a name (with or without diacritics,
`app.domain.text.fold`) or a code and taps one of the few matches. The settings screen lays it
out (`other_views.WardPickerView`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.i18n import t
from app.views.lock_model import WARD_MATCHES_SHOWN, search_wards


@dataclass
class WardPicker:
    """The wards offered (code, name), the one chosen and what the user has typed."""

    options: list[tuple[str, str]]
    chosen: str | None = None
    query: str = ""
    limit: int = WARD_MATCHES_SHOWN
    names: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.names = dict(self.options)
        if self.chosen not in self.names:
            self.chosen = None

    def type(self, query: str) -> list[tuple[str, str]]:
        """What the search field now holds; returns the matches to show."""
        self.query = query
        return self.matches()

    def matches(self) -> list[tuple[str, str]]:
        return search_wards(self.options, self.query, self.limit)

    def choose(self, code: str) -> None:
        if code not in self.names:
            raise ValueError(code)
        self.chosen = code

    @property
    def chosen_text(self) -> str:
        """"Đã chọn: Phường Ba Đình", or nothing while no ward is chosen."""
        return t("first.ward_chosen", name=self.names[self.chosen]) if self.chosen else ""
