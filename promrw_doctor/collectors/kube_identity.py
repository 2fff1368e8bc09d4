"""Identity facts from the cluster: aad-pod-identity objects, NMI, Secrets Store CSI, and the variant.

Each cluster-wide list (bindings, identities, assigned identities, daemonsets, NMI pods,
SecretProviderClasses) is fetched once per run and filtered in memory per target; when the
cluster-wide list is forbidden the target's namespace is listed instead and the view says
what it could not see. A CRD that is not installed reads as "no objects".

Facts (scope): ``k8s.pod_identity`` (target) :class:`PodIdentityView`;
``k8s.pod_identity_assigned`` (target) list of AzureAssignedIdentity dicts for the pod;
``k8s.nmi`` (run) :class:`NmiInfo`; ``k8s.nmi_pod`` (target) the NMI pod on the pod's node
or None; ``k8s.secret_provider_classes`` (target) list of SecretProviderClass dicts in the
pod's namespace; ``target.variant`` (target) ``managedIdentity|podIdentity|aadApplication|
workloadIdentity``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import AccessDenied
from ..core.facts import FactContext, fact
from ..domain.podidentity import LABEL_KEY, miscased_keys
from ..domain.sidecar import canonical_identity_type
from .kube import containers, pod_key
from .kube_client import (
    AZURE_ASSIGNED_IDENTITIES,
    AZURE_IDENTITIES,
    AZURE_IDENTITY_BINDINGS,
    DAEMONSETS,
    PODS,
    SECRET_PROVIDER_CLASSES,
    ApiError,
    KubeClient,
    needs,
)

NMI_NAMESPACES = ("kube-system", "default")
NAMESPACED_ANNOTATION = "aadpodidentity.k8s.io/Behavior"


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


# --------------------------------------------------------------------------- NMI


@dataclass(frozen=True)
class NmiInfo:
    """NMI DaemonSets found, their pods, and whether NMI runs namespaced (managed mode / forceNamespaced)."""

    daemonsets: tuple[dict[str, Any], ...]
    pods: tuple[dict[str, Any], ...]
    namespaced: bool
    mode: str  # "managed" | "standard" | ""
    cluster_wide: bool = True
    note: str | None = None


def is_nmi_daemonset(ds: Mapping[str, Any]) -> bool:
    meta = ds.get("metadata") or {}
    labels = meta.get("labels") or {}
    if meta.get("name") == "nmi" or labels.get("component") == "nmi" or \
            labels.get("app.kubernetes.io/component") == "nmi":
        return True
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    return any("aad-pod-identity/nmi" in str(c.get("image") or "") for c in spec.get("containers") or [])


def nmi_mode(ds: Mapping[str, Any]) -> tuple[str, bool]:
    """("managed"|"standard", namespaced) from the NMI container's args/env."""
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    args: list[str] = []
    env: dict[str, str] = {}
    for c in spec.get("containers") or []:
        args += [str(a) for a in c.get("args") or []]
        env.update({str(e.get("name")): str(e.get("value")) for e in c.get("env") or [] if isinstance(e, Mapping)})
    joined = " ".join(args).lower()
    managed = "--operation-mode=managed" in joined
    forced = "--forcenamespaced=true" in joined or env.get("FORCENAMESPACED", "").lower() == "true"
    return ("managed" if managed else "standard"), managed or forced


def _selector(ds: Mapping[str, Any]) -> str | None:
    match = ((ds.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not match:
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(match.items()))


def find_nmi(client: KubeClient) -> NmiInfo:
    """NMI DaemonSets (cluster-wide, else kube-system/default) and their pods (one list per DaemonSet)."""
    note = None
    cluster_wide = True
    try:
        daemonsets = client.list_cached(DAEMONSETS)
    except AccessDenied as exc:
        cluster_wide = False
        daemonsets = []
        denied = [exc.needs]
        for ns in NMI_NAMESPACES:
            try:
                daemonsets += client.list_cached(DAEMONSETS, ns)
            except AccessDenied as inner:
                denied.append(inner.needs)
        if len(denied) == len(NMI_NAMESPACES) + 1:
            raise AccessDenied(" or ".join(denied[:2])) from None
        note = f"only {', '.join(NMI_NAMESPACES)} searched for NMI ({exc.needs} is forbidden)"
    nmi = [d for d in daemonsets if is_nmi_daemonset(d)]
    pods: list[dict[str, Any]] = []
    mode, namespaced = "", False
    for ds in nmi:
        m, n = nmi_mode(ds)
        mode = mode or m
        namespaced = namespaced or n
        selector = _selector(ds)
        if selector:
            pods += client.list_cached(PODS, _ns(ds), label_selector=selector)
    return NmiInfo(tuple(nmi), tuple(pods), namespaced, mode, cluster_wide, note)


@fact("k8s.nmi", scope="run")
def nmi(ctx: FactContext) -> NmiInfo:
    """aad-pod-identity's NMI DaemonSet(s) and pods, once per run."""
    return find_nmi(ctx.fact("k8s.api"))


@fact("k8s.nmi_pod", scope="target")
def nmi_pod(ctx: FactContext) -> dict[str, Any] | None:
    """The NMI pod on the Prometheus pod's node (the one that answers its token requests), or None."""
    pod = ctx.fact("k8s.pod")
    node = (pod.get("spec") or {}).get("nodeName")
    info: NmiInfo = ctx.fact("k8s.nmi")
    for p in info.pods:
        if node and (p.get("spec") or {}).get("nodeName") == node:
            return p
    return None


# --------------------------------------------------------------------------- pod identity objects


@dataclass(frozen=True)
class PodIdentityView:
    """What a pod-identity judgement needs about one pod.

    ``bindings``/``identities``: the objects NMI would consider for this pod (its namespace
    when NMI runs namespaced, else every namespace the doctor could list).
    ``other_bindings``: bindings outside that scope (to explain a namespaced-mode miss).
    """

    label: str | None
    label_near: tuple[str, ...]
    namespaced: bool
    installed: bool
    bindings: tuple[dict[str, Any], ...]
    identities: tuple[dict[str, Any], ...]
    other_bindings: tuple[dict[str, Any], ...] = ()
    scope_note: str | None = None
    namespace: str = ""

    def identity(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((i for i in self.identities if _ns(i) == namespace and _name(i) == name), None)


def binding_annotated_namespaced(obj: Mapping[str, Any]) -> bool:
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    return str(ann.get(NAMESPACED_ANNOTATION, "")).lower() == "namespaced"


@fact("k8s.pod_identity", scope="target")
def pod_identity(ctx: FactContext) -> PodIdentityView:
    """The pod's ``aadpodidbinding`` label and the AzureIdentityBindings/AzureIdentities NMI would match it with."""
    client: KubeClient = ctx.fact("k8s.api")
    pod = ctx.fact("k8s.pod")
    ns = pod_key(pod)[0]
    labels = (pod.get("metadata") or {}).get("labels") or {}
    label = labels.get(LABEL_KEY)
    near = tuple(found for found, _ in miscased_keys(labels, (LABEL_KEY,)))
    try:
        info: NmiInfo | None = ctx.fact("k8s.nmi")
    except (AccessDenied, ApiError):
        info = None
    namespaced = bool(info and info.namespaced)
    bindings = client.visible(AZURE_IDENTITY_BINDINGS, ns)
    identities = client.visible(AZURE_IDENTITIES, ns)
    note = None
    if not bindings.cluster_wide:
        note = f"only namespace {ns} was visible ({bindings.cluster_denied} is forbidden)"
    in_scope: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    for b in bindings.items:
        if namespaced or binding_annotated_namespaced(b):
            (in_scope if _ns(b) == ns else other).append(b)
        else:
            in_scope.append(b)
    return PodIdentityView(
        label=None if label is None else str(label),
        label_near=near,
        namespaced=namespaced,
        installed=bindings.installed,
        bindings=tuple(in_scope),
        identities=tuple(identities.items),
        other_bindings=tuple(other),
        scope_note=note,
        namespace=ns,
    )


@fact("k8s.pod_identity_assigned", scope="target")
def pod_identity_assigned(ctx: FactContext) -> list[dict[str, Any]]:
    """AzureAssignedIdentity objects MIC created for this pod (spec.pod/spec.podNamespace)."""
    client: KubeClient = ctx.fact("k8s.api")
    ns, name = pod_key(ctx.fact("k8s.pod"))
    view = client.visible(AZURE_ASSIGNED_IDENTITIES, ns)
    return [a for a in view.items
            if (a.get("spec") or {}).get("pod") == name and (a.get("spec") or {}).get("podNamespace", ns) == ns]


@fact("k8s.secret_provider_classes", scope="target")
def secret_provider_classes(ctx: FactContext) -> list[dict[str, Any]]:
    """SecretProviderClasses in the pod's namespace (a CSI volume may only name one of those)."""
    client: KubeClient = ctx.fact("k8s.api")
    ns = pod_key(ctx.fact("k8s.pod"))[0]
    try:
        return client.list_cached(SECRET_PROVIDER_CLASSES, ns)
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise


# --------------------------------------------------------------------------- variant


def classify_variant(identity_type: str | None, has_label: bool, bindings_nearby: bool, nmi_present: bool) -> str:
    """The identity variant: the sidecar's ``IDENTITY_TYPE`` decides, and for ``userAssigned`` pod
    identity is in play as soon as the pod carries the label, bindings exist for it, or NMI runs
    (NMI intercepts every IMDS call on its nodes)."""
    kind = canonical_identity_type(identity_type)
    if kind == "aadApplication":
        return "aadApplication"
    if kind == "workloadIdentity":
        return "workloadIdentity"
    if has_label or bindings_nearby or nmi_present:
        return "podIdentity"
    return "managedIdentity"


@fact("target.variant", scope="target")
def variant(ctx: FactContext) -> str:
    """How the sidecar authenticates (see :func:`classify_variant`)."""
    s = ctx.fact("sidecar.settings")
    kind = canonical_identity_type(s.identity_type)
    if kind in ("aadApplication", "workloadIdentity"):
        return kind
    pod = ctx.fact("k8s.pod")
    labels = (pod.get("metadata") or {}).get("labels") or {}
    has_label = LABEL_KEY in labels or bool(miscased_keys(labels, (LABEL_KEY,)))
    try:
        view: PodIdentityView | None = ctx.fact("k8s.pod_identity")
    except Exception:
        view = None
    try:
        info: NmiInfo | None = ctx.fact("k8s.nmi")
    except Exception:
        info = None
    ns = pod_key(pod)[0]
    nearby = bool(view and any(_ns(b) == ns for b in view.bindings + view.other_bindings))
    return classify_variant(s.identity_type, has_label, nearby, bool(info and info.daemonsets))


def pod_identity_needs(ns: str) -> str:
    return needs("list", AZURE_IDENTITY_BINDINGS, ns)


__all__ = ["NmiInfo", "PodIdentityView", "classify_variant", "containers", "find_nmi", "is_nmi_daemonset"]
