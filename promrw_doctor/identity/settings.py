"""Which identity to get a token for, and from where: one frozen value per forwarder.

Mirrors the sidecar's ``IDENTITY_TYPE`` values (rules in
:mod:`promrw_doctor.domain.sidecar`) plus one development-only extra:

=====================  ================================================================
``userAssigned``       managed identity via IMDS, or pod identity via NMI (same wire
                       protocol; ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` redirects it);
                       ``client_id`` optional (none = system-assigned)
``aadApplication``     Entra app + certificate (PEM or PKCS#12, optional password)
``workloadIdentity``   federated token file (``AZURE_FEDERATED_TOKEN_FILE``)
``clientSecret``       Entra app + client secret: **local development only**, the
                       sidecar has no such mode
=====================  ================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..domain.clouds import normalize_audience
from ..domain.clouds import scope as audience_scope
from ..domain.sidecar import IDENTITY_TYPES as SIDECAR_IDENTITY_TYPES

CLIENT_SECRET = "clientSecret"
IDENTITY_TYPES: tuple[str, ...] = (*SIDECAR_IDENTITY_TYPES, CLIENT_SECRET)
DEFAULT_FEDERATED_TOKEN_FILE = "/var/run/secrets/azure/wi/token/azure-identity-token"
# Authority hosts MSAL knows without instance discovery.
KNOWN_AUTHORITY_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn",
                         "login.microsoftonline.de")


@dataclass(frozen=True)
class IdentitySettings:
    """Everything needed to mint an ingestion token for one identity. Secrets are kept out of ``repr``."""

    identity_type: str
    audience: str  # resource, normalized (no /.default): https://monitor.azure.com
    client_id: str | None = None
    tenant_id: str | None = None
    certificate_path: str | None = None
    certificate_password: str | None = field(default=None, repr=False)
    send_certificate_chain: bool = False
    federated_token_file: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    authority_host: str | None = None  # https://login.microsoftonline.com (None: the SDK default)
    disable_instance_discovery: bool = False
    ca_bundle: str | None = None  # PEM file trusted for the token endpoint (else REQUESTS_CA_BUNDLE/system)
    imds_retry_total: int | None = None  # None = azure-identity's default (5 retries, ~25 s on 404)

    def __post_init__(self) -> None:
        if self.identity_type not in IDENTITY_TYPES:
            raise ValueError(f"unknown identity type {self.identity_type!r} "
                             f"(expected {', '.join(IDENTITY_TYPES)})")
        object.__setattr__(self, "audience", normalize_audience(self.audience))

    @property
    def scope(self) -> str:
        """The token scope: audience + ``/.default``."""
        return audience_scope(self.audience)

    def describe(self) -> str:
        """One line naming the identity, for logs and errors (never a secret)."""
        t = self.identity_type
        bits: list[str] = []
        if t == "userAssigned":
            bits.append(f"client id {self.client_id}" if self.client_id else "system-assigned")
        else:
            bits.append(f"client id {self.client_id or '?'}")
            bits.append(f"tenant {self.tenant_id or '?'}")
        if t == "aadApplication":
            bits.append(f"certificate {self.certificate_path or '?'}")
        if t == "workloadIdentity":
            bits.append(f"token file {self.federated_token_file or DEFAULT_FEDERATED_TOKEN_FILE}")
        return f"{t} ({', '.join(bits)})"


def needs_instance_discovery_disabled(authority_host: str | None) -> bool:
    """MSAL calls public instance discovery for unknown hosts; air-gapped and lab authorities must not."""
    if not authority_host:
        return False
    host = authority_host.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    return host not in KNOWN_AUTHORITY_HOSTS
