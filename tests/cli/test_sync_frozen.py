"""`commune sync --once` as an officer runs it: it counts what waits as dossiers (not outbox
rows), prints its progress, and against a real API process stopped with SIGSTOP (it accepts
connections and never answers) it ends, reporting offline, within its stall bound.
`commune api` prints one ready line with its address."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from app.domain import reference
from tests.cli.conftest import PIN, REPO, WARD, row, write_csv
from tests.support.server_proc import free_port, sqlite_url, start_api_server

PROCEDURE = next(p for p in reference.procedures() if p.processing_days >= 1).code
STALL_S = "3"


def test_sync_once_counts_records_shows_progress_and_ends_against_a_frozen_server(
    cli, tmp_path: Path
) -> None:
    from server.services import identity

    data = tmp_path / "data"
    with tempfile.TemporaryDirectory(prefix="commune-frozen-api-") as tmp:
        server = start_api_server(sqlite_url(Path(tmp)), Path(tmp))
        try:
            server.add_user("canbo.lan", "officer", [WARD])
            code = identity.create_enrol_code(server.engine, "canbo.lan", 10)
            enrolled = cli("--data-dir", str(data), "enrol", "--server", server.url,
                           "--code", code, COMMUNE_PIN=PIN)
            assert enrolled.code == 0, enrolled.err
            # Three dossiers, one with a status move: more outbox rows than dossiers.
            rows = [row(PROCEDURE, applicant_name=name)
                    for name in ("Nguyễn Thị Hương", "Trần Văn Bình", "Phạm Thị Dung")]
            rows[1]["status"] = "4"
            register = write_csv(tmp_path / "register.csv", rows)
            done = cli("dossiers", "import", str(register), "--data-dir", str(data),
                       COMMUNE_PIN=PIN)
            assert done.code == 0, done.err

            synced = cli("--data-dir", str(data), "sync", "--once", COMMUNE_PIN=PIN)
            assert synced.code == 0, synced.err
            lines = synced.out.splitlines()
            assert lines[0] == "waiting to send: 3 records (3 dossiers, 0 audits, 0 decisions)"
            assert any(re.fullmatch(r"push \d+/\d+", line) for line in lines)
            assert any(re.fullmatch(r"pull \d+", line) for line in lines)
            assert lines[-1] == "waiting to send: 0 records (0 dossiers, 0 audits, 0 decisions)"

            more = write_csv(tmp_path / "more.csv", [row(PROCEDURE, applicant_name="Đỗ Văn Khánh")])
            assert cli("dossiers", "import", str(more), "--data-dir", str(data),
                       COMMUNE_PIN=PIN).code == 0
            server.freeze()
            try:
                # Bounded: the stall watch cuts the run (the Cli's subprocess timeout would
                # fail the test if it did not end).
                frozen = cli("--data-dir", str(data), "sync", "--once", "--stall", STALL_S,
                             COMMUNE_PIN=PIN)
            finally:
                server.thaw()
            assert frozen.code == 1
            assert frozen.out.splitlines()[0] == (
                "waiting to send: 1 records (1 dossiers, 0 audits, 0 decisions)"
            )
            assert "the server did not answer for" in frozen.err
            assert frozen.out.splitlines()[-1].startswith("waiting to send: 1 records")
        finally:
            server.stop()


def test_api_prints_one_ready_line_with_its_address(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(tmp_path), "api", "--port",
         str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the line (or the process ends)
        assert first.strip() == f"commune api ready on http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(15)
