"""A TCP proxy on 127.0.0.1 that emulates bad links in user space (the kernel here has no netem).

It runs an asyncio loop in a background thread in front of one target port and can:
- reset connections (RST) after N bytes in one direction,
- truncate (clean FIN) after N bytes,
- stall for S seconds after N bytes,
- drop everything (offline: new connections are reset at once, open ones are cut),
- emulate a link: bandwidth in bit/s per direction, shared by all connections, plus one-way delay,
- answer a request itself, as a middlebox on the way may (`answer`): the request whose first
  bytes match is read whole and never reaches the server; the connection is then closed,
- cut a request (`cut_request`): the request whose first bytes match never reaches the server;
  an action (killing the server, say) runs first, then the connection is reset.
It counts the bytes it forwards both ways.

A fault acts on the "down" (server to client) or "up" (client to server) direction and hits the
next `times` connections (None: every one) that forward bytes that way, kept-alive ones included.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK = 4096
UP, DOWN = "up", "down"


@dataclass
class Fault:
    kind: str  # "reset" | "truncate" | "stall" | "answer" | "cut"
    after_bytes: int = 0
    seconds: float = 0.0
    direction: str = DOWN
    times: int | None = None  # connections left to hit; None: all
    then_offline: bool = False  # the link stays down after the fault fired
    # "answer", "cut": hit requests that start so ("POST /sync/push"), or that the pattern
    # matches from their first byte
    request_prefix: bytes | re.Pattern[bytes] = b""
    response: bytes = b""  # "answer": the whole HTTP response sent back
    then: Callable[[], None] | None = None  # "cut": run (on the proxy's loop) before the cut


@dataclass
class Link:
    up_bps: float | None = None
    down_bps: float | None = None
    delay_ms: float = 0.0


@dataclass
class _Meter:
    bytes_up: int = 0
    bytes_down: int = 0
    connections: int = 0
    faults_fired: int = 0
    free_at: dict[str, float] = field(default_factory=lambda: {UP: 0.0, DOWN: 0.0})


class NetProxy:
    """`with NetProxy(target_port) as proxy: httpx.get(proxy.url + "/health")`."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.link = Link()
        self._fault: Fault | None = None
        self._offline = False
        self._meter = _Meter()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 5.0) -> NetProxy:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or not self.port:
            raise RuntimeError("proxy did not start")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        with contextlib.suppress(Exception):
            fut.result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> NetProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- controls --------------------------------------------------------------------------
    def set_fault(self, fault: Fault | None) -> None:
        with self._lock:
            self._fault = fault

    def reset_after(
        self,
        n_bytes: int,
        *,
        direction: str = DOWN,
        times: int | None = 1,
        then_offline: bool = False,
    ) -> None:
        self.set_fault(Fault("reset", n_bytes, 0.0, direction, times, then_offline))

    def truncate_after(self, n_bytes: int, *, direction: str = DOWN, times: int | None = 1) -> None:
        self.set_fault(Fault("truncate", after_bytes=n_bytes, direction=direction, times=times))

    def stall(
        self, seconds: float, *, after_bytes: int = 0, direction: str = DOWN, times: int | None = 1
    ) -> None:
        self.set_fault(Fault("stall", after_bytes, seconds, direction, times))

    def answer(
        self,
        request_prefix: bytes | re.Pattern[bytes],
        status: int,
        body: bytes = b"",
        *,
        times: int | None = 1,
    ) -> None:
        """Answer requests starting with `request_prefix` (or matching a pattern from their
        first byte) with `status` and `body` (JSON when not empty) instead of the server, then
        close the connection."""
        head = (
            f"HTTP/1.1 {status} Proxy Answer\r\nContent-Length: {len(body)}\r\n"
            + ("Content-Type: application/json\r\n" if body else "")
            + "Connection: close\r\n\r\n"
        )
        self.set_fault(
            Fault(
                "answer",
                direction=UP,
                times=times,
                request_prefix=request_prefix,
                response=head.encode() + body,
            )
        )

    def cut_request(
        self,
        request_prefix: bytes | re.Pattern[bytes],
        *,
        then: Callable[[], None] | None = None,
        then_offline: bool = False,
    ) -> None:
        """The next request starting with `request_prefix` never reaches the server: as its
        first bytes reach the proxy, `then` runs (kill the server, say) and the connection is
        reset. Deterministic, unlike a timer racing the request along the link."""
        self.set_fault(
            Fault(
                "cut",
                direction=UP,
                times=1,
                then_offline=then_offline,
                request_prefix=request_prefix,
                then=then,
            )
        )

    def clear_faults(self) -> None:
        self.set_fault(None)

    def set_offline(self, offline: bool) -> None:
        """Offline: new connections are reset on accept and open ones are cut."""
        self._offline = offline
        if offline and self._loop is not None:
            self._loop.call_soon_threadsafe(self._cut_all)

    def set_link(
        self,
        up_bps: float | None = None,
        down_bps: float | None = None,
        delay_ms: float = 0.0,
    ) -> None:
        self.link = Link(up_bps, down_bps, delay_ms)

    def reset_counters(self) -> None:
        with self._lock:
            self._meter.bytes_up = self._meter.bytes_down = 0
            self._meter.connections = self._meter.faults_fired = 0

    @property
    def bytes_up(self) -> int:
        return self._meter.bytes_up

    @property
    def bytes_down(self) -> int:
        return self._meter.bytes_down

    @property
    def connections(self) -> int:
        return self._meter.connections

    @property
    def faults_fired(self) -> int:
        return self._meter.faults_fired

    # ---- internals -------------------------------------------------------------------------
    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
        finally:
            ready.set()
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut_all()
        if self._conns:  # cut connections end their handlers without a cancel
            await asyncio.wait(list(self._conns), timeout=2)
        others = asyncio.all_tasks() - {asyncio.current_task()}
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=2)

    def _cut_all(self) -> None:
        for writer in list(self._writers):
            _reset(writer)

    def _claim_fault(self, direction: str, fired: Fault | None, data: bytes) -> Fault | None:
        """The pending fault for this direction, if any, counting down `times`.
        A connection takes each fault once (`fired`: the last one it took); an "answer" fault
        only the request it matches (`data`: the bytes about to be forwarded)."""
        with self._lock:
            fault = self._fault
            if fault is None or fault.direction != direction:
                return None
            if fault.kind in ("answer", "cut"):
                if not _starts(data, fault.request_prefix):
                    return None
            elif fault is fired:
                return None
            if fault.times is not None:
                if fault.times <= 0:
                    return None
                fault.times -= 1
            return fault

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self._writers.add(c_writer)
        try:
            if self._offline:
                _reset(c_writer)
                return
            try:
                s_reader, s_writer = await asyncio.open_connection(*self.target)
            except OSError:
                _reset(c_writer)
                return
            self._writers.add(s_writer)
            self._meter.connections += 1
            pumps = [
                asyncio.ensure_future(self._pipe(c_reader, s_writer, UP, c_writer)),
                asyncio.ensure_future(self._pipe(s_reader, c_writer, DOWN, c_writer)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for p in pumps:
                    p.cancel()
                    if p.done() and not p.cancelled():
                        p.exception()  # retrieved: a fired fault is expected, not news
                _close(s_writer)
                self._writers.discard(s_writer)
        finally:
            _close(c_writer)
            self._writers.discard(c_writer)
            self._conns.discard(task)

    async def _pipe(self, reader, writer, direction, client_writer) -> None:
        """Forward one direction through the link emulator, firing a fault when due.

        A connection picks up a pending fault with the next bytes it forwards in the fault's
        direction (so kept-alive connections get hit too) and counts `after_bytes` from there.
        """
        queue: asyncio.Queue = asyncio.Queue()
        deliver = asyncio.ensure_future(self._deliver(queue, writer, direction))
        fault: Fault | None = None
        taken: Fault | None = None
        sent = 0  # bytes forwarded since the fault was picked up
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if fault is None and (fault := self._claim_fault(direction, taken, data)):
                    taken, sent = fault, 0
                if fault is not None and fault.kind == "answer":
                    await self._answer(fault, data, reader, client_writer, writer)
                if fault is not None and fault.kind == "cut":
                    self._cut(fault, client_writer, writer)
                if fault is not None and sent + len(data) > fault.after_bytes:
                    head = data[: max(0, fault.after_bytes - sent)]
                    if head:
                        await queue.put((self._due(len(head), direction), head))
                    data = data[len(head) :]
                    await self._fire(fault, queue, client_writer, writer)
                    fault = None
                    if not data:
                        continue
                await queue.put((self._due(len(data), direction), data))
                sent += len(data)
            await queue.put(None)
            await deliver
        finally:
            if not deliver.done():
                await asyncio.wait([deliver], timeout=0.5)
                deliver.cancel()

    async def _fire(self, fault: Fault, queue, client_writer, writer) -> None:
        """Run the fault after what is already queued has left (reset/truncate raise)."""
        await queue.join()
        self._meter.faults_fired += 1
        if fault.then_offline:
            self._offline = True
        if fault.kind == "stall":
            await asyncio.sleep(fault.seconds)
            return
        if fault.kind == "reset":
            _reset(client_writer)
            _reset(writer)
            raise ConnectionResetError("proxy fault: reset")
        # truncate: finish cleanly towards the client, as a short body
        _close(client_writer)
        _close(writer)
        raise ConnectionAbortedError("proxy fault: truncate")

    def _cut(self, fault: Fault, client_writer, writer) -> None:
        """Run the fault's `then`, reset both sides, and never forward the request."""
        self._meter.faults_fired += 1
        if fault.then is not None:
            fault.then()
        if fault.then_offline:
            self._offline = True
        _reset(client_writer)
        _reset(writer)
        raise ConnectionResetError("proxy fault: request cut")

    async def _answer(self, fault: Fault, data: bytes, reader, client_writer, writer) -> None:
        """Read the rest of the request (its Content-Length), send the canned answer, close."""
        request = data
        for _ in range(10_000):  # bounded: a request of at most ~40 MB
            head, sep, body = request.partition(b"\r\n\r\n")
            if sep and len(body) >= _content_length(head):
                break
            more = await asyncio.wait_for(reader.read(CHUNK), timeout=5.0)
            if not more:
                break
            request += more
        self._meter.faults_fired += 1
        client_writer.write(fault.response)
        with contextlib.suppress(OSError):
            await client_writer.drain()
        _close(client_writer)
        _close(writer)
        raise ConnectionAbortedError("proxy fault: answered")

    def _due(self, n: int, direction: str) -> float:
        """When these n bytes arrive at the other end: serialised on the shared link, then delay."""
        now = time.monotonic()
        bps = self.link.up_bps if direction == UP else self.link.down_bps
        with self._lock:
            start = max(now, self._meter.free_at[direction])
            done = start + (n * 8 / bps if bps else 0.0)
            self._meter.free_at[direction] = done
        return done + self.link.delay_ms / 1000.0

    async def _deliver(self, queue: asyncio.Queue, writer, direction: str) -> None:
        while True:
            item = await queue.get()
            try:
                if item is None:
                    with contextlib.suppress(OSError, RuntimeError):
                        if writer.can_write_eof():
                            writer.write_eof()
                    return
                due, data = item
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                # Counted before the write: the far end may read the bytes (and a test read
                # the meter) before drain() returns here.
                with self._lock:
                    if direction == UP:
                        self._meter.bytes_up += len(data)
                    else:
                        self._meter.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
            finally:
                queue.task_done()


def _starts(data: bytes, prefix: bytes | re.Pattern[bytes]) -> bool:
    if isinstance(prefix, bytes):
        return data.startswith(prefix)
    return prefix.match(data) is not None


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return 0


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dropped link looks to the peer."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.transport.abort()


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
