"""Microsoft Entra ID (the v2.0 token service) on loopback HTTPS, driven by :class:`AzureState`.

Real clients talk to it unchanged: MSAL/azure-identity (``CertificateCredential``,
``ClientSecretCredential`` with ``authority=`` and ``disable_instance_discovery=True``),
azure-identity's ``WorkloadIdentityCredential``, the forwarder, and Go's oauth2 (which
tries HTTP Basic client authentication first). Failures come back in Entra's exact
error shape with the real AADSTS codes, so the doctor's parsing is tested against what
production returns, not against something invented.

Endpoints (``{tenant}`` must be ``state.tenant_id``):

* ``GET  /{tenant}/v2.0/.well-known/openid-configuration`` (also ``/{tenant}/.well-known/...``)
* ``GET  /{tenant}/discovery/v2.0/keys`` (also ``/{tenant}/discovery/keys``)
* ``POST /{tenant}/oauth2/v2.0/token`` (client_credentials; also the v1 ``/{tenant}/oauth2/token``
  with ``resource=``)

Every request is appended to :func:`request_log` (method, path, client id, outcome);
client secrets, assertions and tokens are never recorded or echoed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web

from ...domain.clouds import normalize_audience
from ..azure_state import Application, AzureState, KeyCredential
from ..tokens import TOKEN_EXCHANGE_AUDIENCE, TokenIssuer
from .ingestion import FaultQueue, apply_fault, error_middleware

log = logging.getLogger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ERROR_URI = "https://login.microsoftonline.com/error?code={code}"
CLOCK_SKEW_S = 300

# What workload_issuers may map an issuer URL to: an OidcIssuer, a JWKS dict, a public key,
# PEM text, or a list of those.
WorkloadIssuers = Mapping[str, Any] | Callable[[str], Any]


@dataclass
class EntraRequest:
    """One request as seen by the emulator (no secrets, no tokens)."""

    method: str
    path: str
    client_id: str | None = None
    grant: str | None = None  # client_secret | client_certificate | federated | discovery | jwks
    outcome: str = "ok"  # "ok" or "AADSTS<code>"
    status: int = 200
    scope: str | None = None
    at: float = field(default_factory=time.time)


LOG_KEY = web.AppKey("entra_log", list)
FAULTS_KEY = web.AppKey("entra_faults", FaultQueue)
STATE_KEY = web.AppKey("entra_state", AzureState)
ISSUER_KEY = web.AppKey("entra_issuer", TokenIssuer)


def request_log(app: web.Application) -> list[EntraRequest]:
    """The app's request log (appended from the server thread; read it from tests)."""
    return app[LOG_KEY]


def faults(app: web.Application) -> FaultQueue:
    """Forced responses for the *token* endpoint (e.g. ``push(503)``, ``push(reset=True)``), one per request."""
    return app[FAULTS_KEY]


class _AadError(Exception):
    """An Entra error response: HTTP status, OAuth ``error`` and AADSTS code + text."""

    def __init__(self, status: int, error: str, code: int, text: str) -> None:
        super().__init__(f"AADSTS{code}: {text}")
        self.status = status
        self.error = error
        self.code = code
        self.text = text


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _error_response(request: web.Request, err: _AadError) -> web.Response:
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    ts = _timestamp()
    body = {
        "error": err.error,
        "error_description": (f"AADSTS{err.code}: {err.text}\r\nTrace ID: {trace_id}\r\n"
                              f"Correlation ID: {correlation_id}\r\nTimestamp: {ts}"),
        "error_codes": [err.code],
        "timestamp": ts,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": ERROR_URI.format(code=err.code),
    }
    return web.json_response(body, status=err.status, headers={"Cache-Control": "no-store, no-cache"})


# ---------------------------------------------------------------------------------------- errors
def _tenant_not_found(tenant: str, *, discovery: bool) -> _AadError:
    # The discovery document answers "invalid_tenant"; the token endpoint "invalid_request".
    return _AadError(
        400, "invalid_tenant" if discovery else "invalid_request", 90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may happen "
        "if there are no active subscriptions for the tenant.")


def _missing_param(name: str) -> _AadError:
    return _AadError(400, "invalid_request", 900144,
                     f"The request body must contain the following parameter: '{name}'.")


def _app_not_found(client_id: str, tenant: str) -> _AadError:
    return _AadError(
        400, "unauthorized_client", 700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented "
        "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.")


def _graph_hint(app_id: str) -> str:
    return (f"Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys "
            f"for app Id '{app_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/"
            "deployments to determine the corresponding service endpoint and https://docs.microsoft.com/"
            "en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, "
            f"such as 'https://graph.microsoft.com/beta/applications/{app_id}'")


def _key_window(kc: KeyCredential) -> str:
    fmt = "%m/%d/%Y %H:%M:%S"
    return f"Start={kc.start.strftime(fmt)}, End={kc.end.strftime(fmt)}"


def _assertion_time(now: float, nbf: Any, exp: Any) -> _AadError:
    def iso(ts: Any) -> str:
        try:
            return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        except (TypeError, ValueError, OverflowError):
            return "1970-01-01T00:00:00.0000000Z"

    return _AadError(
        401, "invalid_client", 700024,
        f"Client assertion is not within its valid time range. Current time: {iso(now)}, assertion valid "
        f"from {iso(nbf if nbf is not None else 0)}, expiry time of assertion {iso(exp)}. Review the "
        "documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .")


# ------------------------------------------------------------------------------------ key material
def _x5t_sha1(der: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode("ascii")


def _x5t_sha256(der: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def _b64url_to_hex(value: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return ""
    return raw.hex().upper()


def _public_keys(spec: Any) -> list[Any]:
    """Turn whatever ``workload_issuers`` maps an issuer to into a list of public key objects."""
    import jwt

    if spec is None:
        return []
    if isinstance(spec, list | tuple):
        return [k for item in spec for k in _public_keys(item)]
    if hasattr(spec, "jwks") and callable(spec.jwks):
        return _public_keys(spec.jwks())
    if isinstance(spec, Mapping) and "keys" in spec:
        return [jwt.PyJWK(dict(k)).key for k in spec["keys"]]
    if isinstance(spec, str | bytes):
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        data = spec.encode() if isinstance(spec, str) else spec
        return [load_pem_public_key(data)]
    return [spec]


def _load_cert_key(der: bytes) -> Any:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).public_key()


def _signature_ok(token: str, key: Any, alg: str) -> bool:
    import jwt

    try:
        jwt.decode(token, key, algorithms=[alg], options={
            "verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
            "verify_iss": False})
    except jwt.PyJWTError:
        return False
    return True


# ------------------------------------------------------------------------------------------ app
def make_app(
    state: AzureState,
    issuer: TokenIssuer,
    *,
    workload_issuers: WorkloadIssuers | None = None,
    known_resources: Iterable[str] | None = None,
    token_lifetime_s: int = 3599,
) -> web.Application:
    """Build the Entra emulator.

    ``workload_issuers`` maps a service-account token issuer URL (``iss``) to its signing
    keys (an :class:`~promrw_doctor.lab.tokens.OidcIssuer`, a JWKS dict, a public key, PEM,
    or a list), or is a callable ``issuer -> keys | None``. ``known_resources``: when
    given, a scope for any other resource fails with AADSTS500011 (the wrong-cloud audience
    case); when None every resource is accepted.
    """
    app = web.Application(middlewares=[error_middleware("entra", _server_error)])
    app[LOG_KEY] = []
    app[FAULTS_KEY] = FaultQueue()
    app[STATE_KEY] = state
    app[ISSUER_KEY] = issuer
    resources = ({normalize_audience(r).lower() for r in known_resources}
                 if known_resources is not None else None)
    handler = _Handlers(state, issuer, workload_issuers, resources, token_lifetime_s, app[LOG_KEY],
                        app[FAULTS_KEY])
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", handler.openid_configuration)
    app.router.add_get("/{tenant}/.well-known/openid-configuration", handler.openid_configuration)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", handler.keys)
    app.router.add_get("/{tenant}/discovery/keys", handler.keys)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", handler.token)
    app.router.add_post("/{tenant}/oauth2/token", handler.token)
    return app


def _server_error(request: web.Request, exc: Exception) -> web.StreamResponse:
    """Entra's own error shape for a lab bug (AADSTS90000, server_error)."""
    return _error_response(request, _AadError(500, "server_error", 90000,
                                              f"Internal lab error ({type(exc).__name__})."))


class _Handlers:
    def __init__(
        self,
        state: AzureState,
        issuer: TokenIssuer,
        workload_issuers: WorkloadIssuers | None,
        resources: set[str] | None,
        lifetime_s: int,
        entries: list[EntraRequest],
        fault_queue: FaultQueue,
    ) -> None:
        self.state = state
        self.issuer = issuer
        self.workload_issuers = workload_issuers
        self.resources = resources
        self.lifetime_s = lifetime_s
        self.entries = entries
        self.fault_queue = fault_queue

    # --------------------------------------------------------------------------- helpers
    def _record(self, request: web.Request, **kw: Any) -> None:
        self.entries.append(EntraRequest(method=request.method, path=request.path, **kw))

    def _tenant_ok(self, tenant: str) -> bool:
        return tenant.lower() == self.state.tenant_id.lower()

    @staticmethod
    def _base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    # ------------------------------------------------------------------------- discovery
    async def openid_configuration(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._tenant_ok(tenant):
            err = _tenant_not_found(tenant, discovery=True)
            self._record(request, grant="discovery", outcome=f"AADSTS{err.code}", status=err.status)
            return _error_response(request, err)
        base = self._base(request)
        tid = self.state.tenant_id
        v1 = "/v2.0/" not in request.path
        oauth = f"{base}/{tid}/oauth2" + ("" if v1 else "/v2.0")
        doc = {
            "token_endpoint": f"{oauth}/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": f"{base}/{tid}/discovery/{'' if v1 else 'v2.0/'}keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.issuer.issuer(tid) if v1 else f"{base}/{tid}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{oauth}/authorize",
            "device_authorization_endpoint": f"{oauth}/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{oauth}/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time",
                                 "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
                                 "c_hash", "email"],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
        self._record(request, grant="discovery")
        return web.json_response(doc)

    async def keys(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._tenant_ok(tenant):
            err = _tenant_not_found(tenant, discovery=True)
            self._record(request, grant="jwks", outcome=f"AADSTS{err.code}", status=err.status)
            return _error_response(request, err)
        self._record(request, grant="jwks")
        return web.json_response(self.issuer.jwks())

    # ----------------------------------------------------------------------------- token
    async def token(self, request: web.Request) -> web.StreamResponse:
        fault = self.fault_queue.pop()
        if fault is not None:
            if fault.reset or fault.status is not None:
                self._record(request, outcome="reset" if fault.reset else "forced", status=fault.status or 0)
            forced = await apply_fault(request, fault)
            if forced is not None:
                return forced
        entry: dict[str, Any] = {}
        try:
            body = await self._token(request, entry)
        except _AadError as err:
            self._record(request, outcome=f"AADSTS{err.code}", status=err.status, **entry)
            log.info("entra emulator: %s %s client_id=%s -> %s AADSTS%d", request.method, request.path,
                     entry.get("client_id"), err.status, err.code)
            return _error_response(request, err)
        self._record(request, **entry)
        return web.json_response(body, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    async def _token(self, request: web.Request, entry: dict[str, Any]) -> dict[str, Any]:
        tenant = request.match_info["tenant"]
        form = await request.post()
        params = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        basic_id, basic_secret = _basic_auth(request.headers.get("Authorization", ""))
        client_id = params.get("client_id") or basic_id
        entry["client_id"] = client_id
        if not self._tenant_ok(tenant):
            raise _tenant_not_found(tenant, discovery=False)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise _missing_param("grant_type")
        if grant_type != "client_credentials":
            raise _AadError(400, "unsupported_grant_type", 70003,
                            f"The app requested an unsupported grant type '{grant_type}'.")
        if not client_id:
            raise _missing_param("client_id")
        v1 = "/v2.0/" not in request.path
        resource = self._resource(params, v1)
        entry["scope"] = resource
        assertion = params.get("client_assertion")
        secret = params.get("client_secret") or basic_secret
        if assertion is not None:
            if params.get("client_assertion_type") != JWT_BEARER:
                raise _AadError(400, "invalid_request", 50027 if not params.get("client_assertion_type")
                                else 700021, "Client assertion type is invalid or missing: expected "
                                f"'{JWT_BEARER}'.")
            self._authenticate_assertion(request, tenant, client_id, assertion.strip(), entry)
        elif secret:
            entry["grant"] = "client_secret"
            self._authenticate_secret(client_id, secret)
        else:
            raise _AadError(401, "invalid_client", 7000218,
                            "The request body must contain the following parameter: 'client_assertion' or "
                            "'client_secret'.")
        found = self.state.principal_for_client_id(client_id)
        if found is None:  # pragma: no cover - authenticate_* already checked
            raise _app_not_found(client_id, self.state.tenant_id)
        principal_id, _kind = found
        token, exp = self.issuer.mint(audience=resource, client_id=client_id, principal_id=principal_id,
                                      lifetime_s=self.lifetime_s)
        now = self.issuer.now()
        body: dict[str, Any] = {"token_type": "Bearer", "expires_in": exp - now,
                                "ext_expires_in": exp - now, "access_token": token}
        if v1:
            body.update({"expires_in": str(exp - now), "ext_expires_in": str(exp - now),
                         "expires_on": str(exp), "not_before": str(now), "resource": resource})
        return body

    def _resource(self, params: dict[str, str], v1: bool) -> str:
        """The resource the token is for (scope without ``/.default``), validated like Entra does."""
        if v1 and params.get("resource"):
            resource = params["resource"].strip()
        else:
            scope = params.get("scope", "").strip()
            if not scope:
                raise _missing_param("scope" if not v1 else "resource")
            scopes = [s for s in scope.split() if s not in ("openid", "profile", "offline_access")]
            default = [s for s in scopes if s.endswith("/.default")]
            if not default:
                raise _AadError(
                    400, "invalid_scope", 1002012,
                    f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                    "scope value with /.default suffixed to the resource identifier (application ID URI).")
            resource = default[0][: -len("/.default")]
        norm = normalize_audience(resource)
        if self.resources is not None and norm.lower() not in self.resources:
            raise _AadError(
                400, "invalid_resource", 500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.state.tenant_id}. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You might have sent "
                "your authentication request to the wrong tenant.")
        return norm

    # ----------------------------------------------------------------------- client secret
    def _authenticate_secret(self, client_id: str, secret: str) -> None:
        app = self.state.application(client_id)
        if app is None:
            raise _app_not_found(client_id, self.state.tenant_id)
        if secret not in app.client_secrets:
            raise _AadError(
                401, "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{app.app_id}'.")
        end = app.client_secret_ends.get(secret)
        if end is not None and self.state.now() >= end:
            raise _AadError(
                401, "invalid_client", 7000222,
                f"The provided client secret keys for app '{app.app_id}' are expired. Visit the Azure portal "
                "to create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
                "certificate credentials for added security: https://aka.ms/certCreds.")

    # ---------------------------------------------------------------------- assertions
    def _authenticate_assertion(self, request: web.Request, tenant: str, client_id: str,
                                assertion: str, entry: dict[str, Any]) -> None:
        """Certificate assertion (``iss == client_id``) or a federated token (anything else)."""
        import jwt

        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _AadError(400, "invalid_request", 50027,
                            "JWT token is invalid or malformed.") from None
        if not isinstance(claims, dict):
            raise _AadError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        iss = str(claims.get("iss", ""))
        if iss.lower() == client_id.lower():
            entry["grant"] = "client_certificate"
            self._certificate_assertion(request, tenant, client_id, assertion, header, claims)
        else:
            entry["grant"] = "federated"
            self._federated_assertion(client_id, assertion, header, claims)

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = time.time()
        exp = claims.get("exp")
        nbf = claims.get("nbf")
        if not isinstance(exp, int | float) or now > exp + CLOCK_SKEW_S or (
                isinstance(nbf, int | float) and now + CLOCK_SKEW_S < nbf):
            raise _assertion_time(now, nbf, exp)

    def _certificate_assertion(self, request: web.Request, tenant: str, client_id: str, assertion: str,
                               header: dict[str, Any], claims: dict[str, Any]) -> None:
        app = self.state.application(client_id)
        if app is None:
            raise _app_not_found(client_id, self.state.tenant_id)
        base = self._base(request).lower()
        accepted_aud = {f"{base}/{t}/oauth2/{v}token".lower()
                        for t in (tenant, self.state.tenant_id) for v in ("v2.0/", "")}
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else list(aud or [])
        if not any(str(a).lower().rstrip("/") in accepted_aud for a in auds):
            raise _AadError(
                401, "invalid_client", 700023,
                "Client assertion audience claim does not match Realm issuer. Review the documentation at "
                "https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-"
                "credentials .")
        self._check_times(claims)
        kc = self._match_key(app, assertion, header)
        now = self.state.now()
        if now >= kc.end or now < kc.start:
            reason = "The key used is expired." if now >= kc.end else "The key used is not yet valid."
            raise _AadError(
                401, "invalid_client", 700027,
                f"Client assertion failed signature validation. [Reason - {reason}, Thumbprint of key used "
                f"by client: '{kc.thumbprint.upper()}', Found key '{_key_window(kc)}', "
                f"{_graph_hint(app.app_id)}].")

    def _match_key(self, app: Application, assertion: str, header: dict[str, Any]) -> KeyCredential:
        """The registered key that signed ``assertion`` (by ``x5t``/``x5t#S256``, else by trying each)."""
        alg = str(header.get("alg", "RS256"))
        if alg not in ("RS256", "PS256"):
            raise _AadError(401, "invalid_client", 5002738,
                            f"Invalid JWT token. '{alg}' is not a supported signature algorithm.")
        x5t = header.get("x5t")
        x5t256 = header.get("x5t#S256")
        used_thumbprint = _b64url_to_hex(str(x5t)) if x5t else ""
        candidates: list[KeyCredential] = []
        for kc in app.key_credentials:
            if x5t or x5t256:
                by_sha1 = bool(x5t) and (
                    (kc.cert_der and _x5t_sha1(kc.cert_der) == x5t)
                    or kc.thumbprint.upper() == used_thumbprint)
                by_sha256 = bool(x5t256) and bool(kc.cert_der) and _x5t_sha256(kc.cert_der) == x5t256
                if by_sha1 or by_sha256:
                    candidates.append(kc)
            elif kc.cert_der:
                candidates.append(kc)
        for kc in candidates:
            if not kc.cert_der:
                return kc  # registered by thumbprint only (lab state without DER): trust the match
            if _signature_ok(assertion, _load_cert_key(kc.cert_der), alg):
                return kc
        if candidates and (x5t or x5t256):
            kc = candidates[0]
            raise _AadError(
                401, "invalid_client", 700027,
                "Client assertion failed signature validation. [Reason - The provided signature value did "
                "not match the expected signature value., Thumbprint of key used by client: "
                f"'{used_thumbprint}', Found key '{_key_window(kc)}', {_graph_hint(app.app_id)}].")
        thumb = f"Thumbprint of key used by client: '{used_thumbprint}', " if used_thumbprint else ""
        raise _AadError(
            401, "invalid_client", 700027,
            "The certificate with identifier used to sign the client assertion is not registered on "
            f"application. [Reason - The key was not found., {thumb}{_graph_hint(app.app_id)}]. "
            "Alternatively, SNI may be configured on the app. Please ensure that client assertion is being "
            "sent with the x5c claim in the JWT header using MSAL's WithSendX5C() method so that Azure "
            "Active Directory can validate the certificate being used.")

    def _federated_assertion(self, client_id: str, assertion: str, header: dict[str, Any],
                             claims: dict[str, Any]) -> None:
        if self.state.principal_for_client_id(client_id) is None:
            raise _app_not_found(client_id, self.state.tenant_id)
        iss = str(claims.get("iss", ""))
        sub = str(claims.get("sub", ""))
        aud = claims.get("aud")
        auds = [str(aud)] if isinstance(aud, str) else [str(a) for a in (aud or [])]
        matched = [fc for fc in self.state.federated_credentials
                   if fc.client_id.lower() == client_id.lower() and fc.issuer == iss and fc.subject == sub
                   and fc.audience in auds]
        if not matched:
            shown_aud = auds[0] if len(auds) == 1 else ", ".join(auds) or TOKEN_EXCHANGE_AUDIENCE
            raise _AadError(
                400, "invalid_request", 70021,
                f"No matching federated identity record found for presented assertion. Assertion Issuer: "
                f"'{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{shown_aud}'. "
                "https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation")
        self._check_times(claims)
        keys = self._issuer_keys(iss)
        if not keys:
            raise _AadError(
                400, "invalid_request", 50166,
                f"Request to External OIDC endpoint failed. Could not fetch the signing keys of issuer "
                f"'{iss}'.")
        alg = str(header.get("alg", "RS256"))
        if alg not in ("RS256", "PS256", "ES256") or not any(_signature_ok(assertion, k, alg) for k in keys):
            raise _AadError(401, "invalid_client", 700027,
                            "Client assertion failed signature validation. [Reason - The key was not found "
                            f"in the keys published by issuer '{iss}'.]")

    def _issuer_keys(self, iss: str) -> list[Any]:
        wi = self.workload_issuers
        if wi is None:
            return []
        spec = wi(iss) if callable(wi) else wi.get(iss)
        try:
            return _public_keys(spec)
        except Exception as exc:  # a broken key spec in the test setup: report it as unfetchable
            log.warning("entra emulator: cannot load keys for issuer %s: %s", iss, type(exc).__name__)
            return []


def _basic_auth(header: str) -> tuple[str | None, str | None]:
    """RFC 6749 §2.3.1 Basic client auth (Go's oauth2 tries it first): url-encoded id and secret."""
    if header[:6].lower() != "basic ":
        return None, None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, None
    cid, sep, secret = raw.partition(":")
    if not sep:
        return None, None
    return unquote_plus(cid), unquote_plus(secret)
