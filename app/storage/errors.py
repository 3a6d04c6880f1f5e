"""Storage errors. Each message is Vietnamese first, then English, so any layer may show it."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error raised by `app.storage`."""


class TamperError(StorageError):
    """A sealed value or file failed authentication: it was edited, truncated, swapped between
    rows or files, or belongs to another key. Its content is never returned as data."""

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(detail)

    def __str__(self) -> str:
        msg = "Dữ liệu đã bị sửa đổi hoặc hoán đổi / Data was modified or swapped"
        return f"{msg} ({self.detail})" if self.detail else msg


class WrongPin(StorageError):
    """The PIN did not open the key. Another attempt is allowed after `retry_after_s` seconds."""

    def __init__(self, attempts_left: int, retry_after_s: float) -> None:
        self.attempts_left = attempts_left
        self.retry_after_s = retry_after_s
        super().__init__(attempts_left, retry_after_s)

    def __str__(self) -> str:
        wait = _wait_text(self.retry_after_s)
        return (
            f"Sai mã PIN, còn {self.attempts_left} lần thử trước khi dữ liệu trên thiết bị này "
            f"bị xoá{wait[0]} / Wrong PIN, {self.attempts_left} attempts left before this "
            f"device's data is erased{wait[1]}"
        )


class LockedOut(StorageError):
    """Too soon after a wrong PIN; no attempt was spent."""

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(retry_after_s)

    def __str__(self) -> str:
        secs = _seconds(self.retry_after_s)
        return f"Tạm khóa, vui lòng thử lại sau {secs} giây / Locked, try again in {secs} seconds"


class StoreDestroyed(StorageError):
    """The data key was erased (too many wrong PINs, or the device was revoked)."""

    def __str__(self) -> str:
        return (
            "Kho dữ liệu đã bị xóa vì nhập sai mã PIN quá nhiều lần, thiết bị bị thu hồi "
            "hoặc lệnh xóa / The data store was erased after too many wrong PINs, a device "
            "revocation or a wipe"
        )


class PinTooShort(StorageError, ValueError):
    """The PIN breaks the policy (too few characters). Still a ValueError for older callers."""

    def __init__(self, min_chars: int) -> None:
        self.min_chars = min_chars
        super().__init__(min_chars)

    def __str__(self) -> str:
        n = self.min_chars
        return f"Mã PIN phải có ít nhất {n} ký tự / The PIN needs at least {n} characters"


class WeakSecretWithoutKeystore(StorageError, ValueError):
    """No OS keystore holds the device secret here, and the secret is too weak to resist
    offline guessing on a copied folder (app.storage.secret_strength)."""

    def __init__(self, have_bits: float, need_bits: float) -> None:
        self.have_bits = have_bits
        self.need_bits = need_bits
        super().__init__(have_bits, need_bits)

    def __str__(self) -> str:
        return (
            "Thiết bị này không có kho khóa của hệ điều hành, nên mã PIN ngắn không đủ an toàn: "
            "hãy dùng một cụm mật khẩu, ví dụ bốn từ trở lên hoặc ba từ và bốn chữ số / "
            "This device has no OS keystore, so a short PIN is not safe enough: use a "
            "passphrase, e.g. four words or more, or three words and four digits "
            f"({self.have_bits:.0f} < {self.need_bits:.0f} bits)"
        )


class NoStore(StorageError):
    """No key exists in the data directory yet: the store must be created first."""

    def __str__(self) -> str:
        return "Chưa có kho dữ liệu trên thiết bị này / No data store exists on this device"


def _seconds(value: float) -> int:
    return max(1, int(-(-value // 1)))  # ceiling, at least 1


def _wait_text(retry_after_s: float) -> tuple[str, str]:
    if retry_after_s <= 0:
        return "", ""
    secs = _seconds(retry_after_s)
    return f", thử lại sau {secs} giây", f", retry in {secs} seconds"
