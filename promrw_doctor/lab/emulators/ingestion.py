"""The Azure Monitor metrics ingestion endpoint of one DCE, in front of a real Prometheus receiver.

``POST /dataCollectionRules/{dcr immutable id}/streams/Microsoft-PrometheusMetrics/api/v1/write
?api-version=...`` is checked in the order Azure's front end effectively applies
(api-version, bearer token, DCR on this DCE, stream, role, throttling), then the body is
forwarded byte for byte to ``receiver_url + /api/v1/write`` and the receiver's status
(204, or 400 with its text) is passed back. So the forwarder and the doctor's probe see
real remote-write acceptance and rejection, and the data lands in a real TSDB that the
query emulator serves.

Decisions where Azure's exact behaviour is not documented (UNCONFIRMED upstream):

* 401 bodies are ``{"error": {"code": ..., "message": ...}}`` with a ``WWW-Authenticate:
  Bearer ...`` header; ``code`` is :data:`TOKEN_ERROR_CODES` of the token failure reason.
* unknown DCR, or a DCR associated with another DCE -> 404 ``DataCollectionRuleNotFound``.
* stream in the URL not ``Microsoft-PrometheusMetrics`` or not declared by the DCR -> 400
  ``InvalidStream``.
* no effective Monitoring Metrics Publisher -> 403 ``AuthorizationFailed`` naming
  ``Microsoft.Insights/Metrics/Write`` (ARM's wording); a too-young assignment looks the same.

Fault injection (for the forwarder's retry tests): ``faults(app)`` is a thread-safe
:class:`FaultQueue`; each request consumes at most one entry *before* any check:

* ``push(503, headers={"Retry-After": "2"}, body="busy", count=3)`` -- forced responses
  (``body`` may be bytes, text, or a dict sent as JSON);
* ``push(reset=True)`` -- the connection is dropped without a response;
* ``push(None, delay=5)`` -- answer 5 s late, then process the request normally
  (``push(504, delay=5)`` = late *and* forced).

Observation: ``request_log(app)`` is an :class:`IngestionLog` (``records`` with status,
outcome, DCR, principal, bytes; ``by_status``/``by_outcome`` counters; with
``receiver_url=None`` the accepted bodies are kept in ``bodies``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from ..azure_state import AzureState, DataCollectionEndpoint
from ..tokens import TokenInvalid, TokenIssuer

log = logging.getLogger(__name__)

PROMETHEUS_STREAM = "Microsoft-PrometheusMetrics"
API_VERSIONS = ("2021-11-01-preview", "2023-04-24")
WRITE_ACTION = "Microsoft.Insights/Metrics/Write"
PUBLISHER_ROLE = "Monitoring Metrics Publisher"
FORWARDED_HEADERS = ("Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version", "User-Agent",
                     "Retry-Attempt")
TOKEN_ERROR_CODES = {
    "missing": "InvalidToken",
    "malformed": "InvalidToken",
    "signature": "InvalidToken",
    "expired": "TokenExpired",
    "audience": "InvalidAudience",
    "tenant": "InvalidTenant",
}
MAX_BODY = 64 * 1024 * 1024


# ------------------------------------------------------------------------------ fault injection
@dataclass
class Fault:
    """A forced response. ``status=None`` with a ``delay`` = answer slowly, then process normally."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | str | dict[str, Any] | None = None
    delay: float = 0.0
    reset: bool = False  # drop the connection without any response


class FaultQueue:
    """Thread-safe FIFO of :class:`Fault`; each request consumes at most one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()

    def push(
        self,
        status: int | None = None,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | dict[str, Any] | None = None,
        delay: float = 0.0,
        reset: bool = False,
        count: int = 1,
    ) -> None:
        """Queue ``count`` identical faults (e.g. ``push(503, count=2)`` then normal service)."""
        fault = Fault(status=status, headers=dict(headers or {}), body=body, delay=delay, reset=reset)
        with self._lock:
            for _ in range(count):
                self._queue.append(fault)

    def pop(self) -> Fault | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)


# ------------------------------------------------------------------------------------ records
@dataclass
class IngestionRecord:
    """One write request as the endpoint judged it (never the token)."""

    status: int
    # ok | rejected (receiver 4xx) | forced | reset | unauthorized:<reason> | bad-api-version |
    # dcr-not-found | invalid-stream | forbidden | role-not-propagated | throttled | upstream-error
    outcome: str
    dcr: str | None
    principal: str | None = None  # token oid
    client_id: str | None = None  # token appid
    bytes: int = 0
    upstream_status: int | None = None
    at: float = field(default_factory=time.time)


class IngestionLog:
    """Request records and counters, appended on the server thread and read by tests."""

    def __init__(self, keep_bodies: int = 100) -> None:
        self._lock = threading.Lock()
        self.records: list[IngestionRecord] = []
        self.by_status: Counter[int] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.bytes_forwarded = 0
        # Accepted bodies when there is no receiver (receiver_url=None), newest last.
        self.bodies: deque[bytes] = deque(maxlen=keep_bodies)

    def add(self, record: IngestionRecord, body: bytes | None = None) -> None:
        with self._lock:
            self.records.append(record)
            self.by_status[record.status] += 1
            self.by_outcome[record.outcome] += 1
            if record.outcome == "ok":
                self.bytes_forwarded += record.bytes
            if body is not None:
                self.bodies.append(body)

    @property
    def accepted(self) -> int:
        return self.by_outcome["ok"]

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.records]


LOG_KEY = web.AppKey("ingestion_log", IngestionLog)
FAULTS_KEY = web.AppKey("ingestion_faults", FaultQueue)
SESSION_KEY = web.AppKey("ingestion_session", aiohttp.ClientSession)


def request_log(app: web.Application) -> IngestionLog:
    return app[LOG_KEY]


def faults(app: web.Application) -> FaultQueue:
    return app[FAULTS_KEY]


# ------------------------------------------------------------------------------- shared pieces
def azure_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Azure data-plane error body: ``{"error": {"code", "message"}}``."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def bearer_claims(
    request: web.Request,
    issuer: TokenIssuer,
    state: AzureState,
    audiences: Iterable[str],
) -> dict[str, Any]:
    """Claims of the request's bearer token; raises :class:`TokenInvalid` like the data plane rejects it."""
    header = request.headers.get("Authorization")
    token: str | None = None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise TokenInvalid("missing", "The Authorization header is not a Bearer token.")
        token = value.strip()
    return issuer.verify(token, audiences=list(audiences), tenant_id=state.tenant_id)


def unauthorized(exc: TokenInvalid, state: AzureState, audiences: Iterable[str], *,
                 authority: str) -> web.Response:
    """The 401 Azure sends for a refused token, with its ``WWW-Authenticate`` challenge."""
    auds = list(audiences)
    resource = auds[0] if auds else ""
    www = f'Bearer authorization_uri="{authority.rstrip("/")}/{state.tenant_id}", resource_id="{resource}"'
    if exc.reason != "missing":
        www += f', error="invalid_token", error_description="{exc.message}"'
    return azure_error(401, TOKEN_ERROR_CODES.get(exc.reason, "InvalidToken"), exc.message,
                       headers={"WWW-Authenticate": www})


def error_middleware(
    name: str,
    on_error: Callable[[web.Request, Exception], web.StreamResponse] | None = None,
    aborted: tuple[type[Exception], ...] = (),
) -> Any:
    """A handler bug becomes a 500 in the service's own shape, never a dropped connection.

    Every emulator uses this: azure-core retries a dropped connection ~8 times, which would
    turn a lab bug into a slow, misleading test. ``on_error`` builds the service's error body
    (default: the Azure JSON shape); ``aborted`` are the exceptions a handler raises after it
    dropped the connection on purpose (nothing is written then; :class:`FaultReset` always is).
    """
    quiet: tuple[type[Exception], ...] = (FaultReset, *aborted)

    @web.middleware
    async def _mw(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except web.HTTPException:
            raise
        except quiet:
            return web.Response(status=500)  # transport already aborted: nothing reaches the client
        except Exception as exc:
            log.exception("%s emulator: unhandled %s on %s %s", name, type(exc).__name__, request.method,
                          request.path)
            if on_error is not None:
                return on_error(request, exc)
            return azure_error(500, "InternalServerError", f"Internal lab error ({type(exc).__name__}).")

    return _mw


class FaultReset(Exception):
    """Raised after a fault aborted the connection on purpose; the middleware writes nothing."""


async def apply_fault(request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """Play ``fault``: sleep, then drop the connection (raises :class:`FaultReset`), force a
    response, or return None so the request is processed normally."""
    if fault.delay > 0:
        await asyncio.sleep(fault.delay)
    if fault.reset:
        if request.transport is not None:
            request.transport.abort()
        raise FaultReset
    if fault.status is None:
        return None
    no_body = fault.status in (204, 304)
    if isinstance(fault.body, dict) and not no_body:
        return web.json_response(fault.body, status=fault.status, headers=fault.headers)
    body = fault.body
    data = body.encode() if isinstance(body, str) else (body if isinstance(body, bytes) else b"")
    headers = dict(fault.headers)
    ct = headers.pop("Content-Type", "text/plain; charset=utf-8" if data else None)
    resp = web.Response(status=fault.status, body=None if no_body else data, headers=headers)
    if ct and not no_body:
        resp.headers["Content-Type"] = ct
    return resp


def session_hooks(app: web.Application) -> None:
    """One pooled ClientSession per app, opened and closed with the app (keep-alive to the receiver)."""
    async def _start(app: web.Application) -> None:
        app[SESSION_KEY] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64), timeout=aiohttp.ClientTimeout(total=30))

    async def _stop(app: web.Application) -> None:
        session = app.get(SESSION_KEY)
        if session is not None:
            await session.close()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)


# ------------------------------------------------------------------------------------------ app
def make_app(
    state: AzureState,
    issuer: TokenIssuer,
    dce: DataCollectionEndpoint,
    *,
    receiver_url: str | None,
    audience: str | Iterable[str],
    authority: str = "https://login.microsoftonline.com",
) -> web.Application:
    """Build the ingestion endpoint of ``dce``.

    ``receiver_url``: base URL of the real Prometheus receiver (``http://127.0.0.1:PORT``);
    None accepts writes with 204 and keeps the bodies in ``request_log(app).bodies``.
    ``audience``: the ingestion token audience(s) accepted (the cloud's ``ingestion_audience``).
    ``authority``: the Entra authority named in the 401 ``WWW-Authenticate`` challenge (the
    lab passes its Entra emulator's URL).
    """
    app = web.Application(middlewares=[error_middleware("ingestion")], client_max_size=MAX_BODY)
    app[LOG_KEY] = IngestionLog()
    app[FAULTS_KEY] = FaultQueue()
    session_hooks(app)
    audiences = [audience] if isinstance(audience, str) else list(audience)
    h = _Ingestion(app, state, issuer, dce, receiver_url.rstrip("/") if receiver_url else None, audiences,
                   authority)
    app.router.add_post("/dataCollectionRules/{dcr}/streams/{stream}/api/v1/write", h.write)
    return app


class _Ingestion:
    def __init__(self, app: web.Application, state: AzureState, issuer: TokenIssuer,
                 dce: DataCollectionEndpoint, receiver_url: str | None, audiences: list[str],
                 authority: str) -> None:
        self.app = app
        self.state = state
        self.issuer = issuer
        self.dce = dce
        self.receiver_url = receiver_url
        self.audiences = audiences
        self.authority = authority

    async def write(self, request: web.Request) -> web.StreamResponse:
        dcr_id = request.match_info["dcr"]
        log_ = self.app[LOG_KEY]
        fault = self.app[FAULTS_KEY].pop()
        if fault is not None:
            forced = await self._apply_fault(request, fault, dcr_id)
            if forced is not None:
                return forced
        body = await request.read()
        claims: dict[str, Any] = {}

        def rec(status: int, outcome: str) -> None:
            log_.add(IngestionRecord(status=status, outcome=outcome, dcr=dcr_id, principal=claims.get("oid"),
                                     client_id=claims.get("appid"), bytes=len(body)))

        version = request.query.get("api-version")
        if not version:
            rec(400, "bad-api-version")
            return azure_error(
                400, "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.")
        if version not in API_VERSIONS:
            rec(400, "bad-api-version")
            return azure_error(400, "InvalidApiVersionParameter",
                               f"The api-version '{version}' is invalid. The supported versions are "
                               f"'{','.join(API_VERSIONS)}'.")
        try:
            claims = bearer_claims(request, self.issuer, self.state, self.audiences)
        except TokenInvalid as exc:
            rec(401, f"unauthorized:{exc.reason}")
            return unauthorized(exc, self.state, self.audiences, authority=self.authority)
        dcr = self.state.dcr_by_immutable_id(dcr_id)
        if dcr is None or dcr.dce_id.lower() != self.dce.id.lower():
            rec(404, "dcr-not-found")
            return azure_error(404, "DataCollectionRuleNotFound",
                               f"Data collection rule with immutable id '{dcr_id}' was not found for data "
                               f"collection endpoint '{self.dce.immutable_id}'.")
        stream = request.match_info["stream"]
        if stream != PROMETHEUS_STREAM or PROMETHEUS_STREAM not in dcr.streams:
            rec(400, "invalid-stream")
            return azure_error(400, "InvalidStream",
                               f"Stream '{stream}' is not declared in data collection rule '{dcr_id}'.")
        oid = str(claims.get("oid", ""))
        if not self.state.has_role(oid, PUBLISHER_ROLE, dcr.id, effective=True):
            pending = self.state.has_role(oid, PUBLISHER_ROLE, dcr.id, effective=False)
            rec(403, "role-not-propagated" if pending else "forbidden")
            return azure_error(
                403, "AuthorizationFailed",
                f"The client '{claims.get('appid', '')}' with object id '{oid}' does not have authorization "
                f"to perform action '{WRITE_ACTION}' over scope '{dcr.id}' or the scope is invalid. If "
                "access was recently granted, please refresh your credentials.")
        if self.state.throttle:
            retry = str(max(0, int(self.state.throttle_retry_after_s)))
            rec(429, "throttled")
            return azure_error(
                429, "TooManyRequests",
                f"Request rate for data collection endpoint '{self.dce.name}' exceeded the ingestion limit. "
                f"Retry after {retry} seconds.", headers={"Retry-After": retry})
        return await self._forward(request, body, claims, dcr_id)

    async def _apply_fault(self, request: web.Request, fault: Fault,
                           dcr_id: str) -> web.StreamResponse | None:
        log_ = self.app[LOG_KEY]
        if fault.reset:
            log_.add(IngestionRecord(status=0, outcome="reset", dcr=dcr_id))
        elif fault.status is not None:
            log_.add(IngestionRecord(status=fault.status, outcome="forced", dcr=dcr_id))
        return await apply_fault(request, fault)

    async def _forward(self, request: web.Request, body: bytes, claims: dict[str, Any],
                       dcr_id: str) -> web.StreamResponse:
        log_ = self.app[LOG_KEY]
        def rec(status: int, outcome: str, upstream: int | None = None, keep: bytes | None = None) -> None:
            log_.add(IngestionRecord(status=status, outcome=outcome, dcr=dcr_id,
                                     principal=claims.get("oid"), client_id=claims.get("appid"),
                                     bytes=len(body), upstream_status=upstream), keep)

        if self.receiver_url is None:
            rec(204, "ok", keep=body)
            return web.Response(status=204)
        headers = {k: request.headers[k] for k in FORWARDED_HEADERS if k in request.headers}
        try:
            async with self.app[SESSION_KEY].post(f"{self.receiver_url}/api/v1/write", data=body,
                                                  headers=headers) as resp:
                payload = await resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type")
        except (TimeoutError, aiohttp.ClientError) as exc:
            rec(503, "upstream-error")
            log.warning("ingestion emulator: receiver unreachable: %s", type(exc).__name__)
            return azure_error(503, "ServiceUnavailable",
                               "The ingestion backend is unavailable (lab receiver).")
        rec(status, "ok" if 200 <= status < 300 else "rejected", upstream=status)
        if status in (204, 304):
            return web.Response(status=status)
        out = web.Response(status=status, body=payload)
        if ctype:
            out.headers["Content-Type"] = ctype
        return out
