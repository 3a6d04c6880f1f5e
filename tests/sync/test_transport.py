"""The HTTP client's policies against a small scripted HTTP server on 127.0.0.1:
compression and its fallback, retries and what is never retried, typed errors, probe."""

from __future__ import annotations

import gzip
import http.server
import itertools
import json
import random
import threading

import pytest
import zstandard

from app.domain.hlc import Clock
from app.domain.mutations import FieldValue, Mutation, new_mutation_id
from app.sync.transport import (
    DeviceRevoked,
    Offline,
    RequestRejected,
    RetryPolicy,
    ServerError,
    Timeouts,
    Transport,
    Unauthorized,
)
from tests.support.netproxy import NetProxy

FAST_RETRY = RetryPolicy(attempts=4, base_s=0.01, cap_s=0.05)


class Script:
    """What the stub answers: a queue of (status, json) per path, then 200 echoes."""

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[int, dict]]] = {}
        self.seen: list[dict] = []
        self.refuse_zstd = False
        self.max_body: int | None = None  # decoded bytes; larger bodies get 413


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: Script

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        enc = self.headers.get("Content-Encoding")
        self.script.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "encoding": enc,
                "auth": self.headers.get("Authorization"),
                "size": len(raw),
            }
        )
        if enc == "zstd" and self.script.refuse_zstd:
            return self._send(415, {"error": {"code": "unsupported_encoding", "message": "no"}})
        body = _decode(raw, enc)
        if self.script.max_body is not None and len(body) > self.script.max_body:
            return self._send(413, {"error": {"code": "too_large", "message": "too large"}})
        queue = self.script.answers.get(self.path.split("?")[0], [])
        if queue:
            status, payload = queue.pop(0)
            return self._send(status, payload)
        if self.path == "/sync/push":
            results = [
                {"mutation_id": m["mutation_id"], "status": "applied", "version": 1}
                for m in json.loads(body)["mutations"]
            ]
            return self._send(200, {"results": results})
        if self.path.startswith("/sync/pull"):
            return self._send(200, {"changes": [], "next_cursor": 0, "has_more": False})
        return self._send(200, {"ok": True})

    do_GET = do_POST = do_PATCH = _answer

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def _decode(raw: bytes, enc: str | None) -> bytes:
    if enc == "zstd":
        return zstandard.ZstdDecompressor().decompress(raw)
    if enc == "gzip":
        return gzip.decompress(raw)
    return raw


@pytest.fixture
def stub():
    script = Script()
    handler = type("H", (_Handler,), {"script": script})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.handle_error = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield script, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _mutations(n: int) -> list[Mutation]:
    clock = Clock("dev-t")
    return [
        Mutation(
            mutation_id=new_mutation_id(),
            device_id="dev-t",
            entity="dossier",
            entity_id=f"d{i}",
            ward_code="00070",
            base_version=0,
            fields={"notes": FieldValue(value=f"ghi chú số {i} " * 5, hlc=clock.now())},
        )
        for i in range(n)
    ]


def _transport(url: str, **kw) -> Transport:
    kw.setdefault("retry", FAST_RETRY)
    return Transport(url, "tok-1", rng=random.Random(7), **kw)


def test_push_is_zstd_compressed_with_bearer_auth(stub):
    script, url = stub
    with _transport(url) as t:
        results = t.push(_mutations(20))
    assert [r.status for r in results] == ["applied"] * 20
    push = script.seen[-1]
    assert push["encoding"] == "zstd" and push["auth"] == "Bearer tok-1"
    assert t.stats.body_bytes_sent < t.stats.raw_bytes_sent / 3


def test_refused_zstd_falls_back_to_gzip(stub):
    script, url = stub
    script.refuse_zstd = True
    with _transport(url) as t:
        assert len(t.push(_mutations(10))) == 10
        assert len(t.push(_mutations(10))) == 10
    encodings = [s["encoding"] for s in script.seen]
    assert encodings == ["zstd", "gzip", "gzip"]  # refused once, then remembered


def test_server_errors_are_retried_then_succeed(stub):
    script, url = stub
    busy = {"error": {"code": "busy", "message": "later"}}
    script.answers["/sync/push"] = [(503, busy), (429, busy)]
    with _transport(url) as t:
        assert len(t.push(_mutations(3))) == 3
        assert t.stats.retries == 2


def test_persistent_server_error_is_typed(stub):
    script, url = stub
    script.answers["/sync/pull"] = [(500, {"error": {"code": "boom", "message": "x"}})] * 9
    with _transport(url) as t, pytest.raises(ServerError) as info:
        t.pull(0)
    assert info.value.status == 500 and info.value.code == "boom"
    assert len(script.seen) == FAST_RETRY.attempts


@pytest.mark.parametrize("status", [400, 403, 404, 413, 422])
def test_other_client_errors_are_never_retried(stub, status):
    script, url = stub
    script.answers["/sync/push"] = [(status, {"error": {"code": "nope", "message": "x"}})] * 3
    with _transport(url) as t, pytest.raises(RequestRejected) as info:
        t.push(_mutations(1))
    assert info.value.status == status
    assert len(script.seen) == 1


def test_revoked_device_and_bad_token(stub):
    script, url = stub
    script.answers["/sync/pull"] = [
        (401, {"error": {"code": "device_revoked", "message": "revoked"}}),
        (401, {"error": {"code": "unauthorized", "message": "bad token"}}),
    ]
    with _transport(url) as t:
        with pytest.raises(DeviceRevoked):
            t.pull(0)
        with pytest.raises(Unauthorized) as info:
            t.pull(0)
        assert not isinstance(info.value, DeviceRevoked)


def test_offline_is_typed_and_probe_says_so(stub):
    _, url = stub
    port = int(url.rsplit(":", 1)[1])
    with NetProxy(port) as proxy, _transport(proxy.url) as t:
        assert t.probe() is True
        proxy.set_offline(True)
        assert t.probe() is False
        with pytest.raises(Offline):
            t.pull(0)
        proxy.set_offline(False)
        assert t.probe() is True


def test_cut_and_truncated_responses_are_retried(stub):
    _, url = stub
    port = int(url.rsplit(":", 1)[1])
    with NetProxy(port) as proxy, _transport(proxy.url) as t:
        proxy.truncate_after(60, times=1)
        assert len(t.push(_mutations(30))) == 30
        proxy.reset_after(100, times=1)
        assert len(t.push(_mutations(30))) == 30
        proxy.stall(2.0, times=1)
        slow = _transport(proxy.url, timeouts=Timeouts(read=0.3))
        with slow:
            assert len(slow.push(_mutations(5))) == 5
        assert proxy.faults_fired == 3


def test_retry_after_is_honoured_within_the_cap(stub, monkeypatch):
    script, url = stub
    script.answers["/sync/pull"] = [(503, {"error": {"code": "busy", "message": "x"}})]
    waits: list[float] = []
    with _transport(url, retry=RetryPolicy(attempts=3, base_s=0.01, cap_s=5.0)) as t:
        monkeypatch.setattr(t._closed, "wait", lambda delay: waits.append(delay))
        original = _Handler._send

        def with_header(self, status, payload):
            if status == 503:
                self.send_response(503)
                data = json.dumps(payload).encode()
                self.send_header("Retry-After", "3")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return None
            return original(self, status, payload)

        monkeypatch.setattr(_Handler, "_send", with_header)
        t.pull(0)
    assert waits and waits[0] >= 3.0


def test_engine_halves_its_batches_when_the_server_says_413(stub, tmp_path):
    from app.storage import KeySettings, create_store
    from app.sync.engine import SyncEngine
    from app.sync.enrolment import save_enrolment
    from tests.sync.test_engine import _receive

    script, url = stub
    script.max_body = 20_000
    store = create_store(tmp_path / "s", "2468", settings=KeySettings.for_tests())
    try:
        save_enrolment(store.settings, url, {"token": "tok-1", "wards": ["00070"]})
        _receive(store, "00070", 60)
        with _transport(url) as t:
            engine = SyncEngine(store.sync, t, push_batch_bytes=512 * 1024)
            report = engine.run_once()
        assert report.ok and report.pushed == 120 and report.applied == 120
        assert engine.push_batch_bytes < 20_000
        assert store.sync.summary().pending == 0
        assert sum(1 for s in script.seen if s["path"] == "/sync/push") > 3
    finally:
        store.close()


def test_backoff_grows_with_the_attempt_and_is_jittered():
    policy = RetryPolicy(attempts=8, base_s=0.5, cap_s=30.0)
    rng = random.Random(4)
    samples = {k: [policy.delay(k, rng) for _ in range(400)] for k in range(7)}
    for k, delays in samples.items():
        step = min(policy.cap_s, policy.base_s * 2**k)
        assert all(0 <= d <= step for d in delays)  # full jitter within the capped step
        assert len({round(d, 6) for d in delays}) > 300  # not one fixed wait: jitter
        assert max(delays) > 0.9 * step  # and it reaches the top of its step
    means = [sum(d) / len(d) for d in samples.values()]
    assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(means))
    capped = [policy.delay(20, rng) for _ in range(200)]
    assert max(capped) <= policy.cap_s and max(capped) > 0.9 * policy.cap_s


def test_a_refused_push_does_not_stop_the_pull(stub, tmp_path):
    from app.storage import KeySettings, create_store
    from app.sync.engine import SyncEngine
    from app.sync.enrolment import save_enrolment
    from tests.sync.test_engine import _receive

    script, url = stub
    script.answers["/sync/push"] = [(422, {"error": {"code": "invalid", "message": "bad"}})]
    script.answers["/sync/pull"] = [(200, {"changes": [], "next_cursor": 17, "has_more": False})]
    store = create_store(tmp_path / "s", "2468", settings=KeySettings.for_tests())
    try:
        save_enrolment(store.settings, url, {"token": "tok-1", "wards": ["00070"]})
        _receive(store, "00070", 2)
        pending = store.sync.summary().pending
        with _transport(url) as t:
            report = SyncEngine(store.sync, t).run_once()
        assert not report.ok and "422" in report.errors[0]
        # the reference data's check first (this stub, like an older server, answers 404:
        # left alone), then the push the server refuses, then the pull all the same
        assert [s["path"].split("?")[0] for s in script.seen] == [
            "/sync/reference", "/sync/push", "/sync/pull"
        ]
        assert len(report.errors) == 1
        assert store.sync.pull_cursor() == 17  # the pull ran and its page was stored
        assert store.sync.summary().pending == pending  # the refused batch waits, nothing lost
    finally:
        store.close()
