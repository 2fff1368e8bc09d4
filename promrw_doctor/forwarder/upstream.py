"""The pooled HTTP client to ``INGESTION_URL``, shared by the forwarder and ``send``.

One ``aiohttp.ClientSession`` per process: a keep-alive pool sized to the in-flight
limit, TLS trust from ``--ca-bundle``/``REQUESTS_CA_BUNDLE`` (the same file
azure-identity trusts), no automatic decompression, and failures classified into
``dns``/``tls``/``connect``/``timeout``/``reset`` so both the 503 reason and the
probe's verdict can name the layer that broke.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

NetworkKind = Literal["dns", "tls", "connect", "timeout", "reset"]
EXCERPT_BYTES = 4096
# Headers of the upstream response worth keeping (for the sender and for diagnosis).
KEPT_RESPONSE_HEADERS = ("Retry-After", "x-ms-request-id", "x-ms-correlation-request-id", "WWW-Authenticate",
                         "Content-Type")


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    reason: str
    headers: dict[str, str]
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


def classify(exc: BaseException) -> tuple[NetworkKind, str]:
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns", f"cannot resolve {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "tls", f"certificate verification failed for {exc.host}: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "tls", f"TLS handshake with {exc.host} failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect", f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout", "no response before the upstream timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "reset", "upstream closed the connection without a response"
    if isinstance(exc, aiohttp.ClientConnectionResetError | ConnectionResetError):
        return "reset", "connection reset by upstream"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "reset", "upstream response was cut off"
    if isinstance(exc, aiohttp.ClientOSError):
        return "reset", f"connection error: {exc.strerror or type(exc).__name__}"
    if isinstance(exc, ssl.SSLError):
        return "tls", f"TLS error: {exc.reason or exc}"
    return "connect", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


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
        self._session: aiohttp.ClientSession | None = None
        self._url: Any = None

    async def start(self) -> None:
        if self._session is not None:
            return
        from yarl import URL

        # encoded=True: the ingestion URL is sent exactly as configured (query string included).
        self._url = URL(self.url, encoded=True)
        use_tls = self._url.scheme == "https"
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            limit_per_host=self.max_connections,
            keepalive_timeout=self.keepalive_timeout,
            ssl=ssl_context(self.ca_bundle) if use_tls else False,
            ttl_dns_cache=60,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.connect_timeout),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            trust_env=False,  # never route the bearer token through an env-configured proxy silently
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        """One POST. A stale keep-alive connection (closed by the server between requests) is retried once."""
        for attempt in (1, 2):
            try:
                return await self._post_once(body, headers)
            except UpstreamError as exc:
                if attempt == 1 and exc.kind == "reset" and exc.seconds < 0.05:
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_once(self, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        if self._session is None:
            await self.start()
        assert self._session is not None
        started = time.perf_counter()
        try:
            async with self._session.post(self._url, data=body, headers=headers,
                                          allow_redirects=False) as resp:
                excerpt = await resp.content.read(EXCERPT_BYTES)
                kept = {h: resp.headers[h] for h in KEPT_RESPONSE_HEADERS if h in resp.headers}
                return UpstreamResponse(resp.status, resp.reason or "", kept, excerpt,
                                        time.perf_counter() - started)
        except aiohttp.ClientResponseError as exc:
            raise UpstreamError("reset", f"malformed upstream response: {exc.message}",
                                time.perf_counter() - started) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            kind, detail = classify(exc)
            raise UpstreamError(kind, detail, time.perf_counter() - started) from None
