"""The forwarder's hot path: plain ``POST /api/v1/write`` requests handled on a bare asyncio protocol.

Why: aiohttp's server machinery (request objects, header multidicts, stream readers,
response objects) cost about half of the forwarder's CPU per 2 000-sample request,
enough to keep it under half of nginx's throughput. Almost every request a Prometheus
sends is the same shape, so that shape gets a short path and everything else keeps
aiohttp's:

* :func:`parse_write_head` accepts only ``POST /api/v1/write HTTP/1.1`` with a
  ``Content-Length`` within the limit, ``Content-Encoding: snappy``, no
  ``Transfer-Encoding``/``Expect``/``Upgrade`` and no control characters. Anything else
  (another path or method, chunked bodies, ``100-continue``, a bad encoding, an oversize
  or malformed request) returns ``None``;
* a connection whose next request is not that shape, or that the forwarder cannot admit
  right now (busy, shutting down), is **handed over** to an aiohttp request handler with
  the bytes already read, and aiohttp answers it exactly as before (405, 413, 415, 503 busy,
  health, metrics...). The connection stays with aiohttp from then on;
* with ``validate`` set, every request goes to aiohttp (which decodes and checks it);
* the fast path itself reads the body (one copy), forwards it through the same
  :meth:`Forwarder.forward_write` as the aiohttp path (token, retry on 401, status
  mapping, metrics), and writes a pre-built response.

Timeouts are enforced by a sweep (:meth:`WriteListener.sweep`, several times per
timeout) instead of a timer per request: a body not complete within ``read_timeout``
gets ``408`` and the connection is closed; a connection that has not sent a complete
request head within ``idle_timeout`` (idle keep-alive or a slowloris head) is closed.
Pipelined requests are served in order; reading pauses while one is being forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, NamedTuple, cast

from ..core.redact import redact
from .http1 import Body
from .logfmt import get_logger

if TYPE_CHECKING:
    from .server import Forwarder

log = get_logger()

WRITE_REQUEST_LINE = b"POST /api/v1/write HTTP/1.1"
MAX_HEAD = 16 * 1024  # beyond this without a complete head, aiohttp decides (it answers 400/431)
PIPELINE_LIMIT = 256 * 1024  # bytes buffered ahead of the request being forwarded before reading pauses
# Request headers passed upstream, by lower-case name -> the spelling sent.
FORWARDED = {
    b"content-encoding": "Content-Encoding",
    b"content-type": "Content-Type",
    b"x-prometheus-remote-write-version": "X-Prometheus-Remote-Write-Version",
    b"user-agent": "User-Agent",
    b"retry-attempt": "Retry-Attempt",
}
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HANDOFF_HEADERS = (b"transfer-encoding", b"expect", b"upgrade")

HEAD, BODY, BUSY, CLOSED = 0, 1, 2, 3


class WriteHead(NamedTuple):
    """A request head the fast path can serve."""

    length: int
    headers: dict[str, str]  # the FORWARDED headers present (first occurrence), as sent upstream; shared, read-only
    close: bool  # ``Connection: close``: answer, then close


# A sender repeats the same head with only Content-Length changing: heads seen before are
# looked up with that value cut out (a dict hit instead of ~14 µs of parsing per request).
_CL_LINE = b"\r\nContent-Length: "
_HEAD_CACHE: dict[bytes, WriteHead] = {}
_HEAD_CACHE_MAX = 256


def parse_write_head(head: bytes, max_body: int) -> WriteHead | None:
    """The head (without the final blank line) as a :class:`WriteHead`, or ``None`` for aiohttp to judge."""
    i = head.find(_CL_LINE)
    if i >= 0:
        j = head.find(b"\r\n", i + 2)
        if j < 0:
            j = len(head)
        key = head[:i] + head[j:]
        value = head[i + len(_CL_LINE):j]
        cached = _HEAD_CACHE.get(key)
        if cached is not None:
            if not value.isdigit() or int(value) > max_body:
                return None
            return WriteHead(int(value), cached.headers, cached.close)
        parsed = _parse_write_head(head, max_body)
        if parsed is not None:
            if len(_HEAD_CACHE) >= _HEAD_CACHE_MAX:
                _HEAD_CACHE.clear()
            _HEAD_CACHE[key] = parsed
        return parsed
    return _parse_write_head(head, max_body)


def _parse_write_head(head: bytes, max_body: int) -> WriteHead | None:
    if not head.startswith(WRITE_REQUEST_LINE + b"\r\n") or _CTL.search(head.replace(b"\r\n", b"")):
        return None
    length: int | None = None
    close = False
    fwd: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name[:1] in b" \t" or name[-1:] in b" \t":
            return None  # malformed, obs-fold or a space before the colon: aiohttp's parser decides
        key = name.lower()
        value = value.strip(b" \t")
        if key == b"content-length":
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif key in _HANDOFF_HEADERS:
            return None
        elif key == b"connection":
            tokens = value.lower()
            if b"upgrade" in tokens:
                return None
            close = close or b"close" in tokens
        elif key == b"content-encoding" and value.lower() != b"snappy":
            return None
        canonical = FORWARDED.get(key)
        if canonical is not None and canonical not in fwd:
            fwd[canonical] = value.decode("latin-1")
    if length is None or length > max_body or "Content-Encoding" not in fwd:
        return None
    return WriteHead(length, fwd, close)


class Reply(NamedTuple):
    """An answer to a write request, renderable by either path."""

    status: int
    text: str = ""  # body (text/plain); "" means no body
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False

    def encode(self) -> bytes:
        """HTTP/1.1 bytes for the fast path (the aiohttp path builds a ``web.Response`` instead)."""
        if not self.text and not self.headers and not self.close:
            cached = _EMPTY.get(self.status)
            if cached is not None:
                return cached
        lines = [f"HTTP/1.1 {self.status} {_phrase(self.status)}"]
        for name, value in self.headers:
            lines.append(f"{name}: {_header_value(value)}")
        body = self.text.encode("utf-8")
        if body:
            lines.append("Content-Type: text/plain; charset=utf-8")
        if self.status != 204 and not 100 <= self.status < 200:
            lines.append(f"Content-Length: {len(body)}")
        if self.close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _header_value(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


_EMPTY = {204: b"HTTP/1.1 204 No Content\r\n\r\n",
          **{s: f"HTTP/1.1 {s} {_phrase(s)}\r\nContent-Length: 0\r\n\r\n".encode() for s in (200, 201, 202)}}


class FastWriteProtocol(asyncio.Protocol):
    """One sender connection while its requests are plain remote writes."""

    def __init__(self, listener: WriteListener) -> None:
        self.listener = listener
        self.fwd = listener.forwarder
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.phase = HEAD
        self.since = time.monotonic()  # start of the current head or body phase
        self.head: WriteHead | None = None
        self.chunks: list[Body] = []
        self.got = 0
        self.paused = False
        self.eof = False
        self.task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.since = time.monotonic()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.phase == BODY:
            self.chunks.append(data)
            self.got += len(data)
            if self.got >= self.head.length:  # type: ignore[union-attr]
                self._body_complete()
            return
        if self.phase == HEAD and not self.buf:
            self._next_request(data)  # the usual case: no copy into the buffer
            return
        self.buf += data
        if self.phase == HEAD:
            self._next_request(self.buf)
        elif self.phase == BUSY and len(self.buf) > PIPELINE_LIMIT and not self.paused:
            self.paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:
        # A sender that half-closes after its request still gets the answer (then the connection
        # closes); an idle one is done.
        self.eof = True
        return self.phase == BUSY or None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.phase == BODY:
            self._abandon_body()
            self.fwd.metrics.rejected("incomplete_body")
        self.phase = CLOSED
        self.listener.forget(self)

    # -------------------------------------------------------------------- request
    def _next_request(self, src: bytes | bytearray) -> None:
        """Start the next request from ``src``: the bytes just received, or :attr:`buf`."""
        end = src.find(b"\r\n\r\n")
        if end < 0:
            if src is not self.buf:
                self.buf += src
            if len(self.buf) > MAX_HEAD:
                self._hand_over()
            return
        cfg = self.fwd.config
        head = None if cfg.validate else parse_write_head(bytes(src[:end]), cfg.max_body_bytes)
        if head is None or not self.fwd.admit(head.length):
            if src is not self.buf:
                self.buf += src
            self._hand_over()
            return
        self.head = head
        start = end + 4
        have = len(src) - start
        if have >= head.length:
            stop = start + head.length
            if src is self.buf:
                body: Body = bytes(memoryview(src)[start:stop])
                del src[:stop]
            else:
                body = memoryview(src)[start:stop]  # no copy: ``src`` is immutable bytes
                if stop < len(src):
                    self.buf += memoryview(src)[stop:]  # a pipelined request follows
            self._dispatch(body)
            return
        if src is self.buf:
            self.chunks = [bytes(memoryview(src)[start:])] if have else []
            src.clear()
        else:
            self.chunks = [memoryview(src)[start:]] if have else []
        self.got = have
        self.phase = BODY
        self.since = time.monotonic()

    def _body_complete(self) -> None:
        need = self.head.length  # type: ignore[union-attr]
        body = b"".join(self.chunks)
        self.chunks = []
        if len(body) > need:  # the start of a pipelined request came with it
            self.buf += memoryview(body)[need:]
            self._dispatch(memoryview(body)[:need])
            return
        self._dispatch(body)

    def _dispatch(self, body: Body) -> None:
        self.phase = BUSY
        self.task = self.listener.loop.create_task(self._serve(body))

    async def _serve(self, body: Body) -> None:
        head = self.head
        assert head is not None
        try:
            reply = await self.fwd.forward_write(head.headers, body)
        except Exception as exc:  # a bug must not lose the batch: 503 makes Prometheus retry
            log.error("internal error forwarding a write; answering 503",
                      extra={"fields": {"error": redact(f"{type(exc).__name__}: {exc}")}})
            reply = Reply(503, "promrw-doctor forwarder: internal error; retry\n", close=True)
        finally:
            self.fwd.release(head.length)
        self.task = None
        self._respond(reply, close=head.close)

    def _respond(self, reply: Reply, *, close: bool = False) -> None:
        t = self.transport
        if self.phase == CLOSED or t is None or t.is_closing():
            return
        t.write(reply.encode())
        if close or reply.close or self.eof:
            self.phase = CLOSED
            t.close()
            return
        self.phase = HEAD
        self.head = None
        self.since = time.monotonic()
        if self.paused:
            self.paused = False
            t.resume_reading()
        if self.buf:
            self._next_request(self.buf)

    def _abandon_body(self) -> None:
        """The admitted body will not arrive: give its reservation back."""
        assert self.head is not None
        self.chunks = []
        self.fwd.release(self.head.length)
        self.head = None

    def _hand_over(self) -> None:
        """Give the connection, with what was read so far, to an aiohttp request handler."""
        t = self.transport
        assert t is not None
        self.phase = CLOSED
        self.listener.forget(self)
        handler = self.fwd.new_aiohttp_handler()
        t.set_protocol(handler)
        handler.connection_made(t)
        if self.paused:
            self.paused = False
            t.resume_reading()
        if self.buf:
            data = bytes(self.buf)
            self.buf.clear()
            handler.data_received(data)

    # ---------------------------------------------------------------------- sweep
    def check_deadlines(self, now: float) -> None:
        cfg = self.fwd.config
        t = self.transport
        if t is None:
            return
        if self.phase == HEAD and now - self.since > cfg.idle_timeout:
            self.phase = CLOSED
            t.close()
        elif self.phase == BODY and now - self.since > cfg.read_timeout:
            self._abandon_body()
            self.phase = BUSY  # so _respond writes and closes
            self._respond(self.fwd.rejection(408, "read_timeout",
                                             f"request body not received within {cfg.read_timeout:g}s"),
                          close=True)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class WriteListener:
    """The protocol factory behind the forwarder's listening socket: fast connections and the cap."""

    def __init__(self, forwarder: Forwarder, *, refuse: Callable[[], asyncio.Protocol],
                 open_elsewhere: Callable[[], int]) -> None:
        self.forwarder = forwarder
        # Kept: asyncio.get_running_loop() costs a getpid() system call on every call.
        self.loop = asyncio.get_running_loop()
        self.connections: set[FastWriteProtocol] = set()
        self._refuse = refuse
        self._open_elsewhere = open_elsewhere  # connections already handed to aiohttp

    def __call__(self) -> asyncio.Protocol:
        # Counted at creation: asyncio creates the protocols of a burst of accepted
        # connections before any connection_made runs.
        if len(self.connections) + self._open_elsewhere() >= self.forwarder.config.max_connections:
            return self._refuse()
        proto = FastWriteProtocol(self)
        self.connections.add(proto)
        return proto

    def forget(self, proto: FastWriteProtocol) -> None:
        self.connections.discard(proto)

    def sweep(self) -> None:
        now = time.monotonic()
        for proto in list(self.connections):
            if proto.transport is None:
                if now - proto.since > 10:  # created but never connected
                    self.connections.discard(proto)
                continue
            proto.check_deadlines(now)

    def close_idle(self) -> None:
        """At shutdown: close connections not in the middle of a request."""
        for proto in list(self.connections):
            if proto.phase == HEAD and not proto.buf:
                proto.close()

    def close_all(self) -> None:
        for proto in list(self.connections):
            proto.close()


def sweep_interval(read_timeout: float, idle_timeout: float) -> float:
    """How often deadlines are checked: a few times per the shorter timeout, at most once a second."""
    return max(0.02, min(1.0, read_timeout / 5, idle_timeout / 5))

