"""ARM facts: the DCR the ingestion URL names, its DCE and workspace, the sidecar's identity and its roles.

Every lookup is a GET, cached for the run, and says where it looked, so a "not found"
finding can name the subscriptions it searched and an ``unknown`` the permission it
lacked. Lists are per subscription (``GET /subscriptions/{s}/providers/…``), never one
request per target; Azure Resource Graph is not used (its query API is a POST, and the
doctor must be visibly read-only in every request log).

Facts (all target scope): ``azure.dcr`` (:class:`DcrLookup`), ``azure.dce`` (dict or None),
``azure.workspace`` (dict or None), ``azure.principal`` (:class:`PrincipalLookup`),
``azure.role_assignments`` (:class:`Assignments` of the sidecar's principal),
``azure.cluster`` (:class:`ClusterMatch`), ``azure.kubelet_role_assignments``
(:class:`Assignments` of the cluster's kubelet identity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.errors import AccessDenied, NotApplicable, Unknown, Unreachable
from ..core.facts import FactContext, fact
from ..domain.certs import parse_time
from ..domain.sidecar import SidecarSettings, is_guid
from .azure import SubscriptionScope, node_object, subscriptions_in
from .azure_http import (
    API_AKS,
    API_DCR,
    API_MONITOR_ACCOUNTS,
    API_ROLE_ASSIGNMENTS,
    API_UAMI,
    GRAPH_NEEDS,
    AzureApiError,
    AzureHttp,
    arm_needs,
)

DCR_TYPE = "Microsoft.Insights/dataCollectionRules"
DCE_TYPE = "Microsoft.Insights/dataCollectionEndpoints"
UAMI_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
AKS_TYPE = "Microsoft.ContainerService/managedClusters"
ROLE_ASSIGNMENTS_ACTION = "Microsoft.Authorization/roleAssignments/read"
AKS_CLUSTER_LABEL = "kubernetes.azure.com/cluster"


def _http(ctx: FactContext) -> AzureHttp:
    client: AzureHttp = ctx.fact("azure.http")
    return client


def _sub_list(client: AzureHttp, sub: str, rtype: str) -> list[dict[str, Any]] | None:
    """Every resource of ``rtype`` in subscription ``sub`` (once per run); None if the subscription is unknown."""
    api = {DCR_TYPE: API_DCR, DCE_TYPE: API_DCR, UAMI_TYPE: API_UAMI, AKS_TYPE: API_AKS}[rtype]
    path = f"/subscriptions/{sub}/providers/{rtype}"
    needs = arm_needs(f"{rtype}/read", f"/subscriptions/{sub}")
    result: list[dict[str, Any]] | None = client.cached(("list", sub.lower(), rtype.lower()),
                                                        lambda: client.arm_list(path, api, needs=needs))
    return result


def _search(client: AzureHttp, scope: SubscriptionScope, rtype: str,
            match: Callable[[dict[str, Any]], bool]) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    """The first resource of ``rtype`` matching in the scope's subscriptions: (found, searched, denied needs)."""
    searched: list[str] = []
    denied: list[str] = []
    for sub in scope.ids:
        try:
            items = _sub_list(client, sub, rtype)
        except AccessDenied as exc:
            denied.append(exc.needs)
            continue
        searched.append(sub)
        for item in items or []:
            if match(item):
                return item, searched, denied
    return None, searched, denied


def props(obj: dict[str, Any] | None) -> dict[str, Any]:
    p = (obj or {}).get("properties")
    return p if isinstance(p, dict) else {}


# --------------------------------------------------------------------------- DCR / DCE / workspace


@dataclass(frozen=True)
class DcrLookup:
    """The DCR whose ``immutableId`` the ingestion URL names, and where the doctor looked for it."""

    immutable_id: str
    dcr: dict[str, Any] | None
    searched: tuple[str, ...]
    method: str = "ARM list of Microsoft.Insights/dataCollectionRules per subscription"
    scope_source: str = ""

    @property
    def id(self) -> str:
        return str((self.dcr or {}).get("id") or "")

    @property
    def name(self) -> str:
        return str((self.dcr or {}).get("name") or "")

    @property
    def dce_id(self) -> str | None:
        value = props(self.dcr).get("dataCollectionEndpointId")
        return str(value) if value else None

    @property
    def streams(self) -> list[str]:
        """Streams the DCR accepts: its data sources' and data flows' streams."""
        p = props(self.dcr)
        out: list[str] = []
        for sources in (p.get("dataSources") or {}).values():
            for src in sources if isinstance(sources, list) else []:
                out += [str(s) for s in (src or {}).get("streams") or []]
        for flow in p.get("dataFlows") or []:
            out += [str(s) for s in (flow or {}).get("streams") or []]
        return sorted(set(out), key=out.index)

    @property
    def workspace_ids(self) -> list[str]:
        accounts = (props(self.dcr).get("destinations") or {}).get("monitoringAccounts") or []
        return [str(a.get("accountResourceId")) for a in accounts if isinstance(a, dict)
                and a.get("accountResourceId")]

    def where(self) -> str:
        subs = ", ".join(f"/subscriptions/{s}" for s in self.searched) or "no readable subscription"
        return f"{self.method} in {subs}"


@fact("azure.dcr", scope="target")
def dcr(ctx: FactContext) -> DcrLookup:
    """The DCR the ingestion URL's immutable id resolves to (None inside when no readable subscription has it)."""
    url = ctx.fact("azure.ingestion_url")
    immutable = url.dcr_immutable_id
    if not immutable:
        raise NotApplicable("the ingestion URL carries no usable DCR immutable id (see azure.ingestion-url)")
    scope: SubscriptionScope = ctx.fact("azure.subscriptions")
    client = _http(ctx)
    want = immutable.lower()
    found, searched, denied = _search(client, scope, DCR_TYPE,
                                      lambda d: str(props(d).get("immutableId") or "").lower() == want)
    if found is None and denied:
        raise AccessDenied("; ".join(sorted(set(denied))),
                           f"DCR {immutable} is not in the subscriptions the doctor could read")
    return DcrLookup(immutable, found, tuple(searched), scope_source=scope.source)


def _get_by_id(client: AzureHttp, rid: str, api: str, action: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = client.cached(
        ("get", rid.lower()), lambda: client.arm(rid, api, needs=arm_needs(action, rid)))
    return result


@fact("azure.dce", scope="target")
def dce(ctx: FactContext) -> dict[str, Any] | None:
    """The DCE the DCR uses (``properties.dataCollectionEndpointId``); None when the DCR names none."""
    lookup: DcrLookup = ctx.fact("azure.dcr")
    if lookup.dcr is None:
        raise NotApplicable("the DCR was not found")
    if not lookup.dce_id:
        return None
    found = _get_by_id(_http(ctx), lookup.dce_id, API_DCR, f"{DCE_TYPE}/read")
    if found is None:
        raise NotApplicable(f"the DCR names DCE {lookup.dce_id}, which does not exist")
    return found


@fact("azure.workspace", scope="target")
def workspace(ctx: FactContext) -> dict[str, Any] | None:
    """The Azure Monitor workspace (``Microsoft.Monitor/accounts``) the DCR sends to; None if it names none."""
    lookup: DcrLookup = ctx.fact("azure.dcr")
    if lookup.dcr is None:
        raise NotApplicable("the DCR was not found")
    ids = lookup.workspace_ids
    if not ids:
        return None
    return _get_by_id(_http(ctx), ids[0], API_MONITOR_ACCOUNTS, "Microsoft.Monitor/accounts/read")


# --------------------------------------------------------------------------- the sidecar's identity


@dataclass(frozen=True)
class Principal:
    client_id: str
    principal_id: str  # the object id role assignments name
    kind: str  # "ManagedIdentity" | "Application"
    display_name: str = ""
    resource_id: str | None = None  # user-assigned identity ARM id
    source: str = ""


@dataclass(frozen=True)
class PrincipalLookup:
    client_id: str
    principal: Principal | None
    searched: tuple[str, ...]
    # When not found as a client id: the identity whose principal (object) id the value is.
    object_id_of: Principal | None = None


def _uami_principal(item: dict[str, Any], sub: str) -> Principal:
    p = props(item)
    return Principal(client_id=str(p.get("clientId") or ""), principal_id=str(p.get("principalId") or ""),
                     kind="ManagedIdentity", display_name=str(item.get("name") or ""),
                     resource_id=str(item.get("id") or "") or None,
                     source=f"ARM userAssignedIdentities in /subscriptions/{sub}")


def _graph_principal(client: AzureHttp, client_id: str) -> tuple[Principal | None, bool]:
    """(principal, authoritative): Graph's ``servicePrincipals(appId=…)`` covers applications and
    managed identities tenant-wide, so its 404 is a real "not found"."""
    sp = client.cached(("sp", client_id.lower()),
                       lambda: client.graph(f"servicePrincipals(appId='{client_id}')",
                                            params={"$select": "id,appId,displayName,servicePrincipalType,"
                                                               "alternativeNames"}))
    if sp is None:
        return None, True
    sp_type = str(sp.get("servicePrincipalType") or "Application")
    resource_id = next((str(a) for a in sp.get("alternativeNames") or []
                        if str(a).lower().startswith("/subscriptions/")), None)
    return Principal(client_id=client_id, principal_id=str(sp.get("id") or ""),
                     kind="ManagedIdentity" if sp_type == "ManagedIdentity" else "Application",
                     display_name=str(sp.get("displayName") or ""), resource_id=resource_id,
                     source="Microsoft Graph servicePrincipals"), True


def resolve_principal(client: AzureHttp, scope: SubscriptionScope | None, client_id: str,
                      prefer_graph: bool) -> PrincipalLookup:
    """Find ``client_id``: ARM user-assigned identities per subscription and Graph service principals."""
    searched: list[str] = []
    denied: list[str] = []
    graph_said_missing = False

    def via_arm() -> Principal | None:
        if scope is None:
            return None
        want = client_id.lower()
        found, subs, no = _search(client, scope, UAMI_TYPE,
                                  lambda i: str(props(i).get("clientId") or "").lower() == want)
        searched.extend(f"ARM userAssignedIdentities in /subscriptions/{s}" for s in subs)
        denied.extend(no)
        if found is None:
            return None
        sub = subscriptions_in([found.get("id")])
        return _uami_principal(found, sub[0] if sub else "?")

    def via_graph() -> Principal | None:
        nonlocal graph_said_missing
        try:
            found, authoritative = _graph_principal(client, client_id)
        except AccessDenied as exc:
            denied.append(exc.needs)
            return None
        except (Unreachable, AzureApiError) as exc:
            denied.append(f"{GRAPH_NEEDS} (Graph did not answer: {exc})")
            return None
        searched.append("Microsoft Graph servicePrincipals (tenant-wide)")
        graph_said_missing = found is None and authoritative
        return found

    order = (via_graph, via_arm) if prefer_graph else (via_arm, via_graph)
    for step in order:
        found = step()
        if found is not None:
            return PrincipalLookup(client_id, found, tuple(searched))
        if graph_said_missing:
            break
    if denied and not graph_said_missing:
        raise AccessDenied("; ".join(dict.fromkeys(denied)),
                           f"client id {client_id} not found where the doctor could look")
    return PrincipalLookup(client_id, None, tuple(searched), _by_object_id(client, scope, client_id))


def _by_object_id(client: AzureHttp, scope: SubscriptionScope | None, value: str) -> Principal | None:
    """The identity whose principal (object) id is ``value``: the classic copy-paste mistake. Best effort."""
    want = value.lower()
    for sub in scope.ids if scope else ():
        try:
            items = _sub_list(client, sub, UAMI_TYPE)
        except (AccessDenied, Unreachable, AzureApiError):
            continue
        for item in items or []:
            if str(props(item).get("principalId") or "").lower() == want:
                return _uami_principal(item, sub)
    try:
        sp = client.cached(("sp-oid", want), lambda: client.graph(
            f"servicePrincipals/{value}", params={"$select": "id,appId,displayName,servicePrincipalType"}))
    except (AccessDenied, Unreachable, AzureApiError):
        return None
    if not sp or not sp.get("appId"):
        return None
    kind = "ManagedIdentity" if sp.get("servicePrincipalType") == "ManagedIdentity" else "Application"
    return Principal(client_id=str(sp["appId"]), principal_id=str(sp.get("id") or value), kind=kind,
                     display_name=str(sp.get("displayName") or ""), source="Microsoft Graph servicePrincipals")


@fact("azure.principal", scope="target")
def principal(ctx: FactContext) -> PrincipalLookup:
    """The sidecar's client id resolved to its principal (object) id and kind."""
    settings: SidecarSettings = ctx.fact("sidecar.settings")
    cid = (settings.client_id or "").strip()
    if not cid:
        raise NotApplicable("the sidecar has no AZURE_CLIENT_ID (system-assigned identity or not configured)")
    if not is_guid(cid):
        raise NotApplicable(f"AZURE_CLIENT_ID {cid!r} is not a GUID (reported by the sidecar env check)")
    try:
        variant = str(ctx.fact("target.variant"))
    except Exception:
        variant = ""
    try:
        scope: SubscriptionScope | None = ctx.fact("azure.subscriptions")
    except AccessDenied:
        scope = None
    return resolve_principal(_http(ctx), scope, cid, prefer_graph=variant in ("aadApplication", "workloadIdentity"))


# --------------------------------------------------------------------------- role assignments


@dataclass(frozen=True)
class RoleAssignment:
    id: str
    scope: str
    role_guid: str
    principal_id: str
    created_on: datetime | None

    def covers(self, resource_id: str) -> bool:
        """Does this assignment's scope equal ``resource_id`` or contain it?"""
        s = self.scope.lower().rstrip("/")
        r = resource_id.lower().rstrip("/")
        return s in ("", "/") or r == s or r.startswith(s + "/")


@dataclass(frozen=True)
class Assignments:
    principal_id: str
    items: tuple[RoleAssignment, ...]
    searched: tuple[str, ...]
    partial: tuple[str, ...] = field(default_factory=tuple)  # needs of subscriptions that could not be read

    def of_role(self, role_guid: str) -> list[RoleAssignment]:
        return [a for a in self.items if a.role_guid == role_guid.lower()]


def _assignment(item: dict[str, Any]) -> RoleAssignment:
    p = props(item)
    rd = str(p.get("roleDefinitionId") or "")
    return RoleAssignment(id=str(item.get("id") or ""), scope=str(p.get("scope") or ""),
                          role_guid=rd.rstrip("/").rsplit("/", 1)[-1].lower(),
                          principal_id=str(p.get("principalId") or ""), created_on=parse_time(p.get("createdOn")))


def assignments_for(client: AzureHttp, principal_id: str, subscriptions: list[str], required: set[str]) -> Assignments:
    """``assignedTo('<principal>')`` in each subscription (at, above and below it). A denied subscription in
    ``required`` (the one holding the resource to judge) raises; the others only make the view partial."""
    items: dict[str, RoleAssignment] = {}
    searched: list[str] = []
    partial: list[str] = []
    for sub in subscriptions:
        scope_id = f"/subscriptions/{sub}"
        needs = arm_needs(ROLE_ASSIGNMENTS_ACTION, scope_id)

        def fetch(scope_id: str = scope_id, needs: str = needs) -> list[dict[str, Any]] | None:
            return client.arm_list(f"{scope_id}/providers/Microsoft.Authorization/roleAssignments",
                                   API_ROLE_ASSIGNMENTS, needs=needs,
                                   params={"$filter": f"assignedTo('{principal_id}')"})

        try:
            listed = client.cached(("ra", sub.lower(), principal_id.lower()), fetch)
        except AccessDenied as exc:
            if sub.lower() in required:
                raise
            partial.append(exc.needs)
            continue
        searched.append(scope_id)
        for item in listed or []:
            ra = _assignment(item)
            if ra.principal_id.lower() == principal_id.lower():
                items.setdefault(ra.id.lower(), ra)
    return Assignments(principal_id, tuple(items.values()), tuple(searched), tuple(partial))


@fact("azure.role_assignments", scope="target")
def role_assignments(ctx: FactContext) -> Assignments:
    """Role assignments of the sidecar's principal in the DCR's subscription and the searched ones."""
    lookup: PrincipalLookup = ctx.fact("azure.principal")
    if lookup.principal is None:
        raise NotApplicable("the sidecar's identity was not found")
    subs: list[str] = []
    required: set[str] = set()
    try:
        d: DcrLookup | None = ctx.fact("azure.dcr")
    except NotApplicable:
        d = None
    if d is not None and d.dcr is not None:
        required = set(subscriptions_in([d.id]))
        subs += list(required)
    try:
        scope: SubscriptionScope | None = ctx.fact("azure.subscriptions")
    except AccessDenied:
        scope = None
    for s in scope.ids if scope else ():
        if s not in subs:
            subs.append(s)
    if not subs:
        raise NotApplicable("no subscription to search for role assignments")
    return assignments_for(_http(ctx), lookup.principal.principal_id, subs, required or {subs[0]})


# --------------------------------------------------------------------------- the AKS cluster


@dataclass(frozen=True)
class ClusterMatch:
    cluster: dict[str, Any]
    matched_by: str

    @property
    def id(self) -> str:
        return str(self.cluster.get("id") or "")

    @property
    def name(self) -> str:
        return str(self.cluster.get("name") or "")

    @property
    def node_resource_group(self) -> str:
        return str(props(self.cluster).get("nodeResourceGroup") or "")

    @property
    def node_resource_group_id(self) -> str:
        subs = subscriptions_in([self.id])
        return f"/subscriptions/{subs[0]}/resourceGroups/{self.node_resource_group}" if subs else ""

    @property
    def kubelet(self) -> dict[str, Any]:
        k = (props(self.cluster).get("identityProfile") or {}).get("kubeletidentity") or {}
        return k if isinstance(k, dict) else {}


def _node_rg(node: dict[str, Any] | None) -> str | None:
    if not node:
        return None
    labels = (node.get("metadata") or {}).get("labels") or {}
    if labels.get(AKS_CLUSTER_LABEL):
        return str(labels[AKS_CLUSTER_LABEL])
    provider = str((node.get("spec") or {}).get("providerID") or "")
    parts = provider.split("/")
    for i, part in enumerate(parts):
        if part.lower() == "resourcegroups" and i + 1 < len(parts):
            return parts[i + 1]
    return None


@fact("azure.cluster", scope="target")
def cluster(ctx: FactContext) -> ClusterMatch:
    """The AKS cluster the pod runs in: by node resource group (node label/providerID), else by name
    (kubeconfig cluster, the sidecar's ``CLUSTER``)."""
    pod = ctx.fact("k8s.pod")
    node_name = (pod.get("spec") or {}).get("nodeName")
    node_rg = _node_rg(node_object(ctx, str(node_name))) if node_name else None
    names: list[str] = []
    try:
        info = ctx.fact("k8s.context_info") or {}
        if info.get("cluster"):
            names.append(str(info["cluster"]))
    except Exception:
        pass
    try:
        settings: SidecarSettings = ctx.fact("sidecar.settings")
        if settings.cluster:
            names.append(settings.cluster)
    except Exception:
        pass
    scope: SubscriptionScope = ctx.fact("azure.subscriptions")
    client = _http(ctx)
    if node_rg:
        found, _, denied = _search(client, scope, AKS_TYPE,
                                   lambda c: str(props(c).get("nodeResourceGroup") or "").lower() == node_rg.lower())
        if found is not None:
            return ClusterMatch(found, f"node resource group {node_rg}")
    else:
        denied = []
    lowered = [n.lower() for n in names]
    found, _, more = _search(client, scope, AKS_TYPE, lambda c: str(c.get("name") or "").lower() in lowered)
    if found is not None:
        return ClusterMatch(found, f"cluster name {found.get('name')}")
    denied += more
    if denied:
        raise AccessDenied("; ".join(dict.fromkeys(denied)), "cannot list the AKS clusters")
    hint = f"node resource group {node_rg}" if node_rg else "no node resource group (cannot read the node)"
    raise Unknown(f"no AKS cluster in {scope.describe()} matches {hint} or the names {', '.join(names) or '-'}",
                  needs="the AKS cluster's subscription (pass --subscription)")


@fact("azure.kubelet_role_assignments", scope="target")
def kubelet_role_assignments(ctx: FactContext) -> Assignments:
    """Role assignments of the cluster's kubelet identity (the identity aad-pod-identity's MIC acts as)."""
    match: ClusterMatch = ctx.fact("azure.cluster")
    object_id = str(match.kubelet.get("objectId") or "")
    if not object_id:
        raise NotApplicable(f"cluster {match.name} has no kubelet identity (service-principal cluster)")
    subs = subscriptions_in([match.id, match.kubelet.get("resourceId")])
    try:
        scope: SubscriptionScope | None = ctx.fact("azure.subscriptions")
    except AccessDenied:
        scope = None
    extra = [s for s in (scope.ids if scope else ()) if s not in subs]
    return assignments_for(_http(ctx), object_id, subs + extra, set(subs[:1]))
