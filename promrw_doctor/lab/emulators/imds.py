"""The IMDS token endpoint, as a pod sees it: through aad-pod-identity's NMI, or the node's own IMDS.

Plain HTTP, like 169.254.169.254; clients reach it with
``AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:PORT`` (azure-identity and MSAL
both honour it). One app instance stands for one calling context, because NMI decides
by the caller's pod IP and we have none on loopback:

* ``pod=("monitoring", "prometheus-0")`` -- **NMI personality** (pod identity). Texts and
  status codes follow NMI v1.8.x (``pkg/nmi/server/server.go``, ``pkg/nmi/standard.go``):
  missing ``Metadata: true`` -> 400 JSON; missing resource -> 400 text; pod without an
  assigned identity -> 404 text ``getting assigned identities for pod <ns>/<pod> in CREATED
  state failed after 16 attempts, ...`` (NMI waits ~80 s first; we answer at once);
  requested client id not among the pod's identities -> 404 text ``no azure identity found
  for request clientID abcd##### REDACTED #####wxyz``. NMI's errors are ``text/plain``
  (Go's ``http.Error``), which azure-identity cannot surface -- that is why the doctor
  also does its own raw GET.
* ``pod=None`` -- **node IMDS personality** (plain managed identity): answers for the
  kubelet identities and the UAMIs attached to the node (``state.node_identities``, None =
  all of ``state.identities``); anything else -> 400 ``{"error":"invalid_request",
  "error_description":"Identity not found"}``. Without ``client_id`` (or ``object_id`` /
  ``msi_res_id``) it answers only when exactly one identity is attached, else 400
  "Multiple user assigned identities exist, ..." (AKS nodes have no system-assigned identity).

``state.nmi_running == False`` (NMI personality only): the recommended way is that the
lab world does not start this server at all (connection refused, like a node with no
NMI listening behind the iptables redirect). If the app is running anyway, every request
has its connection aborted without a response, so the client sees the same kind of
network failure instead of an HTTP answer.

A pod's assigned identities are every UAMI in ``state.identities`` when the pod is in
``state.nmi_assigned_pods`` (or that set is None); the kube side's AzureAssignedIdentity
objects are not consulted here.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web

from ...domain.clouds import normalize_audience
from ..azure_state import AzureState, ManagedIdentity
from ..tokens import TokenIssuer
from .ingestion import error_middleware

log = logging.getLogger(__name__)

TOKEN_PATH = "/metadata/identity/oauth2/token"
NMI_RETRY_ATTEMPTS_FOR_CREATED = 16
NMI_RETRY_INTERVAL_S = 5


@dataclass
class ImdsRequest:
    """One token request (no token values)."""

    method: str
    path: str
    client_id: str | None
    resource: str | None
    status: int
    outcome: str  # ok | no-metadata-header | no-resource | not-assigned | identity-not-found | aborted | ...
    at: float = field(default_factory=time.time)


LOG_KEY = web.AppKey("imds_log", list)


def request_log(app: web.Application) -> list[ImdsRequest]:
    return app[LOG_KEY]


def redact_client_id(client_id: str) -> str:
    """NMI's ``utils.RedactClientID``: first 4 + ``##### REDACTED #####`` + last 4."""
    return re.sub(r"^(\S{4})(?:\S|\s)*(\S{4})$", r"\1##### REDACTED #####\2", client_id)


def _go_text_error(text: str, status: int) -> web.Response:
    """What Go's ``http.Error`` writes: text/plain, nosniff, body + newline."""
    return web.Response(status=status, text=text + "\n", content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def _json_error(error: str, description: str, status: int = 400) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def make_app(
    state: AzureState,
    issuer: TokenIssuer,
    *,
    pod: tuple[str, str] | None = None,
    known_resources: Iterable[str] | None = None,
    token_lifetime_s: int = 86399,
) -> web.Application:
    """Build the IMDS/NMI emulator for one calling context (see the module docstring).

    ``known_resources``: when given, a token for any other resource fails the way Entra
    would (IMDS: 400 ``invalid_resource`` with AADSTS500011; NMI: 403 text).
    """
    app = web.Application(middlewares=[error_middleware("imds", _server_error, aborted=(_Aborted,))])
    app[LOG_KEY] = []
    resources = ({normalize_audience(r).lower() for r in known_resources}
                 if known_resources is not None else None)
    h = _Imds(state, issuer, pod, resources, token_lifetime_s, app[LOG_KEY])
    app.router.add_route("*", TOKEN_PATH, h.token)
    app.router.add_route("*", "/Metadata/identity/oauth2/token", h.token)  # NMI matches case-insensitively
    return app


class _Aborted(Exception):
    """The handler dropped the connection on purpose (nothing must be written)."""


def _server_error(request: web.Request, exc: Exception) -> web.StreamResponse:
    return _go_text_error(f"internal lab error ({type(exc).__name__})", 500)


class _Imds:
    def __init__(self, state: AzureState, issuer: TokenIssuer, pod: tuple[str, str] | None,
                 resources: set[str] | None, lifetime_s: int, entries: list[ImdsRequest]) -> None:
        self.state = state
        self.issuer = issuer
        self.pod = pod
        self.resources = resources
        self.lifetime_s = lifetime_s
        self.entries = entries

    def _record(self, request: web.Request, status: int, outcome: str) -> None:
        q = request.query
        self.entries.append(ImdsRequest(request.method, request.path, q.get("client_id"), q.get("resource"),
                                        status, outcome))

    async def token(self, request: web.Request) -> web.StreamResponse:
        nmi = self.pod is not None
        if nmi and not self.state.nmi_running:
            self._record(request, 0, "aborted")
            if request.transport is not None:
                request.transport.abort()
            raise _Aborted
        if request.headers.get("Metadata", "").lower() != "true":
            self._record(request, 400, "no-metadata-header")
            body = ('{"error":"invalid_request","error_description":"Required metadata header not specified"}'
                    "\n")  # NMI writes it with fmt.Fprintln
            return web.Response(status=400, text=body, content_type="application/json", charset="utf-8")
        if request.method != "GET" and not nmi:
            self._record(request, 405, "method")
            return _json_error("invalid_request", "Method not allowed", 405)
        resource = request.query.get("resource", "")
        if not resource:
            self._record(request, 400, "no-resource")
            if nmi:
                return _go_text_error("parameter resource cannot be empty", 400)
            return _json_error("invalid_request", "Required query variable 'resource' is missing")
        if not nmi and not request.query.get("api-version"):
            self._record(request, 400, "no-api-version")
            return _json_error("invalid_request", "Required query variable 'api-version' is missing")
        return self._nmi(request, resource) if nmi else self._node(request, resource)

    # ------------------------------------------------------------------------------ NMI
    def _nmi(self, request: web.Request, resource: str) -> web.Response:
        assert self.pod is not None
        ns, name = self.pod
        client_id = request.query.get("client_id", "")
        res_id = request.query.get("msi_res_id", "")
        assigned = self.state.nmi_assigned_pods is None or (ns, name) in self.state.nmi_assigned_pods
        identities = list(self.state.identities) if assigned else []
        if not identities:
            self._record(request, 404, "not-assigned")
            return _go_text_error(
                f"getting assigned identities for pod {ns}/{name} in CREATED state failed after "
                f"{NMI_RETRY_ATTEMPTS_FOR_CREATED} attempts, retry duration [{NMI_RETRY_INTERVAL_S}]s. "
                "Error: <nil>", 404)
        identity = self._pick(identities, client_id, res_id)
        if identity is None:
            self._record(request, 404, "identity-not-found")
            return _go_text_error(
                f"no azure identity found for request clientID {redact_client_id(client_id)}", 404)
        if not self._resource_known(resource):
            self._record(request, 403, "invalid-resource")
            return _go_text_error(
                f"failed to refresh token, error: adal: Refresh request failed. Status Code = '400'. "
                f"Response body: {{\"error\":\"invalid_resource\",\"error_description\":\"AADSTS500011: The "
                f"resource principal named {resource} was not found in the tenant named "
                f"{self.state.tenant_id}.\"}}", 403)
        log.info("imds emulator (nmi %s/%s): matched identityType:0 clientid:%s resource:%s", ns, name,
                 redact_client_id(identity.client_id), resource)
        return self._token_response(request, identity.client_id, identity.principal_id, resource)

    def _pick(self, identities: list[ManagedIdentity], client_id: str, res_id: str) -> ManagedIdentity | None:
        if client_id:
            return next((i for i in identities if i.client_id.lower() == client_id.lower()), None)
        if res_id:
            rid = res_id.lower()
            return next((i for i in identities
                         if i.resource_id(self.state.subscription_id).lower() == rid), None)
        return identities[0]

    # ------------------------------------------------------------------------ node IMDS
    def _node_identities(self) -> list[ManagedIdentity]:
        attached = self.state.node_identities
        uamis = [i for i in self.state.identities
                 if attached is None or i.client_id.lower() in {a.lower() for a in attached}]
        return [c.kubelet_identity for c in self.state.clusters] + uamis

    def _node(self, request: web.Request, resource: str) -> web.Response:
        q = request.query
        client_id = q.get("client_id", "")
        object_id = q.get("object_id") or q.get("principal_id") or ""
        res_id = q.get("msi_res_id") or q.get("mi_res_id") or ""
        ids = self._node_identities()
        chosen: ManagedIdentity | None
        if client_id:
            chosen = next((i for i in ids if i.client_id.lower() == client_id.lower()), None)
        elif object_id:
            chosen = next((i for i in ids if i.principal_id.lower() == object_id.lower()), None)
        elif res_id:
            chosen = next((i for i in ids
                           if i.resource_id(self.state.subscription_id).lower() == res_id.lower()), None)
        else:
            # AKS node pools have no system-assigned identity: IMDS can only pick when exactly one
            # user-assigned identity is attached.
            chosen = ids[0] if len(ids) == 1 else None
            if len(ids) > 1:
                self._record(request, 400, "ambiguous-identity")
                return _json_error(
                    "invalid_request",
                    "Multiple user assigned identities exist, please specify the clientId / resourceId of the "
                    "identity in the token request")
        if chosen is None:
            self._record(request, 400, "identity-not-found")
            return _json_error("invalid_request", "Identity not found")
        if not self._resource_known(resource):
            self._record(request, 400, "invalid-resource")
            return _json_error(
                "invalid_resource",
                f"AADSTS500011: The resource principal named {resource} was not found in the tenant named "
                f"{self.state.tenant_id}. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You might have sent "
                "your authentication request to the wrong tenant.")
        return self._token_response(request, chosen.client_id, chosen.principal_id, resource)

    # --------------------------------------------------------------------------- common
    def _resource_known(self, resource: str) -> bool:
        return self.resources is None or normalize_audience(resource).lower() in self.resources

    def _token_response(self, request: web.Request, client_id: str, principal_id: str,
                        resource: str) -> web.Response:
        token, exp = self.issuer.mint(audience=resource, client_id=client_id, principal_id=principal_id,
                                      lifetime_s=self.lifetime_s)
        now = self.issuer.now()
        self._record(request, 200, "ok")
        return web.json_response({
            "access_token": token,
            "client_id": client_id,
            "expires_in": str(exp - now),
            "expires_on": str(exp),
            "ext_expires_in": str(exp - now),
            "not_before": str(now),
            "resource": resource,
            "token_type": "Bearer",
        })
