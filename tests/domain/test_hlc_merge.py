from hypothesis import given
from hypothesis import strategies as st

from app.domain.hlc import Clock, Timestamp
from app.domain.merge import Stamped, merge_fields


def test_clock_is_monotonic_even_when_wall_time_goes_back():
    walls = iter([1000, 900, 900, 1100])
    clock = Clock("a", wall_ms=lambda: next(walls))
    stamps = [clock.now() for _ in range(4)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4


def test_observe_moves_past_a_remote_stamp():
    clock = Clock("a", wall_ms=lambda: 10)
    remote = str(Timestamp(500, 3, "b"))
    clock.observe(remote)
    assert clock.now() > remote


def test_different_fields_both_survive():
    base = {"a": Stamped(1, "0" * 16 + ":0000:x", 1), "b": Stamped(1, "0" * 16 + ":0000:x", 1)}
    out = merge_fields(base, {"a": Stamped(2, str(Timestamp(5, 0, "d1")))}, base_version=1)
    out = merge_fields(out.fields, {"b": Stamped(3, str(Timestamp(4, 0, "d2")))}, base_version=1)
    assert out.fields["a"].value == 2 and out.fields["b"].value == 3 and not out.races


def test_same_field_race_is_reported_with_the_clock_winner():
    cur = {"a": Stamped("x", str(Timestamp(9, 0, "d1")), changed_version=2)}
    out = merge_fields(cur, {"a": Stamped("y", str(Timestamp(7, 0, "d2")))}, base_version=1)
    assert out.fields["a"].value == "x"
    assert [(r.winner.value, r.loser.value) for r in out.races] == [("x", "y")]


stamps = st.builds(
    lambda w, c, n: Stamped(w * 10 + c, str(Timestamp(w, c, n))),
    st.integers(0, 5), st.integers(0, 2), st.sampled_from(["a", "b", "c"]),
)


@given(st.lists(st.dictionaries(st.sampled_from("xyz"), stamps, min_size=1), max_size=6))
def test_merge_order_does_not_matter(writes):
    forward: dict = {}
    for w in writes:
        forward = merge_fields(forward, w).fields
    backward: dict = {}
    for w in reversed(writes):
        backward = merge_fields(backward, w).fields
    assert {k: (v.value, v.hlc) for k, v in forward.items()} == {
        k: (v.value, v.hlc) for k, v in backward.items()
    }


def test_a_devices_own_successive_writes_never_race():
    cur = {"a": Stamped("x", str(Timestamp(7, 0, "d1")), changed_version=2)}
    out = merge_fields(cur, {"a": Stamped("y", str(Timestamp(9, 0, "d1")))}, base_version=0)
    assert out.fields["a"].value == "y" and not out.races
