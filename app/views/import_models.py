"""The "Nhập sổ" presenter: a register file (CSV or XLSX) imported into the store in chunks,
with progress between them and every refused line listed. Pure Python, tested in tests/views.

Each chunk is one `DossierService.import_rows` call (one transaction). Nothing is lost when the
app stops halfway: the chunks written are whole, and importing the file again skips every row
already held (by code, or by the identity term for rows without one), so it finishes the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.i18n import t
from app.storage.services.register_file import RegisterFileError, read_register

CHUNK_ROWS = 250  # a chunk writes in well under a second on a tablet: progress moves often
SHOWN_ERRORS = 200  # the dialog lists this many refused lines; the count says the rest


@dataclass
class RegisterImport:
    name: str
    rows: list[dict[str, Any]]
    chunk_rows: int = CHUNK_ROWS
    done: int = 0
    imported: int = 0
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @classmethod
    def from_file(cls, data: bytes, name: str) -> RegisterImport:
        """Raises RegisterFileError (its message says why) when the file cannot be imported."""
        return cls(name, read_register(data, name))

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    def chunks(self) -> Iterator[list[dict[str, Any]]]:
        for start in range(0, self.total, self.chunk_rows):
            yield self.rows[start : start + self.chunk_rows]

    def add(self, chunk: list[dict[str, Any]], report: Any) -> None:
        self.done += len(chunk)
        self.imported += report.imported
        self.skipped += report.skipped_duplicates
        self.errors += report.errors

    def progress_text(self) -> str:
        return t("import.progress", done=self.done, total=self.total)

    def summary(self) -> str:
        return t(
            "import.summary",
            imported=self.imported,
            skipped=self.skipped,
            refused=len(self.errors),
        )

    def error_lines(self) -> list[str]:
        lines = [t("import.line", line=n, reason=r) for n, r in sorted(self.errors)]
        if len(lines) > SHOWN_ERRORS:
            rest = len(lines) - SHOWN_ERRORS
            return [*lines[:SHOWN_ERRORS], t("import.more", n=rest)]
        return lines


def run_import(
    import_rows: Callable[[list[dict[str, Any]]], Any],
    job: RegisterImport,
    on_progress: Callable[[RegisterImport], None] | None = None,
) -> RegisterImport:
    """Every chunk through `import_rows` (the store's), reporting after each (a plain loop for
    the CLI and tests; the view runs the same steps with a repaint between chunks)."""
    for chunk in job.chunks():
        job.add(chunk, import_rows(chunk))
        if on_progress is not None:
            on_progress(job)
    return job


__all__ = ["RegisterFileError", "RegisterImport", "run_import"]
