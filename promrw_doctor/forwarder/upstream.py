"""The pooled client to ``INGESTION_URL``, shared by the forwarder and ``send``.

A keep-alive pool (:class:`~promrw_doctor.forwarder.http1.Http1Pool`) sized to the
in-flight limit, TLS trust from ``--ca-bundle``/``REQUESTS_CA_BUNDLE`` (the same file
azure-identity trusts), ``HTTPS_PROXY``/``NO_PROXY`` honoured, and failures classified into
``dns``/``tls``/``connect``/``timeout``/``reset`` so both the forwarder's 503 reason and
the probe's verdict name the layer that broke.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Literal, NamedTuple

from .http1 import Body, Http1Pool, ProtocolError, ProxyError

NetworkKind = Literal["dns", "tls", "connect", "timeout", "reset"]
EXCERPT_BYTES = 4096
# Headers of the upstream response worth keeping (for the sender and for diagnosis).
KEPT_RESPONSE_HEADERS = ("Retry-After", "x-ms-request-id", "x-ms-correlation-request-id", "WWW-Authenticate",
                         "Content-Type")
_KEPT = tuple((name.lower(), name) for name in KEPT_RESPONSE_HEADERS)


class UpstreamResponse(NamedTuple):
    status: int
    reason: str
    headers: dict[str, str]  # the KEPT_RESPONSE_HEADERS present, canonical spelling
    body_excerpt: bytes  # first EXCERPT_BYTES of the body; may contain secrets: redact before showing
    seconds: float


class UpstreamError(Exception):
    """No HTTP response: ``kind`` names the layer, ``detail`` is one line (no secrets: no headers/bodies)."""

    def __init__(self, kind: NetworkKind, detail: str, seconds: float = 0.0) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind: NetworkKind = kind
        self.detail = detail
        self.seconds = seconds


def ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """Trust ``ca_bundle`` (or ``REQUESTS_CA_BUNDLE``) only, like requests does; else the system store."""
    path = ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or None
    if path:
        return ssl.create_default_context(cafile=path)
    return ssl.create_default_context()


def classify(exc: BaseException, host: str = "upstream", port: int | None = None) -> tuple[NetworkKind, str]:
    """``(kind, one-line detail)`` for a failure that produced no HTTP response."""
    where = f"{host}:{port}" if port else host
    if isinstance(exc, socket.gaierror):
        return "dns", f"cannot resolve {host}: {exc.strerror or exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc
        return "tls", f"certificate verification failed for {host}: {why}"
    if isinstance(exc, ssl.SSLError):
        return "tls", f"TLS error with {where}: {getattr(exc, 'reason', None) or exc}"
    if isinstance(exc, ProxyError):
        return "connect", str(exc)
    if isinstance(exc, TimeoutError):
        return "timeout", "no response before the upstream timeout"
    if isinstance(exc, ProtocolError):
        return "reset", f"malformed upstream response: {exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connect", f"cannot connect to {where}: connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | asyncio.IncompleteReadError):
        return "reset", "upstream closed or reset the connection without a (complete) response"
    if isinstance(exc, OSError):
        return "connect", f"cannot connect to {where}: {exc.strerror or type(exc).__name__}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return "connect", f"{type(exc).__name__}: {text}"


class Upstream:
    """POSTs bodies to one URL over a keep-alive pool. Create and use inside one event loop."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 64,
        timeout: float = 25.0,
        connect_timeout: float = 10.0,
        ca_bundle: str | None = None,
        keepalive_timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.max_connections = max_connections
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.ca_bundle = ca_bundle
        self.keepalive_timeout = keepalive_timeout
        self._pool: Http1Pool | None = None

    async def start(self) -> None:
        if self._pool is None:
            tls = ssl_context(self.ca_bundle) if self.url.lower().startswith("https://") else None
            self._pool = Http1Pool(self.url, limit=self.max_connections, ssl_context=tls,
                                   connect_timeout=min(self.connect_timeout, self.timeout),
                                   keepalive_timeout=self.keepalive_timeout)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def post(self, body: Body, headers: Mapping[str, str]) -> UpstreamResponse:
        """One POST (the request/response exchange bounded by ``timeout``); raises :class:`UpstreamError`."""
        if self._pool is None:
            await self.start()
        pool = self._pool
        assert pool is not None
        started = time.perf_counter()
        try:
            raw = await pool.post(body, headers, max_body=EXCERPT_BYTES, timeout=self.timeout)
        except (OSError, TimeoutError, ProtocolError, asyncio.IncompleteReadError) as exc:
            kind, detail = classify(exc, pool.host, pool.port)
            raise UpstreamError(kind, detail, time.perf_counter() - started) from None
        got = raw.headers
        kept = {name: got[low] for low, name in _KEPT if low in got}
        return UpstreamResponse(raw.status, raw.reason, kept, raw.body, time.perf_counter() - started)
