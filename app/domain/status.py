"""The dossier status machine, as used by the national public-service portal integrations."""

from __future__ import annotations

from enum import IntEnum


class DossierStatus(IntEnum):
    NEW = 1  # mới đăng ký
    RECEIVED = 2  # đã tiếp nhận
    REFUSED = 3  # từ chối tiếp nhận
    IN_PROCESS = 4  # đang xử lý
    SUPPLEMENT_REQUESTED = 5  # yêu cầu bổ sung
    FEES_DUE = 6  # chờ thực hiện nghĩa vụ tài chính
    WITHDRAWN = 7  # công dân rút hồ sơ
    STOPPED = 8  # dừng xử lý
    COMPLETED = 9  # đã xử lý xong
    RETURNED = 10  # đã trả kết quả


class Channel(IntEnum):
    IN_PERSON = 1
    ONLINE = 2
    POSTAL = 3


S = DossierStatus
TRANSITIONS: dict[DossierStatus, frozenset[DossierStatus]] = {
    S.NEW: frozenset({S.RECEIVED, S.REFUSED, S.WITHDRAWN}),
    S.RECEIVED: frozenset({S.IN_PROCESS, S.SUPPLEMENT_REQUESTED, S.WITHDRAWN, S.STOPPED}),
    S.REFUSED: frozenset(),
    S.IN_PROCESS: frozenset(
        {S.SUPPLEMENT_REQUESTED, S.FEES_DUE, S.COMPLETED, S.STOPPED, S.WITHDRAWN}
    ),
    S.SUPPLEMENT_REQUESTED: frozenset({S.IN_PROCESS, S.WITHDRAWN, S.STOPPED}),
    S.FEES_DUE: frozenset({S.IN_PROCESS, S.COMPLETED, S.WITHDRAWN, S.STOPPED}),
    S.WITHDRAWN: frozenset(),
    S.STOPPED: frozenset(),
    S.COMPLETED: frozenset({S.RETURNED}),
    S.RETURNED: frozenset(),
}

# Dossiers whose processing is over: timeliness is judged on them as early / on time / late.
FINISHED = frozenset({S.COMPLETED, S.RETURNED})
# Dossiers that left the flow without a result: not counted in the on-time rate.
ABANDONED = frozenset({S.REFUSED, S.WITHDRAWN, S.STOPPED})
# Statuses a dossier may be created in (intake or import of history).
INITIAL = frozenset({S.NEW, S.RECEIVED})


def can_transition(current: int, target: int) -> bool:
    try:
        return DossierStatus(target) in TRANSITIONS[DossierStatus(current)]
    except ValueError:
        return False


def allowed_next(current: int) -> list[DossierStatus]:
    return sorted(TRANSITIONS[DossierStatus(current)])


def is_open(status: int) -> bool:
    return DossierStatus(status) not in FINISHED | ABANDONED


def is_terminal(status: int) -> bool:
    return not TRANSITIONS[DossierStatus(status)]
