"""The emulated Azure world, as plain data shared by every Azure-side emulator.

Entra (token issuance), IMDS/NMI, ingestion (authorization), the query endpoint,
ARM, Graph and Key Vault all read one :class:`AzureState`, so a scenario that removes
a role assignment changes what ingestion answers *and* what ARM lists, consistently.

Times are absolute UTC datetimes; the scenario loader turns "minutes ago" into them
at lab start. Built from the scenario's ``azure:`` section (see ``lab/scenario.py``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ROLE_IDS: dict[str, str] = {
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Monitoring Data Reader": "b0d8363b-8ddd-447d-831f-62ca05bff136",
    "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
    "Virtual Machine Contributor": "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
}
ROLE_PROPAGATION = timedelta(minutes=30)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ManagedIdentity:
    """A user-assigned managed identity (also used for the kubelet identity)."""

    name: str
    resource_group: str
    client_id: str
    principal_id: str
    subscription_id: str = ""

    def resource_id(self, subscription_id: str) -> str:
        sub = self.subscription_id or subscription_id
        return (f"/subscriptions/{sub}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.ManagedIdentity/userAssignedIdentities/{self.name}")


@dataclass
class KeyCredential:
    """A certificate registered on an application (Graph ``keyCredentials``)."""

    key_id: str
    thumbprint: str  # uppercase hex SHA-1 of the DER certificate
    start: datetime
    end: datetime
    display_name: str = ""
    cert_der: bytes = b""


@dataclass
class Application:
    """An Entra application and its service principal."""

    app_id: str  # client id
    object_id: str  # application object id
    sp_object_id: str  # service principal object id == principalId in role assignments
    display_name: str
    key_credentials: list[KeyCredential] = field(default_factory=list)
    client_secrets: list[str] = field(default_factory=list)  # lab only: plain text, never reported
    # Secret -> end of validity (Graph passwordCredentials.endDateTime); absent = never expires.
    client_secret_ends: dict[str, datetime] = field(default_factory=dict)


@dataclass
class FederatedCredential:
    """Workload identity: which service-account tokens an identity (app or UAMI) trusts."""

    client_id: str
    issuer: str
    subject: str  # system:serviceaccount:<ns>:<sa>
    audience: str = "api://AzureADTokenExchange"


@dataclass
class RoleAssignment:
    id: str  # full ARM id
    name: str  # guid
    scope: str
    role_definition_id: str  # full id: /subscriptions/<sub>/providers/Microsoft.Authorization/roleDefinitions/<guid>
    principal_id: str
    principal_type: str  # ServicePrincipal | User | Group
    created_on: datetime

    @property
    def role_guid(self) -> str:
        return self.role_definition_id.rsplit("/", 1)[-1].lower()


@dataclass
class DataCollectionEndpoint:
    id: str
    name: str
    location: str
    immutable_id: str  # dce-...
    metrics_ingestion_host: str  # host[:port] the ingestion emulator answers for


@dataclass
class DataCollectionRule:
    id: str
    name: str
    location: str
    immutable_id: str  # dcr-<32 hex>
    dce_id: str
    streams: list[str] = field(default_factory=lambda: ["Microsoft-PrometheusMetrics"])
    workspace_id: str = ""


@dataclass
class Workspace:
    """An Azure Monitor workspace (``Microsoft.Monitor/accounts``)."""

    id: str
    name: str
    location: str
    default_dcr_id: str
    default_dce_id: str
    query_endpoint: str
    # Platform metrics, one value per minute for the last hour (percent).
    metrics: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class ManagedCluster:
    id: str
    name: str
    location: str
    node_resource_group: str
    kubelet_identity: ManagedIdentity
    oidc_issuer: str = ""


@dataclass
class KeyVaultCertificate:
    vault: str
    name: str
    version: str
    cert_der: bytes
    x5t: str  # base64url SHA-1
    not_before: datetime
    expires: datetime
    enabled: bool = True
    auto_renew: bool = True  # issuance policy has an AutoRenew lifetime action
    created: datetime = field(default_factory=utcnow)


@dataclass
class AzureState:
    tenant_id: str
    subscription_id: str
    identities: list[ManagedIdentity] = field(default_factory=list)
    applications: list[Application] = field(default_factory=list)
    federated_credentials: list[FederatedCredential] = field(default_factory=list)
    role_assignments: list[RoleAssignment] = field(default_factory=list)
    dces: list[DataCollectionEndpoint] = field(default_factory=list)
    dcrs: list[DataCollectionRule] = field(default_factory=list)
    workspaces: list[Workspace] = field(default_factory=list)
    clusters: list[ManagedCluster] = field(default_factory=list)
    keyvault_certificates: list[KeyVaultCertificate] = field(default_factory=list)
    # NMI: which (namespace, pod) have their identity assigned; None means "every pod".
    nmi_assigned_pods: set[tuple[str, str]] | None = None
    nmi_running: bool = True
    # Client ids of the user-assigned identities attached to the node VMSS (what the node's own
    # IMDS answers for, besides the kubelet identity); None means every identity in ``identities``.
    node_identities: set[str] | None = None
    # Ingestion behaviour switches.
    throttle: bool = False
    throttle_retry_after_s: int = 1
    role_propagation: timedelta = ROLE_PROPAGATION
    # The doctor's own identity (an application with a client secret) and what it may not do.
    doctor_app_id: str = ""
    # Permission switches for the doctor's identity, e.g. {"arm:roleAssignments/read",
    # "arm:dataCollectionRules/read", "graph:Application.Read.All", "keyvault:certificates/get", "metrics:read",
    # "query:read"} (full list: promrw_doctor/lab/emulators/azure_common.py PERMISSIONS).
    doctor_denied: set[str] = field(default_factory=set)
    clock: Any = None  # optional callable returning "now" (tests); default utcnow
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # ------------------------------------------------------------------ lookups
    def now(self) -> datetime:
        return self.clock() if callable(self.clock) else utcnow()

    def principal_for_client_id(self, client_id: str) -> tuple[str, str] | None:
        """(principal object id, kind) for a UAMI or application client id."""
        cid = client_id.lower()
        for mi in self.identities:
            if mi.client_id.lower() == cid:
                return mi.principal_id, "ManagedIdentity"
        for c in self.clusters:
            if c.kubelet_identity.client_id.lower() == cid:
                return c.kubelet_identity.principal_id, "ManagedIdentity"
        for app in self.applications:
            if app.app_id.lower() == cid:
                return app.sp_object_id, "ServicePrincipal"
        return None

    def application(self, app_id: str) -> Application | None:
        return next((a for a in self.applications if a.app_id.lower() == app_id.lower()), None)

    def dcr_by_immutable_id(self, immutable_id: str) -> DataCollectionRule | None:
        return next((d for d in self.dcrs if d.immutable_id.lower() == immutable_id.lower()), None)

    def has_role(self, principal_id: str, role_name: str, scope: str, *, effective: bool = True) -> bool:
        """Whether ``principal_id`` holds ``role_name`` on ``scope`` or a parent scope.

        With ``effective=True`` an assignment younger than ``role_propagation`` does not count yet.
        """
        role_guid = ROLE_IDS[role_name]
        scope_l = scope.lower().rstrip("/")
        now = self.now()
        for ra in self.role_assignments:
            if ra.principal_id.lower() != principal_id.lower() or ra.role_guid != role_guid:
                continue
            ra_scope = ra.scope.lower().rstrip("/")
            covers = scope_l == ra_scope or scope_l.startswith(ra_scope + "/")
            if covers and (not effective or now - ra.created_on >= self.role_propagation):
                return True
        return False

    def role_definition_id(self, role_name: str) -> str:
        return (f"/subscriptions/{self.subscription_id}/providers/Microsoft.Authorization/"
                f"roleDefinitions/{ROLE_IDS[role_name]}")

    def doctor_may(self, permission: str) -> bool:
        return permission not in self.doctor_denied
