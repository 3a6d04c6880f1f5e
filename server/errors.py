"""The one error shape of the API: {"error": {"code": "snake_case", "message": "..."}}."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str = "", headers: dict | None = None, **extra
    ) -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message or code.replace("_", " ")
        self.headers = headers
        self.extra = extra  # more keys in the error body, e.g. the server's upload offset

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
