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
# Statuses a dossier is received in at the counter (a history of one step).
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


def implied_path(status: int) -> list[DossierStatus] | None:
    """The history a dossier first seen in `status` implies: the shortest path through the
    machine from an intake status (RECEIVED before NEW) to it, both ends included, e.g.
    IN_PROCESS -> [RECEIVED, IN_PROCESS]. None for a number that is no status.

    This is THE rule for a dossier's first status, on the device (a register imported at any
    status writes one history event per step) and on the server (which accepts a dossier's
    first status when it has such a path, and each history event when it is a step of it or
    of the machine)."""
    try:
        target = DossierStatus(status)
    except ValueError:
        return None
    for start in (S.RECEIVED, S.NEW):
        paths = {start: [start]}
        frontier = [start]
        while frontier:
            nxt = []
            for state in frontier:
                for after in sorted(TRANSITIONS[state]):
                    if after not in paths:
                        paths[after] = [*paths[state], after]
                        nxt.append(after)
            frontier = nxt
        if target in paths:
            return paths[target]
    return None


# Statuses a dossier may be first recorded in: the machine is fixed, so searched once.
_STARTS = frozenset(s for s in DossierStatus if implied_path(s) is not None)


def can_start_in(status: int) -> bool:
    """Whether a dossier may be first recorded in `status` (see `implied_path`)."""
    if type(status) is int or isinstance(status, DossierStatus):
        return status in _STARTS
    return implied_path(status) is not None


def first_status_problem(status: int | None) -> str | None:
    """Reason code for a dossier's first status, or None: 'status_required',
    'status_initial' (no path from intake leads there)."""
    if status is None:
        return "status_required"
    return None if can_start_in(status) else "status_initial"


def move_problem(current: int | None, target: int | None) -> str | None:
    """Reason code for a dossier's status as it will be after a change from `current`
    (None: a new dossier), or None when the machine allows it."""
    if current is None:
        return first_status_problem(target)
    if target is None:
        return "status_required"
    if target == current:
        return None
    return None if can_transition(current, target) else "status_transition"


def event_problem(from_status: int | None, to_status: int | None) -> str | None:
    """Reason code for one history event (dossier_event), or None: the first event enters an
    intake status, every other one is a move the machine allows."""
    if to_status is None:
        return "status_required"
    if from_status is None:
        return None if to_status in INITIAL else "status_initial"
    return None if can_transition(from_status, to_status) else "status_transition"


class Digitisation(IntEnum):
    """Digitisation status of each received paper and of the result: whether the counter
    holds it electronically and where that copy came from."""

    NOT_DIGITISED = 0  # chưa số hoá
    DIGITISED = 1  # đã số hoá tại bộ phận một cửa
    REUSED = 2  # tái sử dụng dữ liệu đã số hoá
    REUSED_RESULT = 3  # tái sử dụng kết quả giải quyết của hồ sơ khác


DIGITISATION_CHOICES = frozenset(int(d) for d in Digitisation)
