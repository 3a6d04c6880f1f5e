"""Realistic dossiers for view tests, screenshots and the client benchmark, written through the
real store API (receive, change_status, a pulled conflict)."""

from __future__ import annotations

import datetime as dt
import random

from app.domain import reference
from app.domain.hlc import Clock
from app.domain.models import DocumentReceived, ReceiveDossier
from app.domain.mutations import Change, FieldValue, PushResult

WARD = "00004"  # Phường Ba Đình
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương"]
MIDDLE = ["Thị", "Văn", "Đức", "Minh", "Thu", "Quang", "Ngọc", "Hữu", "Thanh", "Kim"]
GIVEN = [
    "Hương",
    "Nam",
    "Lan",
    "Tuấn",
    "Hà",
    "Dũng",
    "Mai",
    "Sơn",
    "Trang",
    "Khánh",
    "Yến",
    "Phúc",
    "Thảo",
    "Bình",
    "Quỳnh",
    "Đạt",
    "Ánh",
    "Hiếu",
]
STREETS = ["Đội Cấn", "Kim Mã", "Liễu Giai", "Nguyễn Thái Học", "Hoàng Hoa Thám", "Phan Đình Phùng"]


def name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def requests(n: int, *, today: dt.date, seed: int = 7, days_back: int = 20):
    rng = random.Random(seed)
    procs = [p for p in reference.procedures() if p.processing_days > 0]
    for i in range(n):
        proc = procs[i % len(procs)]
        day = today - dt.timedelta(days=rng.randint(0, days_back))
        at = dt.datetime.combine(day, dt.time(1 + rng.randint(0, 8), rng.randint(0, 59)), dt.UTC)
        yield ReceiveDossier(
            procedure_code=proc.code,
            ward_code=WARD,
            applicant_name=name(rng),
            applicant_id_number=f"0011{rng.randint(10**7, 10**8 - 1)}",
            applicant_phone=f"09{rng.randint(10**7, 10**8 - 1)}",
            applicant_address=f"Số {rng.randint(1, 200)} phố {rng.choice(STREETS)}, Ba Đình",
            documents=[
                DocumentReceived(name=d.name, originals=d.originals, copies=d.copies)
                for d in proc.required_documents
                if d.originals + d.copies
            ],
            received_at=at,
            actor="Trần Văn Nam",
        )


def seed(
    store, n: int, *, today: dt.date, moves: int = 0, seed: int = 7, days_back: int = 20
) -> None:
    """`n` dossiers in one transaction; the first `moves` of the list moved on (in process,
    some completed) so the screens show a mix of statuses."""
    store.dossiers.receive_many(requests(n, today=today, seed=seed, days_back=days_back))
    if not moves:
        return
    from app.storage import DossierQuery

    page = store.dossiers.list(DossierQuery(), offset=0, limit=moves)
    for i, d in enumerate(page.items):
        store.dossiers.change_status(d.id, 4, actor="Trần Văn Nam")
        if i % 3 == 0:
            store.dossiers.change_status(d.id, 9, result="Đã cấp", actor="Trần Văn Nam")


def push_all(store) -> None:
    pending = store.sync.pending_mutations(100_000_000)
    store.sync.record_push_results(
        [PushResult(mutation_id=m.mutation_id, status="applied", version=1) for m in pending]
    )


def pull_conflict(store, dossier_id: str, mine: str, theirs: str, conflict_id: str = "c-1"):
    """A same-field race on `notes` as the server reports it by pull."""
    stamp = Clock("server").now()
    values = [{"value": theirs, "hlc": stamp}, {"value": mine, "hlc": stamp}]
    fields = {
        "entity": "dossier",
        "entity_id": dossier_id,
        "ward_code": WARD,
        "field": "notes",
        "values": values,
        "state": "open",
    }
    change = Change(
        seq=store.sync.pull_cursor() + 1,
        entity="conflict",
        entity_id=conflict_id,
        ward_code=WARD,
        version=1,
        fields={k: FieldValue(value=v, hlc=stamp) for k, v in fields.items()},
    )
    store.sync.apply_pull_page([change], next_cursor=change.seq)
