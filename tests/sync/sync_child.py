"""A warm fork server for the kill test: `python -m tests.sync.sync_child`.

It imports the whole client once, then for each request forks a child that runs the `commune`
command (`app.cli.main`) and reports the child's pid, so the test can SIGKILL it at a random
point; a cold interpreter would spend the first seconds importing instead of syncing.

Protocol, one JSON line each way: {"run": [argv...], "pin": "...", "mark": path?} -> {"pid": N};
with "mark", the child creates that file just before its first HTTP request to the API, so the
test can tell a kill during sync from one while the store was still opening;
{"wait": N} -> {"exit": code} (negative: killed by that signal); EOF ends the server.
"""

from __future__ import annotations

import json
import os
import sys


def _mark_first_request(path: str) -> None:
    """Wrap the transport's one door to the network: the first request creates `path`."""
    from app.sync.transport import Transport

    real_send = Transport._send

    def send(self, *args, **kwargs):
        if not os.path.exists(path):
            with open(path, "w") as marker:
                marker.flush()
                os.fsync(marker.fileno())  # on disk before a byte goes out
        return real_send(self, *args, **kwargs)

    Transport._send = send


def _child(argv: list[str], pin: str, mark: str | None) -> None:
    os.environ["COMMUNE_PIN"] = pin
    if mark:
        _mark_first_request(mark)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    code = 1
    try:
        from app.cli import main

        code = main(argv)
    finally:
        os._exit(int(code or 0))


def serve() -> None:
    from app.cli import build_parser

    build_parser()  # imports every command module before the first fork
    import app.storage  # noqa: F401
    import app.sync.engine  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if "run" in request:
            pid = os.fork()
            if pid == 0:
                _child(request["run"], request["pin"], request.get("mark"))
            print(json.dumps({"pid": pid}), flush=True)
        elif "wait" in request:
            _, status = os.waitpid(request["wait"], 0)
            print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    serve()
