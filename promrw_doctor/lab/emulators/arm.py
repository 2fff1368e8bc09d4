"""Azure Resource Manager, read-only, over :class:`~promrw_doctor.lab.azure_state.AzureState`.

The doctor reads ARM to explain *why* ingestion says 403 (who holds Monitoring Metrics
Publisher where), to find the DCR/DCE behind a workspace, and to resolve identities and
clusters. So this emulator serves exactly those reads, in ARM's JSON shapes and with
ARM's error codes, and nothing else:

* ``GET {scope}/providers/Microsoft.Authorization/roleAssignments[?$filter=...]`` and one
  assignment by id; ``$filter`` supports ``atScope()``, ``principalId eq '{id}'``,
  ``assignedTo('{id}')`` (joined with ``and``); no filter = at, above and below the scope.
* ``GET {scope}/providers/Microsoft.Authorization/roleDefinitions[/{guid}]`` (list with
  ``$filter=roleName eq '...'`` or ``type eq 'BuiltInRole'``), built-ins from ``ROLE_IDS``.
* ``Microsoft.Insights/dataCollectionRules``, ``Microsoft.Insights/dataCollectionEndpoints``,
  ``Microsoft.Monitor/accounts``, ``Microsoft.ManagedIdentity/userAssignedIdentities``,
  ``Microsoft.ContainerService/managedClusters``: get by id, list by subscription and by
  resource group.
* ``GET /subscriptions`` (list: every subscription the world implies, the state's own first, in
  the same shape as ``GET /subscriptions/{s}``), ``GET /subscriptions/{s}``,
  ``GET /subscriptions/{s}/resourcegroups[/{rg}]`` (HEAD on a resource group answers 204/404
  like ARM's existence check).

Precedence, as ARM: token (401) -> ``api-version`` present (400
``MissingApiVersionParameter``) -> route/type and supported api-version (400
``NoRegisteredProviderFound`` / ``InvalidApiVersionParameter``) -> subscription exists
(404) -> ``doctor_denied`` (403 ``AuthorizationFailed``) -> resource group / resource
exists (404). Resource ids compare case-insensitively; responses keep the stored casing.

Permission switches honoured (``state.doctor_denied``): ``arm:subscriptions/read`` (the list is
then empty, as ARM lists only what the caller may read; a get answers 403), ``arm:roleAssignments/read``,
``arm:roleDefinitions/read``, ``arm:dataCollectionRules/read``,
``arm:dataCollectionEndpoints/read``, ``arm:accounts/read`` (workspaces),
``arm:userAssignedIdentities/read``, ``arm:managedClusters/read``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ...domain.clouds import PUBLIC
from ..azure_state import (
    ROLE_IDS,
    AzureState,
    DataCollectionEndpoint,
    DataCollectionRule,
    ManagedCluster,
    ManagedIdentity,
    RoleAssignment,
    Workspace,
)
from ..tokens import TokenInvalid, TokenIssuer
from .azure_common import (
    PERMISSIONS,
    PermissionDenied,
    ServiceError,
    ServiceFlavor,
    arm_time,
    claims_of,
    make_service_app,
    odata_eq,
    require,
    stable_guid,
    unverified_claims,
)

AUTHZ_NS = "Microsoft.Authorization"
ROLE_ASSIGNMENTS_API = ("2015-07-01", "2017-10-01-preview", "2018-01-01-preview", "2018-09-01-preview",
                        "2020-03-01-preview", "2020-04-01-preview", "2020-08-01-preview",
                        "2020-10-01-preview", "2022-01-01-preview", "2022-04-01")
ROLE_DEFINITIONS_API = ("2015-07-01", "2018-01-01-preview", "2022-04-01", "2022-05-01-preview")
SUBSCRIPTIONS_API = ("2014-04-01", "2016-06-01", "2019-06-01", "2019-11-01", "2020-01-01", "2021-01-01",
                     "2022-12-01")
RESOURCE_GROUPS_API = ("2014-04-01", "2018-05-01", "2019-10-01", "2020-06-01", "2021-04-01", "2022-09-01",
                       "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01")
DCR_API = ("2019-11-01-preview", "2021-04-01", "2021-09-01-preview", "2022-06-01", "2023-03-11",
           "2024-03-11")
MONITOR_ACCOUNTS_API = ("2021-06-03-preview", "2023-04-03", "2023-10-01-preview", "2025-05-03-preview")
UAMI_API = ("2015-08-31-preview", "2018-11-30", "2021-09-30-preview", "2022-01-31-preview", "2023-01-31",
            "2023-07-31-preview", "2024-11-30")
AKS_API = (*(f"{y}-{m:02d}-01" for y in (2022, 2023, 2024, 2025) for m in range(1, 13)),
           "2024-05-02-preview", "2024-09-02-preview", "2025-02-02-preview")

DEFAULT_LOCATION = "eastus"
SUBSCRIPTIONS_READ = "arm:subscriptions/read"
MISSING_API_VERSION = "The api-version query parameter (?api-version=) is required for all requests."
_MONITORING_ACCOUNT = "MonitoringAccount1"

# Built-in role definitions the doctor reads (what a Monitoring Metrics Publisher may do, and so on).
_ROLE_DEFS: dict[str, tuple[str, list[str], list[str]]] = {
    "Monitoring Metrics Publisher": (
        "Enables publishing metrics against Azure resources",
        ["Microsoft.Insights/Register/Action", "Microsoft.Support/*",
         "Microsoft.Resources/subscriptions/resourceGroups/read"],
        ["Microsoft.Insights/Metrics/Write", "Microsoft.Insights/Telemetry/Write"]),
    "Monitoring Data Reader": (
        "Provides access to read data in an Azure Monitor workspace",
        ["Microsoft.Monitor/accounts/read"],
        ["Microsoft.Monitor/accounts/data/metrics/read"]),
    "Managed Identity Operator": (
        "Read and Assign User Assigned Identity",
        ["Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
         "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
         "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
         "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Resources/deployments/*",
         "Microsoft.Support/*"],
        []),
    "Virtual Machine Contributor": (
        "Create and manage virtual machines, manage disks, install and run software, reset password of "
        "the root user of the virtual machine using VM extensions, and manage local user accounts using "
        "VM extensions. This role does not grant you management access to the virtual network or "
        "storage account the virtual machines are connected to.",
        ["Microsoft.Authorization/*/read", "Microsoft.Compute/availabilitySets/*",
         "Microsoft.Compute/locations/*", "Microsoft.Compute/virtualMachines/*",
         "Microsoft.Compute/virtualMachineScaleSets/*", "Microsoft.Compute/disks/write",
         "Microsoft.Compute/disks/read", "Microsoft.Compute/disks/delete",
         "Microsoft.Insights/alertRules/*", "Microsoft.Network/networkInterfaces/*",
         "Microsoft.Network/virtualNetworks/read", "Microsoft.Network/virtualNetworks/subnets/join/action",
         "Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read",
         "Microsoft.Support/*"],
        []),
    "Reader": ("View all resources, but does not allow you to make any changes.", ["*/read"], []),
}


# --------------------------------------------------------------------------------------------- errors

def _dotnet_time(epoch: Any) -> str:
    """ARM words token times the .NET way: ``1/15/2026 10:11:12 AM``."""
    try:
        d = datetime.fromtimestamp(int(epoch), UTC)
    except (TypeError, ValueError, OverflowError):
        return str(epoch)
    hour = d.hour % 12 or 12
    return f"{d.month}/{d.day}/{d.year} {hour}:{d.minute:02d}:{d.second:02d} {'AM' if d.hour < 12 else 'PM'}"


class ArmFlavor(ServiceFlavor):
    """ARM's error envelope ``{"error": {"code", "message"}}`` and its 401/403 wording."""

    name = "ARM"

    def __init__(self, state: AzureState, audiences: list[str]) -> None:
        self.state = state
        self.audiences = audiences

    def unauthorized(self, request: web.Request, exc: TokenInvalid) -> web.Response:
        tenant = self.state.tenant_id
        seen = unverified_claims(request)
        if exc.reason == "missing":
            code = "AuthenticationFailed"
            msg = "Authentication failed. The 'Authorization' header is missing."
            desc = "The authentication failed because of missing 'Authorization' header."
        elif exc.reason == "expired":
            now = int(datetime.now(UTC).timestamp())
            code = "ExpiredAuthenticationToken"
            msg = (f"The access token expiry UTC time '{_dotnet_time(seen.get('exp'))}' is earlier than "
                   f"current UTC time '{_dotnet_time(now)}'.")
            desc = "The access token expiry UTC time is earlier than current UTC time."
        elif exc.reason == "audience":
            allowed = ",".join(f"'{a}'" for a in self.audiences)
            code = "InvalidAuthenticationTokenAudience"
            msg = ("The access token has been obtained for wrong audience or resource "
                   f"'{seen.get('aud', '')}'. It should exactly match with one of the allowed audiences "
                   f"{allowed}.")
            desc = "The access token has been obtained for wrong audience or resource."
        elif exc.reason == "tenant":
            code = "InvalidAuthenticationTokenTenant"
            msg = " ".join([
                f"The access token is from the wrong issuer '{seen.get('iss', '')}'.",
                f"It must match the tenant 'https://sts.windows.net/{tenant}/' associated with this",
                f"subscription. Please use the authority (URL) 'https://login.windows.net/{tenant}' to get",
                "the token. Note, if the subscription is transferred to another tenant there is no impact",
                "to the services, but information about new tenant could take time to propagate (up to an",
                "hour). If you just transferred your subscription and see this error message, please try",
                "back later."])
            desc = "The access token is from the wrong issuer."
        elif exc.reason == "signature":
            code, msg = "InvalidAuthenticationToken", "The access token has an invalid signature."
            desc = msg
        else:
            code, msg = "InvalidAuthenticationToken", "The access token is invalid."
            desc = "The access token is invalid."
        challenge = (f'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
                     f'error_description="{desc}"')
        return self.error(request, 401, code, msg, headers={"WWW-Authenticate": challenge})

    def forbidden(self, request: web.Request, exc: PermissionDenied) -> web.Response:
        oid = str(claims_of(request).get("oid", ""))
        action = exc.detail.get("action") or PERMISSIONS[exc.permission]
        msg = (f"The client '{oid}' with object id '{oid}' does not have authorization to perform action "
               f"'{action}' over scope '{exc.scope}' or the scope is invalid. If access was recently "
               "granted, please refresh your credentials.")
        return self.error(request, 403, "AuthorizationFailed", msg)


# ---------------------------------------------------------------------------------------------- model

@dataclass(frozen=True)
class _Id:
    """A parsed ARM resource id (or scope). Fields keep the request's casing."""

    subscription: str = ""
    resource_group: str = ""
    namespace: str = ""
    type: str = ""
    name: str = ""


def parse_resource_id(rid: str) -> _Id:
    """``/subscriptions/s/resourceGroups/rg/providers/NS/type/name`` -> its parts (missing parts empty)."""
    segs = [s for s in rid.split("/") if s]
    sub = rg = ns = typ = name = ""
    i = 0
    if len(segs) >= 2 and segs[0].lower() == "subscriptions":
        sub, i = segs[1], 2
        if len(segs) >= 4 and segs[2].lower() == "resourcegroups":
            rg, i = segs[3], 4
    if len(segs) > i + 1 and segs[i].lower() == "providers":
        ns = segs[i + 1]
        if len(segs) > i + 2:
            typ = segs[i + 2]
        if len(segs) > i + 3:
            name = segs[i + 3]
    return _Id(sub, rg, ns, typ, name)


def _under(scope: str, child: str) -> bool:
    """``child`` equals ``scope`` or lies below it (case-insensitive, segment boundary)."""
    s = scope.lower().rstrip("/")
    c = child.lower().rstrip("/")
    return c == s or s == "" or c.startswith(s + "/")


@dataclass
class _View:
    """What a renderer needs: the state snapshot and the request's api-version."""

    state: AzureState
    api_version: str


@dataclass(frozen=True)
class _Kind:
    """One ARM resource type served by the emulator."""

    type: str  # canonical "Microsoft.Insights/dataCollectionRules"
    permission: str
    api_versions: tuple[str, ...]
    items: Callable[[AzureState], list[tuple[str, Any]]]
    render: Callable[[_View, Any], dict[str, Any]]


def _identities(state: AzureState) -> list[tuple[str, ManagedIdentity]]:
    """User-assigned identities, including each cluster's kubelet identity (it lives in the node RG)."""
    out: dict[str, tuple[str, ManagedIdentity]] = {}
    for mi in state.identities:
        rid = mi.resource_id(state.subscription_id)
        out.setdefault(rid.lower(), (rid, mi))
    for c in state.clusters:
        k = c.kubelet_identity
        if not k.name:
            continue
        if not k.resource_group:
            k = ManagedIdentity(k.name, c.node_resource_group, k.client_id, k.principal_id, k.subscription_id)
        rid = k.resource_id(parse_resource_id(c.id).subscription or state.subscription_id)
        out.setdefault(rid.lower(), (rid, k))
    return list(out.values())


def _locations(state: AzureState) -> list[tuple[str, str]]:
    """(resource id, location) of every located resource, to place RGs and identities."""
    pairs: list[tuple[str, str]] = []
    for seq in (state.workspaces, state.dcrs, state.dces, state.clusters):
        for r in seq:
            pairs.append((r.id, r.location))
    return pairs


def _location_near(state: AzureState, sub: str, rg: str) -> str:
    for rid, loc in _locations(state):
        p = parse_resource_id(rid)
        if p.subscription.lower() == sub.lower() and p.resource_group.lower() == rg.lower() and loc:
            return loc
    return next((loc for _, loc in _locations(state) if loc), DEFAULT_LOCATION)


def _resource_groups(state: AzureState) -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource group the world implies: from resources, node RGs and role-assignment scopes."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}

    def add(sub: str, rg: str, managed_by: str = "") -> None:
        if not sub or not rg:
            return
        key = (sub.lower(), rg.lower())
        entry = groups.setdefault(key, {"subscription": sub, "name": rg, "managed_by": ""})
        if managed_by:
            entry["managed_by"] = managed_by

    ids = [rid for rid, _ in _locations(state)] + [rid for rid, _ in _identities(state)]
    for rid in ids:
        p = parse_resource_id(rid)
        add(p.subscription, p.resource_group)
    for c in state.clusters:
        add(parse_resource_id(c.id).subscription or state.subscription_id, c.node_resource_group, c.id)
    for ra in state.role_assignments:
        p = parse_resource_id(ra.scope)
        add(p.subscription, p.resource_group)
    return groups


def _subscriptions(state: AzureState) -> dict[str, str]:
    subs = {state.subscription_id.lower(): state.subscription_id} if state.subscription_id else {}
    for g in _resource_groups(state).values():
        subs.setdefault(g["subscription"].lower(), g["subscription"])
    return subs


def _workspace_for_dcr(state: AzureState, dcr: DataCollectionRule) -> str:
    if dcr.workspace_id:
        return dcr.workspace_id
    ws = next((w for w in state.workspaces if w.default_dcr_id.lower() == dcr.id.lower()), None)
    return ws.id if ws else ""


def _system_data() -> dict[str, Any]:
    return {"createdByType": "Application", "lastModifiedByType": "Application"}


def _render_dcr(v: _View, d: DataCollectionRule) -> dict[str, Any]:
    """The DCR as ARM returns it; Microsoft-* streams are built-in (no streamDeclarations entry)."""
    ws_id = _workspace_for_dcr(v.state, d)
    custom = [s for s in d.streams if s.lower().startswith("custom-")]
    prom = [s for s in d.streams if s.lower() == "microsoft-prometheusmetrics"]
    props: dict[str, Any] = {
        "immutableId": d.immutable_id,
        "description": "Data collection rule for Azure Monitor Metrics Profile (Managed Prometheus)",
        "streamDeclarations": {s: {"columns": [{"name": "TimeGenerated", "type": "datetime"}]}
                               for s in custom},
        "dataSources": ({"prometheusForwarder": [{"streams": prom, "labelIncludeFilter": {},
                                                   "name": "PrometheusDataSource"}]} if prom else {}),
        "destinations": {"monitoringAccounts": (
            [{"accountResourceId": ws_id, "accountId": stable_guid(ws_id), "name": _MONITORING_ACCOUNT}]
            if ws_id else [])},
        "dataFlows": ([{"streams": list(d.streams), "destinations": [_MONITORING_ACCOUNT]}]
                      if d.streams and ws_id else []),
        "provisioningState": "Succeeded",
    }
    if d.dce_id:
        props["dataCollectionEndpointId"] = d.dce_id
    return {"properties": props, "location": d.location, "tags": {}, "id": d.id, "name": d.name,
            "type": "Microsoft.Insights/dataCollectionRules", "etag": _etag(d.id),
            "systemData": _system_data()}


def _sibling_host(metrics_host: str, infix: str) -> str:
    """Logs/configuration endpoints of a DCE: real ones differ by a host infix; the lab reuses its host."""
    if ".metrics.ingest." in metrics_host:
        return metrics_host.replace(".metrics.ingest.", infix, 1)
    return metrics_host


def _render_dce(v: _View, d: DataCollectionEndpoint) -> dict[str, Any]:
    props: dict[str, Any] = {
        "immutableId": d.immutable_id,
        "configurationAccess": {"endpoint": "https://" + _sibling_host(d.metrics_ingestion_host,
                                                                        ".handler.control.")},
        "logsIngestion": {"endpoint": "https://" + _sibling_host(d.metrics_ingestion_host, ".ingest.")},
        "networkAcls": {"publicNetworkAccess": "Enabled"},
        "provisioningState": "Succeeded",
    }
    # "Metrics-Ingestion-URL: can be obtained by viewing DCE JSON body with API version
    # 2021-09-01-preview or newer" (Microsoft docs): older versions do not carry it.
    if v.api_version not in ("2019-11-01-preview", "2021-04-01"):
        props["metricsIngestion"] = {"endpoint": "https://" + d.metrics_ingestion_host}
    return {"properties": props, "location": d.location, "tags": {}, "id": d.id, "name": d.name,
            "type": "Microsoft.Insights/dataCollectionEndpoints", "etag": _etag(d.id),
            "systemData": _system_data()}


def _render_workspace(v: _View, w: Workspace) -> dict[str, Any]:
    account_id = stable_guid(w.id)
    return {
        "id": w.id, "name": w.name, "type": "Microsoft.Monitor/accounts", "location": w.location,
        "tags": {}, "etag": _etag(w.id), "systemData": _system_data(),
        "properties": {
            "accountId": account_id,
            "metrics": {"prometheusQueryEndpoint": w.query_endpoint, "internalId": f"mac_{account_id}"},
            "provisioningState": "Succeeded",
            "defaultIngestionSettings": {"dataCollectionRuleResourceId": w.default_dcr_id,
                                         "dataCollectionEndpointResourceId": w.default_dce_id},
            "publicNetworkAccess": "Enabled",
            "privateEndpointConnections": [],
        },
    }


def _render_identity(v: _View, item: tuple[str, ManagedIdentity]) -> dict[str, Any]:
    rid, mi = item
    p = parse_resource_id(rid)
    return {
        "id": rid, "name": mi.name, "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": _location_near(v.state, p.subscription, p.resource_group), "tags": {},
        "properties": {"isolationScope": "None", "tenantId": v.state.tenant_id,
                       "principalId": mi.principal_id, "clientId": mi.client_id},
    }


def _render_cluster(v: _View, c: ManagedCluster) -> dict[str, Any]:
    k = c.kubelet_identity
    sub = parse_resource_id(c.id).subscription or v.state.subscription_id
    k_rg = k.resource_group or c.node_resource_group
    k_id = ManagedIdentity(k.name, k_rg, k.client_id, k.principal_id, k.subscription_id).resource_id(sub)
    dns_prefix = f"{c.name}-dns"
    fqdn = f"{dns_prefix}-{hashlib.sha1(c.id.lower().encode()).hexdigest()[:8]}.hcp.{c.location}.azmk8s.io"
    return {
        "id": c.id, "location": c.location, "name": c.name, "tags": {},
        "type": "Microsoft.ContainerService/ManagedClusters",
        "sku": {"name": "Base", "tier": "Free"},
        "identity": {"type": "SystemAssigned", "principalId": stable_guid(c.id, "control-plane"),
                     "tenantId": v.state.tenant_id},
        "properties": {
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "kubernetesVersion": "1.29.4",
            "currentKubernetesVersion": "1.29.4",
            "dnsPrefix": dns_prefix,
            "fqdn": fqdn,
            "agentPoolProfiles": [{"name": "nodepool1", "count": 3, "vmSize": "Standard_DS2_v2",
                                   "osType": "Linux", "mode": "System", "type": "VirtualMachineScaleSets",
                                   "provisioningState": "Succeeded", "powerState": {"code": "Running"}}],
            "nodeResourceGroup": c.node_resource_group,
            "enableRBAC": True,
            "identityProfile": {"kubeletidentity": {"resourceId": k_id, "clientId": k.client_id,
                                                    "objectId": k.principal_id}},
            "oidcIssuerProfile": ({"enabled": True, "issuerURL": c.oidc_issuer} if c.oidc_issuer
                                  else {"enabled": False}),
            "securityProfile": {"workloadIdentity": {"enabled": bool(c.oidc_issuer)}},
            "networkProfile": {"networkPlugin": "kubenet", "loadBalancerSku": "standard"},
        },
    }


def _etag(rid: str) -> str:
    return '"' + stable_guid(rid, "etag") + '"'


KINDS: dict[str, _Kind] = {
    k.type.lower(): k for k in (
        _Kind("Microsoft.Insights/dataCollectionRules", "arm:dataCollectionRules/read", DCR_API,
              lambda s: [(d.id, d) for d in s.dcrs], _render_dcr),
        _Kind("Microsoft.Insights/dataCollectionEndpoints", "arm:dataCollectionEndpoints/read", DCR_API,
              lambda s: [(d.id, d) for d in s.dces], _render_dce),
        _Kind("Microsoft.Monitor/accounts", "arm:accounts/read", MONITOR_ACCOUNTS_API,
              lambda s: [(w.id, w) for w in s.workspaces], _render_workspace),
        _Kind("Microsoft.ManagedIdentity/userAssignedIdentities", "arm:userAssignedIdentities/read", UAMI_API,
              lambda s: [(rid, (rid, mi)) for rid, mi in _identities(s)], _render_identity),
        _Kind("Microsoft.ContainerService/managedClusters", "arm:managedClusters/read", AKS_API,
              lambda s: [(c.id, c) for c in s.clusters], _render_cluster),
    )
}
_KNOWN_NAMESPACES = {k.type.split("/")[0].lower() for k in KINDS.values()}


# -------------------------------------------------------------------------------------------- helpers

def _check_version(api_version: str, supported: tuple[str, ...], type_name: str, location: str) -> None:
    if api_version not in supported:
        typ = type_name.partition("/")[2]
        raise ServiceError(
            400, "NoRegisteredProviderFound",
            f"No registered resource provider found for location '{location}' and API version "
            f"'{api_version}' for type '{typ}'. The supported api-versions are '{', '.join(supported)}'. "
            f"The supported locations are '{location}'.")


def _check_resources_version(api_version: str, supported: tuple[str, ...]) -> None:
    if api_version not in supported:
        raise ServiceError(400, "InvalidApiVersionParameter",
                           f"The api-version '{api_version}' is invalid. The supported versions are "
                           f"'{','.join(reversed(supported))}'.")


def _need_subscription(state: AzureState, sub: str) -> str:
    subs = _subscriptions(state)
    if sub.lower() not in subs:
        raise ServiceError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
    return subs[sub.lower()]


def _need_group(state: AzureState, sub: str, rg: str) -> dict[str, Any]:
    g = _resource_groups(state).get((sub.lower(), rg.lower()))
    if g is None:
        raise ServiceError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    return g


def _not_found(type_name: str, name: str, rg: str) -> ServiceError:
    return ServiceError(404, "ResourceNotFound",
                        f"The Resource '{type_name}/{name}' under resource group '{rg}' was not found. "
                        "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def _listing(values: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"value": values})


# ------------------------------------------------------------------------------------ role assignments

def _render_assignment(ra: RoleAssignment) -> dict[str, Any]:
    return {
        "id": ra.id, "name": ra.name, "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": ra.role_definition_id,
            "principalId": ra.principal_id,
            "principalType": ra.principal_type,
            "scope": ra.scope,
            "condition": None,
            "conditionVersion": None,
            "createdOn": arm_time(ra.created_on),
            "updatedOn": arm_time(ra.created_on),
            "createdBy": stable_guid("lab-admin"),
            "updatedBy": stable_guid("lab-admin"),
            "delegatedManagedIdentityResourceId": None,
            "description": None,
        },
    }


_RA_FILTER_HELP = ("Supported filters are either 'atScope()' or 'principalId eq '{value}' or "
                   "assignedTo('{value}')'.")


def _parse_ra_filter(raw: str) -> tuple[bool, str | None]:
    """(at_scope_only, principal id or None) from ``$filter``; 400 ``UnsupportedQuery`` otherwise."""
    import re

    at_scope, principal = False, None
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.I):
        c = clause.strip()
        if not c:
            continue
        m = re.fullmatch(r"assignedTo\('([^']*)'\)", c, flags=re.I)
        eq = odata_eq(c)
        if c.replace(" ", "").lower() == "atscope()":
            at_scope = True
        elif m:
            principal = m.group(1)
        elif eq and eq[0].lower() == "principalid":
            principal = eq[1]
        else:
            raise ServiceError(400, "UnsupportedQuery",
                               f"The filter '{raw}' is not supported. {_RA_FILTER_HELP}")
    return at_scope, principal


def _validate_scope(state: AzureState, scope: str) -> None:
    if scope in ("", "/"):
        return
    p = parse_resource_id(scope)
    if not p.subscription:
        # Management-group scopes are real but not modelled by the lab.
        raise ServiceError(400, "InvalidScope", f"The scope '{scope}' is not valid for this operation.")
    _need_subscription(state, p.subscription)


def _role_assignments(request: web.Request, state: AzureState, scope: str, rest: list[str],
                      api_version: str) -> web.Response:
    _check_version(api_version, ROLE_ASSIGNMENTS_API, "Microsoft.Authorization/roleAssignments", "global")
    _validate_scope(state, scope)
    require(state, "arm:roleAssignments/read", scope or "/")
    p = parse_resource_id(scope)
    if p.resource_group:
        _need_group(state, p.subscription, p.resource_group)
    assignments = list(state.role_assignments)
    if len(rest) == 1:  # one assignment by scope + name
        name = rest[0]
        ra = next((a for a in assignments if a.name.lower() == name.lower()
                   and a.scope.lower().rstrip("/") == (scope or "/").lower().rstrip("/")), None)
        if ra is None:
            raise ServiceError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
        return web.json_response(_render_assignment(ra))
    if rest:
        raise ServiceError(400, "InvalidResourceType",
                           "The resource type 'roleAssignments' does not support child resources.")
    at_scope, principal = _parse_ra_filter(request.query.get("$filter", ""))
    out = []
    for ra in assignments:
        above_or_at = _under(ra.scope, scope)
        below = _under(scope, ra.scope)
        if not (above_or_at or (below and not at_scope)):
            continue
        if principal is not None and ra.principal_id.lower() != principal.lower():
            continue
        out.append(_render_assignment(ra))
    return _listing(out)


# ------------------------------------------------------------------------------------ role definitions

def _render_role(scope_sub: str, role: str, guid: str) -> dict[str, Any]:
    desc, actions, data_actions = _ROLE_DEFS.get(role, (f"{role} (lab built-in role)", [], []))
    prefix = f"/subscriptions/{scope_sub}" if scope_sub else ""
    return {
        "id": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
        "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role, "type": "BuiltInRole", "description": desc, "assignableScopes": ["/"],
            "permissions": [{"actions": actions, "notActions": [], "dataActions": data_actions,
                             "notDataActions": []}],
            "createdOn": "2018-08-14T00:36:16.5610279Z", "updatedOn": "2021-11-11T20:13:50.6279288Z",
            "createdBy": None, "updatedBy": None,
        },
    }


def _role_definitions(request: web.Request, state: AzureState, scope: str, rest: list[str],
                      api_version: str) -> web.Response:
    _check_version(api_version, ROLE_DEFINITIONS_API, "Microsoft.Authorization/roleDefinitions", "global")
    _validate_scope(state, scope)
    require(state, "arm:roleDefinitions/read", scope or "/")
    sub = parse_resource_id(scope).subscription
    if len(rest) == 1:
        guid = rest[0].lower()
        role = next((r for r, g in ROLE_IDS.items() if g.lower() == guid), None)
        if role is None:
            raise ServiceError(404, "RoleDefinitionDoesNotExist",
                               f"The specified role definition with ID '{rest[0]}' does not exist.")
        return web.json_response(_render_role(sub, role, ROLE_IDS[role]))
    if rest:
        raise ServiceError(400, "InvalidResourceType",
                           "The resource type 'roleDefinitions' does not support child resources.")
    raw = request.query.get("$filter", "").strip()
    roles = list(ROLE_IDS.items())
    if raw:
        eq = odata_eq(raw)
        if eq and eq[0].lower() == "rolename":
            roles = [(r, g) for r, g in roles if r.lower() == eq[1].lower()]
        elif eq and eq[0].lower() == "type":
            roles = roles if eq[1].lower() == "builtinrole" else []
        else:
            raise ServiceError(400, "UnsupportedQuery",
                               f"The filter '{raw}' is not supported. Supported filters are "
                               "'roleName eq '{value}'' or 'type eq 'BuiltInRole|CustomRole''.")
    return _listing([_render_role(sub, r, g) for r, g in roles])


# ------------------------------------------------------------------------------- subscriptions and RGs

def _render_group(g: dict[str, Any], location: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"/subscriptions/{g['subscription']}/resourceGroups/{g['name']}", "name": g["name"],
        "type": "Microsoft.Resources/resourceGroups", "location": location, "tags": {},
        "properties": {"provisioningState": "Succeeded"},
    }
    if g["managed_by"]:
        body["managedBy"] = g["managed_by"]
    return body


def _render_subscription(state: AzureState, sub: str) -> dict[str, Any]:
    """One subscription, the same shape from the list and from the get (as ARM's Subscriptions API)."""
    primary = sub.lower() == state.subscription_id.lower()
    return {
        "id": f"/subscriptions/{sub}", "authorizationSource": "RoleBased", "managedByTenants": [],
        "subscriptionId": sub, "tenantId": state.tenant_id,
        "displayName": "promrw-doctor lab" if primary else f"promrw-doctor lab ({sub})",
        "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                 "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
    }


def _list_subscriptions(state: AzureState, api_version: str) -> web.Response:
    """``GET /subscriptions``: a tenant-level read that never says 403. Like ARM it lists only what the
    caller may read, so with ``arm:subscriptions/read`` denied the list is empty (200)."""
    _check_resources_version(api_version, SUBSCRIPTIONS_API)
    if not state.doctor_may(SUBSCRIPTIONS_READ):
        return _listing([])
    subs = _subscriptions(state)
    ordered = sorted(subs.values(), key=lambda s: (s.lower() != state.subscription_id.lower(), s.lower()))
    return _listing([_render_subscription(state, s) for s in ordered])


def _subscription_routes(request: web.Request, state: AzureState, segs: list[str],
                         api_version: str) -> web.StreamResponse:
    sub = _need_subscription(state, segs[1])
    if len(segs) == 2:
        _check_resources_version(api_version, SUBSCRIPTIONS_API)
        require(state, SUBSCRIPTIONS_READ, f"/subscriptions/{sub}")
        return web.json_response(_render_subscription(state, sub))
    _check_resources_version(api_version, RESOURCE_GROUPS_API)
    if len(segs) == 3:
        groups = [g for g in _resource_groups(state).values() if g["subscription"].lower() == sub.lower()]
        return _listing([_render_group(g, _location_near(state, sub, g["name"])) for g in groups])
    g = _need_group(state, sub, segs[3])
    if request.method == "HEAD":
        return web.Response(status=204)
    return web.json_response(_render_group(g, _location_near(state, sub, g["name"])))


# ----------------------------------------------------------------------------------- provider resources

def _provider_routes(request: web.Request, state: AzureState, segs: list[str], prov: int,
                     api_version: str) -> web.Response:
    """``segs[prov] == 'providers'``; ``segs[:prov]`` is the subscription (+ resource group) scope."""
    sub = segs[1]
    rg = segs[3] if prov == 4 else ""
    tail = segs[prov + 1:]
    if len(tail) < 2:
        raise ServiceError(404, "NotFound", "The requested resource provider operation was not found.")
    ns, typ = tail[0], tail[1]
    kind = KINDS.get(f"{ns}/{typ}".lower())
    if kind is None:
        if len(tail) >= 3:  # a resource of a type the lab does not model: ARM would say not found
            _need_subscription(state, sub)
            if rg:
                _need_group(state, sub, rg)
            raise _not_found(f"{ns}/{typ}", tail[2], rg)
        if ns.lower() not in _KNOWN_NAMESPACES:
            raise ServiceError(400, "InvalidResourceNamespace", f"The resource namespace '{ns}' is invalid.")
        raise ServiceError(404, "InvalidResourceType",
                           f"The resource type '{typ}' could not be found in the namespace '{ns}' for api "
                           f"version '{api_version}'.")
    location = _location_near(state, sub, rg) if rg else "global"
    _check_version(api_version, kind.api_versions, kind.type, location)
    sub = _need_subscription(state, sub)
    if len(tail) > 3:
        raise _not_found(f"{ns}/{typ}/{'/'.join(tail[2:])}", tail[-1], rg)
    scope = "/" + "/".join(segs)
    require(state, kind.permission, scope)
    if rg:
        _need_group(state, sub, rg)
    view = _View(state, api_version)
    items = kind.items(state)
    if len(tail) == 3:  # get one
        want = scope.lower().rstrip("/")
        for rid, obj in items:
            if rid.lower().rstrip("/") == want:
                return web.json_response(kind.render(view, obj))
        raise _not_found(kind.type, tail[2], rg)
    out = []
    for rid, obj in items:
        p = parse_resource_id(rid)
        if p.subscription.lower() != sub.lower():
            continue
        if rg and p.resource_group.lower() != rg.lower():
            continue
        out.append(kind.render(view, obj))
    return _listing(out)


# ------------------------------------------------------------------------------------------------- app

def make_app(
    state: AzureState,
    issuer: TokenIssuer,
    *,
    audience: str = PUBLIC.arm_audience,
    extra_audiences: Iterable[str] = (),
) -> web.Application:
    """The ARM emulator. ``audience`` is the cloud's ``arm_audience``; ARM also accepts its endpoint
    URL as audience, so pass ``extra_audiences=[profile.arm_endpoint]`` for full fidelity."""
    audiences = [audience, *extra_audiences]
    flavor = ArmFlavor(state, audiences)

    async def handle(request: web.Request) -> web.StreamResponse:
        api_version = request.query.get("api-version", "")
        if not api_version:
            raise ServiceError(400, "MissingApiVersionParameter", MISSING_API_VERSION)
        with state.lock:  # one consistent snapshot per request while a scenario mutates the world
            return _dispatch(request, api_version)

    def _dispatch(request: web.Request, api_version: str) -> web.StreamResponse:
        path = request.path.rstrip("/")
        low = path.lower()
        marker = f"/providers/{AUTHZ_NS.lower()}/"
        idx = low.rfind(marker)
        if idx >= 0:
            scope = path[:idx]
            rest = [s for s in path[idx + len(marker):].split("/") if s]
            what = rest[0].lower() if rest else ""
            if what == "roleassignments":
                return _role_assignments(request, state, scope, rest[1:], api_version)
            if what == "roledefinitions":
                return _role_definitions(request, state, scope, rest[1:], api_version)
            raise ServiceError(404, "InvalidResourceType",
                               f"The resource type '{rest[0] if rest else ''}' could not be found in the "
                               f"namespace '{AUTHZ_NS}' for api version '{api_version}'.")
        segs = [s for s in path.split("/") if s]
        if len(segs) == 1 and segs[0].lower() == "subscriptions":
            return _list_subscriptions(state, api_version)
        if len(segs) >= 2 and segs[0].lower() == "subscriptions":
            if len(segs) == 2 or (segs[2].lower() == "resourcegroups" and len(segs) in (3, 4)):
                return _subscription_routes(request, state, segs, api_version)
            if segs[2].lower() == "providers":
                return _provider_routes(request, state, segs, 2, api_version)
            if segs[2].lower() == "resourcegroups" and len(segs) > 4 and segs[4].lower() == "providers":
                return _provider_routes(request, state, segs, 4, api_version)
        raise ServiceError(404, "NotFound", f"The requested path '{path or '/'}' was not found.")

    return make_service_app(state, issuer, flavor, handle, audiences=audiences)
