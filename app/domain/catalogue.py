"""The procedure catalogue in force: the shipped one, or the province's import on top of it.

A catalogue has a version: 0 is the one shipped in `assets/procedures.json`; each import an
admin loads on the server is the next version (server/services/reference.py), and devices
receive it by sync. An import is merged onto the shipped list: a row replaces the shipped
procedure of its code and adds the others; shipped procedures the file leaves out stay (dossiers
already received under them keep validating). Rows are read here from plain cells (the file
reader is the CLI's), each checked with the domain's own models and the text rule; one bad line
and nothing is loaded (`parse_rows` answers every bad line with its number and reason).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from pydantic import ValidationError

from app.domain.models import DocumentRequirement, Procedure
from app.domain.text import fold, normalise_text, text_problem, tokens

PROCEDURE_CODE = re.compile(r"^\d\.\d{6}(\.[a-z0-9]+)?$")
COLUMNS = ("code", "name", "level", "processing_days", "fee", "documents", "forms")
OPTIONAL_COLUMNS = ("field", "fee_note", "source")
# Header spellings accepted (folded): the English names and the Vietnamese ones of the
# province's published lists.
HEADER_ALIASES = {
    "ma": "code", "ma thu tuc": "code", "ten": "name", "ten thu tuc": "name",
    "cap": "level", "cap thuc hien": "level", "so ngay": "processing_days",
    "thoi han giai quyet": "processing_days", "processing days": "processing_days",
    "le phi": "fee", "phi le phi": "fee", "ho so": "documents", "thanh phan ho so": "documents",
    "mau don": "forms", "mau don to khai": "forms", "linh vuc": "field",
    "ghi chu phi": "fee_note", "nguon": "source",
}
# Bounds of a hostile file (docs/security.md, "Bounds").
MAX_ROWS = 5000
MAX_CELL = 4000
MAX_NAME = 500
MAX_ITEMS = 50
MAX_ITEM = 300
MAX_DAYS = 365
MAX_FEE = 100_000_000  # VND
COMMUNE_LEVELS = frozenset({"xa", "cap xa", "commune", "phuong", "xa phuong"})
DOCUMENT_SEPARATOR = "|"
CONDITION_MARK = "~"  # "Văn bản ủy quyền ~ nếu nộp thay": a conditional paper and its case
COPY_MARK = re.compile(r"\s*\((\d{1,2})\s*(bản chính|bc|bản sao|bs)\)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class LineError:
    line: int  # the file's line (CSV) or row (XLSX) number, the header being line 1
    reason: str  # stable code, then what was found: "processing_days:not_a_number"

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Catalogue:
    version: int
    procedures: tuple[Procedure, ...]
    _by_code: dict[str, Procedure] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {p.code: p for p in self.procedures})

    def get(self, code: str) -> Procedure | None:
        return self._by_code.get(code)

    def procedure(self, code: str) -> Procedure:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"unknown procedure code {code!r} in the catalogue") from None

    @cached_property
    def search_keys(self) -> tuple[tuple[Procedure, str, frozenset[str]], ...]:
        """Per procedure: its folded name and the folded words of code, name and field."""
        return tuple(
            (p, fold(p.name), frozenset(tokens(f"{p.code} {p.name} {p.field}")))
            for p in self.procedures
        )


def merged(shipped: Catalogue, imported: Sequence[Procedure], version: int) -> Catalogue:
    """The import on top of the shipped list: same code replaced in place, new codes after."""
    by_code = {p.code: p for p in imported}
    kept = [by_code.pop(p.code, p) for p in shipped.procedures]
    return Catalogue(version, tuple(kept) + tuple(p for p in imported if p.code in by_code))


def header_map(header: Sequence[str]) -> tuple[dict[int, str], list[str]]:
    """Column index -> field name, and the required columns missing."""
    names: dict[int, str] = {}
    for index, cell in enumerate(header):
        key = fold(str(cell or "")).replace("_", " ")
        name = HEADER_ALIASES.get(key, key.replace(" ", "_"))
        if name in COLUMNS or name in OPTIONAL_COLUMNS:
            names[index] = name
    missing = [c for c in COLUMNS if c not in names.values()]
    return names, missing


def parse_rows(
    rows: Iterable[tuple[int, dict[str, object]]],
) -> tuple[list[Procedure], list[LineError]]:
    """Procedures from (line number, {column: cell}) rows; every bad line with its reason.
    A code twice in the file is an error on its second line."""
    found: list[Procedure] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    for count, (line, cells) in enumerate(rows, start=1):
        if count > MAX_ROWS:
            errors.append(LineError(line, f"too_many_rows:max_{MAX_ROWS}"))
            break
        if all(_blank(v) for v in cells.values()):
            continue
        try:
            proc = parse_row(cells)
        except RowError as exc:
            errors.append(LineError(line, str(exc)))
            continue
        if proc.code in seen:
            errors.append(LineError(line, f"code:duplicate_of_line_{seen[proc.code]}"))
            continue
        seen[proc.code] = line
        found.append(proc)
    if not found and not errors:
        errors.append(LineError(1, "no_rows"))
    return found, errors


class RowError(ValueError):
    pass


def parse_row(cells: dict[str, object]) -> Procedure:
    text = {name: _cell(name, value) for name, value in cells.items()}
    code = text.get("code", "")
    if not PROCEDURE_CODE.match(code):
        raise RowError("code:format (expected like 1.001193)")
    name = text.get("name", "")
    if not name or len(name) > MAX_NAME:
        raise RowError("name:required" if not name else f"name:too_long_max_{MAX_NAME}")
    level = text.get("level", "")
    if fold(level) not in COMMUNE_LEVELS:
        raise RowError(f"level:not_commune ({level or 'empty'})")
    values = {
        "code": code,
        "name": name,
        "level": level,
        "field": text.get("field", "") or "Khác",
        "processing_days": _number(text.get("processing_days", ""), "processing_days", MAX_DAYS),
        "fee": _number(text.get("fee", "") or "0", "fee", MAX_FEE, grouped=True),
        "fee_note": _bounded(text.get("fee_note", ""), "fee_note", MAX_ITEM),
        "source": _bounded(text.get("source", ""), "source", MAX_ITEM),
        "required_documents": _documents(text.get("documents", "")),
        "forms": [_bounded(f, "forms", MAX_ITEM) for f in _items(text.get("forms", ""), "forms")],
    }
    try:
        return Procedure.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RowError(f"{'.'.join(str(p) for p in first['loc'])}:invalid") from None


def _cell(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # XLSX numbers: 5.0 days
    text = str(value)
    if len(text) > MAX_CELL:
        raise RowError(f"{name}:too_long_max_{MAX_CELL}")
    problem = text_problem(text)
    if problem:
        raise RowError(f"{name}:{problem}")
    return normalise_text(text).strip()


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(text: str, name: str, maximum: int, grouped: bool = False) -> int:
    """Whole numbers; `grouped` takes Vietnamese thousands separators (50.000 VND)."""
    plain = text.replace(".", "").replace(",", "").replace(" ", "") if grouped else text
    if not plain.isdigit() or not plain.isascii():
        raise RowError(f"{name}:not_a_number ({text[:40] or 'empty'})")
    value = int(plain)
    if value > maximum:
        raise RowError(f"{name}:out_of_range_max_{maximum}")
    return value


def _bounded(text: str, name: str, maximum: int) -> str:
    if len(text) > maximum:
        raise RowError(f"{name}:too_long_max_{maximum}")
    return text


def _items(text: str, name: str) -> list[str]:
    items = [part.strip() for part in text.replace("\n", DOCUMENT_SEPARATOR).split("|")]
    items = [i for i in items if i]
    if len(items) > MAX_ITEMS:
        raise RowError(f"{name}:too_many_max_{MAX_ITEMS}")
    return items


def _documents(text: str) -> list[DocumentRequirement]:
    """`Name (1 bản chính)` required, `Name ~ condition` conditional, separated by `|`."""
    docs = []
    for item in _items(text, "documents"):
        name, _, condition = (part.strip() for part in item.partition(CONDITION_MARK))
        originals, copies = 1, 0
        mark = COPY_MARK.search(name)
        if mark:
            number, kind = int(mark.group(1)), fold(mark.group(2))
            originals, copies = (number, 0) if kind in ("ban chinh", "bc") else (0, number)
            name = name[: mark.start()].strip()
        if not name:
            raise RowError("documents:empty_name")
        if CONDITION_MARK in item and not condition:
            raise RowError(f"documents:condition_missing ({name[:40]})")
        docs.append(
            DocumentRequirement(
                name=_bounded(name, "documents", MAX_ITEM),
                originals=originals,
                copies=copies,
                required=not condition,
                condition=_bounded(condition, "documents", MAX_ITEM),
            )
        )
    return docs
