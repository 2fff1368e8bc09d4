"""Key Vault certificates data plane, read-only, over :class:`AzureState`.

The doctor asks Key Vault whether the certificate the CSI driver mounts for the sidecar
is the *current* one, when it expires and whether it renews itself; those answers come
from the CertificateBundle (``x5t``, ``attributes.exp``) and its policy
(``lifetime_actions``). Real URLs are ``https://{vault}.vault.azure.net/certificates/...``;
the lab serves every vault on one port under a path prefix, which is why the lab's cloud
profile sets ``keyvault_url_template = "https://127.0.0.1:PORT/{vault}"``:

* ``GET /{vault}/certificates/{name}[/{version}]?api-version=7.4`` -> CertificateBundle
  (``policy`` included only for the latest version, as the service does)
* ``GET /{vault}/certificates/{name}/policy`` -> CertificatePolicy
* ``GET /{vault}/certificates/{name}/versions`` and ``GET /{vault}/certificates`` -> lists

Every id in a response (``id``, ``kid``, ``sid``) is built from the URL the request came
in on, so it is a lab URL the doctor can follow. A 401 carries Key Vault's challenge
(``WWW-Authenticate: Bearer authorization="<authority>/<tenant>", resource="https://vault.azure.net"``).

Permission switch: ``keyvault:certificates/get`` (403 ``Forbidden``; inner code
``ForbiddenByPolicy`` for an access-policy vault, ``ForbiddenByRbac`` for an RBAC vault,
chosen with ``make_app(..., authorization="accessPolicy"|"rbac")``). An unknown vault is a
lab-only 404 ``VaultNotFound`` (in Azure its DNS name would not resolve).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from aiohttp import web

from ..azure_state import AzureState, KeyVaultCertificate
from ..tokens import TokenInvalid, TokenIssuer
from .azure_common import (
    PermissionDenied,
    ServiceError,
    ServiceFlavor,
    b64,
    claims_of,
    make_service_app,
    require,
    unix,
    unverified_claims,
)

KEYVAULT_AUDIENCE = "https://vault.azure.net"
API_VERSIONS = ("2015-06-01", "2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6")
RECOVERY_LEVEL = "Recoverable+Purgeable"


class KeyVaultFlavor(ServiceFlavor):
    """Key Vault's envelope ``{"error": {"code", "message", "innererror"?}}`` and its challenge."""

    name = "Key Vault"

    def __init__(self, state: AzureState, audience: str, authority: str, authorization: str,
                 vault_resource_group: str) -> None:
        self.state = state
        self.audience = audience.rstrip("/")
        self.authority = authority.rstrip("/")
        self.authorization = authorization
        self.vault_resource_group = vault_resource_group

    def unauthorized(self, request: web.Request, exc: TokenInvalid) -> web.Response:
        seen = unverified_claims(request)
        tenant = self.state.tenant_id
        messages = {
            "missing": "AKV10000: Request is missing a Bearer or PoP token.",
            "audience": (f"AKV10022: Invalid audience. Expected {self.audience}, "
                         f"found: {seen.get('aud', '')}."),
            "tenant": (f"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{tenant}/, "
                       f"https://login.microsoftonline.com/{tenant}/v2.0, found {seen.get('iss', '')}."),
            "expired": "Token validation failed: the token is expired.",
            "signature": "Token validation failed: the token signature is invalid.",
            "malformed": "Token validation failed: the token is malformed.",
        }
        challenge = f'Bearer authorization="{self.authority}/{tenant}", resource="{self.audience}"'
        return self.error(request, 401, "Unauthorized", messages.get(exc.reason, "Unauthorized"),
                          headers={"WWW-Authenticate": challenge})

    def forbidden(self, request: web.Request, exc: PermissionDenied) -> web.Response:
        claims = claims_of(request)
        caller = (f"appid={claims.get('appid', '')};oid={claims.get('oid', '')};"
                  f"iss={claims.get('iss', '')}")
        vault = exc.detail.get("vault", "")
        location = _vault_location(self.state)
        if self.authorization == "rbac":
            resource = (f"/subscriptions/{self.state.subscription_id}/resourcegroups/"
                        f"{self.vault_resource_group}/providers/microsoft.keyvault/vaults/{vault}"
                        + (f"/certificates/{exc.detail['name']}" if exc.detail.get("name") else ""))
            msg = ("Caller is not authorized to perform action on resource.\r\n"
                   "If role assignments, deny assignments or role definitions were changed recently, "
                   "please observe propagation time.\r\n"
                   f"Caller: {caller}\r\n"
                   "Action: 'Microsoft.KeyVault/vaults/certificates/read'\r\n"
                   f"Resource: '{resource.lower()}'\r\n"
                   "Assignment: (not found)\r\nDenyAssignmentId: null\r\n"
                   "DecisionReason: 'DeniedWithNoValidRBAC' \r\n"
                   f"Vault: {vault};location={location}\r\n")
            return self.error(request, 403, "Forbidden", msg, inner={"code": "ForbiddenByRbac"})
        msg = (f"The user, group or application '{caller}' does not have certificates get permission on key "
               f"vault '{vault};location={location}'. For help resolving this issue, please see "
               "https://go.microsoft.com/fwlink/?linkid=2125287")
        return self.error(request, 403, "Forbidden", msg, inner={"code": "ForbiddenByPolicy"})

    def method_not_allowed(self, request: web.Request) -> web.Response:
        return self.error(request, 405, "BadParameter",
                          f"The lab Key Vault emulator is read-only: {request.method} is not served "
                          "(promrw-doctor must only read).", headers={"Allow": "GET"})


def _vault_location(state: AzureState) -> str:
    for seq in (state.workspaces, state.dcrs, state.clusters):
        for r in seq:
            if r.location:
                return r.location
    return "eastus"


# ----------------------------------------------------------------------------------------- shapes

def _attributes(c: KeyVaultCertificate) -> dict[str, Any]:
    return {"enabled": c.enabled, "nbf": unix(c.not_before), "exp": unix(c.expires),
            "created": unix(c.created), "updated": unix(c.created), "recoveryLevel": RECOVERY_LEVEL,
            "recoverableDays": 90}


def _months_between(start: datetime, end: datetime) -> int:
    return max(1, (end.year - start.year) * 12 + (end.month - start.month))


def _x509_props(c: KeyVaultCertificate) -> tuple[dict[str, Any], dict[str, Any]]:
    """(x509_props, key_props) read from the certificate itself, so the policy matches the bundle."""
    subject, kty, size = "", "RSA", 2048
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        cert = x509.load_der_x509_certificate(c.cert_der)
        subject = cert.subject.rfc4514_string()
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            size = key.key_size
        elif isinstance(key, ec.EllipticCurvePublicKey):
            kty, size = "EC", key.key_size
    except Exception:
        pass
    x509_props = {"subject": subject, "sans": {}, "ekus": ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
                  "key_usage": ["digitalSignature", "keyEncipherment"],
                  "validity_months": _months_between(c.not_before, c.expires),
                  "basic_constraints": {"ca": False}}
    key_props = {"exportable": True, "kty": kty, "key_size": size, "reuse_key": False}
    return x509_props, key_props


def certificate_policy(base: str, c: KeyVaultCertificate) -> dict[str, Any]:
    """The issuance policy: ``AutoRenew`` at 80 % of the lifetime when the certificate renews itself."""
    x509_props, key_props = _x509_props(c)
    action = "AutoRenew" if c.auto_renew else "EmailContacts"
    return {
        "id": f"{base}/certificates/{c.name}/policy",
        "key_props": key_props,
        "secret_props": {"contentType": "application/x-pkcs12"},
        "x509_props": x509_props,
        "lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": action}}],
        "issuer": {"name": "Self"},
        "attributes": {"enabled": True, "created": unix(c.created), "updated": unix(c.created)},
    }


def certificate_bundle(base: str, c: KeyVaultCertificate, *, with_policy: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"{base}/certificates/{c.name}/{c.version}",
        "kid": f"{base}/keys/{c.name}/{c.version}",
        "sid": f"{base}/secrets/{c.name}/{c.version}",
        "x5t": c.x5t,
        "cer": b64(c.cert_der),
        "attributes": _attributes(c),
        "tags": {},
    }
    if with_policy:
        body["policy"] = certificate_policy(base, c)
    return body


def _latest(versions: list[KeyVaultCertificate]) -> KeyVaultCertificate:
    """The current version: the most recently created (the last one listed wins a tie)."""
    best = versions[0]
    for c in versions[1:]:
        if c.created >= best.created:
            best = c
    return best


def _cert_not_found(name: str) -> ServiceError:
    return ServiceError(
        404, "CertificateNotFound",
        f"A certificate with (name/id) {name} was not found in this key vault. If you recently deleted this "
        "certificate you may be able to recover it using the correct recovery command. For help resolving "
        "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")


def make_app(
    state: AzureState,
    issuer: TokenIssuer,
    *,
    audience: str = KEYVAULT_AUDIENCE,
    authority: str = "https://login.microsoftonline.com",
    authorization: Literal["accessPolicy", "rbac"] = "accessPolicy",
    vault_resource_group: str = "rg-keyvault",
    extra_audiences: Iterable[str] = (),
) -> web.Application:
    """The Key Vault emulator. ``authority`` goes into the 401 challenge (the lab's Entra URL)."""
    if authorization not in ("accessPolicy", "rbac"):
        raise ValueError("authorization must be 'accessPolicy' or 'rbac'")
    flavor = KeyVaultFlavor(state, audience, authority, authorization, vault_resource_group)

    async def handle(request: web.Request) -> web.StreamResponse:
        api_version = request.query.get("api-version", "")
        if not api_version:
            raise ServiceError(400, "BadParameter", "The 'api-version' query parameter is missing.")
        if api_version not in API_VERSIONS:
            raise ServiceError(400, "BadParameter",
                               f"The specified version ({api_version}) is not recognized. Consider using the "
                               f"latest supported version ({API_VERSIONS[-1]}).")
        segs = [s for s in request.path.split("/") if s]
        if len(segs) < 2 or segs[1].lower() != "certificates":
            raise ServiceError(404, "NotFound", "The requested resource was not found.")
        vault = segs[0]
        rest = segs[2:]
        base = f"{request.scheme}://{request.host}/{vault}"
        with state.lock:
            in_vault = [c for c in state.keyvault_certificates if c.vault.lower() == vault.lower()]
            if not in_vault:
                raise ServiceError(404, "VaultNotFound",
                                   f"Vault '{vault}' does not exist in the lab (in Azure its DNS name would "
                                   "not resolve).")
            require(state, "keyvault:certificates/get", base, vault=vault, name=rest[0] if rest else "")
            if not rest:  # list certificates: one entry per name, its current version
                names: dict[str, list[KeyVaultCertificate]] = {}
                for c in in_vault:
                    names.setdefault(c.name.lower(), []).append(c)
                items = []
                for group in names.values():
                    cur = _latest(group)
                    items.append({"id": f"{base}/certificates/{cur.name}", "x5t": cur.x5t,
                                  "attributes": _attributes(cur), "tags": {}})
                return web.json_response({"value": items, "nextLink": None})
            name = rest[0]
            versions = [c for c in in_vault if c.name.lower() == name.lower()]
            if not versions:
                raise _cert_not_found(name)
            if len(rest) == 1:
                return web.json_response(certificate_bundle(base, _latest(versions), with_policy=True))
            if len(rest) == 2 and rest[1].lower() == "policy":
                return web.json_response(certificate_policy(base, _latest(versions)))
            if len(rest) == 2 and rest[1].lower() == "versions":
                return web.json_response({"value": [
                    {"id": f"{base}/certificates/{c.name}/{c.version}", "x5t": c.x5t,
                     "attributes": _attributes(c), "tags": {}} for c in versions], "nextLink": None})
            if len(rest) == 2:
                wanted = next((c for c in versions if c.version.lower() == rest[1].lower()), None)
                if wanted is None:
                    raise _cert_not_found(f"{name}/{rest[1]}")
                return web.json_response(certificate_bundle(base, wanted, with_policy=False))
            raise ServiceError(404, "NotFound", "The requested resource was not found.")

    return make_service_app(state, issuer, flavor, handle, audiences=[audience, *extra_audiences])
