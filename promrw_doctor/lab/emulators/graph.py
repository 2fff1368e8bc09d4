"""Microsoft Graph v1.0 (applications and service principals), read-only, over :class:`AzureState`.

The doctor reads Graph for two reasons: to see whether the certificate the sidecar
mounts is registered on its application (``keyCredentials``, matched by thumbprint
against ``customKeyIdentifier``), and to resolve any client id (application *or*
managed identity) to its service principal object id, which is the ``principalId`` in
role assignments. Served:

* ``GET /v1.0/applications(appId='{appId}')``, ``/v1.0/applications/{objectId}``,
  ``/v1.0/applications[?$filter=appId eq '...']``
* ``GET /v1.0/servicePrincipals(appId='{appId}')``, ``/v1.0/servicePrincipals/{id}``,
  ``/v1.0/servicePrincipals[?$filter=appId eq '...']`` (managed identities included, as
  ``servicePrincipalType: ManagedIdentity``)

``$select`` is honoured (case-insensitive, like Graph). As documented for
``keyCredential.key``: the base64 certificate is returned only for a single-object
request whose ``$select`` names ``keyCredentials``; otherwise it is ``null``.
``customKeyIdentifier`` is the base64 of the SHA-1 thumbprint bytes (Graph's Binary
type; "defaults to the thumbprint of the certificate"). ``/beta`` is served like v1.0.

Permission switch: ``graph:Application.Read.All`` (403 ``Authorization_RequestDenied``).
Errors carry Graph's ``innerError`` (date, request-id, client-request-id).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from ..azure_state import Application, AzureState, KeyCredential, ManagedIdentity
from ..tokens import TokenInvalid, TokenIssuer
from .azure_common import (
    REQUEST_ID,
    PermissionDenied,
    ServiceError,
    ServiceFlavor,
    b64,
    graph_time,
    make_service_app,
    odata_eq,
    require,
    stable_guid,
)

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Graph's own app id: also a valid token audience
NEVER_EXPIRES = datetime(2299, 12, 31, tzinfo=UTC)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ROUTE = re.compile(r"^(applications|serviceprincipals)(?:\(appId='([^']*)'\)|\(appId=([^)']*)\)|/([^/]+))?$",
                    re.I)
_ENTITY = {"applications": ("applications", "Application"),
           "serviceprincipals": ("servicePrincipals", "ServicePrincipal")}


class GraphFlavor(ServiceFlavor):
    """Graph's envelope: ``{"error": {"code", "message", "innerError": {date, request-id, ...}}}``."""

    name = "Microsoft Graph"
    request_id_header = "request-id"

    def error(self, request: web.Request, status: int, code: str, message: str, *,
              headers: Mapping[str, str] | None = None, inner: dict[str, Any] | None = None) -> web.Response:
        rid = request.get(REQUEST_ID) or str(uuid.uuid4())
        client_rid = request.headers.get("client-request-id", rid)
        body = {"error": {"code": code, "message": message, "innerError": {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": rid, "client-request-id": client_rid, **(inner or {})}}}
        hdrs = {"request-id": rid, "client-request-id": client_rid, **dict(headers or {})}
        return web.json_response(body, status=status, headers=hdrs)

    def unauthorized(self, request: web.Request, exc: TokenInvalid) -> web.Response:
        messages = {
            "missing": "Access token is empty.",
            "malformed": "CompactToken parsing failed with error code: 80049217",
            "expired": "Lifetime validation failed, the token is expired.",
            "audience": "Access token validation failure. Invalid audience.",
            "tenant": "Access token validation failure. Invalid issuer.",
            "signature": "Access token validation failure.",
        }
        challenge = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
                     f'authorize", client_id="{GRAPH_APP_ID}"')
        return self.error(request, 401, "InvalidAuthenticationToken",
                          messages.get(exc.reason, "Access token validation failure."),
                          headers={"WWW-Authenticate": challenge})

    def forbidden(self, request: web.Request, exc: PermissionDenied) -> web.Response:
        return self.error(request, 403, "Authorization_RequestDenied",
                          "Insufficient privileges to complete the operation.")

    def method_not_allowed(self, request: web.Request) -> web.Response:
        return self.error(request, 405, "Request_BadRequest",
                          "Specified HTTP method is not allowed for the request target. "
                          "(The lab Graph emulator is read-only.)", headers={"Allow": "GET"})

    def internal(self, request: web.Request) -> web.Response:
        return self.error(request, 500, "generalException", "General exception while processing")


# ----------------------------------------------------------------------------------------- shapes

def _subject_of(der: bytes) -> str | None:
    if not der:
        return None
    try:
        from cryptography import x509

        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except Exception:
        return None


def _custom_key_identifier(thumbprint: str) -> str | None:
    try:
        return b64(bytes.fromhex(thumbprint.replace(":", "").strip()))
    except ValueError:
        return None


def key_credential(kc: KeyCredential, *, with_key: bool) -> dict[str, Any]:
    """One ``keyCredential`` as Graph returns it (``key`` only when asked for on a single object)."""
    return {
        "customKeyIdentifier": _custom_key_identifier(kc.thumbprint),
        "displayName": kc.display_name or _subject_of(kc.cert_der),
        "endDateTime": graph_time(kc.end),
        "key": b64(kc.cert_der) if with_key and kc.cert_der else None,
        "keyId": kc.key_id,
        "startDateTime": graph_time(kc.start),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }


def _password_credentials(app: Application) -> list[dict[str, Any]]:
    """Secrets as Graph shows them: a 3-character hint, never the value."""
    out = []
    for i, secret in enumerate(app.client_secrets):
        end = app.client_secret_ends.get(secret, NEVER_EXPIRES)
        out.append({
            "customKeyIdentifier": None, "displayName": None, "endDateTime": graph_time(end),
            "hint": secret[:3], "keyId": stable_guid(app.app_id, "secret", str(i)), "secretText": None,
            "startDateTime": graph_time(min(end, datetime.now(UTC)) - timedelta(days=1)),
        })
    return out


def _application(state: AzureState, app: Application, *, with_key: bool) -> dict[str, Any]:
    starts = [kc.start for kc in app.key_credentials]
    return {
        "id": app.object_id,
        "deletedDateTime": None,
        "appId": app.app_id,
        "applicationTemplateId": None,
        "createdDateTime": graph_time(min(starts)) if starts else None,
        "description": None,
        "displayName": app.display_name,
        "groupMembershipClaims": None,
        "identifierUris": [],
        "isFallbackPublicClient": None,
        "notes": None,
        "publisherDomain": "lab.onmicrosoft.com",
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "keyCredentials": [key_credential(kc, with_key=with_key) for kc in app.key_credentials],
        "passwordCredentials": _password_credentials(app),
        "requiredResourceAccess": [],
    }


def _sp_common(state: AzureState, sp_id: str, app_id: str, name: str, sp_type: str) -> dict[str, Any]:
    return {
        "id": sp_id, "deletedDateTime": None, "accountEnabled": True, "alternativeNames": [],
        "appDisplayName": name if sp_type == "Application" else None, "appId": app_id,
        "appOwnerOrganizationId": state.tenant_id if sp_type == "Application" else None,
        "appRoleAssignmentRequired": False, "displayName": name, "servicePrincipalNames": [app_id],
        "servicePrincipalType": sp_type,
        "signInAudience": "AzureADMyOrg" if sp_type == "Application" else None,
        "tags": [], "keyCredentials": [], "passwordCredentials": [],
    }


def _managed_identities(state: AzureState) -> list[tuple[ManagedIdentity, str]]:
    """(identity, ARM resource id) for every UAMI, kubelet identities included, unique by client id."""
    seen: dict[str, tuple[ManagedIdentity, str]] = {}
    for mi in state.identities:
        seen.setdefault(mi.client_id.lower(), (mi, mi.resource_id(state.subscription_id)))
    for c in state.clusters:
        k = c.kubelet_identity
        rg = k.resource_group or c.node_resource_group
        rid = ManagedIdentity(k.name, rg, k.client_id, k.principal_id, k.subscription_id).resource_id(
            state.subscription_id)
        seen.setdefault(k.client_id.lower(), (k, rid))
    return list(seen.values())


def _service_principals(state: AzureState) -> list[dict[str, Any]]:
    out = [_sp_common(state, a.sp_object_id, a.app_id, a.display_name, "Application")
           for a in state.applications]
    for mi, rid in _managed_identities(state):
        sp = _sp_common(state, mi.principal_id, mi.client_id, mi.name, "ManagedIdentity")
        sp["alternativeNames"] = ["isExplicit=True", rid]
        sp["servicePrincipalNames"] = [mi.client_id, f"https://identity.azure.net/{stable_guid(rid)}"]
        out.append(sp)
    return out


# ------------------------------------------------------------------------------------------ query

def _select(request: web.Request) -> list[str] | None:
    raw = request.query.get("$select")
    if raw is None:
        return None
    return [s.strip() for s in raw.split(",") if s.strip()]


def _project(obj: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if select is None:
        return obj
    by_lower = {k.lower(): k for k in obj}
    return {by_lower[s.lower()]: obj[by_lower[s.lower()]] for s in select if s.lower() in by_lower}


def _context(request: web.Request, version: str, entity_set: str, select: list[str] | None,
             single: bool) -> str:
    sel = f"({','.join(select)})" if select else ""
    return (f"{request.scheme}://{request.host}/{version}/$metadata#{entity_set}{sel}"
            + ("/$entity" if single else ""))


def _filter(request: web.Request, items: list[dict[str, Any]], resource: str) -> list[dict[str, Any]]:
    raw = request.query.get("$filter")
    if raw is None or not raw.strip():
        return items
    eq = odata_eq(raw)
    if eq is None:
        raise ServiceError(400, "BadRequest", f"Invalid filter clause: {raw}")
    prop, value = eq
    key = {"appid": "appId", "displayname": "displayName", "id": "id"}.get(prop.lower())
    if key is None:
        raise ServiceError(400, "Request_UnsupportedQuery",
                           f"Unsupported or invalid query filter clause specified for property '{prop}' "
                           f"of resource '{resource}'.")
    return [o for o in items if str(o.get(key, "")).lower() == value.lower()]


def _not_found(key: str) -> ServiceError:
    return ServiceError(404, "Request_ResourceNotFound",
                        f"Resource '{key}' does not exist or one of its queried reference-property objects "
                        "are not present.")


def make_app(
    state: AzureState,
    issuer: TokenIssuer,
    *,
    audience: str = "https://graph.microsoft.com",
    extra_audiences: Iterable[str] = (),
) -> web.Application:
    """The Graph emulator (``audience`` = the cloud's Graph endpoint; Graph's app id is accepted too)."""
    audiences = [audience, GRAPH_APP_ID, *extra_audiences]
    flavor = GraphFlavor()

    async def handle(request: web.Request) -> web.StreamResponse:
        segs = request.path.strip("/").split("/", 1)
        version = segs[0]
        if version.lower() not in ("v1.0", "beta"):
            raise ServiceError(400, "BadRequest", f"Invalid version: {version}")
        rest = segs[1] if len(segs) > 1 else ""
        m = _ROUTE.match(rest)
        if not m:
            first = rest.split("/", 1)[0].split("(", 1)[0] or version
            raise ServiceError(400, "BadRequest", f"Resource not found for the segment '{first}'.")
        entity_set, resource = _ENTITY[m.group(1).lower()]
        require(state, "graph:Application.Read.All", request.path)
        by_app_id = m.group(2) if m.group(2) is not None else m.group(3)
        object_id = m.group(4)
        select = _select(request)
        with state.lock:
            if entity_set == "applications":
                wants_key = select is not None and any(s.lower() == "keycredentials" for s in select)
                single = by_app_id is not None or object_id is not None
                items = [_application(state, a, with_key=single and wants_key) for a in state.applications]
            else:
                single = by_app_id is not None or object_id is not None
                items = _service_principals(state)
        if object_id is not None and not _GUID.match(object_id):
            raise ServiceError(400, "Request_BadRequest", f"Invalid object identifier '{object_id}'.")
        if single:
            key, field = (by_app_id, "appId") if by_app_id is not None else (object_id, "id")
            assert key is not None
            found = next((o for o in items if str(o.get(field, "")).lower() == key.lower()), None)
            if found is None:
                raise _not_found(key)
            body = {"@odata.context": _context(request, version, entity_set, select, True),
                    **_project(found, select)}
            return web.json_response(body, headers={"request-id": request[REQUEST_ID]})
        values = [_project(o, select) for o in _filter(request, items, resource)]
        return web.json_response({"@odata.context": _context(request, version, entity_set, select, False),
                                  "value": values}, headers={"request-id": request[REQUEST_ID]})

    return make_service_app(state, issuer, flavor, handle, audiences=audiences)
