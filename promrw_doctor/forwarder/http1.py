"""A small keep-alive HTTP/1.1 client for one upstream origin: the forwarder's hot path.

Why not ``aiohttp.ClientSession``: measured on the 2-core bench machine it costs
~230 µs of Python per 2 000-sample request (request/response objects, cookie jar,
tracing, header multidicts), more than the rest of the forwarder together; this client,
a bare asyncio protocol with cached header blocks, costs a small fraction of that, which
is what lets one core forward millions of samples per second. Its
scope is deliberately narrow: POST a body already in memory to one origin, read a small
response, keep the connection for the next request.

* one request per connection at a time (no pipelining); idle connections are reused
  newest-first and dropped when the server closed them or after ``keepalive_timeout``;
  a reused connection that fails before any response byte arrived (the server closed it
  while idle) is retried once on a fresh connection;
* request: ``POST <path?query> HTTP/1.1`` + ``Host`` + the caller's headers +
  ``Content-Length``, written at once; the response is awaited without waiting for the
  write buffer to drain (the body stays in memory until the answer anyway);
* connections are bare asyncio protocols (no ``StreamReader``/``StreamWriter``): received
  bytes go to one buffer and a waiting reader is woken; reading pauses if an upstream
  sends more than 1 MiB ahead of the reader;
* response: status line and headers (at most 64 KiB, 100 headers), body framed by
  ``Content-Length``, ``Transfer-Encoding: chunked`` or connection close; 1xx interim
  responses are skipped; at most ``max_body`` bytes are kept, up to 1 MiB more is drained
  to keep the connection, anything larger closes it;
* HTTPS through ``HTTPS_PROXY`` (``CONNECT`` tunnel, ``NO_PROXY`` honoured) like Go's
  ``http.ProxyFromEnvironment``, which the sidecar uses; plain ``http://`` upstreams (only
  loopback is accepted by the forwarder) never use a proxy.

Exceptions are left to the caller to classify: ``socket.gaierror`` (DNS), ``ssl.SSLError``
(TLS), ``OSError`` (connect/reset), ``TimeoutError``, :class:`ProtocolError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import Mapping
from typing import NamedTuple, cast
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
DRAIN_LIMIT = 1024 * 1024
Body = bytes | memoryview  # a request body: the fast path passes a view of the bytes it received
_HEADER_LINE = re.compile(r"\r\n([^:\r\n]*):[ \t]*([^\r\n]*)")


class ProtocolError(Exception):
    """The upstream (or proxy) answered something that is not acceptable HTTP/1.x."""


class ProxyError(OSError):
    """The HTTPS proxy refused the CONNECT tunnel."""


class RawResponse(NamedTuple):
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes  # at most max_body bytes
    reusable: bool


class _Conn(asyncio.Protocol):
    """One TCP (or TLS) connection: a receive buffer filled by the event loop, read by one coroutine."""

    HIGH_WATER = 1024 * 1024

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.idle_since = 0.0
        self.got_bytes = False
        self.eof = False
        self.timed_out = False  # aborted by the pool's deadline watchdog
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        # Kept: asyncio.get_running_loop() costs a getpid() system call on every call.
        self._loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.got_bytes = True
        if len(self.buf) > self.HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # ---------------------------------------------------------------- reading
    def usable(self) -> bool:
        t = self.transport
        return t is not None and not t.is_closing() and not self.eof and not self.buf

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort_for_timeout(self) -> None:
        self.timed_out = True
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def write(self, data: bytes) -> None:
        if self.timed_out:
            raise TimeoutError("no response before the upstream timeout")
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("upstream connection is closed")
        self.transport.write(data)

    async def fill(self) -> None:
        """Wait for more bytes in :attr:`buf`; ``ConnectionResetError`` if the server closed instead."""
        before = len(self.buf)
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        while len(self.buf) == before:
            if self.timed_out:
                raise TimeoutError("no response before the upstream timeout")
            if self.eof:
                raise ConnectionResetError("upstream closed the connection")
            assert self._loop is not None
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def peek_line(self, limit: int) -> bytes:
        """The first line in the buffer, not consumed (so garbage is recognised before a whole head)."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                return bytes(self.buf[:i])
            if len(self.buf) > limit:
                raise ProtocolError("response line too long")
            await self.fill()

    async def read_line(self, limit: int) -> bytes:
        line = await self.peek_line(limit)
        del self.buf[: len(line) + 2]
        return line

    async def read_head(self, limit: int) -> bytes:
        """Everything up to the blank line that ends a response head (consumed, without it)."""
        start = 0
        while True:
            i = self.buf.find(b"\r\n\r\n", start)
            if i >= 0:
                head = bytes(self.buf[:i])
                del self.buf[: i + 4]
                return head
            if len(self.buf) > limit:
                raise ProtocolError("response head too large")
            start = max(0, len(self.buf) - 3)
            await self.fill()

    async def read_exact(self, n: int, keep: int, out: bytearray) -> None:
        """Consume ``n`` body bytes, appending at most ``keep`` of them (in total) to ``out``."""
        while n > 0:
            if not self.buf:
                await self.fill()
            take = min(n, len(self.buf))
            room = keep - len(out)
            if room > 0:
                out += self.buf[: min(take, room)]
            del self.buf[:take]
            n -= take


def _status_line(line: bytes) -> tuple[bytes, int, str]:
    """``(version, status, reason)`` of an HTTP/1.x status line; :class:`ProtocolError` otherwise."""
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:40]!r}")
    return parts[0], int(parts[1]), parts[2].decode("latin-1", "replace") if len(parts) > 2 else ""


def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy URL the environment asks for (``HTTPS_PROXY``/``NO_PROXY``), https origins only."""
    if scheme != "https":
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get("https")
    bypass = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009 - not in typeshed
    if not proxy or bypass(host, proxies):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class Http1Pool:
    """Keep-alive connections to one ``http(s)://host:port`` origin, at most ``limit`` in use."""

    def __init__(self, url: str, *, limit: int = 64, ssl_context: ssl.SSLContext | None = None,
                 connect_timeout: float = 10.0, keepalive_timeout: float = 30.0,
                 use_env_proxy: bool = True) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        self.target = target
        default_port = self.port == (443 if self.scheme == "https" else 80)
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host_header if default_port else f"{host_header}:{self.port}"
        self.ssl_context = (ssl_context or ssl.create_default_context()) if self.scheme == "https" else None
        self.connect_timeout = connect_timeout
        self.keepalive_timeout = keepalive_timeout
        self.proxy = proxy_for(self.scheme, self.host) if use_env_proxy else None
        self._idle: deque[_Conn] = deque()
        self._limit = limit
        self._in_use = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self._busy: dict[_Conn, float] = {}  # connection -> deadline (time.monotonic()) of its exchange
        self._watchdog: asyncio.Task[None] | None = None
        self._watch_interval = 1.0
        self._header_blocks: dict[tuple[tuple[str, str], ...], bytes] = {}
        self._head_prefix = f"POST {self.target} HTTP/1.1\r\nHost: {self.host_header}\r\n".encode("latin-1")

    async def close(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._idle:
            self._idle.pop().close()

    # ------------------------------------------------------------------ connect
    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            if self.proxy is None:
                if self.ssl_context is not None:
                    _, conn = await loop.create_connection(_Conn, self.host, self.port, ssl=self.ssl_context,
                                                           server_hostname=self.host)
                else:
                    _, conn = await loop.create_connection(_Conn, self.host, self.port)
            else:
                conn = await self._tunnel()
        assert conn.transport is not None
        sock = conn.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    async def _tunnel(self) -> _Conn:
        assert self.proxy is not None and self.ssl_context is not None
        p = urlsplit(self.proxy)
        loop = asyncio.get_running_loop()
        transport, conn = await loop.create_connection(_Conn, p.hostname or "localhost", p.port or 80)
        authority = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        conn.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode("latin-1"))
        status_line = await conn.read_line(MAX_HEAD)
        while await conn.read_line(MAX_HEAD):
            pass
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or parts[1] != b"200":
            transport.close()
            raise ProxyError(f"proxy {p.hostname}:{p.port} refused CONNECT {authority}: "
                             f"{status_line[:80].decode('latin-1', 'replace')}")
        if conn.buf:
            transport.close()
            raise ProtocolError("proxy sent bytes after its CONNECT answer")
        tls = await loop.start_tls(transport, conn, self.ssl_context, server_hostname=self.host)
        if tls is None:
            transport.close()
            raise ConnectionResetError("proxy closed the tunnel during the TLS handshake")
        conn.transport = tls  # type: ignore[assignment]
        return conn

    def _take_idle(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable() and now - conn.idle_since < self.keepalive_timeout:
                return conn
            conn.close()
        return None

    # --------------------------------------------------------------------- post
    def _header_block(self, headers: Mapping[str, str]) -> bytes:
        """Request line, Host and ``headers``, encoded; cached (a sender's headers rarely change)."""
        key = tuple(headers.items())
        block = self._header_blocks.get(key)
        if block is None:
            parts = [self._head_prefix]
            for name, value in key:
                parts.append(f"{name}: {value}\r\n".encode("latin-1"))
            block = b"".join(parts)
            if len(self._header_blocks) >= 64:  # a new token or sender: start over
                self._header_blocks.clear()
            self._header_blocks[key] = block
        return block

    async def post(self, body: Body, headers: Mapping[str, str], *, max_body: int = 4096,
                   timeout: float | None = None) -> RawResponse:
        """POST ``body`` to the origin's URL; see the module docstring for limits and retries.

        ``timeout`` bounds the whole call (waiting for a slot, connecting, the exchange); it is
        enforced by a watchdog that aborts overdue connections a few times per timeout, instead
        of a timer per request, and raises :class:`TimeoutError`.
        """
        if self._closed:
            raise ConnectionResetError("upstream client is closed")
        request_head = self._header_block(headers) + b"Content-Length: %d\r\n\r\n" % len(body)
        deadline = None
        if timeout is not None:
            self._ensure_watchdog(timeout)
            deadline = time.monotonic() + timeout
        # One flat coroutine and a counter for the slots: this runs once per forwarded request.
        if self._in_use < self._limit and not self._slot_waiters:
            self._in_use += 1
        else:
            await self._wait_for_slot(deadline)
        try:
            conn = self._take_idle()
            if conn is not None:
                try:
                    return await self._exchange(conn, request_head, body, max_body, deadline)
                except (ConnectionError, ProtocolError):
                    if conn.got_bytes or conn.timed_out:
                        raise
                    # The server closed the idle connection: try once more on a fresh one.
            if deadline is None:
                conn = await self._connect()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no response before the upstream timeout")
                async with asyncio.timeout(remaining):
                    conn = await self._connect()
            return await self._exchange(conn, request_head, body, max_body, deadline)
        finally:
            self._release_slot()

    async def _wait_for_slot(self, deadline: float | None) -> None:
        """Queue for a slot (first come, first served); a released slot is handed over directly."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(fut)
        try:
            if deadline is None:
                await fut
            else:
                async with asyncio.timeout(deadline - time.monotonic()):
                    await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self._release_slot()  # handed to us just as we gave up: pass it on
            else:
                fut.cancel()
                with contextlib.suppress(ValueError):
                    self._slot_waiters.remove(fut)
            raise

    def _release_slot(self) -> None:
        while self._slot_waiters:
            fut = self._slot_waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot changes hands; the count stays
                return
        self._in_use -= 1

    def _ensure_watchdog(self, timeout: float) -> None:
        # Deadlines are time.monotonic() values (no get_running_loop(): a getpid() per call).
        interval = max(0.01, min(1.0, timeout / 10))
        if self._watchdog is None or self._watchdog.done() or interval < self._watch_interval:
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._watch_interval = interval
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(interval),
                                                                    name="upstream-deadlines")

    async def _watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for conn, deadline in list(self._busy.items()):
                if now >= deadline:
                    conn.abort_for_timeout()

    async def _exchange(self, conn: _Conn, head: bytes, body: Body, max_body: int,
                        deadline: float | None = None) -> RawResponse:
        keep = False
        conn.got_bytes = False
        if deadline is not None:
            self._busy[conn] = deadline
        try:
            conn.write(head + body)
            resp = await self._read_response(conn, max_body)
            keep = resp.reusable
            return resp
        finally:
            if deadline is not None:
                self._busy.pop(conn, None)
            if keep and not self._closed and not conn.timed_out:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.close()

    async def _read_response(self, conn: _Conn, max_body: int) -> RawResponse:
        while True:
            buf = conn.buf
            if not buf:
                await conn.fill()  # then look at what came: usually the whole head at once
            end = buf.find(b"\r\n\r\n")
            if end >= 0:  # the usual case: the whole head arrived in one read
                head = bytes(buf[:end])
                del buf[: end + 4]
            else:
                _status_line(await conn.peek_line(MAX_HEAD))  # garbage is recognised before a whole head
                head = await conn.read_head(MAX_HEAD)
            text = head.decode("latin-1")
            eol = text.find("\r\n")
            version, status, reason = _status_line(head if eol < 0 else head[:eol])
            headers: dict[str, str] = {}
            if eol >= 0:
                pairs = _HEADER_LINE.findall(text, eol)
                if len(pairs) != text.count("\r\n"):
                    raise ProtocolError("malformed response header")
                if len(pairs) > MAX_HEADERS:
                    raise ProtocolError("response head too large")
                for name, value in pairs:
                    key = name.strip().lower()
                    if not key:
                        raise ProtocolError("malformed response header")
                    val = value.strip()
                    headers[key] = f"{headers[key]}, {val}" if key in headers else val
            if 100 <= status < 200 and status != 101:
                continue  # interim response (100 Continue, 103 Early Hints): the real one follows
            break
        connection = headers.get("connection", "").lower()
        keep = ("close" not in connection) if version == b"HTTP/1.1" else ("keep-alive" in connection)
        body = bytearray()
        if status in (101, 204, 304):
            return RawResponse(status, reason, headers, b"", keep and status != 101)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            total = 0
            while True:
                size_line = await conn.read_line(4096)
                try:
                    n = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError("malformed chunk size") from None
                if n < 0:
                    raise ProtocolError("malformed chunk size")
                if n == 0:
                    while await conn.read_line(MAX_HEAD):  # trailers
                        pass
                    return RawResponse(status, reason, headers, bytes(body), keep)
                total += n
                if total > max_body + DRAIN_LIMIT:
                    return RawResponse(status, reason, headers, bytes(body), False)
                await conn.read_exact(n, max_body, body)
                if await conn.read_line(4096):
                    raise ProtocolError("chunk not terminated by CRLF")
        length_text = headers.get("content-length")
        if length_text is not None:
            try:
                length = int(length_text.split(",")[0].strip())
            except ValueError:
                raise ProtocolError("malformed Content-Length") from None
            if length < 0:
                raise ProtocolError("negative Content-Length")
            if length > max_body + DRAIN_LIMIT:
                await conn.read_exact(max_body, max_body, body)
                return RawResponse(status, reason, headers, bytes(body), False)
            await conn.read_exact(length, max_body, body)
            return RawResponse(status, reason, headers, bytes(body), keep)
        # No framing: the body ends when the server closes the connection.
        limit = max_body + DRAIN_LIMIT
        received = 0
        while received < limit:
            if conn.buf:
                room = max_body - len(body)
                if room > 0:
                    body += conn.buf[:room]
                received += len(conn.buf)
                conn.buf.clear()
            try:
                await conn.fill()
            except ConnectionResetError:
                break
        return RawResponse(status, reason, headers, bytes(body), False)
