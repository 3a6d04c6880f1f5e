"""The failure limiter: a sliding window, so no boundary lets a guesser start again from zero."""

from server.core.security import RateLimiter


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_failures_straddling_a_minute_boundary_still_block():
    clock = FakeClock(59.5)  # half a second before a fixed window's boundary
    limiter = RateLimiter(limit=10, window_seconds=60, clock=clock)
    for _ in range(5):
        limiter.fail("ip")
    clock.now = 60.5  # the old fixed windows started from zero here
    for _ in range(5):
        limiter.fail("ip")
    assert limiter.blocked("ip")
    assert limiter.retry_after("ip") == 59  # until the first failure, at 59.5, is a minute old


def test_the_window_slides_one_failure_at_a_time():
    clock = FakeClock(1000.0)
    limiter = RateLimiter(limit=3, window_seconds=60, clock=clock)
    for step in range(3):
        clock.now = 1000.0 + step * 10
        limiter.fail("ip")
    assert limiter.blocked("ip")
    clock.now = 1060.0  # the first failure (1000) has just left the window
    assert not limiter.blocked("ip")
    assert limiter.retry_after("ip") == 0
    limiter.fail("ip")
    assert limiter.blocked("ip")
    assert limiter.retry_after("ip") == 10  # the failure at 1010 leaves at 1070


def test_keys_are_counted_apart_and_quiet_keys_are_forgotten_when_full(monkeypatch):
    clock = FakeClock(0.0)
    limiter = RateLimiter(limit=2, window_seconds=60, clock=clock)
    monkeypatch.setattr(RateLimiter, "_MAX_KEYS", 3)
    limiter.fail("a")
    limiter.fail("a")
    limiter.fail("b")
    assert limiter.blocked("a") and not limiter.blocked("b")
    clock.now = 61.0
    limiter.fail("c")
    limiter.fail("d")  # full: a and b are quiet and go
    assert set(limiter._failures) == {"c", "d"}
    assert not limiter.blocked("a")
