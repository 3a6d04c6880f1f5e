"""`commune app --web` as a new user starts it: a subprocess that serves the web build on
127.0.0.1 only, with no CDN named in the page it serves."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.browser.harness import running_app

CDN_HOSTS = ("unpkg.com", "jsdelivr.net", "gstatic.com", "googleapis.com", "cdnjs")


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port`, from the kernel's table."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_web_build_is_served_on_loopback_without_a_cdn(tmp_path: Path) -> None:
    with running_app(tmp_path / "data", tmp_path / "app.log") as url:
        port = int(re.search(r":(\d+)/$", url).group(1))
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert not [h for h in CDN_HOSTS if h in page.text], "the page names a CDN"
        scripts = re.findall(r'src="([^"]+)"', page.text)
        assert scripts and not [s for s in scripts if "://" in s]  # all served from here
        # Flutter's loader falls back to a CDN for CanvasKit and fonts unless told a local
        # base: the page tells it, and the files are there.
        assert "flet.noCdn=true" in page.text
        kit = re.search(r'flet.canvasKitBaseUrl="([^"]+)"', page.text).group(1)
        fonts = re.search(r'flet.fontFallbackBaseUrl="([^"]+)"', page.text).group(1)
        assert "://" not in kit and "://" not in fonts
        wasm = httpx.get(url + kit.strip("/") + "/canvaskit.wasm", timeout=30)
        assert wasm.status_code == 200 and wasm.content[:4] == b"\0asm"
        # Bound to 127.0.0.1 (0100007F in the kernel's byte order), not to every interface.
        assert listening_addresses(port) == {"0100007F"}
