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

from app.domain.models import Procedure, Ward
from app.domain.text import fold, tokens

HANOI = "01"
HANOI_WARD_COUNT = 126
PROCEDURES_PATH = Path(__file__).resolve().parents[2] / "assets" / "procedures.json"
PROCEDURE_CODE = re.compile(r"^\d\.\d{6}(\.[a-z0-9]+)?$")
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
def _procedures_by_code() -> dict[str, Procedure]:
    return {p.code: p for p in _all_procedures()}


@cache
def _search_keys() -> tuple[tuple[Procedure, str, frozenset[str]], ...]:
    """Per procedure: its folded name and the folded words of code, name and field."""
    return tuple(
        (p, fold(p.name), frozenset(tokens(f"{p.code} {p.name} {p.field}")))
        for p in _all_procedures()
    )


def procedures() -> list[Procedure]:
    """The catalogue, in file order (grouped by field)."""
    return list(_all_procedures())


def procedure(code: str) -> Procedure:
    try:
        return _procedures_by_code()[code]
    except KeyError:
        raise KeyError(f"unknown procedure code {code!r} in the catalogue") from None


def procedure_fields() -> list[str]:
    """The fields (lĩnh vực) present, in catalogue order."""
    return list(dict.fromkeys(p.field for p in _all_procedures()))


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
    for proc, name, haystack in _search_keys():
        code_hit = proc.code.startswith(text.strip())
        if not code_hit and not all(any(h.startswith(w) for h in haystack) for w in words):
            continue
        hits.append((_rank(proc, name, query, code_hit), proc))
    hits.sort(key=lambda hit: hit[0])
    found = [proc for _, proc in hits]
    return found[:limit] if limit is not None else found
