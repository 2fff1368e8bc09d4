"""A small keep-alive HTTP/1.1 client for one upstream origin: the forwarder's hot path.

Why not ``aiohttp.ClientSession``: it costs ~250 µs of Python per request (request and
response objects, cookie jar, tracing, header multidicts), more than the rest of the
forwarder together; this client costs a fraction of that, so one core forwards several
times more samples. Its scope is deliberately narrow: POST a body that is already in
memory to one origin, read a (small) response, keep the connection for the next request.

* one request per connection at a time (no pipelining); idle connections are reused LIFO
  and dropped when the server closed them or after ``keepalive_timeout``;
* request: ``POST <path?query> HTTP/1.1`` with ``Host``, ``Content-Length`` and the caller's
  headers, written with one ``writelines`` (no body copy in Python);
* response: status line, headers (limits: 64 KiB of head, 100 headers), body framed by
  ``Content-Length``, ``Transfer-Encoding: chunked`` or connection close; 1xx interim
  responses are skipped; at most ``max_body`` bytes are kept (the rest is drained, or the
  connection is closed when it is too large to drain);
* failures raise the forwarder's :class:`~promrw_doctor.forwarder.upstream.UpstreamError`
  kinds: ``dns``, ``tls``, ``connect``, ``timeout``, ``reset``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
DRAIN_LIMIT = 1024 * 1024  # larger unwanted bodies close the connection instead of being read


class ProtocolError(Exception):
    """The upstream answered something that is not HTTP/1.x."""


@dataclass(frozen=True)
class RawResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes  # at most max_body bytes
    reusable: bool


class _Conn:
    """One TCP (or TLS) connection with a read buffer."""

    __slots__ = ("buf", "idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.idle_since = 0.0

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof() and not self.buf

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()

    async def fill(self) -> None:
        chunk = await self.reader.read(65536)
        if not chunk:
            raise ConnectionResetError("upstream closed the connection")
        self.buf += chunk

    async def read_line(self, limit: int) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("response line too long")
            await self.fill()

    async def read_exact(self, n: int, keep: int, out: bytearray) -> None:
        """Consume ``n`` body bytes, appending at most ``keep`` of them to ``out``."""
        while n > 0:
            if not self.buf:
                await self.fill()
            take = min(n, len(self.buf))
            room = keep - len(out)
            if room > 0:
                out += self.buf[: min(take, room)]
            del self.buf[:take]
            n -= take


class Http1Pool:
    """Keep-alive connections to one ``http(s)://host:port`` origin, at most ``limit`` open."""

    def __init__(self, url: str, *, limit: int = 64, ssl_context: ssl.SSLContext | None = None,
                 connect_timeout: float = 10.0, keepalive_timeout: float = 30.0) -> None:
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
        default_port = (self.scheme == "https" and self.port == 443) or (self.scheme == "http" and self.port == 80)
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host_header if default_port else f"{host_header}:{self.port}"
        self.ssl_context = ssl_context if self.scheme == "https" else None
        if self.scheme == "https" and self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()
        self.connect_timeout = connect_timeout
        self.keepalive_timeout = keepalive_timeout
        self._idle: deque[_Conn] = deque()
        self._slots = asyncio.Semaphore(limit)
        self._closed = False
        self._head_prefix = f"POST {self.target} HTTP/1.1\r\nHost: {self.host_header}\r\n".encode("latin-1")

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    async def _connect(self) -> _Conn:
        kw: dict[str, object] = {}
        if self.ssl_context is not None:
            kw = {"ssl": self.ssl_context, "server_hostname": self.host,
                  "ssl_handshake_timeout": self.connect_timeout}
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=2**20, **kw)  # type: ignore[arg-type]
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(reader, writer)

    def _take_idle(self) -> tuple[_Conn | None, bool]:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable() and now - conn.idle_since < self.keepalive_timeout:
                return conn, True
            conn.close()
        return None, False

    async def post(self, body: bytes, headers: Mapping[str, str], *, max_body: int = 4096) -> tuple[RawResponse, bool]:
        """POST ``body``; returns the response and whether a reused (kept-alive) connection carried it.

        Exceptions: ``OSError`` subclasses / ``ssl.SSLError`` / ``socket.gaierror`` /
        ``TimeoutError`` / :class:`ProtocolError` / ``ConnectionResetError``; the caller
        classifies them (and decides whether a failed reused connection is retried).
        """
        if self._closed:
            raise ConnectionResetError("client closed")
        async with self._slots:
            conn, reused = self._take_idle()
            if conn is None:
                conn = await self._connect()
            ok = False
            try:
                head = [self._head_prefix]
                for name, value in headers.items():
                    head.append(f"{name}: {value}\r\n".encode("latin-1"))
                head.append(f"Content-Length: {len(body)}\r\n\r\n".encode("latin-1"))
                conn.writer.writelines([b"".join(head), body])
                await conn.writer.drain()
                resp = await self._read_response(conn, max_body)
                ok = resp.reusable
                return resp, reused
            finally:
                if ok and not self._closed:
                    conn.idle_since = time.monotonic()
                    self._idle.append(conn)
                else:
                    conn.close()

    async def _read_response(self, conn: _Conn, max_body: int) -> RawResponse:
        while True:
            status_line = await conn.read_line(MAX_HEAD)
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:40]!r}")
            version = parts[0]
            status = int(parts[1])
            reason = parts[2].decode("latin-1", "replace") if len(parts) > 2 else ""
            headers: dict[str, str] = {}
            size = len(status_line)
            while True:
                line = await conn.read_line(MAX_HEAD)
                if not line:
                    break
                size += len(line)
                if size > MAX_HEAD or len(headers) > MAX_HEADERS:
                    raise ProtocolError("response head too large")
                name, sep, value = line.partition(b":")
                if not sep:
                    raise ProtocolError("malformed response header")
                key = name.strip().decode("latin-1").lower()
                val = value.strip().decode("latin-1")
                headers[key] = f"{headers[key]}, {val}" if key in headers else val
            if 100 <= status < 200 and status != 101:
                continue  # interim response (100 Continue, 103 Early Hints): the real one follows
            break
        connection = headers.get("connection", "").lower()
        keep = "close" not in connection if version == b"HTTP/1.1" else "keep-alive" in connection
        body = bytearray()
        if status in (204, 304) or status == 101:
            return RawResponse(status, reason, headers, b"", keep and status != 101)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            drained = 0
            while True:
                size_line = await conn.read_line(4096)
                try:
                    n = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError("malformed chunk size") from None
                if n == 0:
                    while await conn.read_line(MAX_HEAD):  # trailers
                        pass
                    break
                drained += n
                if drained > max_body + DRAIN_LIMIT:
                    return RawResponse(status, reason, headers, bytes(body), False)
                await conn.read_exact(n, max_body, body)
                if await conn.read_line(4096):
                    raise ProtocolError("chunk not terminated by CRLF")
            return RawResponse(status, reason, headers, bytes(body), keep)
        length_text = headers.get("content-length")
        if length_text is not None:
            try:
                length = int(length_text)
            except ValueError:
                raise ProtocolError("malformed Content-Length") from None
            if length < 0:
                raise ProtocolError("negative Content-Length")
            if length > max_body + DRAIN_LIMIT:
                await conn.read_exact(max_body, max_body, body)
                return RawResponse(status, reason, headers, bytes(body), False)
            await conn.read_exact(length, max_body, body)
            return RawResponse(status, reason, headers, bytes(body), keep)
        # Body delimited by connection close.
        while len(body) < max_body + DRAIN_LIMIT:
            if conn.buf:
                body += conn.buf[: max_body - len(body)] if len(body) < max_body else b""
                conn.buf.clear()
            chunk = await conn.reader.read(65536)
            if not chunk:
                break
            conn.buf += chunk
        return RawResponse(status, reason, headers, bytes(body[:max_body]), False)
