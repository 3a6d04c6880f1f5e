"""`commune demo`: the whole product on embedded defaults, seeded and synced, then the client.

Everything runs on this machine: the central API on an embedded SQLite file, an officer's
device store for Phường Hoàn Kiếm, an auditor's device with audits of Hanoi's 126 wards, a sync
between them, and the client. A second run reuses what the first one seeded.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.demo.fake import dossier_requests, person_name
from app.domain import audit as audit_rules
from app.domain import reference
from app.domain.calendar import vn_date, vn_today
from app.domain.models import AuditAnswer
from app.domain.status import DossierStatus as S

DEMO_PIN = "123456"
OFFICER_WARD = "00070"  # Phường Hoàn Kiếm
USERS = [  # username, role, wards
    ("canbo.hoankiem", "officer", OFFICER_WARD),
    ("kiemtra.cntt", "auditor", None),  # None: all of Hanoi's wards
    ("giamsat.so", "supervisor", "*"),
    ("quantri", "admin", "*"),
]


@dataclass
class DemoPlan:
    root: Path
    api_port: int = 0
    web_port: int = 0
    dossiers: int = 300
    open_client: bool = True
    reset: bool = False
    say: Callable[[str], None] = print
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def server_dir(self) -> Path:
        return self.root / "server"

    @property
    def officer_dir(self) -> Path:
        return self.root / "officer"

    @property
    def auditor_dir(self) -> Path:
        return self.root / "auditor"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, data_dir: Path, stdin: str | None = None) -> str:
    """Run a `commune` command in a child process; its stdout, or a clear error."""
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), *args],
        input=stdin, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COMMUNE_PIN": DEMO_PIN},
    )
    if done.returncode != 0:
        raise RuntimeError(f"commune {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def start_api(plan: DemoPlan) -> None:
    from app.sync.transport import Transport

    plan.api_port = plan.api_port or free_port()
    plan.server_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(plan.server_dir), "api",
         "--host", "127.0.0.1", "--port", str(plan.api_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    plan.processes.append(proc)
    with Transport(plan.api_url) as probe:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the central API stopped: {proc.stderr.read().strip()}")
            if probe.probe():
                return
            time.sleep(0.3)
    raise RuntimeError("the central API did not start within 60 s")


def create_users(plan: DemoPlan) -> None:
    hanoi = ",".join(w.code for w in reference.hanoi_wards())
    for username, role, wards in USERS:
        cli("admin", "create-user", username, "--role", role, "--wards", wards or hanoi,
            "--password-stdin", data_dir=plan.server_dir, stdin="demo-password\n")


def enrol(plan: DemoPlan, username: str, device_dir: Path):
    """A new device store for `username`, enrolled with the central API."""
    from app.storage import KeySettings, create_store
    from app.sync.enrolment import save_enrolment
    from app.sync.transport import Transport

    output = cli("admin", "enrol-code", "--user", username, data_dir=plan.server_dir)
    code = output.strip().split()[-1]
    # Demo data under a PIN the demo prints: the no-keystore passphrase rule does not apply.
    store = create_store(device_dir, DEMO_PIN, settings=KeySettings(offline_years=0))
    with Transport(plan.api_url) as transport:
        answer = transport.enrol(code, f"demo-{username}")
    save_enrolment(store.settings, plan.api_url, answer)
    return store


def reopen_at(plan: DemoPlan, device_dir: Path):
    """An enrolled demo device, pointed at this run's API address: the API gets a new free port
    each run, and the address saved at enrolment would lead nowhere."""
    from app.storage import open_store
    from app.sync.enrolment import move_server

    store = open_store(device_dir, DEMO_PIN)
    move_server(store.settings, plan.api_url)
    return store


def seed_dossiers(store, count: int, today: dt.date, say: Callable[[str], None]) -> None:
    """Dossiers received over the last 60 days, moved along as a real counter would."""
    rng = random.Random(7)
    requests = list(dossier_requests(reference.procedures(), [OFFICER_WARD], count, today=today))
    for i, req in enumerate(requests, 1):
        req.actor = "Cán bộ một cửa"
        dossier = store.dossiers.receive(req)
        advance(store, dossier, today, rng)
        if i % 50 == 0 or i == count:
            say(f"      {i}/{count} hồ sơ")


def advance(store, dossier, today: dt.date, rng: random.Random) -> None:
    """Move a dossier along a plausible path given how long ago it came in."""
    age = (today - vn_date(dossier.received_at)).days
    roll = rng.random()
    steps: list[int] = []
    if age >= 1:
        steps.append(S.IN_PROCESS)
    if age >= 3 and roll < 0.08:
        steps.append(S.SUPPLEMENT_REQUESTED)
    elif dossier.appointment_date <= today and roll < 0.85:
        steps += [S.COMPLETED] + ([S.RETURNED] if roll < 0.7 else [])
    elif age >= 2 and roll < 0.3:
        steps.append(S.COMPLETED)
    for status in steps:
        result = "Đã có kết quả giải quyết" if status == S.COMPLETED else None
        store.dossiers.change_status(dossier.id, status, result=result, actor="Cán bộ một cửa")


def seed_audits(store, say: Callable[[str], None]) -> None:
    """One audit per Hanoi ward; about half submitted for review."""
    rng = random.Random(11)
    tpl = audit_rules.template()
    wards = reference.hanoi_wards()
    for i, ward in enumerate(wards, 1):
        audit = store.audits.create(ward.code, tpl.version, person_name(rng))
        for item in tpl.items():
            value = fake_answer(item, rng)
            if value is not None:
                store.audits.answer(audit.id, item.id, AuditAnswer(value=value))
        if rng.random() < 0.5:
            store.audits.submit(audit.id)
        if i % 25 == 0 or i == len(wards):
            say(f"      {i}/{len(wards)} biên bản khảo sát")


def fake_answer(item, rng: random.Random):
    if item.kind == "yes_no":
        return rng.random() < 0.7
    if item.kind == "number":
        target = item.target or 1
        value = round(target * rng.uniform(0.3, 1.4), 1)
        return min(value, item.maximum) if item.maximum is not None else value
    if item.kind == "choice" and item.options:
        return rng.choice(item.options).id
    if item.kind == "text":
        return "Đã kiểm tra tại chỗ."
    return None  # photos need a camera


def seed_oversight(plan: DemoPlan, today: dt.date) -> str:
    """Ten weeks of history across the 126 wards and earlier audits on the server, the report
    snapshots supervisors pull, and the summary of all wards as XLSX in the demo folder."""
    from app.demo.history import seed_history
    from server.core.db import make_engine

    url = f"sqlite:///{plan.server_dir / 'server' / 'commune.db'}"
    engine = make_engine(url, pool_size=1)
    try:
        dossiers = seed_history(engine, today, frozenset({OFFICER_WARD}))
    finally:
        engine.dispose()
    cli("report", "publish", "--db", url, data_dir=plan.server_dir)
    summary = plan.root / "tong-hop-xa-phuong.xlsx"
    key_file = plan.server_dir / "keys" / "server.key"  # audit answers are sealed at rest
    cli("report", "audits", "--format", "xlsx", "--out", str(summary), "--db", url,
        "--key-file", str(key_file), data_dir=plan.server_dir)
    return f"lịch sử 10 tuần: {dossiers} hồ sơ của 125 xã phường khác; tổng hợp: {summary}"


def sync(store, plan: DemoPlan) -> str:
    from app.sync.engine import SyncEngine
    from app.sync.transport import Transport

    with Transport.from_settings(store.settings) as transport:
        report = SyncEngine(store.sync, transport).run_once()
    if not report.ok:
        raise RuntimeError(f"sync failed: {report.summary()} {report.errors}")
    return report.summary()


def summary_lines(store, today: dt.date) -> list[str]:
    board = store.dossiers.dashboard(today)
    rate = "—" if board.on_time_rate is None else f"{board.on_time_rate:.0%}"
    state = store.sync.summary()
    return [
        f"Hôm nay {today:%d/%m/%Y}: tiếp nhận {board.received_today} hồ sơ, "
        f"sắp đến hạn {board.due_soon}, quá hạn {board.overdue}, tỉ lệ đúng hạn {rate}.",
        f"Đồng bộ: còn chờ {state.pending}, xung đột {state.conflicts}, bị từ chối "
        f"{state.rejected}.",
    ]


def run(plan: DemoPlan) -> int:
    from app.storage import store_exists

    say, today = plan.say, vn_today()  # the counter's day, whatever the machine's zone
    seeded = store_exists(plan.officer_dir) and store_exists(plan.auditor_dir)
    fresh = plan.reset or not seeded
    if fresh and plan.root.exists():
        shutil.rmtree(plan.root)
    say(f"[1/5] Máy chủ trung tâm (SQLite nhúng) trong {plan.server_dir} …")
    start_api(plan)
    say(f"      {plan.api_url}")
    if fresh:
        say("[2/5] Tạo người dùng và ghi danh thiết bị …")
        create_users(plan)
        officer = enrol(plan, "canbo.hoankiem", plan.officer_dir)
        auditor = enrol(plan, "kiemtra.cntt", plan.auditor_dir)
        say(f"[3/5] Tạo {plan.dossiers} hồ sơ một cửa và 126 biên bản khảo sát …")
        seed_dossiers(officer, plan.dossiers, today, say)
        seed_audits(auditor, say)
        say("[4/5] Đồng bộ với máy chủ …")
        say(f"      cán bộ: {sync(officer, plan)}")
        say(f"      kiểm tra viên: {sync(auditor, plan)}")
        auditor.close()
        say(f"      {seed_oversight(plan, today)}")
    else:
        say("[2/5] Dùng lại dữ liệu demo đã có …")
        officer = reopen_at(plan, plan.officer_dir)
        reopen_at(plan, plan.auditor_dir).close()
        say("[3/5] Giữ nguyên hồ sơ và biên bản khảo sát đã tạo lần trước …")
        say("[4/5] Đồng bộ với máy chủ …")
        say(f"      cán bộ: {sync(officer, plan)}")
    try:
        for line in summary_lines(officer, today):
            say(f"      {line}")
    finally:
        officer.close()
    say(f"[5/5] Mở ứng dụng (mã PIN demo: {DEMO_PIN}) …")
    if plan.open_client:
        open_client(plan)
    return 0


def open_client(plan: DemoPlan) -> None:
    args = [sys.executable, "-m", "app.cli", "--data-dir", str(plan.officer_dir), "app"]
    web = not desktop_available()
    if web:
        plan.web_port = plan.web_port or free_port()
        args += ["--web", "--port", str(plan.web_port)]
    client = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    plan.processes.append(client)
    if web:
        wait_listening(client, plan.web_port, "the web client")
        plan.say(f"      http://127.0.0.1:{plan.web_port}/  (Ctrl-C để dừng)")
    client.wait()


def wait_listening(proc: subprocess.Popen, port: int, what: str, timeout_s: float = 90) -> None:
    """Print an address only once it answers: a URL opened too early shows an error page."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} stopped (exit {proc.returncode})")
        with socket.socket() as s:
            s.settimeout(1.0)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout_s:.0f} s")


def desktop_available() -> bool:
    """A desktop window needs flet-desktop's client and a display."""
    if os.environ.get("FLET_VIEW_PATH"):
        return True
    try:
        import flet_desktop  # noqa: F401
    except ImportError:
        return False
    return bool(os.environ.get("DISPLAY") or sys.platform in ("win32", "darwin"))


def stop(plan: DemoPlan) -> None:
    for proc in reversed(plan.processes):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in reversed(plan.processes):
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
