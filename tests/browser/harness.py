"""Drive the Flet web build in Debian's Chromium: start `commune app --web` as a subprocess on a
free port with its own data folder, open it headless, turn on Flutter's accessibility tree.

Used by the browser tests and by bench/client_open.py. Only 127.0.0.1 is ever contacted: every
other request the page makes (a CDN the web build still names) is aborted.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support import file_keyring

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("COMMUNE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",  # software WebGL, so CanvasKit paints and screenshots work
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 60.0
CONSOLE_KEPT = 40  # the page's last console lines, shown when it stops answering
UI_TIMEOUT_MS = 30_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the app did not listen on port {port} within {timeout_s} s")


@contextlib.contextmanager
def running_app(
    data_dir: Path,
    log_path: Path | None = None,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """`commune app --web` (or `command` + `--port N`) on a free port; yields its URL; stops it
    afterwards."""
    port = free_port()
    env = dict(os.environ, COMMUNE_DATA_DIR=str(data_dir), FLET_FORCE_WEB_SERVER="true")
    env |= extra_env or {}
    env.pop("COMMUNE_PIN", None)  # the PIN is typed on screen
    # A desktop with a keystore (a short PIN is accepted); without one a passphrase is needed.
    env |= file_keyring.env_for(Path(data_dir).parent / "keystore.json")
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [*(command or [sys.executable, "-m", "app.cli", "app", "--web"]), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if log_path:
            log.close()  # type: ignore[union-attr]


def launch(playwright):  # -> Browser
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def only_local(route) -> None:
    url = route.request.url
    if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
        route.continue_()
    else:
        route.abort()


def open_page(browser, url: str, width: int = 1280, height: int = 800, **context_args):
    context = browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True, **context_args
    )
    context.route("**/*", only_local)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    console: deque[str] = deque(maxlen=CONSOLE_KEPT)
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.commune_console = console  # read back when the page stops answering (in_page)
    page.goto(url)
    enable_accessibility(page)
    return page


def enable_accessibility(page) -> None:
    """Flutter web builds its accessibility tree only after this (off-screen) button is used."""
    placeholder = page.locator("flt-semantics-placeholder")
    placeholder.wait_for(state="attached", timeout=UI_TIMEOUT_MS)
    placeholder.dispatch_event("click")
    page.locator("flt-semantics").first.wait_for(state="attached", timeout=UI_TIMEOUT_MS)


FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
EVAL_TIMEOUT_MS = 20_000


def in_page(page: Page, js: str, arg=None, timeout_ms: int = EVAL_TIMEOUT_MS):
    """`page.evaluate` with a bound. Playwright's `evaluate` has none: once, in CI, the page's
    renderer spun at full CPU and the journey sat in an `evaluate` for 9 minutes. The bound is
    kept by the driver, outside the page, so a page that never answers fails this step."""
    wrapped = f"async (arg) => ({{value: await ({js})(arg)}})"  # falsy results count too
    try:
        return page.wait_for_function(wrapped, arg=arg, timeout=timeout_ms).json_value()["value"]
    except PlaywrightTimeout as stuck:
        said = "\n".join(getattr(page, "commune_console", ())) or "(nothing)"
        raise AssertionError(
            f"the page did not answer within {timeout_ms} ms; its last console lines:\n{said}"
        ) from stuck


RESIZE_BOUND_S = 90.0


def resize(page: Page, width: int, height: int, bound_s: float = RESIZE_BOUND_S) -> None:
    """`page.set_viewport_size`, bounded. Playwright waits for the renderer to take a new
    viewport without any timeout; once in CI a renderer looped at full CPU right after a
    viewport change and the journey hung. Past `bound_s` the watchdog ends this browser's
    renderers, which fails the step at once, with the page's last console lines."""
    done = threading.Event()

    def watchdog() -> None:
        if not done.wait(bound_s):
            for pid in own_renderers():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def closed_on_crash(crashed: Page) -> None:
        crashed.close()  # a crash alone leaves Playwright's call pending; a closed page ends it

    threading.Thread(target=watchdog, name="resize-watchdog", daemon=True).start()
    page.on("crash", closed_on_crash)
    try:
        page.set_viewport_size({"width": width, "height": height})
    except Exception as crashed:  # the renderer ended under the call: Playwright's own error
        said = "\n".join(getattr(page, "commune_console", ())) or "(nothing)"
        raise AssertionError(
            f"the page did not take the viewport {width}x{height} within {bound_s:.0f} s; "
            f"its last console lines:\n{said}"
        ) from crashed
    finally:
        done.set()
        page.remove_listener("crash", closed_on_crash)


def own_renderers() -> list[int]:
    """Chromium renderer processes started under this test process (through Playwright's
    driver), found in /proc: never another run's browser."""
    parents: dict[int, int] = {}
    renderers: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        if b"--type=renderer" in command:
            renderers.append(int(entry.name))

    def ours(pid: int) -> bool:
        for _ in range(16):  # bounded walk up the process tree
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
            if pid <= 1:
                return False
        return False

    return [pid for pid in renderers if ours(pid)]


def settle(page: Page) -> None:
    """Two animation frames: the last change is on the canvas."""
    in_page(page, FRAMES)


STILL_TRIES = 20  # captures compared at most, ~150 ms apart


def shot(page: Page, folder: Path, name: str) -> None:
    """`<name>-<width>x<height>.png`, once the canvas holds still. The accessibility tree can
    be ahead of the pixels: on a loaded machine the first frame of the app paints up to a
    second after its nodes exist, over Flet's animated "Working..." start screen. So capture
    until two captures in a row agree (bounded; an animation that never stops gives the last)."""
    # The pointer rests where the last click left it: a hovered row is tinted and a hovered
    # navigation item shows its tooltip. Park it on the title, which reacts to neither.
    page.mouse.move(1, 1)
    page.wait_for_timeout(600)  # dialogs and snack bars animate in for up to ~0.3 s
    settle(page)
    size = page.viewport_size or {"width": 0, "height": 0}
    png, previous = b"", None
    for _ in range(STILL_TRIES):
        png = page.screenshot()
        if png == previous:
            break
        previous = png
        page.wait_for_timeout(150)
    (folder / f"{name}-{size['width']}x{size['height']}.png").write_bytes(png)


DOC_SIZES = ((1280, 800), (1920, 1080))


def shots(page: Page, folder: Path, name: str) -> None:
    """The screen at both documented desktop sizes, then back to the size it had."""
    size = page.viewport_size or {"width": 1280, "height": 800}
    for width, height in DOC_SIZES:
        resize(page, width, height)
        shot(page, folder, name)
    resize(page, size["width"], size["height"])
    settle(page)


def field(page: Page, label: str):
    return page.get_by_role("textbox", name=label, exact=True)


def shows(page: Page, text: str | re.Pattern, exact: bool = False):
    """Text on screen: Flutter exposes it as text content or as an aria-label."""
    return page.get_by_text(text, exact=exact).or_(page.get_by_label(text, exact=exact)).first


def nav(page: Page, label: str):
    """A navigation destination: on the desktop rail Flutter names it "<label> Tab i of n";
    on the tablet bar it is a tab."""
    rail = page.get_by_role("button", name=re.compile(rf"^{label}\s+Tab \d of \d$"))
    return rail.or_(page.get_by_role("tab", name=label, exact=True))


def type_into(page: Page, label: str, text: str, attempts: int = 10, within=None) -> None:
    """Flutter reads keystrokes, not a DOM value: focus the field (a click is sometimes taken
    before Flutter listens, so check the focus and click again), select all, type. `within`:
    a locator to look in, when several fields share the label."""
    target = (within or page).get_by_role("textbox", name=label, exact=True)
    target.wait_for(state="visible")
    for _ in range(attempts):
        try:
            target.click(timeout=3_000)  # a click during a repaint can hang: try again
        except PlaywrightTimeout:
            continue
        page.wait_for_timeout(250)  # a repaint right after a navigation can take the focus back
        focused = in_page(page, "() => document.activeElement?.getAttribute('aria-label') || ''")
        if focused == label:
            break
        page.wait_for_timeout(300)
    else:
        raise AssertionError(f"the field {label!r} never took the focus")
    page.keyboard.press("Control+a")
    page.keyboard.type(text)


def find_procedure(page: Page, query: str) -> None:
    """Search the intake's procedure list and wait until the list on screen answers `query`.
    The list is rebuilt 0.3 s after the typing pauses; the unfiltered list shown before may
    already hold the wanted tile (at another place), and a click on it then lands while the
    filtered list replaces it. The screen names the query its list answers: wait for that."""
    type_into(page, "Tìm thủ tục (tên hoặc mã)", query)
    expect(shows(page, f"Kết quả tìm «{query}»")).to_be_visible()


TOUCH_DP = 48  # Material's minimum touch target; one CSS pixel is one dp at this zoom
TOUCH_ROLES = ("button", "radio", "checkbox", "tab", "switch", "link", "menuitem", "textbox")
SMALL_TARGETS_JS = """([min, roles]) => {
  const found = [];
  const nodes = document.querySelectorAll('flt-semantics[role], flt-semantics input');
  for (const el of nodes) {
    const role = el.tagName === 'INPUT' ? 'textbox' : el.getAttribute('role');
    if (!roles.includes(role)) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    // Only what is wholly on screen: a node cut by the scroll edge reports its clipped size
    // (Flutter clips a node's rectangle to its scroll view, so one flush with the edge of a
    // smaller ancestor is cut, not small).
    if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) continue;
    let cut = false;
    for (let up = el.parentElement; up && !cut; up = up.parentElement) {
      const a = up.getBoundingClientRect();
      if (a.height <= 0 || a.height >= innerHeight - 1) continue;
      cut = r.top <= a.top + 1 || r.bottom >= a.bottom - 1;
      break;
    }
    if (cut) continue;
    const wide = role === 'textbox' ? true : r.width >= min;
    if (r.height < min || !wide) {
      const name = (el.getAttribute('aria-label') || el.textContent || '').trim().slice(0, 40);
      found.push(`${role} "${name}" ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
  }
  return found;
}"""


def small_targets(page: Page, min_dp: int = TOUCH_DP) -> list[str]:
    """Controls on screen whose accessibility node is smaller than `min_dp` (height, and
    width except for text fields): role, name and size of each."""
    # Measured once the tree holds still: right after a relayout a node can report the size
    # it is animating from.
    found, previous = [], None
    for _ in range(STILL_TRIES):
        settle(page)
        found = in_page(page, SMALL_TARGETS_JS, [min_dp, list(TOUCH_ROLES)])
        if found == previous:
            break
        previous = found
        page.wait_for_timeout(300)
    return found
