"""The resource types the lab API server knows: kind <-> plural <-> group/version, and discovery documents.

One table drives everything (routing, discovery, manifest validation, error wording) so a
resource can never be listable but undiscoverable, which is exactly the kind of mismatch
kubectl notices (``the server doesn't have a resource type ...``) and a real cluster never shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CORE = ""
APPS = "apps"
AAD_POD_IDENTITY = "aadpodidentity.k8s.io"
SECRETS_STORE = "secrets-store.csi.x-k8s.io"
MONITORING = "monitoring.coreos.com"
APIEXTENSIONS = "apiextensions.k8s.io"

#: Groups that exist on every cluster; everything else is a CRD group that a scenario may leave out.
BUILTIN_GROUPS = frozenset({CORE, APPS, APIEXTENSIONS})


@dataclass(frozen=True)
class ResourceInfo:
    """One served resource type, in the shape discovery and error messages need."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` a manifest of this kind carries."""
        return self.group_version

    @property
    def qualified(self) -> str:
        """``plural`` or ``plural.group``: how the API server names the resource in Status messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def is_crd(self) -> bool:
        return self.group not in BUILTIN_GROUPS

    def discovery_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["get", "list", "watch"],
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


def _r(group: str, version: str, plural: str, singular: str, kind: str, namespaced: bool = True,
       short: Iterable[str] = (), categories: Iterable[str] = ()) -> ResourceInfo:
    return ResourceInfo(group, version, plural, singular, kind, namespaced, tuple(short), tuple(categories))


RESOURCES: tuple[ResourceInfo, ...] = (
    _r(CORE, "v1", "pods", "pod", "Pod", short=["po"], categories=["all"]),
    _r(CORE, "v1", "events", "event", "Event", short=["ev"]),
    _r(CORE, "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", short=["sa"]),
    _r(CORE, "v1", "secrets", "secret", "Secret"),
    _r(CORE, "v1", "configmaps", "configmap", "ConfigMap", short=["cm"]),
    _r(CORE, "v1", "namespaces", "namespace", "Namespace", namespaced=False, short=["ns"]),
    _r(CORE, "v1", "nodes", "node", "Node", namespaced=False, short=["no"]),
    _r(CORE, "v1", "services", "service", "Service", short=["svc"], categories=["all"]),
    _r(APPS, "v1", "daemonsets", "daemonset", "DaemonSet", short=["ds"], categories=["all"]),
    _r(APPS, "v1", "statefulsets", "statefulset", "StatefulSet", short=["sts"], categories=["all"]),
    _r(APPS, "v1", "deployments", "deployment", "Deployment", short=["deploy"], categories=["all"]),
    _r(APPS, "v1", "replicasets", "replicaset", "ReplicaSet", short=["rs"], categories=["all"]),
    _r(APIEXTENSIONS, "v1", "customresourcedefinitions", "customresourcedefinition",
       "CustomResourceDefinition", namespaced=False, short=["crd", "crds"], categories=["api-extensions"]),
    _r(AAD_POD_IDENTITY, "v1", "azureidentities", "azureidentity", "AzureIdentity"),
    _r(AAD_POD_IDENTITY, "v1", "azureidentitybindings", "azureidentitybinding", "AzureIdentityBinding"),
    _r(AAD_POD_IDENTITY, "v1", "azureassignedidentities", "azureassignedidentity", "AzureAssignedIdentity"),
    _r(AAD_POD_IDENTITY, "v1", "azurepodidentityexceptions", "azurepodidentityexception",
       "AzurePodIdentityException"),
    _r(SECRETS_STORE, "v1", "secretproviderclasses", "secretproviderclass", "SecretProviderClass"),
    _r(SECRETS_STORE, "v1", "secretproviderclasspodstatuses", "secretproviderclasspodstatus",
       "SecretProviderClassPodStatus"),
    _r(MONITORING, "v1", "prometheuses", "prometheus", "Prometheus", short=["prom"],
       categories=["prometheus-operator"]),
    _r(MONITORING, "v1", "servicemonitors", "servicemonitor", "ServiceMonitor", short=["smon"],
       categories=["prometheus-operator"]),
    _r(MONITORING, "v1", "podmonitors", "podmonitor", "PodMonitor", short=["pmon"],
       categories=["prometheus-operator"]),
)

#: Subresources served (besides the object itself): discovery lists them so kubectl/clients see them.
SUBRESOURCES: dict[tuple[str, str], tuple[str, ...]] = {("", "pods"): ("log", "proxy")}
_SUBRESOURCE_KIND = {"log": "Pod", "proxy": "PodProxyOptions"}

BY_KIND: dict[tuple[str, str], ResourceInfo] = {(r.api_version, r.kind): r for r in RESOURCES}
BY_PLURAL: dict[tuple[str, str, str], ResourceInfo] = {(r.group, r.version, r.plural): r for r in RESOURCES}
ALL_GROUPS: tuple[str, ...] = tuple(dict.fromkeys(r.group for r in RESOURCES))


def resource_for_manifest(api_version: str, kind: str) -> ResourceInfo | None:
    """The resource a manifest with this ``apiVersion``/``kind`` belongs to, or None when unknown."""
    return BY_KIND.get((api_version, kind))


def known_kinds() -> str:
    """Human list for error messages: ``Pod (v1), DaemonSet (apps/v1), ...``."""
    return ", ".join(f"{r.kind} ({r.api_version})" for r in RESOURCES)


def group_versions(groups: Iterable[str]) -> dict[str, list[str]]:
    """group -> versions, in table order, restricted to ``groups``."""
    wanted = set(groups)
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group in wanted and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out


def api_versions_doc(server_address: str) -> dict[str, Any]:
    """``GET /api``: the legacy core group."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group_list_doc(groups: Iterable[str]) -> dict[str, Any]:
    """``GET /apis``: the legacy (non-aggregated) APIGroupList, which every client still accepts."""
    items = []
    for group, versions in group_versions(g for g in groups if g).items():
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        items.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def api_group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    """``GET /apis/<group>``: one APIGroup."""
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs,
            "preferredVersion": gvs[0]}


def api_resource_list_doc(group: str, version: str) -> dict[str, Any]:
    """``GET /api/v1`` or ``/apis/<g>/<v>``: APIResourceList with subresources after their parent."""
    resources: list[dict[str, Any]] = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        resources.append(r.discovery_entry())
        for sub in SUBRESOURCES.get((r.group, r.plural), ()):
            resources.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                              "kind": _SUBRESOURCE_KIND.get(sub, r.kind), "verbs": ["get"]})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def crd_manifest(group: str, timestamp: str) -> list[dict[str, Any]]:
    """CustomResourceDefinition objects for an installed CRD group, as ``kubectl get crd`` shows them.

    Synthesised (not scenario-authored) because a cluster that serves a CRD group necessarily
    has its CRDs; a check that reads ``customresourcedefinitions`` must see the same truth
    discovery tells.
    """
    out: list[dict[str, Any]] = []
    for r in RESOURCES:
        if r.group != group:
            continue
        names: dict[str, Any] = {"plural": r.plural, "singular": r.singular, "kind": r.kind,
                                 "listKind": f"{r.kind}List"}
        if r.short_names:
            names["shortNames"] = list(r.short_names)
        if r.categories:
            names["categories"] = list(r.categories)
        out.append({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{r.plural}.{r.group}", "creationTimestamp": timestamp},
            "spec": {
                "group": r.group,
                "names": names,
                "scope": "Namespaced" if r.namespaced else "Cluster",
                "versions": [{
                    "name": r.version, "served": True, "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object",
                                                   "x-kubernetes-preserve-unknown-fields": True}},
                }],
            },
            "status": {
                "acceptedNames": names,
                "storedVersions": [r.version],
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                     "message": "no conflicts found", "lastTransitionTime": timestamp},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                     "message": "the initial names have been accepted", "lastTransitionTime": timestamp},
                ],
            },
        })
    return out
