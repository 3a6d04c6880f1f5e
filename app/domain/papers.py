"""The papers a citizen handed over, as one cell of a register file.

`Tờ khai (1 bản chính) | Giấy khai sinh (1 bản chính, 2 bản sao)`: papers separated by `|`, each
with its counts in brackets (a paper without them is one original), the way the province's
catalogue writes its documents (`app.domain.catalogue`). The export writes this form and the
import reads it, so a register goes out and comes back with its papers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import ValidationError

from app.domain.models import DocumentReceived
from app.domain.text import fold

SEPARATOR = "|"
MAX_PAPERS = 50
_COUNTS = re.compile(r"\s*\(([^()]*)\)\s*$")
_COUNT = re.compile(r"^(\d{1,2})\s*(ban chinh|bc|ban sao|bs)$")


class PapersError(ValueError):
    """A cell that does not read as papers; the message names the paper."""


def papers_text(papers: Iterable[DocumentReceived]) -> str:
    return f" {SEPARATOR} ".join(
        f"{p.name} ({p.originals} bản chính, {p.copies} bản sao)" for p in papers
    )


def parse_papers(text: str) -> list[DocumentReceived]:
    items = [part.strip() for part in text.replace("\n", SEPARATOR).split(SEPARATOR)]
    items = [item for item in items if item]
    if len(items) > MAX_PAPERS:
        raise PapersError(f"more than {MAX_PAPERS} papers")
    return [_paper(item) for item in items]


def _paper(item: str) -> DocumentReceived:
    name, originals, copies = item, 1, 0
    counts = _COUNTS.search(item)
    if counts:
        name, originals, copies = item[: counts.start()].strip(), 0, 0
        for part in counts.group(1).split(","):
            found = _COUNT.match(fold(part))
            if not found:
                raise PapersError(
                    f"«{part.strip()}» in «{name[:40]}»: write «1 bản chính, 2 bản sao»"
                )
            if found.group(2) in ("ban chinh", "bc"):
                originals = int(found.group(1))
            else:
                copies = int(found.group(1))
    try:
        return DocumentReceived(name=name, originals=originals, copies=copies)
    except ValidationError as exc:
        raise PapersError(f"«{name[:40]}»: {exc.errors()[0]['msg']}") from None
