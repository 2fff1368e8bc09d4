"""The remote-write forwarder: a ``prom-remotewrite`` sidecar drop-in that loses no acknowledged sample.

``POST /api/v1/write`` bodies go byte for byte to ``INGESTION_URL`` with a bearer
token added. The answer to the sender is chosen so that Prometheus keeps data it
should keep:

==========================  =================================================================
upstream                    answer to the sender
==========================  =================================================================
2xx                         the same 2xx, only after upstream answered
5xx, timeout, reset, DNS    ``503`` (+ upstream ``Retry-After`` if any): Prometheus retries
429                         ``429`` with ``Retry-After`` kept (set ``retry_on_http_429: true``)
401                         refresh the token once, retry at once; then as below
401/403 that persists       ``503`` + ``Retry-After`` (default): the batch stays in the WAL
                            through the ~30 min role propagation; with ``pass_through_4xx``
                            the 4xx itself (Prometheus drops the batch)
other 4xx                   the same 4xx (the body is bad; retrying cannot help)
==========================  =================================================================

Bounded resources: bodies above ``max_body_bytes`` get ``413``; beyond ``max_in_flight``
requests or ``max_buffered_bytes`` of bodies held, ``503`` + ``Retry-After``; beyond
``max_connections`` open connections, a canned ``503`` and close; bodies must arrive
within ``read_timeout`` (``408``); idle or half-sent connections are closed after
``idle_timeout``. A request refused before its body was read also closes its
connection, so unread bodies never pile up in buffers. On shutdown the listener
closes first and in-flight requests drain (up to ``shutdown_grace_s``).

Performance: plain remote-write requests take the short path in :mod:`.fastpath` (a bare
asyncio protocol); everything else is handed to aiohttp's low-level server (no
``web.Application``/router). Upstream, the small keep-alive client in :mod:`.http1`. The
body is never decoded unless ``validate`` is set (then every request goes through aiohttp).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web

from ..core.redact import redact
from ..identity.credentials import Token
from ..identity.errors import TokenError
from ..identity.manager import TokenManager
from .config import ForwarderConfig
from .fastpath import Reply, WriteListener, sweep_interval
from .http1 import Body
from .logfmt import get_logger
from .metrics import SUMMARY_MSG, ForwarderMetrics, summary_fields
from .upstream import Upstream, UpstreamError, UpstreamResponse

log = get_logger()

WRITE_PATH = "/api/v1/write"
FORWARDED_HEADERS = ("Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version", "User-Agent",
                     "Retry-Attempt")
PREFIX = "promrw-doctor forwarder: "


def excerpt(body: bytes, limit: int = 300) -> str:
    """A redacted one-line excerpt of an upstream body (tokens planted in it never escape)."""
    text = body[: limit * 4].decode("utf-8", "replace")
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Refuse(asyncio.Protocol):
    """Answers a connection beyond ``max_connections`` with a canned 503 and closes it, reading nothing."""

    BODY = (PREFIX + "too many connections; retry\n").encode()
    RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Connection: close\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        t.write(self.RESPONSE)
        t.close()


class _Throttle:
    """Log a repeated condition at most once per ``interval`` seconds, with the count suppressed."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, key: str) -> int | None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._suppressed.pop(key, 0)


class Forwarder:
    """One forwarder instance: app, upstream pool, token manager, metrics. Use :meth:`start`/:meth:`stop`."""

    def __init__(
        self,
        config: ForwarderConfig,
        tokens: TokenManager,
        *,
        upstream: Upstream | None = None,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.metrics = ForwarderMetrics()
        self.upstream = upstream or Upstream(
            config.ingestion_url, max_connections=config.max_in_flight, timeout=config.upstream_timeout,
            ca_bundle=config.ca_bundle)
        self._in_flight = 0
        self._buffered = 0
        self._stopping = False
        self._drained = asyncio.Event()
        self._drained.set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop_refresher = asyncio.Event()
        self._runner: web.ServerRunner | None = None
        self._listening: asyncio.base_events.Server | None = None
        self.listener: WriteListener | None = None
        self._throttle = _Throttle()
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._routes: dict[str, Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]] = {
            WRITE_PATH: self.handle_write, "/health": self.handle_health, "/ready": self.handle_ready,
            "/metrics": self.handle_metrics}
        self.server: web.Server | None = None
        tokens.add_listener(self._on_token)

    def _on_token(self, ok: bool) -> None:
        # Fetches run in a worker thread; metrics are only touched on the loop thread.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self._record_token, ok)
                return
        self._record_token(ok)

    def _record_token(self, ok: bool) -> None:
        self.metrics.token_refreshed(ok)
        tok = self.tokens.current()
        self.metrics.token_expiry = tok.expires_on if tok else 0.0

    # ---------------------------------------------------------------- app
    def _refuse_connection(self) -> asyncio.Protocol:
        """A connection beyond ``max_connections``: counted, logged (throttled), answered 503 and closed."""
        self.metrics.rejected("connections")
        self.metrics.responded(503)
        n = self._throttle("reject:connections")
        if n is not None:
            log.warning("too many connections; refusing new ones with 503",
                        extra={"fields": {"limit": self.config.max_connections, "suppressed": n}})
        return _Refuse()

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        # Requests the fast path hands over (see .fastpath) land here. A low-level aiohttp server
        # and a dict instead of web.Application + router: the application machinery costs ~60 µs.
        handler = self._routes.get(request.path)
        if handler is None:
            return await self.handle_unknown(request)
        return await handler(request)

    @staticmethod
    def _text(status: int, reason: str, *, headers: dict[str, str] | None = None, close: bool = False) -> Reply:
        return Reply(status, PREFIX + reason + "\n", tuple((headers or {}).items()), close)

    def _web_text(self, status: int, reason: str, *, headers: dict[str, str] | None = None,
                  close: bool = False) -> web.Response:
        return self._web(self._text(status, reason, headers=headers, close=close))

    @staticmethod
    def _web(reply: Reply) -> web.Response:
        """A write outcome as aiohttp's response (the fast path encodes the same :class:`Reply` itself)."""
        if reply.text:
            resp = web.Response(status=reply.status, text=reply.text, content_type="text/plain", charset="utf-8",
                                headers=dict(reply.headers))
        else:
            resp = web.Response(status=reply.status, headers=dict(reply.headers) or None)
        if reply.close:
            resp.force_close()
        return resp

    def rejection(self, status: int, reason_key: str, reason: str, *, headers: dict[str, str] | None = None,
                  close: bool = True) -> Reply:
        """A refused write. ``close`` (default): the body was not read, so the connection is closed
        instead of aiohttp draining the unread body into per-connection buffers (with hundreds of
        refused senders that buffering, not the bodies we accept, would dominate memory)."""
        self.metrics.rejected(reason_key)
        self.metrics.responded(status)
        n = self._throttle(f"reject:{reason_key}")
        if n is not None:
            log.warning("rejected a write request: %s", reason,
                        extra={"fields": {"status": status, "reason": reason_key, "suppressed": n}})
        return self._text(status, reason, headers=headers, close=close)

    def _reject(self, status: int, reason_key: str, reason: str, *, headers: dict[str, str] | None = None,
                close: bool = True) -> web.Response:
        return self._web(self.rejection(status, reason_key, reason, headers=headers, close=close))

    # ------------------------------------------------------- admission (both paths)
    def admit(self, length: int | None) -> bool:
        """Reserve a place for one write of ``length`` body bytes (``None``: unknown, reserve the maximum)."""
        cfg = self.config
        reserve = length if length is not None else cfg.max_body_bytes
        if self._stopping or self._in_flight >= cfg.max_in_flight or self._buffered + reserve > cfg.max_buffered_bytes:
            return False
        self._in_flight += 1
        self._buffered += reserve
        self._drained.clear()
        return True

    def release(self, length: int | None) -> None:
        self._in_flight -= 1
        self._buffered -= length if length is not None else self.config.max_body_bytes
        if self._in_flight == 0:
            self._drained.set()

    def new_aiohttp_handler(self) -> Any:
        """A request handler for a connection the fast path hands over (see :mod:`.fastpath`)."""
        assert self.server is not None
        return self.server()

    def _not_get(self, request: web.BaseRequest) -> web.Response:
        return self._web_text(405, f"{request.method} not allowed on {request.path}; use GET",
                           headers={"Allow": "GET"}, close=request.can_read_body)

    async def handle_health(self, request: web.BaseRequest) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            return self._not_get(request)
        return web.Response(text="ok\n")

    async def handle_ready(self, request: web.BaseRequest) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            return self._not_get(request)
        if self._stopping:
            return self._web_text(503, "shutting down")
        tok = self.tokens.current()
        if tok is None:
            err = self.tokens.stats.last_error or "no token acquired yet"
            return self._web_text(503, f"not ready: no valid token for {self.tokens.description}: {err}")
        return web.Response(text="ready\n")

    async def handle_metrics(self, request: web.BaseRequest) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            return self._not_get(request)
        self.metrics.in_flight = self._in_flight
        return web.Response(text=self.metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def handle_unknown(self, request: web.BaseRequest) -> web.Response:
        return self._web_text(404, f"no such path {request.path[:200]!r}; "
                                f"remote write goes to POST {WRITE_PATH}", close=request.can_read_body)

    # -------------------------------------------------------------- write
    async def handle_write(self, request: web.BaseRequest) -> web.Response:
        cfg = self.config
        if request.method != "POST":
            return self._reject(405, "method", f"{request.method} not allowed on {WRITE_PATH}; use POST",
                                headers={"Allow": "POST"})
        if self._stopping:
            return self._reject(503, "shutting_down", "shutting down; retry", close=True,
                                headers={"Retry-After": str(cfg.busy_retry_after_s)})
        enc = request.headers.get("Content-Encoding")
        if enc is None:
            return self._reject(415, "content_encoding", "missing Content-Encoding: snappy "
                                "(remote write 1.0 bodies are snappy block compressed)")
        if enc.strip().lower() != "snappy":
            return self._reject(415, "content_encoding", f"Content-Encoding {enc[:40]!r} is not supported; "
                                "remote write 1.0 requires snappy")
        length = request.content_length
        if length is not None and length > cfg.max_body_bytes:
            return self._reject(413, "body_too_large",
                                f"body of {length} bytes exceeds the limit of {cfg.max_body_bytes} bytes; "
                                "lower queue_config.max_samples_per_send", close=True)
        if not self.admit(length):
            return self._reject(503, "busy", f"busy: {self._in_flight} requests in flight "
                                f"(limit {cfg.max_in_flight}); retry",
                                headers={"Retry-After": str(cfg.busy_retry_after_s)})
        try:
            if request.headers.get("Expect", "").lower() == "100-continue" and request.version >= (1, 1):
                # Admitted: only now invite the body (a refused sender never sends it).
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                body = await self._read_body(request, length)
            except _BodyError as exc:
                return self._reject(exc.status, exc.key, exc.reason, close=True)
            if cfg.validate:
                bad = _validate(body, cfg.max_body_bytes * 64)
                if bad is not None:
                    self.metrics.bytes_received += len(body)
                    return self._reject(400, "invalid_body", bad, close=False)
            h = request.headers
            return self._web(await self.forward_write({n: h[n] for n in FORWARDED_HEADERS if n in h}, body))
        finally:
            self.release(length)

    async def _read_body(self, request: web.BaseRequest, length: int | None) -> bytes:
        limit = self.config.max_body_bytes
        content = request.content
        if length is not None and content.total_bytes >= length:
            return await content.readexactly(length)  # all there already: no timer needed
        try:
            async with asyncio.timeout(self.config.read_timeout):
                if length is not None:
                    return await content.readexactly(length)
                chunks = bytearray()
                while True:
                    chunk = await content.readany()
                    if not chunk:
                        return bytes(chunks)
                    chunks += chunk
                    if len(chunks) > limit:
                        raise _BodyError(413, "body_too_large", f"body exceeds the limit of {limit} bytes; "
                                         "lower max_samples_per_send")
        except TimeoutError:
            raise _BodyError(408, "read_timeout",
                             f"request body not received within {self.config.read_timeout:g}s") from None
        except asyncio.IncompleteReadError as exc:
            raise _BodyError(400, "incomplete_body",
                             f"body ended after {len(exc.partial)} of {length} bytes") from None

    async def forward_write(self, headers: dict[str, str], body: Body) -> Reply:
        """Forward one admitted write (``headers``: the FORWARDED_HEADERS the sender set); both paths."""
        self.metrics.bytes_received += len(body)
        token = self.tokens.current() or await self._wait_for_token()
        if token is None:
            reply = self._no_token()
        else:
            result = await self._attempt(headers, body, token)
            if isinstance(result, UpstreamResponse) and result.status == 401:
                fresh = await self.tokens.force_refresh(token)
                if fresh is not None:
                    log.info("upstream answered 401; retrying once with a refreshed token",
                             extra={"fields": {"identity": self.tokens.description}})
                    result = await self._attempt(headers, body, fresh)
            reply = self._answer(result)
        self.metrics.responded(reply.status)
        return reply

    async def _wait_for_token(self) -> Token | None:
        try:
            return await asyncio.wait_for(self.tokens.aget(), timeout=self.config.upstream_timeout)
        except (TokenError, TimeoutError):
            return None

    def _no_token(self) -> Reply:
        err = self.tokens.stats.last_error or "token fetch pending"
        self.metrics.rejected("no_token")
        if self._throttle("no_token") is not None:
            log.error("no valid Entra token; answering 503 so Prometheus keeps the data and retries",
                      extra={"fields": {"identity": self.tokens.description, "error": err}})
        return self._text(503, f"no valid Entra token for {self.tokens.description}: {err}",
                          headers={"Retry-After": str(self.config.no_token_retry_after_s)})

    @staticmethod
    def _upstream_headers(headers: dict[str, str], token: Token) -> dict[str, str]:
        out = dict(headers)
        out.setdefault("User-Agent", "promrw-doctor-forwarder")
        out["Authorization"] = token.authorization()
        return out

    async def _attempt(self, headers: dict[str, str], body: Body,
                       token: Token) -> UpstreamResponse | UpstreamError:
        try:
            r = await self.upstream.post(body, self._upstream_headers(headers, token))
        except UpstreamError as exc:
            self.metrics.upstream(exc.kind, len(body), exc.seconds)
            return exc
        self.metrics.upstream(str(r.status), len(body), r.seconds)
        return r

    def _answer(self, r: UpstreamResponse | UpstreamError) -> Reply:
        cfg = self.config
        if isinstance(r, UpstreamError):
            if self._throttle(f"net:{r.kind}") is not None:
                log.warning("upstream unreachable; answering 503 so Prometheus retries",
                            extra={"fields": {"kind": r.kind, "error": r.detail}})
            return self._text(503, f"upstream {r.kind} error: {r.detail}; retry")
        status = r.status
        if 200 <= status < 300:
            return Reply(status)
        detail = excerpt(r.body_excerpt)
        retry_after = r.headers.get("Retry-After")
        if status == 429:
            self._log_status(status, detail, "upstream throttled (429); passing it on with Retry-After "
                             "(Prometheus retries it only with queue_config.retry_on_http_429: true)")
            hdrs = {"Retry-After": retry_after} if retry_after else None
            return self._text(429, f"upstream throttled: {detail}", headers=hdrs)
        if status >= 500:
            self._log_status(status, detail, "upstream failed; answering 503 so Prometheus retries")
            hdrs = {"Retry-After": retry_after} if retry_after else None
            return self._text(503, f"upstream answered {status}: {detail}", headers=hdrs)
        if status in (401, 403):
            what = ("token rejected (401: audience, tenant or expiry)" if status == 401 else
                    "identity not authorized (403: Monitoring Metrics Publisher on the DCR? "
                    "role assignments take up to 30 minutes to propagate)")
            if cfg.pass_through_4xx:
                self._log_status(status, detail, f"{what}; passing {status} through as configured: "
                                 "Prometheus drops this batch")
                return self._text(status, f"upstream answered {status} for "
                                           f"{self.tokens.description}: {detail}")
            self._log_status(status, detail, f"{what}; answering 503 with Retry-After "
                             f"{cfg.auth_retry_after_s}s so Prometheus keeps the batch in its WAL, retrying")
            return self._text(503, f"upstream answered {status} for {self.tokens.description}: "
                                    f"{detail}; retrying (role assignments can take 30 minutes to propagate)",
                                    headers={"Retry-After": str(cfg.auth_retry_after_s)})
        self._log_status(status, detail, f"upstream rejected the batch ({status}); passing it on: "
                         "Prometheus drops this batch")
        return self._text(status, f"upstream answered {status}: {detail}")

    def _log_status(self, status: int, detail: str, message: str) -> None:
        n = self._throttle(f"status:{status}")
        if n is not None:
            log.warning(message, extra={"fields": {"upstreamStatus": status, "upstreamBody": detail,
                                                   "identity": self.tokens.description, "suppressed": n}})

    # ---------------------------------------------------------- lifecycle
    async def start(self, *, acquire_token: bool = True) -> None:
        """Get a token (fail fast: raises :class:`TokenError`), then listen and start background tasks."""
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        if acquire_token:
            await self.tokens.aget()
        tok = self.tokens.current()
        self.metrics.token_expiry = tok.expires_on if tok else 0.0
        # Fetches made before this forwarder existed (a shared manager) still count.
        self.metrics.token_refreshes = max(self.metrics.token_refreshes, self.tokens.stats.refreshes)
        self.metrics.token_refresh_failures = max(self.metrics.token_refresh_failures,
                                                  self.tokens.stats.failures)
        await self.upstream.start()
        # aiohttp's low-level server answers every connection the fast path hands over; the
        # listening socket itself belongs to the fast path's protocol factory.
        self.server = web.Server(self._dispatch, access_log=None, keepalive_timeout=cfg.idle_timeout)
        self._runner = web.ServerRunner(self.server, handle_signals=False, shutdown_timeout=cfg.shutdown_grace_s)
        await self._runner.setup()
        aio = self.server
        self.listener = WriteListener(self, refuse=self._refuse_connection,
                                      open_elsewhere=lambda: len(aio.connections))
        self._listening = await self._loop.create_server(
            self.listener, cfg.listen_host, cfg.listen_port, reuse_address=True, backlog=1024)
        sockets = self._listening.sockets or ()
        self.port = int(sockets[0].getsockname()[1]) if sockets else cfg.listen_port
        self._tasks.append(asyncio.create_task(self._sweep_loop(), name="deadlines"))
        self._tasks.append(asyncio.create_task(self.tokens.run(self._stop_refresher), name="token-refresher"))
        self._tasks.append(asyncio.create_task(self._summary_loop(), name="summary"))
        log.info("forwarding remote write", extra={"fields": {
            "listen": f"http://{cfg.listen_host}:{self.port}{WRITE_PATH}",
            "upstream": _url_for_log(cfg.ingestion_url), "identity": self.tokens.description,
            "validate": cfg.validate, "passThrough4xx": cfg.pass_through_4xx}})

    async def _sweep_loop(self) -> None:
        interval = sweep_interval(self.config.read_timeout, self.config.idle_timeout)
        listener = self.listener
        assert listener is not None
        while True:
            await asyncio.sleep(interval)
            listener.sweep()

    async def _summary_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.summary_interval_s)
            self.log_summary()

    def log_summary(self) -> None:
        log.info(SUMMARY_MSG, extra={"fields": summary_fields(self.metrics.take_window())})

    async def stop(self) -> None:
        """Graceful: refuse new work, let in-flight requests finish (up to the grace period), close."""
        if self._stopping:
            return
        self._stopping = True
        if self._listening is not None:
            self._listening.close()  # stops listening; open connections stay
        if self.listener is not None:
            self.listener.close_idle()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout=self.config.shutdown_grace_s)
        except TimeoutError:
            log.warning("shutdown grace period over with requests still in flight",
                        extra={"fields": {"inFlight": self._in_flight}})
        self._stop_refresher.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self.listener is not None:
            self.listener.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.upstream.close()
        self.log_summary()

    @property
    def in_flight(self) -> int:
        return self._in_flight


class _BodyError(Exception):
    def __init__(self, status: int, key: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.key = key
        self.reason = reason


def _validate(body: bytes, max_decompressed: int) -> str | None:
    """One-line reason the body is not a valid remote-write 1.0 request, or None."""
    from ..remote_write.codec import CodecError, decode
    from ..remote_write.validate import first_violation

    try:
        req = decode(body, max_decompressed=max_decompressed)
    except CodecError as exc:
        return f"invalid body: {exc}"
    v = first_violation(req)
    return f"invalid body: {v}" if v is not None else None


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def tune_allocator(*, mmap_threshold: int = 1 << 20, trim_threshold: int = 32 << 20) -> bool:
    """Keep glibc from returning and re-faulting heap memory on every request (Linux/glibc only).

    Each read allocates a 256 KiB buffer and each body lives until upstream answers; with
    glibc's default (dynamic) thresholds that pattern made the heap shrink and grow again
    several times per second: a ``brk`` call and dozens of page faults per request. Fixed
    thresholds keep buffers under 1 MiB on the heap and give memory back only beyond 32 MiB
    free, which the forwarder's own limits (``max_buffered_bytes``) bound anyway.
    Returns whether the allocator was tuned.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


def _url_for_log(url: str) -> str:
    return redact(url.split("#", 1)[0])


async def serve(config: ForwarderConfig, tokens: TokenManager, *,
                ready: Callable[[Forwarder], None] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then shut down gracefully."""
    fwd = Forwarder(config, tokens)
    try:
        await fwd.start()
    except BaseException:
        await fwd.stop()
        raise
    # Everything imported and built so far lives for the whole run: keep it out of the cyclic
    # GC's full collections, which would otherwise scan tens of MB of module objects mid-request
    # (a p99 latency spike of several ms each time).
    gc.freeze()
    tune_allocator()
    if ready:
        ready(fwd)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down: draining in-flight requests",
                 extra={"fields": {"inFlight": fwd.in_flight, "graceSeconds": config.shutdown_grace_s}})
    finally:
        await fwd.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    logging.getLogger(__name__).debug("stopped")
