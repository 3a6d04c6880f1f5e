"""The fault proxy against tiny local echo and HTTP servers."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import httpx
import pytest

from tests.support.netproxy import UP, NetProxy

BODY = bytes(range(256)) * 400  # 102,400 bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.handle_error = lambda *args: None  # cut connections are what these tests do
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def echo_port():
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                while chunk := conn.recv(65536):
                    conn.sendall(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    listener.close()


@pytest.fixture
def proxy(http_port):
    with NetProxy(http_port) as p:
        yield p


def test_echo_passes_through_and_counts_bytes(echo_port):
    with NetProxy(echo_port) as proxy, socket.create_connection(("127.0.0.1", proxy.port), 5) as s:
        s.sendall(b"hello proxy" * 100)
        got = b""
        while len(got) < 1100:
            got += s.recv(65536)
        assert got == b"hello proxy" * 100
        s.shutdown(socket.SHUT_WR)
        assert s.recv(10) == b""
    assert proxy.bytes_up == 1100
    assert proxy.bytes_down == 1100


def test_http_through_proxy(proxy):
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        assert client.get("/").content == BODY
        assert client.post("/", content=b"x" * 5000).content == b"x" * 5000
    assert proxy.bytes_down > len(BODY) + 5000
    assert proxy.bytes_up > 5000


def test_reset_mid_response_then_recovers(proxy):
    proxy.reset_after(10_000, times=1)
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        with pytest.raises(httpx.TransportError):
            client.get("/").read()
        assert 0 < proxy.bytes_down <= 10_000
        assert client.get("/").content == BODY  # the fault hit one connection only
    assert proxy.faults_fired == 1


def test_reset_upstream_cuts_an_upload(proxy):
    proxy.reset_after(3_000, direction=UP, times=1)
    with (
        httpx.Client(base_url=proxy.url, timeout=5) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.post("/", content=b"y" * 50_000)
    assert proxy.bytes_up <= 3_000


def test_truncated_body_is_detected(proxy):
    proxy.truncate_after(20_000, times=1)
    with (
        httpx.Client(base_url=proxy.url, timeout=5) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get("/").read()


def test_stall_trips_the_read_timeout(proxy):
    proxy.stall(3.0, times=1)
    with httpx.Client(base_url=proxy.url, timeout=httpx.Timeout(5, read=0.3)) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/")
        assert client.get("/").content == BODY


def test_a_cut_request_never_reaches_the_server_and_runs_its_action_first(proxy):
    ran = []
    proxy.cut_request(b"POST /cut", then=lambda: ran.append(proxy.bytes_up))
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        assert client.get("/").content == BODY  # another request: not matched, passes
        up_before = proxy.bytes_up
        with pytest.raises(httpx.TransportError):
            client.post("/cut", content=b"z" * 5000)
        assert ran == [up_before]  # ran once, before any byte of the request went on
        assert proxy.bytes_up == up_before
        assert client.post("/cut", content=b"z").content == b"z"  # one request only
    assert proxy.faults_fired == 1


def test_offline_then_back(proxy):
    proxy.set_offline(True)
    with httpx.Client(base_url=proxy.url, timeout=2) as client:
        with pytest.raises(httpx.TransportError):
            client.get("/")
        proxy.set_offline(False)
        assert client.get("/").status_code == 200


def test_link_emulator_paces_bandwidth_and_delay(proxy):
    proxy.set_link(up_bps=1_000_000, down_bps=400_000, delay_ms=100)
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        began = time.monotonic()
        assert client.get("/").content == BODY
        elapsed = time.monotonic() - began
    # 102,400 bytes at 400 kbit/s is 2.05 s, plus two one-way delays: the emulator cannot be faster
    assert elapsed >= len(BODY) * 8 / 400_000 + 0.2 - 0.05
    assert proxy.bytes_down >= len(BODY)
