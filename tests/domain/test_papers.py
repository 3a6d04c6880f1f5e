"""The papers cell of a register file: written by the export, read by the import."""

from __future__ import annotations

import pytest

from app.domain.models import DocumentReceived
from app.domain.papers import PapersError, papers_text, parse_papers


def test_papers_go_out_and_come_back() -> None:
    papers = [
        DocumentReceived(name="Tờ khai đăng ký khai sinh", originals=1, copies=0),
        DocumentReceived(name="Giấy chứng sinh", originals=1, copies=2),
    ]
    text = papers_text(papers)
    assert text == (
        "Tờ khai đăng ký khai sinh (1 bản chính, 0 bản sao) | "
        "Giấy chứng sinh (1 bản chính, 2 bản sao)"
    )
    assert parse_papers(text) == papers


def test_papers_typed_by_hand() -> None:
    read = parse_papers("Tờ khai|Bản sao CCCD (2 BẢN SAO)\nSổ hộ khẩu (1 bc)")
    assert [(p.name, p.originals, p.copies) for p in read] == [
        ("Tờ khai", 1, 0),  # no counts: one original
        ("Bản sao CCCD", 0, 2),  # any case, without diacritics too
        ("Sổ hộ khẩu", 1, 0),
    ]
    assert parse_papers("") == [] and parse_papers(" | ") == []


@pytest.mark.parametrize(
    ("cell", "named"),
    [
        ("Tờ khai (một bản chính)", "một bản chính"),
        ("Tờ khai (1 bản chính, 100 bản sao)", "100 bản sao"),
        (" (1 bản chính)", "String should have at least 1 character"),
        ("|".join(["Giấy"] * 51), "more than 50 papers"),
    ],
)
def test_a_cell_that_is_not_papers_is_refused_with_what_is_wrong(cell: str, named: str) -> None:
    with pytest.raises(PapersError, match=named):
        parse_papers(cell)
