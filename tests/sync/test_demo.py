"""`commune demo` as a real process: seeded and synced, run again on the same data, and with the
web client served until Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240
DOSSIERS = 12
SUMMARY = re.compile(r"sắp đến hạn (\d+), quá hạn (\d+)")
PUSHED = re.compile(r"(cán bộ|kiểm tra viên): pushed=(\d+) .* errors=0")
ADDRESS = re.compile(r"http://127\.0\.0\.1:(\d+)")


def _demo(data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "demo", "--data-dir", str(data_dir),
            "--dossiers", str(DOSSIERS), *extra]


def _run(data_dir: Path) -> str:
    done = subprocess.run(
        _demo(data_dir, "--no-open"), cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def _pushed(output: str) -> dict[str, int]:
    return {who: int(n) for who, n in PUSHED.findall(output)}


def _steps(output: str) -> list[str]:
    return re.findall(r"^\[(\d)/5\]", output, flags=re.MULTILINE)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_twice_on_the_same_data(tmp_path):
    first = _run(tmp_path)
    assert _steps(first) == ["1", "2", "3", "4", "5"]
    pushed = _pushed(first)
    assert pushed["cán bộ"] >= DOSSIERS and pushed["kiểm tra viên"] >= 126
    due, overdue = SUMMARY.search(first).groups()
    assert re.search(r"lịch sử 10 tuần: \d{4,} hồ sơ", first)  # oversight history seeded
    from openpyxl import load_workbook

    book = load_workbook(next(tmp_path.rglob("tong-hop-xa-phuong.xlsx")))
    rows = list(book.worksheets[0].iter_rows(min_row=3, values_only=True))
    assert len(rows) == 126 and all(r[2] > 0 for r in rows)  # every ward has dossiers

    second = _run(tmp_path)  # the API comes up on another free port: the devices follow it
    assert _steps(second) == ["1", "2", "3", "4", "5"]
    assert "Dùng lại dữ liệu demo" in second
    assert _pushed(second) == {"cán bộ": 0}  # nothing new, and the sync reached the server
    assert SUMMARY.search(second).groups() == (due, overdue)
    assert "còn chờ 0" in second
    ports = [int(p) for p in ADDRESS.findall(first + second)]
    assert len(set(ports)) == 2 and not any(_listening(p) for p in ports)


def _read_lines_until(proc: subprocess.Popen, pattern: re.Pattern, timeout_s: float) -> list[str]:
    """stdout lines up to the first that matches, bounded in time."""
    lines: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not selector.select(timeout=1.0):
            assert proc.poll() is None, "\n".join(lines)
            continue
        line = proc.stdout.readline()
        assert line, "the demo ended early:\n" + "\n".join(lines)
        lines.append(line.rstrip("\n"))
        if pattern.search(line):
            return lines
    raise AssertionError(f"no line like {pattern.pattern} within {timeout_s}s: {lines[-5:]}")


def test_demo_serves_the_web_client_until_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "FLET_VIEW_PATH")}
    proc = subprocess.Popen(
        _demo(tmp_path), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, start_new_session=True,  # its own group: Ctrl-C reaches all of it
    )
    try:
        lines = _read_lines_until(proc, re.compile(r"Ctrl-C"), RUN_TIMEOUT_S)
        api_port = int(ADDRESS.search(lines[1]).group(1))
        web_url = ADDRESS.search(lines[-1]).group(0) + "/"
        web_port = int(ADDRESS.search(lines[-1]).group(1))
        response = httpx.get(web_url, timeout=30)
        assert response.status_code == 200 and "<html" in response.text.lower()
        assert _listening(api_port)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not _listening(api_port) and not _listening(web_port)
    with contextlib.suppress(ProcessLookupError):  # nothing of the demo's group is left
        os.killpg(proc.pid, 0)
        raise AssertionError("a demo process outlived Ctrl-C")
