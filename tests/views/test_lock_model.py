from __future__ import annotations

from pathlib import Path

from app.storage import KeySettings, create_store, open_store, store_exists
from app.views.lock_model import IdleTimer, LockPresenter, pin_problem
from tests.views.conftest import PIN


class Gateway:
    """The real storage calls, with cheap Argon2 and a chosen lock-out policy."""

    def __init__(self, data_dir: Path, keys: KeySettings) -> None:
        self.data_dir, self.keys = data_dir, keys

    def exists(self) -> bool:
        return store_exists(self.data_dir)

    def create(self, pin: str):
        return create_store(self.data_dir, pin, settings=self.keys)

    def open(self, pin: str):
        return open_store(self.data_dir, pin)


def test_pin_rules() -> None:
    assert pin_problem("12345", "12345") == "Mã PIN cần ít nhất 6 ký tự"
    assert pin_problem("111111", "111111") == "Mã PIN quá đơn giản (toàn một ký tự)"
    assert pin_problem("246810", "246811") == "Hai lần nhập mã PIN không khớp"
    assert pin_problem("246810", "246810") is None


def test_first_run_then_unlock_with_the_pin(data_dir: Path) -> None:
    lock = LockPresenter(Gateway(data_dir, KeySettings.for_tests(base_delay_s=0.0)))
    assert lock.first_run
    refused = lock.create(PIN, "000001")
    assert not refused.ok and "không khớp" in refused.message
    created = lock.create(PIN, PIN)
    assert created.ok
    created.store.close()
    assert not lock.first_run
    opened = lock.unlock(PIN)
    assert opened.ok
    opened.store.close()


def test_wrong_pins_show_attempts_left_then_the_wait(data_dir: Path) -> None:
    keys = KeySettings.for_tests(max_attempts=5, base_delay_s=30.0)
    lock = LockPresenter(Gateway(data_dir, keys))
    lock.create(PIN, PIN).store.close()
    wrong = lock.unlock("999999")
    assert not wrong.ok and wrong.attempts_left == 4
    assert wrong.message.startswith(
        "Sai mã PIN, còn 4 lần thử trước khi dữ liệu trên thiết bị này bị xoá."
    )
    assert wrong.wait_seconds > 0 and "Thử lại sau" in wrong.message
    too_soon = lock.unlock(PIN)  # even the right PIN waits: no attempt is spent
    assert not too_soon.ok and too_soon.message.startswith("Tạm khoá, thử lại sau")
    assert lock.unlock("").message == "Hãy nhập mã PIN"


def test_too_many_wrong_pins_destroy_the_store(data_dir: Path) -> None:
    lock = LockPresenter(Gateway(data_dir, KeySettings.for_tests(max_attempts=2, base_delay_s=0)))
    lock.create(PIN, PIN).store.close()
    results = [lock.unlock("999999") for _ in range(3)]
    assert results[-1].destroyed
    assert "đã bị xoá" in results[-1].message


def test_idle_timer_locks_after_the_chosen_minutes_only() -> None:
    now = [1000.0]
    timer = IdleTimer(5, clock=lambda: now[0])
    now[0] += 299
    assert not timer.expired() and timer.seconds_left() == 1
    timer.touch()
    now[0] += 299
    assert not timer.expired()
    now[0] += 1
    assert timer.expired()
    never = IdleTimer(0, clock=lambda: now[0])
    now[0] += 10**6
    assert not never.expired() and never.seconds_left() is None


def test_a_missing_store_is_reported_not_raised(tmp_path: Path) -> None:
    lock = LockPresenter(Gateway(tmp_path / "nothing-here", KeySettings.for_tests()))
    result = lock.unlock(PIN)
    assert not result.ok and result.message


def test_without_a_keystore_a_short_pin_is_refused_with_the_reason(data_dir: Path) -> None:
    import keyring
    from keyring.backends import fail

    from app.storage.keys import keyring_is_usable

    # Whatever this machine has, the case under test is a machine without a keystore.
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert not keyring_is_usable()
        _short_pin_refused_passphrase_accepted(data_dir)
    finally:
        keyring.set_keyring(before)


def _short_pin_refused_passphrase_accepted(data_dir: Path) -> None:
    lock = LockPresenter(Gateway(data_dir, KeySettings()))  # the rule scales with the cost
    refused = lock.create("135790", "135790")
    assert not refused.ok and refused.message.startswith("Thiết bị này không có kho khóa")
    accepted = lock.create("con mèo đen 1357", "con mèo đen 1357")
    assert accepted.ok
    accepted.store.close()
