"""Deterministic, realistic-looking demo records (pure: no I/O). Used by the demo and benchmarks."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from app.domain.models import DocumentReceived, Procedure, ReceiveDossier
from app.domain.status import Channel

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
            "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Thu", "Ngọc", "Quang", "Thanh", "Xuân", "Hồng"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa", "Hùng",
         "Hương", "Khánh", "Lan", "Linh", "Long", "Mai", "Nam", "Nga", "Phúc", "Phương",
         "Quân", "Sơn", "Tâm", "Thảo", "Thắng", "Trang", "Tuấn", "Việt", "Yến"]
STREETS = ["Hàng Bạc", "Lý Thái Tổ", "Tràng Tiền", "Kim Mã", "Giảng Võ", "Láng Hạ",
           "Trần Duy Hưng", "Nguyễn Trãi", "Cầu Giấy", "Xuân Thủy", "Lạc Long Quân"]


def person_name(rng: random.Random) -> str:
    return f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def id_number(rng: random.Random) -> str:
    return "001" + "".join(rng.choice("0123456789") for _ in range(9))


def dossier_requests(
    procedures: list[Procedure],
    ward_codes: list[str],
    count: int,
    *,
    today: dt.date,
    days_back: int = 60,
    seed: int = 2026,
) -> Iterator[ReceiveDossier]:
    """`count` intake requests received over the last `days_back` days, in receipt order."""
    rng = random.Random(seed)
    base = dt.datetime.combine(today, dt.time(1, 30), tzinfo=dt.UTC)
    offsets = sorted(rng.uniform(0, days_back * 86400) for _ in range(count))
    for offset in reversed(offsets):
        procedure = rng.choice(procedures)
        received = base - dt.timedelta(seconds=offset)
        if received.weekday() >= 5:
            received -= dt.timedelta(days=2)
        yield ReceiveDossier(
            procedure_code=procedure.code,
            ward_code=rng.choice(ward_codes),
            applicant_name=person_name(rng),
            applicant_id_number=id_number(rng),
            applicant_phone="09" + "".join(rng.choice("0123456789") for _ in range(8)),
            applicant_address=f"Số {rng.randint(1, 200)} phố {rng.choice(STREETS)}, Hà Nội",
            channel=rng.choice([Channel.IN_PERSON] * 4 + [Channel.ONLINE, Channel.POSTAL]),
            documents=[
                DocumentReceived(name=d.name, originals=d.originals, copies=d.copies)
                for d in procedure.required_documents
                if d.required  # a conditional paper only comes when its case applies
            ],
            notes=rng.choice(["", "", "Công dân hẹn nhận kết quả qua bưu điện.",
                              "Đã kiểm tra bản chính."]),
            received_at=received,
        )
