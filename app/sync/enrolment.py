"""Enrolment: redeem a one-time code with the central API and keep what it gives the device."""

from __future__ import annotations

import platform
import time
from typing import Any

from app.storage.escrow import ASKED_SETTING
from app.sync.ports import SettingsPort
from app.sync.transport import Transport, save_tokens

DESKTOP_LOGIN = "desktop_login"  # setting: these tokens came from a password login


def enrol(
    settings: SettingsPort,
    server_url: str,
    code: str,
    device_name: str = "",
    allow_insecure_http: bool = False,
) -> dict:
    """POST /auth/enrol, then save the answer in the store's sealed settings. Raises the
    transport's errors (`RequestRejected` for a used or expired code, `Offline`,
    `InsecureUrl` for http:// to another machine, ...)."""
    with Transport(server_url, allow_insecure_http=allow_insecure_http) as transport:
        answer = transport.enrol(code, device_name or platform.node() or "device")
        save_enrolment(settings, server_url, answer, allow_insecure_http)
        _fetch_recovery_key(transport, settings, answer["token"])
    return answer


def _fetch_recovery_key(transport: Transport, settings: SettingsPort, token: str) -> None:
    """The organisation's recovery public key at once, so a store that never syncs still has
    its escrow (app.storage.escrow); a server without one, or an old one, is fine."""
    from app.sync.transport import SyncError

    transport.token = token
    try:
        public = transport.recovery_key()
    except SyncError:
        return
    if public:
        settings.set("recovery_public_key", public)


def is_desktop_login(settings: SettingsPort) -> bool:
    return bool(settings.get(DESKTOP_LOGIN)) and bool(settings.get("device_token"))


def login(
    settings: SettingsPort,
    server_url: str,
    username: str,
    password: str,
    allow_insecure_http: bool = False,
) -> dict:
    """A desktop login (supervisors, admins): POST /auth/login, kept like an enrolment."""
    with Transport(server_url, allow_insecure_http=allow_insecure_http) as transport:
        answer = transport.login(username, password)
    save_enrolment(settings, server_url, answer, allow_insecure_http, desktop=True)
    return answer


def logout(settings: SettingsPort) -> None:
    """End the desktop login on the server (renewing the token first if it expired), then
    forget its tokens here. Raises the transport's errors; the tokens are forgotten anyway
    when the server says the session had already ended."""
    from app.sync.transport import SessionExpired

    try:
        with Transport.from_settings(settings) as transport:
            transport.logout()
    except SessionExpired:
        pass  # already over on the server
    forget_tokens(settings)


def forget_tokens(settings: SettingsPort) -> None:
    for key in ("device_token", "refresh_token", "token_expires_at", DESKTOP_LOGIN):
        settings.set(key, None)


def save_enrolment(
    settings: SettingsPort,
    server_url: str,
    answer: dict[str, Any],
    allow_insecure_http: bool = False,
    *,
    desktop: bool = False,
) -> None:
    """Keep the server address, the tokens, the code slot and the ward scope; `desktop` marks a
    desktop login (a user's password, which can log out) as against an enrolled tablet."""
    settings.set("server_url", server_url.rstrip("/"))
    save_tokens(settings, answer)
    settings.set(DESKTOP_LOGIN, True if desktop else None)
    if allow_insecure_http:
        settings.set("allow_insecure_http", True)
    settings.set("server_device_id", answer.get("device_id"))
    settings.set("code_slot", answer.get("code_slot"))
    settings.set("user", answer.get("user"))
    settings.set("role", answer.get("role"))
    wards = list(answer.get("wards") or [])
    settings.set("wards", wards)
    if len(wards) == 1 and not settings.get("ward_code"):
        settings.set("ward_code", wards[0])
    # Enrolment asks for the recovery key itself (`enrol`); the sync asks again a day later.
    settings.set(ASKED_SETTING, time.time())


def move_server(settings: SettingsPort, server_url: str) -> None:
    """The same central API at a new address (a new port, a new host name): the enrolment and
    its token stay valid, only where to reach the server changes."""
    from app.sync.transport import check_scheme

    check_scheme(server_url, bool(settings.get("allow_insecure_http")))
    settings.set("server_url", server_url.rstrip("/"))
