"""How values are shown: Vietnamese date order, local time, status names. Pure, no Flet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from app.domain.calendar import VN_TZ, vn_date, vn_today
from app.domain.status import Channel, DossierStatus
from app.domain.timeliness import Timeliness
from app.i18n import t


def path_text(path: Path | str, home: Path | None = None) -> str:
    """A file's place as the user knows it: under the home folder as `~/...` (shorter, and it
    does not spell out the account's folder on a screen someone may photograph)."""
    path, home = Path(path), home or Path.home()
    try:
        return str(Path("~") / path.relative_to(home))
    except ValueError:
        return str(path)


def today_local(now: dt.datetime | None = None) -> dt.date:
    return vn_date(now) if now else vn_today()


def date_text(day: dt.date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else "—"


def datetime_text(moment: dt.datetime | None) -> str:
    """UTC (or naive UTC) stored time, shown in Vietnam's time zone."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y")


def parse_date(text: str) -> dt.date | None:
    """'dd/mm/yyyy' (what the forms show) or ISO 'yyyy-mm-dd'; None when it is neither."""
    text = text.strip()
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def status_text(status: int) -> str:
    return t(f"status.{int(DossierStatus(status))}")


def channel_text(channel: int) -> str:
    return t(f"channel.{int(Channel(channel))}")


def timeliness_text(kind: Timeliness | None) -> str:
    return t(f"timeliness.{kind.value}") if kind else ""


def percent_text(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%".replace(".", ",")
