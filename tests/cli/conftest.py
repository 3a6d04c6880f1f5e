"""Run the real `commune` command in a subprocess, in a private HOME.

Stores made by `commune init` use the production Argon2 cost (there is deliberately no switch
to weaken it), so each unlock costs ~0.2 s: tests share one store where they only read it."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# No keystore in these processes (the file fallback): a passphrase, as the rule asks.
PIN = "con mèo đen 2468"
NEW_PIN = "bốn con cá vàng 1357"
WARD = "00070"
HEADER = ["code", "procedure_code", "ward_code", "applicant_name", "applicant_id_number",
          "applicant_phone", "applicant_address", "channel", "received_at", "status", "notes"]
RUN_TIMEOUT_S = 120


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cli:
    """`commune ...` as a user runs it, with HOME and XDG folders inside tmp_path."""

    def __init__(self, home: Path) -> None:
        self.home = home
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMUNE_")}
        env |= {
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "xdg-data"),
            "XDG_CONFIG_HOME": str(home / "xdg-config"),
            # never the machine's keystore: the documented file fallback
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "PYTHONIOENCODING": "utf-8",
        }
        self.env = env

    def __call__(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            cwd=REPO,
            env=self.env | env,
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=RUN_TIMEOUT_S,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


@pytest.fixture(scope="module")
def module_cli(tmp_path_factory) -> Cli:
    return Cli(tmp_path_factory.mktemp("home"))


def write_csv(path: Path, rows: list[dict], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" for k in header} | row)
    return path


def row(procedure_code: str, **values: str) -> dict:
    base = {"procedure_code": procedure_code, "ward_code": WARD, "channel": "1", "status": "2",
            "received_at": "2025-11-20T08:30:00+07:00"}
    return base | values
