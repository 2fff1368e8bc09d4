"""An Azure Monitor workspace's PromQL endpoint, proxying to the real Prometheus receiver.

Only the API surface Azure documents is served (``/api/v1/query``, ``/query_range``,
``/series``, ``/labels``, ``/label/__name__/values``, GET or form POST). Authorization
mirrors the workspace: a bearer token for the query audience
(``https://prometheus.monitor.azure.com`` in public cloud) and Monitoring Data Reader on
the workspace or a parent scope. The doctor's own identity (``state.doctor_app_id``) is
governed by the ``query:read`` switch in ``state.doctor_denied`` instead of role
assignments, like its other lab permissions. Error bodies use the Azure data-plane shape
of :mod:`.ingestion`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from ..azure_state import AzureState, Workspace
from ..tokens import TokenInvalid, TokenIssuer
from .ingestion import SESSION_KEY, azure_error, bearer_claims, error_middleware, session_hooks, unauthorized

log = logging.getLogger(__name__)

READER_ROLE = "Monitoring Data Reader"
READ_ACTION = "Microsoft.Monitor/accounts/data/metrics/read"
PATHS = ("/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels",
         "/api/v1/label/__name__/values")


@dataclass
class QueryRecord:
    path: str
    status: int
    # ok | unauthorized:<reason> | forbidden | doctor-denied | upstream-error | upstream-<status>
    outcome: str
    principal: str | None = None
    at: float = field(default_factory=time.time)


LOG_KEY = web.AppKey("query_log", list)


def request_log(app: web.Application) -> list[QueryRecord]:
    return app[LOG_KEY]


def make_app(
    state: AzureState,
    issuer: TokenIssuer,
    workspace: Workspace,
    *,
    receiver_url: str,
    audience: str | Iterable[str],
    authority: str = "https://login.microsoftonline.com",
) -> web.Application:
    """Build the query endpoint of ``workspace`` in front of ``receiver_url`` (a Prometheus base URL)."""
    app = web.Application(middlewares=[error_middleware("query")])
    app[LOG_KEY] = []
    session_hooks(app)
    audiences = [audience] if isinstance(audience, str) else list(audience)
    h = _Query(app, state, issuer, workspace, receiver_url.rstrip("/"), audiences, authority)
    for path in PATHS:
        app.router.add_get(path, h.handle)
        app.router.add_post(path, h.handle)
    return app


class _Query:
    def __init__(self, app: web.Application, state: AzureState, issuer: TokenIssuer, workspace: Workspace,
                 receiver_url: str, audiences: list[str], authority: str) -> None:
        self.app = app
        self.state = state
        self.issuer = issuer
        self.workspace = workspace
        self.receiver_url = receiver_url
        self.audiences = audiences
        self.authority = authority

    def _record(self, request: web.Request, status: int, outcome: str, principal: str | None = None) -> None:
        self.app[LOG_KEY].append(QueryRecord(request.path, status, outcome, principal))

    def _allowed(self, claims: dict[str, Any]) -> tuple[bool, str]:
        appid = str(claims.get("appid", ""))
        if self.state.doctor_app_id and appid.lower() == self.state.doctor_app_id.lower():
            return (self.state.doctor_may("query:read"), "doctor-denied")
        if not self.state.doctor_app_id and not self.state.doctor_may("query:read"):
            return False, "doctor-denied"
        oid = str(claims.get("oid", ""))
        return self.state.has_role(oid, READER_ROLE, self.workspace.id, effective=True), "forbidden"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            claims = bearer_claims(request, self.issuer, self.state, self.audiences)
        except TokenInvalid as exc:
            self._record(request, 401, f"unauthorized:{exc.reason}")
            return unauthorized(exc, self.state, self.audiences, authority=self.authority)
        oid = str(claims.get("oid", ""))
        ok, why = self._allowed(claims)
        if not ok:
            self._record(request, 403, why, oid)
            return azure_error(
                403, "AuthorizationFailed",
                f"The client '{claims.get('appid', '')}' with object id '{oid}' does not have authorization "
                f"to perform action '{READ_ACTION}' over scope '{self.workspace.id}' or the scope is "
                "invalid. If access was recently granted, please refresh your credentials.")
        url = f"{self.receiver_url}{request.path}"
        session = self.app[SESSION_KEY]
        try:
            if request.method == "POST":
                data = await request.read()
                headers = {"Content-Type": request.headers.get("Content-Type",
                                                               "application/x-www-form-urlencoded")}
                ctx = session.post(url, params=request.query, data=data, headers=headers)
            else:
                ctx = session.get(url, params=request.query)
            async with ctx as resp:
                payload = await resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "application/json")
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._record(request, 503, "upstream-error", oid)
            log.warning("query emulator: receiver unreachable: %s", type(exc).__name__)
            return azure_error(503, "ServiceUnavailable", "The query backend is unavailable (lab receiver).")
        self._record(request, status, "ok" if status < 400 else f"upstream-{status}", oid)
        out = web.Response(status=status, body=payload)
        out.headers["Content-Type"] = ctype
        return out
