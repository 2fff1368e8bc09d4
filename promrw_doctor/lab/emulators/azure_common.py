"""Shared plumbing for the lab's read-only Azure emulators (ARM, metrics, Graph, Key Vault).

Each emulator differs only in *how* it says no (error JSON, headers, codes); the order
in which it says no is the same everywhere and lives here, so the doctor sees the same
precedence it would in Azure:

1. every request is recorded in the app's request log ``[(method, path_qs)]`` (tests
   use it to prove the doctor never writes);
2. a method that is not a documented read (any PUT/PATCH/DELETE, a POST that is not a
   read such as ``metrics:getBatch``) is refused with 405 in the service's shape;
3. the bearer token is verified with :class:`~promrw_doctor.lab.tokens.TokenIssuer`
   (401 in the service's shape, reason-specific wording);
4. handlers raise :class:`PermissionDenied` for a ``state.doctor_denied`` switch (403)
   and :class:`ServiceError` for 400/404s; anything else becomes a 500 in the service's
   shape, logged without the request's headers (tokens are never logged).

Permission switches (``AzureState.doctor_denied``): the exact strings the doctor's
checks and the scenarios use (also :data:`PERMISSIONS`, with the Azure action each denies):

========================================  ==========================================================
``arm:subscriptions/read``                ARM subscriptions (the list is empty, a get answers 403)
``arm:roleAssignments/read``              ARM role assignments (list and get)
``arm:roleDefinitions/read``              ARM role definitions
``arm:dataCollectionRules/read``          ARM ``Microsoft.Insights/dataCollectionRules``
``arm:dataCollectionEndpoints/read``      ARM ``Microsoft.Insights/dataCollectionEndpoints``
``arm:accounts/read``                     ARM ``Microsoft.Monitor/accounts`` (Azure Monitor workspaces)
``arm:userAssignedIdentities/read``       ARM ``Microsoft.ManagedIdentity/userAssignedIdentities``
``arm:managedClusters/read``              ARM ``Microsoft.ContainerService/managedClusters``
``metrics:read``                          metrics data plane ``metrics:getBatch`` (workspace metrics)
``graph:Application.Read.All``            Graph applications and servicePrincipals
``keyvault:certificates/get``             Key Vault certificates (bundle, policy, versions, list)
========================================  ==========================================================

Resource groups are always readable (nothing to switch off).
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..azure_state import AzureState
from ..tokens import TokenInvalid, TokenIssuer

log = logging.getLogger(__name__)

#: Permission switch -> what it denies (the Azure action the real service would check).
PERMISSIONS: dict[str, str] = {
    "arm:subscriptions/read": "Microsoft.Resources/subscriptions/read",
    "arm:roleAssignments/read": "Microsoft.Authorization/roleAssignments/read",
    "arm:roleDefinitions/read": "Microsoft.Authorization/roleDefinitions/read",
    "arm:dataCollectionRules/read": "Microsoft.Insights/dataCollectionRules/read",
    "arm:dataCollectionEndpoints/read": "Microsoft.Insights/dataCollectionEndpoints/read",
    "arm:accounts/read": "Microsoft.Monitor/accounts/read",
    "arm:userAssignedIdentities/read": "Microsoft.ManagedIdentity/userAssignedIdentities/read",
    "arm:managedClusters/read": "Microsoft.ContainerService/managedClusters/read",
    "metrics:read": "Microsoft.Insights/metrics/read",
    "graph:Application.Read.All": "Application.Read.All (Microsoft Graph application permission)",
    "keyvault:certificates/get": "certificates/get (Key Vault access policy) / "
                                 "Microsoft.KeyVault/vaults/certificates/read (Key Vault RBAC)",
}

RequestLog = list[tuple[str, str]]
REQUEST_LOG: web.AppKey[RequestLog] = web.AppKey("promrw_request_log", list)


def _request_key(name: str) -> Any:
    """A typed request-storage key where aiohttp has them (>= 3.13), else the plain string."""
    maker = getattr(web, "RequestKey", None)
    return maker(name, object) if maker is not None else name


CLAIMS: Any = _request_key("promrw_claims")  # the verified token claims of this request
REQUEST_ID: Any = _request_key("promrw_request_id")  # the id echoed in error bodies and headers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_log(app: web.Application) -> RequestLog:
    """The ``[(method, path_qs)]`` list of every request the app received, in order."""
    return app[REQUEST_LOG]


class ServiceError(Exception):
    """An error the handler wants rendered in the service's own JSON shape."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: Mapping[str, str] | None = None, inner: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.inner = inner


class PermissionDenied(Exception):
    """The doctor's identity lacks ``permission`` (a :data:`PERMISSIONS` key) on ``scope``."""

    def __init__(self, permission: str, scope: str, *, detail: dict[str, str] | None = None) -> None:
        super().__init__(permission)
        self.permission = permission
        self.scope = scope
        self.detail = dict(detail or {})


def require(state: AzureState, permission: str, scope: str, **detail: str) -> None:
    """Raise :class:`PermissionDenied` when the scenario switched ``permission`` off for the doctor."""
    if permission not in PERMISSIONS:  # a typo here would silently grant everything
        raise ValueError(f"unknown lab permission {permission!r}")
    with state.lock:
        allowed = state.doctor_may(permission)
    if not allowed:
        raise PermissionDenied(permission, scope, detail=detail)


def claims_of(request: web.Request) -> dict[str, Any]:
    claims: dict[str, Any] = request.get(CLAIMS) or {}
    return claims


class ServiceFlavor:
    """How one Azure service words its errors. Subclasses override the shapes, not the flow."""

    name = "service"
    request_id_header = "x-ms-request-id"
    allow = "GET"  # the Allow header of a 405

    def error(self, request: web.Request, status: int, code: str, message: str, *,
              headers: Mapping[str, str] | None = None, inner: dict[str, Any] | None = None) -> web.Response:
        body: dict[str, Any] = {"error": {"code": code, "message": message}}
        if inner is not None:
            body["error"]["innererror"] = inner
        return web.json_response(body, status=status, headers=dict(headers or {}))

    def unauthorized(self, request: web.Request, exc: TokenInvalid) -> web.Response:
        raise NotImplementedError

    def forbidden(self, request: web.Request, exc: PermissionDenied) -> web.Response:
        raise NotImplementedError

    def method_not_allowed(self, request: web.Request) -> web.Response:
        return self.error(
            request, 405, "MethodNotAllowed",
            f"The lab {self.name} emulator is read-only: {request.method} is not served "
            "(promrw-doctor must only read).", headers={"Allow": self.allow})

    def internal(self, request: web.Request) -> web.Response:
        return self.error(request, 500, "InternalServerError",
                          f"The lab {self.name} emulator failed to process the request.")


def make_service_app(
    state: AzureState,
    issuer: TokenIssuer,
    flavor: ServiceFlavor,
    route: Handler,
    *,
    audiences: Iterable[str],
    is_read: Callable[[web.Request], bool] | None = None,
) -> web.Application:
    """An application routing every path to ``route`` behind log / read-only / auth / error middleware.

    ``is_read`` marks non-GET requests that are documented reads (e.g. the metrics
    batch POST); GET and HEAD are always reads.
    """
    accepted = [a for a in audiences if a]
    if not accepted:
        raise ValueError("at least one token audience is required")

    @web.middleware
    async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
        request.app[REQUEST_LOG].append((request.method, request.path_qs))
        rid = str(uuid.uuid4())
        request[REQUEST_ID] = rid
        try:
            response = await _guarded(request, handler)
        except ServiceError as exc:
            response = flavor.error(request, exc.status, exc.code, exc.message,
                                    headers=exc.headers, inner=exc.inner)
        except PermissionDenied as exc:
            response = flavor.forbidden(request, exc)
        except web.HTTPException:
            raise
        except Exception:  # a lab bug must still answer in the service's shape, never hang the doctor
            log.exception("lab %s emulator: unhandled error for %s %s", flavor.name, request.method,
                          request.path)
            response = flavor.internal(request)
        if flavor.request_id_header not in response.headers:
            response.headers[flavor.request_id_header] = rid
        return response

    async def _guarded(request: web.Request, inner: Handler) -> web.StreamResponse:
        method = request.method.upper()
        if method not in ("GET", "HEAD") and not (is_read is not None and is_read(request)):
            return flavor.method_not_allowed(request)
        try:
            claims = issuer.verify(request.headers.get("Authorization"), audiences=accepted,
                                   tenant_id=state.tenant_id)
        except TokenInvalid as exc:
            return flavor.unauthorized(request, exc)
        request[CLAIMS] = claims
        return await inner(request)

    app = web.Application(middlewares=[pipeline])
    app[REQUEST_LOG] = []
    app.router.add_route("*", "/{tail:.*}", route)
    return app


# ---------------------------------------------------------------------------------------------- formats

def arm_time(dt: datetime) -> str:
    """ARM's timestamp form: 7 fractional digits and ``Z`` (``2026-01-15T10:11:12.1234560Z``)."""
    d = dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def graph_time(dt: datetime) -> str:
    """Graph's DateTimeOffset form (``2026-01-15T10:11:12Z``)."""
    d = dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(dt: datetime) -> int:
    d = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return int(d.timestamp())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def stable_guid(*parts: str) -> str:
    """A deterministic GUID for ids the state does not model (account ids, key ids), stable across calls."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "promrw-lab:" + "|".join(p.lower() for p in parts)))


_ODATA_EQ = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.I)


def odata_eq(clause: str) -> tuple[str, str] | None:
    """``appId eq 'x'`` -> ``("appId", "x")`` (OData doubles embedded quotes); None if not that form."""
    m = _ODATA_EQ.match(clause)
    if not m:
        return None
    return m.group(1), m.group(2).replace("''", "'")


def unverified_claims(request: web.Request) -> dict[str, Any]:
    """Claims of the request's bearer token *without* verification, to word a 401 like Azure does.

    Only for error messages (``aud``/``iss``/``exp``/``appid``); never logged, never trusted.
    """
    import jwt

    raw = (request.headers.get("Authorization") or "").strip()
    if raw[:7].lower() == "bearer ":
        raw = raw[7:].strip()
    try:
        claims = jwt.decode(raw, options={"verify_signature": False})
    except Exception:
        return {}
    return claims if isinstance(claims, dict) else {}
