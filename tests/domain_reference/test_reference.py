"""Wards from vietnam-provinces and the procedure catalogue in assets/procedures.json."""

from __future__ import annotations

import re
import unicodedata

import pytest

from app.domain import reference
from app.domain.models import Procedure, Ward


def test_all_commune_level_units():
    wards = reference.wards()
    assert len(wards) == 3321
    codes = [w.code for w in wards]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"\d{5}", c) for c in codes)
    assert codes == sorted(codes)
    assert {w.division_type for w in wards} == {"phường", "xã", "đặc khu"}
    assert all(isinstance(w, Ward) and re.fullmatch(r"\d{2}", w.province_code) for w in wards)
    assert len({w.province_code for w in wards}) == 34 == len(reference.provinces())


def test_hanoi_has_126_units():
    hanoi = reference.hanoi_wards()
    assert len(hanoi) == 126
    assert {w.province_code for w in hanoi} == {reference.HANOI}
    assert {w.province_name for w in hanoi} == {"Thành phố Hà Nội"}
    assert reference.wards("01") == hanoi


def test_ward_lookup():
    hoan_kiem = reference.ward("00070")
    assert hoan_kiem.name == "Phường Hoàn Kiếm"
    assert hoan_kiem.division_type == "phường"
    assert reference.is_ward_code("00070") and not reference.is_ward_code("70")
    with pytest.raises(KeyError, match="99999"):
        reference.ward("99999")


def test_catalogue_has_enough_real_procedures():
    procs = reference.procedures()
    assert len(procs) >= 43  # 36 of the first extract + 7 read on service portals (2026-12)
    codes = [p.code for p in procs]
    assert len(set(codes)) == len(codes)
    for p in procs:
        assert isinstance(p, Procedure)
        assert reference.PROCEDURE_CODE.fullmatch(p.code), p.code
        assert p.processing_days >= 0 and p.fee >= 0
        assert p.name and p.field and p.source and p.required_documents
        assert p.code in p.source  # each names its national database entry
        for doc in p.required_documents:
            assert doc.name and doc.originals + doc.copies >= 1, (p.code, doc.name)


# Added from stored public service-portal pages: each source names the page it was read on, and
# the limit is the published number of working days (calendar-day limits stay out, see the doc).
PORTAL_ADDITIONS = {
    "2.000950": ("Phổ biến giáo dục pháp luật", 5),
    "2.002080": ("Phổ biến giáo dục pháp luật", 5),
    "1.000593": ("Hộ tịch", 5),
    "1.008004": ("Trồng trọt", 5),
    "1.010833": ("Người có công", 5),
    "2.000355": ("Bảo trợ xã hội", 10),
    "2.000184": ("An toàn đập, hồ chứa thủy điện", 20),
}


def test_portal_additions_name_the_page_they_were_read_on():
    for code, (field, days) in PORTAL_ADDITIONS.items():
        p = reference.procedure(code)
        assert (p.field, p.processing_days) == (field, days), code
        assert ".gov.vn" in p.source, p.source  # the portal page, not only the legal basis
        assert unicodedata.is_normalized("NFC", p.source + p.fee_note + p.name)
        assert p.fee == 0 and p.fee_note, code  # none of them has a national fee
    codes = [p.code for p in reference.procedures()]
    assert len(codes) == len(set(codes))
    assert reference.search_procedures("hoa giai")[0].code in PORTAL_ADDITIONS


def test_each_document_is_required_or_conditional_with_its_condition():
    """A paper the catalogue asks for only in some cases ("nếu ...", "khi ...") is conditional
    and says when; the others are required in every case. Each procedure needs at least one."""
    conditional = 0
    for p in reference.procedures():
        assert any(doc.required for doc in p.required_documents), p.code
        for doc in p.required_documents:
            if doc.required:
                assert not doc.condition, (p.code, doc.name)
            else:
                conditional += 1
                assert doc.condition.split()[0] in ("nếu", "khi", "đối", "tùy"), doc.condition
            assert "(nếu " not in doc.name and "(khi " not in doc.name, (p.code, doc.name)
    birth = reference.procedure("1.001193")
    by_name = {d.name: d for d in birth.required_documents}
    assert by_name["Tờ khai đăng ký khai sinh"].required
    proxy = by_name["Văn bản ủy quyền"]
    assert not proxy.required and proxy.condition.startswith("nếu nộp thay")
    assert conditional >= 30


def test_catalogue_text_is_nfc_vietnamese():
    for p in reference.procedures():
        for text in (p.name, p.field, p.fee_note, p.source):
            assert unicodedata.normalize("NFC", text) == text, p.code


def test_known_codes():
    assert reference.procedure("1.001193").name == "Thủ tục đăng ký khai sinh"
    assert reference.procedure("1.000894").name == "Thủ tục đăng ký kết hôn"
    assert reference.procedure("2.000815").field == "Chứng thực"
    assert reference.procedure("1.004873").processing_days == 3
    with pytest.raises(KeyError, match="9.999999"):
        reference.procedure("9.999999")


def test_search_is_diacritic_insensitive():
    birth = [p.code for p in reference.search_procedures("khai sinh")]
    assert birth[0] == "1.001193"
    assert "1.004884" in birth  # đăng ký lại khai sinh
    assert "1.000894" not in birth
    marriage = [p.code for p in reference.search_procedures("dang ky ket hon")]
    assert marriage[0] == "1.000894"
    assert [p.code for p in reference.search_procedures("ĐĂNG KÝ KẾT HÔN")] == marriage
    assert [p.code for p in reference.search_procedures("1.0011")][0] == "1.001193"
    assert reference.search_procedures("   ") == []
    assert reference.search_procedures("xyzzy") == []
    assert len(reference.search_procedures("chung thuc", limit=3)) == 3
