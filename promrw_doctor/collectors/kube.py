"""Kubernetes facts: the connection, zero-config discovery of the Prometheus pod(s), and per-pod data.

Discovery is what makes ``promrw-doctor run`` work with nothing but a kubeconfig context:
Prometheus pods are found by the labels every common install sets
(``app.kubernetes.io/name=prometheus`` and ``operator.prometheus.io/name`` from the
Prometheus Operator / kube-prometheus-stack, ``app=prometheus`` from the older chart),
with one cluster-wide list per selector — never one request per pod, so a 5 000-pod
cluster costs the same handful of requests as a small one. A pod is a target when it
carries the remote-write sidecar (a container named ``prom-remotewrite``, or any
container with ``INGESTION_URL``); when Prometheus pods exist but none has the sidecar,
those pods are the targets (and ``SIDECAR_MISSING`` says why); when nothing is found the
run has one ``cluster`` target on which ``PROM_POD_NOT_FOUND`` says where it looked.

Facts (scope): ``k8s.api`` (run) a :class:`~.kube_client.KubeClient`; ``k8s.context_info``
(run) dict; ``k8s.discovery`` (run) :class:`Discovery`; ``k8s.targets`` (run)
``list[Target]``; ``k8s.log_window`` (run) seconds; and per target ``k8s.pod`` (dict),
``k8s.sidecar_container`` / ``k8s.sidecar_status`` / ``k8s.prometheus_container``
(dict or None), ``k8s.sidecar_env`` (:class:`SidecarEnv`), ``sidecar.settings``
(:class:`~promrw_doctor.domain.sidecar.SidecarSettings`), ``k8s.service_account`` (dict or
None), ``k8s.pod_events`` (list of Event dicts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.errors import AccessDenied, InputError, NotApplicable, Unreachable
from ..core.facts import FactContext, fact
from ..core.model import Target
from ..domain.images import is_sidecar_image, parse_image
from ..domain.logs import parse_duration
from ..domain.sidecar import SIDECAR_CONTAINER_NAME, SidecarSettings, canonical_identity_type, settings_from_env
from .kube_client import (
    CONFIGMAPS,
    EVENTS,
    NAMESPACES,
    PODS,
    SERVICEACCOUNTS,
    ApiError,
    KubeClient,
    UnexpectedAnswer,
    connect,
    needs,
)

#: Label selectors that find Prometheus pods, one cluster-wide list each.
PROMETHEUS_SELECTORS: tuple[str, ...] = (
    "app.kubernetes.io/name=prometheus",  # Prometheus Operator / kube-prometheus-stack (and most charts)
    "operator.prometheus.io/name",  # Prometheus Operator >= 0.60 (any Prometheus CR)
    "app=prometheus",  # prometheus-community/prometheus (older) and hand-written manifests
)
MAX_FALLBACK_NAMESPACES = 100
WI_CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
WI_TENANT_ID_ANNOTATION = "azure.workload.identity/tenant-id"
DEFAULT_SINCE = "30m"


# --------------------------------------------------------------------------- pod shape helpers (pure)


def containers(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]


def container_status(pod: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if isinstance(cs, dict) and cs.get("name") == name:
            return cs
    return None


def env_names(container: Mapping[str, Any]) -> set[str]:
    return {str(e.get("name")) for e in container.get("env") or [] if isinstance(e, Mapping)}


def find_sidecar(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """The remote-write sidecar: named ``prom-remotewrite``, else any container with ``INGESTION_URL``,
    else one running the published sidecar image (renamed containers are common in hand-written values)."""
    cs = containers(pod)
    for c in cs:
        if c.get("name") == SIDECAR_CONTAINER_NAME:
            return c
    for c in cs:
        if "INGESTION_URL" in env_names(c):
            return c
    for c in cs:
        if isinstance(c.get("image"), str) and is_sidecar_image(c["image"]):
            return c
    return None


def is_prometheus_container(c: Mapping[str, Any]) -> bool:
    if c.get("name") == "prometheus":
        return True
    image = c.get("image")
    if isinstance(image, str) and image.strip():
        try:
            repo = parse_image(image).repository
        except ValueError:
            return False
        return repo.rsplit("/", 1)[-1] == "prometheus"
    return False


def find_prometheus_container(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    return next((c for c in containers(pod) if is_prometheus_container(c)), None)


def is_prometheus_pod(pod: Mapping[str, Any]) -> bool:
    return find_prometheus_container(pod) is not None or find_sidecar(pod) is not None


def pod_key(pod: Mapping[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def owner(pod: Mapping[str, Any]) -> str | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return None


# --------------------------------------------------------------------------- run facts


def _client(ctx: FactContext) -> KubeClient:
    client: KubeClient = ctx.fact("k8s.api")
    return client


@fact("k8s.api", scope="run")
def kube_api(ctx: FactContext) -> KubeClient:
    """The run's Kubernetes connection (kubeconfig ``--kubeconfig``/``--context``), checked with ``GET /version``."""
    return connect(ctx.option("kubeconfig"), ctx.option("context"))


@fact("k8s.log_window", scope="run")
def log_window(ctx: FactContext) -> float:
    """``--since`` in seconds (default 30m): the window every log read uses."""
    raw = ctx.option("since") or DEFAULT_SINCE
    try:
        return parse_duration(str(raw))
    except ValueError as exc:
        raise InputError(f"--since: {exc}") from None


@dataclass(frozen=True)
class Discovery:
    """Where discovery looked and what it found."""

    namespaces: tuple[str, ...] | None  # None: every namespace (cluster-wide lists)
    selectors: tuple[str, ...]
    pods: tuple[dict[str, Any], ...]  # Prometheus pods (with or without sidecar), deduplicated
    notes: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()  # permissions discovery lacked

    @property
    def where(self) -> str:
        if self.namespaces is None:
            return "all namespaces"
        if len(self.namespaces) == 1:
            return f"namespace {self.namespaces[0]}"
        return f"namespaces {', '.join(self.namespaces)}" if self.namespaces else "no namespace"


def _discovery_error(client: KubeClient, exc: BaseException) -> InputError:
    where = f"{client.server} (context {client.info.context})"
    if isinstance(exc, Unreachable):
        return InputError(f"cannot reach the Kubernetes API server {where}: {exc.detail}")
    if isinstance(exc, ApiError) and exc.status == 401:
        return InputError(f"the Kubernetes API server {where} rejected the kubeconfig credentials "
                          "(401 Unauthorized): the token has expired or is invalid")
    return InputError(f"unexpected answer from the API server {where}: {exc}")


def _list_prometheus_pods(client: KubeClient, namespace: str | None) -> list[dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for selector in PROMETHEUS_SELECTORS:
        for pod in client.list_objects(PODS, namespace, label_selector=selector):
            if is_prometheus_pod(pod):
                found.setdefault(pod_key(pod), pod)
    return [found[k] for k in sorted(found)]


def discover(client: KubeClient, namespace: str | None) -> Discovery:
    """Find Prometheus pods in ``namespace`` or, when None, in every namespace the user may list.

    Cluster-wide lists first; when those are forbidden, every namespace the user may list
    (from ``list namespaces``), else the kubeconfig context's namespace — saying so.
    ``AccessDenied``/API errors other than those fallbacks propagate to the caller.
    """
    if namespace:
        try:
            found = _list_prometheus_pods(client, namespace)
        except AccessDenied as exc:
            return Discovery((), PROMETHEUS_SELECTORS, (), (f"listing pods in namespace {namespace} is forbidden",),
                             (exc.needs,))
        return Discovery((namespace,), PROMETHEUS_SELECTORS, tuple(found))
    try:
        return Discovery(None, PROMETHEUS_SELECTORS, tuple(_list_prometheus_pods(client, None)))
    except AccessDenied as exc:
        cluster_denied = exc.needs
    notes = [f"listing pods in all namespaces is forbidden ({cluster_denied})"]
    try:
        names = sorted(str((n.get("metadata") or {}).get("name")) for n in client.list_objects(NAMESPACES))
        names = [n for n in names if n]
    except AccessDenied as exc:
        fallback = client.info.namespace
        notes.append(f"listing namespaces is forbidden too ({exc.needs}); searched only the kubeconfig "
                     f"context's namespace {fallback} (pass -n to choose)")
        names = [fallback]
    else:
        if len(names) > MAX_FALLBACK_NAMESPACES:
            notes.append(f"searched the first {MAX_FALLBACK_NAMESPACES} of {len(names)} namespaces; pass -n")
            names = names[:MAX_FALLBACK_NAMESPACES]
        else:
            notes.append("searched each namespace the user may list instead")
    pods: list[dict[str, Any]] = []
    searched: list[str] = []
    denied: list[str] = [cluster_denied]
    for ns in names:
        try:
            pods.extend(_list_prometheus_pods(client, ns))
            searched.append(ns)
        except AccessDenied as exc:
            denied.append(exc.needs)
    return Discovery(tuple(searched), PROMETHEUS_SELECTORS, tuple(pods), tuple(notes), tuple(denied))


@fact("k8s.discovery", scope="run")
def discovery(ctx: FactContext) -> Discovery:
    """Prometheus pods where the user pointed (``-n``) or in every namespace they may list."""
    client = _client(ctx)
    try:
        return discover(client, ctx.option("namespace"))
    except (ApiError, UnexpectedAnswer, Unreachable) as exc:
        raise _discovery_error(client, exc) from None


def _pod_target(pod: Mapping[str, Any], context: str) -> Target:
    ns, name = pod_key(pod)
    sidecar = find_sidecar(pod)
    prom = find_prometheus_container(pod)
    attrs = {
        "namespace": ns,
        "pod": name,
        "node": (pod.get("spec") or {}).get("nodeName"),
        "sidecar_container": sidecar.get("name") if sidecar else None,
        "prometheus_container": prom.get("name") if prom else None,
        "owner": owner(pod),
        "context": context,
    }
    what = "Prometheus pod with remote-write sidecar" if sidecar else "Prometheus pod (no remote-write sidecar)"
    return Target(id=f"{ns}/{name}", kind="pod", description=what,
                  attributes={k: v for k, v in attrs.items() if v is not None})


def _explicit_pod(client: KubeClient, disc: Discovery | None, name: str, namespace: str | None) -> dict[str, Any]:
    """``--pod``: from what discovery already listed, else one GET; a missing pod is an ``InputError``."""
    if "/" in name and not namespace:
        namespace, name = name.split("/", 1)
    if disc is not None:
        hits = [p for p in disc.pods if pod_key(p)[1] == name and (namespace is None or pod_key(p)[0] == namespace)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            spaces = ", ".join(sorted(pod_key(p)[0] for p in hits))
            raise InputError(f"pod {name} exists in several namespaces ({spaces}); pass -n")
    ns = namespace or client.info.namespace
    try:
        pod = client.read(PODS, ns, name)
    except AccessDenied as exc:
        raise InputError(f"cannot read pod {ns}/{name}: missing permission: {exc.needs}") from None
    except (ApiError, UnexpectedAnswer, Unreachable) as exc:
        raise _discovery_error(client, exc) from None
    if pod is None:
        hint = "" if namespace else " (pass -n NAMESPACE if it lives elsewhere)"
        raise InputError(f"pod {ns}/{name} not found{hint}")
    return pod


@fact("k8s.targets", scope="run")
def targets(ctx: FactContext) -> list[Target]:
    """What to check: each Prometheus pod with a sidecar (or all Prometheus pods when none has one),
    the ``--pod`` given, or one ``cluster`` target when nothing was found."""
    client = _client(ctx)
    ctx.fact("k8s.log_window")  # a bad --since is an input error: fail before any check runs
    pod_name = ctx.option("pod")
    namespace = ctx.option("namespace")
    context = client.info.context
    if pod_name:
        disc = ctx.fact("k8s.discovery") if not namespace else None
        if disc is not None:
            client._cache["discovery"] = disc
        pod = _explicit_pod(client, disc, str(pod_name), namespace)
        _remember_pod(client, pod)
        return [_pod_target(pod, context)]
    disc = ctx.fact("k8s.discovery")
    client._cache["discovery"] = disc
    for pod in disc.pods:
        _remember_pod(client, pod)
    with_sidecar = [p for p in disc.pods if find_sidecar(p) is not None]
    chosen = with_sidecar or list(disc.pods)
    if chosen:
        return [_pod_target(p, context) for p in chosen]
    attrs: dict[str, Any] = {"searched": disc.where,
                             "namespaces": "all" if disc.namespaces is None else list(disc.namespaces),
                             "selectors": list(disc.selectors), "context": context}
    if disc.notes:
        attrs["notes"] = list(disc.notes)
    if disc.denied:
        attrs["denied"] = list(disc.denied)
    return [Target(id=context, kind="cluster", description="no Prometheus pod with a remote-write sidecar found",
                   attributes=attrs)]


def _remember_pod(client: KubeClient, pod: dict[str, Any]) -> None:
    client.cached(("pod", *pod_key(pod)), lambda: pod)


@fact("k8s.context_info", scope="run")
def context_info(ctx: FactContext) -> dict[str, Any]:
    """Report header: kubeconfig context, cluster, server, user, where discovery looked, server version."""
    client = _client(ctx)
    info = client.info
    out: dict[str, Any] = {
        "kubeconfig": info.path,
        "context": info.context,
        "cluster": info.cluster,
        "server": client.server,
        "user": info.user,
    }
    version = client._cache.get("version") or {}
    if version.get("gitVersion"):
        out["kubernetes_version"] = version["gitVersion"]
    if ctx.option("pod"):
        out["pod"] = ctx.option("pod")
    disc: Discovery | None = client._cache.get("discovery")  # set by k8s.targets when it searched
    if disc is not None:
        out["searched"] = disc.where
        if disc.notes:
            out["notes"] = list(disc.notes)
    elif ctx.option("namespace"):
        out["searched"] = f"namespace {ctx.option('namespace')}"
    return out


# --------------------------------------------------------------------------- target facts


def target_pod_key(ctx: FactContext) -> tuple[str, str]:
    t = ctx.target
    if t is None or t.kind != "pod":
        raise NotApplicable("no Prometheus pod was found (see kubernetes.prometheus-pod)")
    return str(t.attributes.get("namespace")), str(t.attributes.get("pod"))


@fact("k8s.pod", scope="target")
def pod_fact(ctx: FactContext) -> dict[str, Any]:
    """The target pod's manifest and status, as discovery listed it (no extra request)."""
    ns, name = target_pod_key(ctx)
    client = _client(ctx)

    def fetch() -> dict[str, Any]:
        pod = client.read(PODS, ns, name)
        if pod is None:
            raise NotApplicable(f"pod {ns}/{name} no longer exists")
        return pod

    pod: dict[str, Any] = client.cached(("pod", ns, name), fetch)
    return pod


@fact("k8s.sidecar_container", scope="target")
def sidecar_container(ctx: FactContext) -> dict[str, Any] | None:
    """The remote-write sidecar's container spec, or None when the pod has none."""
    return find_sidecar(ctx.fact("k8s.pod"))


@fact("k8s.sidecar_status", scope="target")
def sidecar_status(ctx: FactContext) -> dict[str, Any] | None:
    """The sidecar's ``containerStatuses`` entry (restarts, state, last state, ready)."""
    c = ctx.fact("k8s.sidecar_container")
    return container_status(ctx.fact("k8s.pod"), str(c.get("name"))) if c else None


@fact("k8s.prometheus_container", scope="target")
def prometheus_container(ctx: FactContext) -> dict[str, Any] | None:
    """The Prometheus container's spec (name ``prometheus`` or a ``*/prometheus`` image)."""
    return find_prometheus_container(ctx.fact("k8s.pod"))


@dataclass(frozen=True)
class SidecarEnv:
    """The sidecar's environment as the container would see it, without reading any Secret.

    ``values``: name -> value; ``None`` = set, value not read (a Secret, a resource field)
    or not resolvable. ``sources``: where each came from. ``unresolved``: name -> why the
    value is unknown. ``opaque``: ``envFrom`` sources whose keys are unknown (Secrets).
    """

    values: dict[str, str | None]
    sources: dict[str, str] = field(default_factory=dict)
    unresolved: dict[str, str] = field(default_factory=dict)
    opaque: tuple[str, ...] = ()


def _field_ref(pod: Mapping[str, Any], path: str) -> str | None:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"), "status.podIP": status.get("podIP"),
              "status.hostIP": status.get("hostIP")}
    value = simple.get(path)
    return str(value) if value is not None else None


def resolve_env(pod: Mapping[str, Any], container: Mapping[str, Any],
                configmap: Any) -> SidecarEnv:
    """Resolve ``env``/``envFrom``. ``configmap(name)`` returns the ConfigMap's ``data`` dict, None when
    it does not exist, or raises ``AccessDenied``. Secrets are never read: their values stay ``None``."""
    values: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    unresolved: dict[str, str] = {}
    opaque: list[str] = []

    def cm_data(name: str) -> tuple[dict[str, Any] | None, str | None]:
        try:
            data = configmap(name)
        except AccessDenied as exc:
            return None, f"cannot read ConfigMap {name}: missing permission: {exc.needs}"
        if data is None:
            return None, f"ConfigMap {name} does not exist"
        return data, None

    for src in container.get("envFrom") or []:
        if not isinstance(src, Mapping):
            continue
        prefix = str(src.get("prefix") or "")
        if isinstance(src.get("configMapRef"), Mapping):
            name = str(src["configMapRef"].get("name"))
            data, why = cm_data(name)
            if data is None:
                opaque.append(f"envFrom configMap {name} ({why})")
                continue
            for k, v in data.items():
                values[prefix + str(k)] = None if v is None else str(v)
                sources[prefix + str(k)] = f"envFrom configMap {name}"
        elif isinstance(src.get("secretRef"), Mapping):
            opaque.append(f"envFrom secret {src['secretRef'].get('name')} (not read)")
    for e in container.get("env") or []:
        if not isinstance(e, Mapping) or not e.get("name"):
            continue
        name = str(e["name"])
        if "value" in e or "valueFrom" not in e:
            values[name] = "" if e.get("value") is None else str(e.get("value"))
            sources[name] = "value"
            unresolved.pop(name, None)
            continue
        ref = e.get("valueFrom") or {}
        values[name] = None
        if isinstance(ref.get("configMapKeyRef"), Mapping):
            cm, key = str(ref["configMapKeyRef"].get("name")), str(ref["configMapKeyRef"].get("key"))
            sources[name] = f"configMap {cm}/{key}"
            data, why = cm_data(cm)
            if data is None:
                unresolved[name] = str(why)
            elif key not in data:
                unresolved[name] = f"ConfigMap {cm} has no key {key}"
            else:
                values[name] = str(data[key])
        elif isinstance(ref.get("secretKeyRef"), Mapping):
            sec = ref["secretKeyRef"]
            sources[name] = f"secret {sec.get('name')}/{sec.get('key')} (not read)"
            unresolved[name] = "from a Secret (the doctor does not read Secrets)"
        elif isinstance(ref.get("fieldRef"), Mapping):
            path = str(ref["fieldRef"].get("fieldPath"))
            sources[name] = f"fieldRef {path}"
            values[name] = _field_ref(pod, path)
            if values[name] is None:
                unresolved[name] = f"fieldRef {path}"
        else:
            sources[name] = "valueFrom"
            unresolved[name] = "resourceFieldRef/valueFrom not resolved"
    return SidecarEnv(values, sources, unresolved, tuple(opaque))


@fact("k8s.sidecar_env", scope="target")
def sidecar_env(ctx: FactContext) -> SidecarEnv:
    """The sidecar's env with ConfigMap references resolved (Secret references marked, never read)."""
    container = ctx.fact("k8s.sidecar_container")
    if container is None:
        raise NotApplicable("the pod has no remote-write sidecar")
    pod = ctx.fact("k8s.pod")
    ns = pod_key(pod)[0]
    client = _client(ctx)

    def configmap(name: str) -> dict[str, Any] | None:
        obj = client.cached(("configmap", ns, name), lambda: client.read(CONFIGMAPS, ns, name))
        return None if obj is None else dict(obj.get("data") or {})

    return resolve_env(pod, container, configmap)


@fact("k8s.service_account", scope="target")
def service_account(ctx: FactContext) -> dict[str, Any] | None:
    """The pod's ServiceAccount (workload identity reads its client-id annotation)."""
    pod = ctx.fact("k8s.pod")
    ns = pod_key(pod)[0]
    name = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    client = _client(ctx)
    return client.cached(("sa", ns, name), lambda: client.read(SERVICEACCOUNTS, ns, str(name)))


@fact("sidecar.settings", scope="target")
def settings(ctx: FactContext) -> SidecarSettings:
    """The sidecar's settings (``SidecarSettings``) from its env.

    For workload identity the client/tenant id the webhook would inject come from the
    ServiceAccount annotations when the pod env lacks them (so the Azure-side checks can
    still look the identity up).
    """
    env = ctx.fact("k8s.sidecar_env")
    s = settings_from_env(env.values)
    if canonical_identity_type(s.identity_type) == "workloadIdentity" and (not s.client_id or not s.tenant_id):
        try:
            sa = ctx.fact("k8s.service_account") or {}
        except Exception:
            sa = {}
        annotations = (sa.get("metadata") or {}).get("annotations") or {}
        s = replace(s, client_id=s.client_id or annotations.get(WI_CLIENT_ID_ANNOTATION) or None,
                    tenant_id=s.tenant_id or annotations.get(WI_TENANT_ID_ANNOTATION) or None)
    return s


@fact("k8s.pod_events", scope="target")
def pod_events(ctx: FactContext) -> list[dict[str, Any]]:
    """Events about the pod (probe failures, back-off, mount errors), newest last."""
    ns, name = target_pod_key(ctx)
    client = _client(ctx)
    try:
        events = client.list_objects(EVENTS, ns, field_selector=f"involvedObject.name={name}")
    except AccessDenied:
        raise
    except ApiError as exc:
        if exc.status == 400:  # a server without that field selector: no events rather than an error
            return []
        raise

    def when(e: Mapping[str, Any]) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get(
            "creationTimestamp") or "")

    return sorted((e for e in events if (e.get("involvedObject") or {}).get("name") == name), key=when)


def pod_needs(verb: str, resource: str, ctx: FactContext) -> str:
    """Permission sentence for the target's namespace (used by other kube collectors)."""
    return needs(verb, resource, target_pod_key(ctx)[0])
