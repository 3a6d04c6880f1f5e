import pytest

from app.domain.status import (
    TRANSITIONS,
    DossierStatus,
    allowed_next,
    can_transition,
    is_open,
    is_terminal,
)

S = DossierStatus


def test_happy_path_reaches_returned_result():
    path = [S.NEW, S.RECEIVED, S.IN_PROCESS, S.COMPLETED, S.RETURNED]
    for a, b in zip(path, path[1:], strict=False):
        assert can_transition(a, b), (a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [(S.RETURNED, S.IN_PROCESS), (S.NEW, S.COMPLETED), (S.REFUSED, S.RECEIVED), (S.RECEIVED, 11)],
)
def test_forbidden_moves(a, b):
    assert not can_transition(a, b)


def test_supplement_loop_goes_back_to_processing():
    assert can_transition(S.IN_PROCESS, S.SUPPLEMENT_REQUESTED)
    assert can_transition(S.SUPPLEMENT_REQUESTED, S.IN_PROCESS)


def test_terminal_statuses_offer_nothing():
    for s in (S.REFUSED, S.WITHDRAWN, S.STOPPED, S.RETURNED):
        assert is_terminal(s) and allowed_next(s) == []
    assert not is_open(S.COMPLETED) and is_open(S.SUPPLEMENT_REQUESTED)


def test_every_status_has_an_entry_and_no_self_loops():
    assert set(TRANSITIONS) == set(S)
    assert all(s not in targets for s, targets in TRANSITIONS.items())
