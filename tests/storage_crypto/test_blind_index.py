from __future__ import annotations

import os

from app.storage.blind_index import BlindIndex


def test_folded_query_terms_are_in_the_record_terms(key: bytes) -> None:
    index = BlindIndex(key)
    stored = set(index.terms("Nguyễn Thị Hương"))
    query = index.query_terms("nguyen thi huong")
    assert query and set(query) <= stored


def test_prefixes_match_and_non_prefixes_do_not(key: bytes) -> None:
    index = BlindIndex(key)
    stored = set(index.terms("Nguyễn Thị Hương, Phường Hoàn Kiếm"))
    for typed in ("huo", "nguy", "NGUYỄN hư", "hoan kie", "phuong"):
        assert set(index.query_terms(typed)) <= stored, typed
    for typed in ("uong", "huongg", "nguyen lan", "kiem x1"):
        assert not set(index.query_terms(typed)) <= stored, typed


def test_diacritics_and_d_bar_fold(key: bytes) -> None:
    index = BlindIndex(key)
    assert set(index.query_terms("duc")) <= set(index.terms("Trần Văn Đức"))


def test_whole_word_and_prefix_terms_are_tagged_apart(key: bytes) -> None:
    index = BlindIndex(key)
    word_hu = index.terms("Hu")[0]  # the whole-word term comes first
    prefix_hu = index.query_terms("hu")[0]
    assert word_hu != prefix_hu
    assert prefix_hu in index.terms("Hương") and word_hu not in index.terms("Hương")


def test_single_letter_query_matches_whole_word(key: bytes) -> None:
    index = BlindIndex(key)
    assert set(index.query_terms("số 5")) <= set(index.terms("Số 5 Hàng Bài"))
    assert not set(index.query_terms("5")) <= set(index.terms("Số 55 Hàng Bài"))


def test_terms_are_short_hex_and_reveal_no_text(key: bytes) -> None:
    terms = BlindIndex(key).terms("Nguyễn Thị Hương")
    assert all(len(t) == 16 and int(t, 16) >= 0 for t in terms)
    assert not any("nguy" in t or "huong" in t for t in terms)
    assert BlindIndex(key).query_terms("  ,. ") == []


def test_different_keys_give_different_terms(key: bytes) -> None:
    one = set(BlindIndex(key).terms("Nguyễn Thị Hương"))
    two = set(BlindIndex(os.urandom(32)).terms("Nguyễn Thị Hương"))
    assert not one & two


def test_id_numbers_match_whole_value_digits_only(key: bytes) -> None:
    index = BlindIndex(key)
    stored = index.id_terms("001 085-012.345")
    assert len(stored) == 1
    assert index.query_id_terms("001085012345") == stored
    assert index.query_id_terms("00108501234") != stored  # no prefix search on ID numbers
    assert index.id_terms("không có") == [] and index.query_id_terms("") == []
    assert not set(stored) & set(index.terms("001085012345"))  # ID terms tagged apart
