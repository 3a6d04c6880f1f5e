"""The client refuses http:// to anything but this machine, unless a lab allows it."""

from __future__ import annotations

import pytest

from app import i18n
from app.sync import enrolment
from app.sync.transport import InsecureUrl, Transport, check_scheme


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.vn",
        "https://10.0.0.5:8443",
        "http://127.0.0.1:8000",
        "http://127.9.9.9",
        "http://localhost:8000",
        "http://LOCALHOST",
        "http://[::1]:8000",
    ],
)
def test_https_and_loopback_http_are_accepted(url):
    check_scheme(url)
    Transport(url).close()


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.vn",
        "http://10.0.0.5:8000",
        "http://192.168.1.10",
        "http://127.0.0.1.example.com",
        "http://[2001:db8::1]",
        "ftp://127.0.0.1",
        "api.example.vn",
    ],
)
def test_http_to_another_machine_is_refused(url):
    with pytest.raises(InsecureUrl):
        check_scheme(url)
    with pytest.raises(InsecureUrl):
        Transport(url)


def test_a_lab_may_allow_insecure_http_and_retargeting_is_checked_too():
    check_scheme("http://10.0.0.5:8000", allow_insecure_http=True)
    with Transport("http://10.0.0.5:8000", allow_insecure_http=True):
        pass
    with Transport("http://127.0.0.1:8000") as transport, pytest.raises(InsecureUrl):
        transport.retarget("http://10.0.0.5:8000")


def test_the_message_comes_from_the_catalogue_in_both_languages():
    try:
        i18n.set_language("vi")
        with pytest.raises(InsecureUrl) as vi:
            Transport("http://10.0.0.5")
        i18n.set_language("en")
        with pytest.raises(InsecureUrl) as en:
            Transport("http://10.0.0.5")
    finally:
        i18n.set_language("vi")
    assert str(vi.value) == i18n.catalogue("vi")["sync.insecure_http"].format(url="http://10.0.0.5")
    assert "không mã hoá" in str(vi.value)
    assert str(en.value).startswith("The server address http://10.0.0.5 uses unencrypted")


class _Settings(dict):
    def set(self, key, value) -> None:
        self[key] = value


def test_settings_keep_the_lab_flag_and_a_new_address_is_checked():
    settings = _Settings(server_url="https://a.example.vn", device_token="t")
    with pytest.raises(InsecureUrl):
        enrolment.move_server(settings, "http://b.example.vn")
    assert settings["server_url"] == "https://a.example.vn"
    with pytest.raises(InsecureUrl):
        Transport.from_settings(settings, server_url="http://b.example.vn")
    settings.set("allow_insecure_http", True)
    enrolment.move_server(settings, "http://b.example.vn")
    Transport.from_settings(settings).close()
