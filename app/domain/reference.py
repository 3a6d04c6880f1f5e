"""Reference data: Vietnam's commune-level units and the commune procedure catalogue.

Wards come from the `vietnam-provinces` package (official statistics-office codes, after the
2025 reorganisation: 34 provinces, 3,321 commune-level units, 126 of them in Hanoi). Procedures
come from `assets/procedures.json`, a curated extract of the national procedure database; see
docs/reference-data.md for sources and how to update both. Only package data is read, once.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from vietnam_provinces import Province as _VpProvince
from vietnam_provinces import Ward as _VpWard

from app.domain.catalogue import PROCEDURE_CODE as PROCEDURE_CODE
from app.domain.catalogue import Catalogue
from app.domain.models import Procedure, Ward
from app.domain.text import fold, tokens

HANOI = "01"
HANOI_WARD_COUNT = 126
PROCEDURES_PATH = Path(__file__).resolve().parents[2] / "assets" / "procedures.json"
WARD_CODE = re.compile(r"^\d{5}$")


# ---------------------------------------------------------------------------------------------
# Wards


@cache
def _province_names() -> dict[str, str]:
    return {f"{int(p.code):02d}": p.name for p in _VpProvince.iter_all()}


@cache
def _all_wards() -> tuple[Ward, ...]:
    names = _province_names()
    result = []
    for w in _VpWard.iter_all():
        province_code = f"{int(w.province_code):02d}"
        result.append(
            Ward(
                code=f"{int(w.code):05d}",
                name=w.name,
                division_type=w.division_type.value,
                province_code=province_code,
                province_name=names[province_code],
            )
        )
    return tuple(sorted(result, key=lambda ward: ward.code))


@cache
def _wards_by_code() -> dict[str, Ward]:
    return {w.code: w for w in _all_wards()}


def provinces() -> dict[str, str]:
    """Province code ("01") -> name ("Thành phố Hà Nội"), all 34, in code order."""
    return dict(sorted(_province_names().items()))


def wards(province_code: str | None = None) -> list[Ward]:
    """Commune-level units in code order; all 3,321 or those of one province ("01")."""
    if province_code is None:
        return list(_all_wards())
    return [w for w in _all_wards() if w.province_code == province_code]


def ward(code: str) -> Ward:
    """The unit with this 5-digit code; KeyError if there is none."""
    try:
        return _wards_by_code()[code]
    except KeyError:
        raise KeyError(
            f"unknown ward code {code!r}: expected a 5-digit statistics-office code "
            f"of a current commune-level unit, e.g. '00070'"
        ) from None


def is_ward_code(code: str) -> bool:
    return code in _wards_by_code()


def hanoi_wards() -> list[Ward]:
    """Hanoi's 126 commune-level units (phường and xã), the scope of the infrastructure audits."""
    return wards(HANOI)


# ---------------------------------------------------------------------------------------------
# Procedures


@cache
def _all_procedures() -> tuple[Procedure, ...]:
    raw = json.loads(PROCEDURES_PATH.read_text(encoding="utf-8"))
    items = raw["procedures"] if isinstance(raw, dict) else raw
    return tuple(Procedure.model_validate(item) for item in items)


@cache
def shipped_catalogue() -> Catalogue:
    """Version 0: the catalogue shipped with the app."""
    return Catalogue(0, _all_procedures())


_in_force: list[Catalogue] = []  # the one the process uses when it is not the shipped one


def use_catalogue(catalogue: Catalogue | None) -> None:
    """Put a catalogue in force for this process (a device's store installs the one it
    received by sync when it opens; None goes back to the shipped one). The server never
    relies on this: it passes the database's catalogue to each check."""
    _in_force[:] = [catalogue] if catalogue is not None else []


def catalogue() -> Catalogue:
    """The catalogue in force: what intake offers and the device's checks use."""
    return _in_force[0] if _in_force else shipped_catalogue()


def procedures() -> list[Procedure]:
    """The catalogue in force, in file order (grouped by field)."""
    return list(catalogue().procedures)


def procedure(code: str) -> Procedure:
    return catalogue().procedure(code)


def procedure_fields() -> list[str]:
    """The fields (lĩnh vực) present, in catalogue order."""
    return list(dict.fromkeys(p.field for p in catalogue().procedures))


def _rank(proc: Procedure, name: str, query: str, code_hit: bool) -> tuple[int, int, int, str]:
    if code_hit:
        return (0, 0, 0, proc.code)
    position = name.find(query)
    if position < 0:
        return (2, 0, len(name), proc.code)
    return (1, position, len(name), proc.code)


def search_procedures(text: str, limit: int | None = None) -> list[Procedure]:
    """Procedures whose code, name or field hold every word of `text` (as a word prefix),
    ignoring case and diacritics: "dang ky ket hon" finds "Đăng ký kết hôn".

    Best first: the whole query inside the name, earlier and in a shorter name ranks higher.
    An empty query gives nothing.
    """
    query = fold(text)
    words = tokens(text)
    if not words:
        return []
    hits: list[tuple[tuple[int, int, int, str], Procedure]] = []
    for proc, name, haystack in catalogue().search_keys:
        code_hit = proc.code.startswith(text.strip())
        if not code_hit and not all(any(h.startswith(w) for h in haystack) for w in words):
            continue
        hits.append((_rank(proc, name, query, code_hit), proc))
    hits.sort(key=lambda hit: hit[0])
    found = [proc for _, proc in hits]
    return found[:limit] if limit is not None else found
