"""Entra ID (AADSTS) error codes the sidecar's identities meet, with what they mean and what fixes them.

Why a table: azure-identity surfaces Entra's refusal as one long line whose only stable
part is ``AADSTS<digits>``; the operator needs the meaning and the fix in this
deployment's words (which certificate, which federated credential, which cloud). The
texts follow Microsoft's "Microsoft Entra authentication and authorization error codes"
reference; the lab's Entra emulator answers with the same codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_AADSTS_RE = re.compile(r"AADSTS(\d{5,8})")


@dataclass(frozen=True)
class AadstsCode:
    code: int
    meaning: str
    fix: str
    # Which diagnosis code usually stands behind it (used to name the likelier root cause).
    hint_code: str | None = None


_TABLE: dict[int, AadstsCode] = {c.code: c for c in (
    AadstsCode(700016, "the application (client id) was not found in the tenant",
               "check AZURE_CLIENT_ID and AZURE_TENANT_ID (the app's Application (client) ID, in the tenant "
               "that owns it) and the authority host of the sidecar's cloud", "IDENTITY_NOT_FOUND"),
    AadstsCode(90002, "the tenant was not found (wrong tenant id, or the tenant lives in another cloud)",
               "check AZURE_TENANT_ID and that the authority host matches the cloud (e.g. login.microsoftonline.us "
               "for US Gov)"),
    AadstsCode(700027, "the client assertion's certificate is not accepted: its key is not registered on the "
               "application, expired, or not yet valid",
               "upload the certificate the pod mounts to the application (az ad app credential reset --id <app> "
               "--cert @cert.pem --append) or renew an expired certificate", "CERT_NOT_REGISTERED"),
    AadstsCode(700024, "the client assertion is not within its valid time range (clock skew on the node)",
               "check the node's clock (chrony/NTP)"),
    AadstsCode(700023, "the client assertion's audience does not match the token endpoint (wrong authority host "
               "or tenant)", "set AZURE_AUTHORITY_HOST/AAD_HOST_ENDPOINT for the sidecar's cloud"),
    AadstsCode(7000215, "an invalid client secret was provided (the secret id instead of its value, or a "
               "wrong value)", "create a new client secret and use its value"),
    AadstsCode(7000222, "the client secret has expired", "create a new client secret"),
    AadstsCode(7000218, "the request carries neither a client assertion nor a client secret",
               "the sidecar has no credential: check AZURE_CLIENT_CERTIFICATE_PATH / the federated token file"),
    AadstsCode(70021, "no federated identity credential matches the presented service-account token "
               "(issuer, subject system:serviceaccount:<ns>:<sa>, or audience differ)",
               "az identity federated-credential create --identity-name <uami> --resource-group <rg> "
               "--issuer <cluster OIDC issuer> --subject system:serviceaccount:<ns>:<sa> "
               "--audience api://AzureADTokenExchange"),
    AadstsCode(700213, "no federated identity record matches the assertion's subject",
               "create a federated credential for system:serviceaccount:<ns>:<sa>"),
    AadstsCode(50166, "Entra could not fetch the signing keys of the service-account token issuer (cluster OIDC "
               "issuer not reachable or not enabled)", "enable the cluster's OIDC issuer and check its URL in the "
               "federated credential"),
    AadstsCode(500011, "the resource (token audience) does not exist in this tenant: usually the ingestion "
               "audience of another cloud", "set INGESTION_AAD_AUDIENCE (or CLOUD) for the workspace's cloud",
               "AUDIENCE_MISMATCH"),
    AadstsCode(1002012, "the scope lacks the /.default suffix required by client-credential flows",
               "use INGESTION_AAD_AUDIENCE=<audience>/.default", "AUDIENCE_MISMATCH"),
    AadstsCode(70011, "the requested scope is invalid", "use INGESTION_AAD_AUDIENCE=<audience>/.default",
               "AUDIENCE_MISMATCH"),
    AadstsCode(50027, "the JWT (client assertion or federated token) is malformed or invalid",
               "check the mounted certificate / federated token file"),
    AadstsCode(700021, "the client assertion type is invalid", "check the sidecar/SDK version"),
    AadstsCode(5002738, "the client assertion uses an unsupported signature algorithm",
               "use an RSA certificate (Entra signs-in clients with RS256/PS256 assertions)"),
    AadstsCode(53003, "Conditional Access blocked the sign-in", "exclude the workload identity from the policy"),
    AadstsCode(7000112, "the application is disabled", "enable the application's service principal"),
    AadstsCode(700082, "the refresh token has expired due to inactivity", "sign in again"),
    AadstsCode(90014, "a required field is missing from the token request", "check the identity settings"),
)}


def lookup(code: int | str) -> AadstsCode | None:
    try:
        return _TABLE.get(int(str(code).removeprefix("AADSTS")))
    except ValueError:
        return None


def find(text: str | None) -> tuple[int, AadstsCode | None] | None:
    """The first ``AADSTS<n>`` in ``text`` and its table entry (None entry when the code is not listed)."""
    if not text:
        return None
    m = _AADSTS_RE.search(text)
    if m is None:
        return None
    n = int(m.group(1))
    return n, _TABLE.get(n)


def certificate_reason(text: str | None) -> str | None:
    """For AADSTS700027: ``expired``, ``not-yet-valid`` or ``not-registered`` from Entra's ``[Reason - …]``."""
    low = (text or "").lower()
    if "key used is expired" in low or "is expired on application" in low:
        return "expired"
    if "not yet valid" in low:
        return "not-yet-valid"
    if "key was not found" in low or "not registered on application" in low:
        return "not-registered"
    return None
