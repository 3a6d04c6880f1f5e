from app.domain.entities import DOSSIER, sealed_fields, validate_fields
from app.domain.text import digits, fold, tokens


def test_fold_removes_marks_and_keeps_d_bar_as_d():
    assert fold("Nguyễn Thị  HƯƠNG") == "nguyen thi huong"
    assert fold("Đặng Đức") == "dang duc"
    assert tokens("Lê, Lê  Văn-Tám") == ["le", "van", "tam"]
    assert digits("0912 345-678") == "0912345678"


def test_personal_fields_are_sealed_and_query_keys_are_not():
    sealed = sealed_fields(DOSSIER)
    assert {"applicant_name", "applicant_id_number", "notes"} <= sealed
    assert not {"status", "ward_code", "appointment_date"} & sealed


def test_validation_reports_each_bad_field():
    problems = validate_fields(
        DOSSIER, {"status": 42, "received_at": "yesterday", "nope": 1, "channel": 2}
    )
    assert sorted(problems) == ["nope:unknown_field", "received_at:format", "status:choice"]
    assert validate_fields("spaceship", {}) == ["entity:spaceship:unknown"]
