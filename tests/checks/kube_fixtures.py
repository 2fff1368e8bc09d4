"""Hand-filled facts for the cluster-side checks: a pod builder and a one-check runner.

``run_check`` runs one check through the real engine with every fact preset (the seam we
own), so no test can reach a cluster: ``k8s.api`` is a sentinel that fails loudly if a
check ever needs an unpreset fact computed, and the Azure facts a cluster-side check may
fall back to (``AZURE_OFF``) are preset to "not available". ``Fails(exc)`` presets a fact
that raises, e.g. ``Fails(AccessDenied("get pods/log in namespace monitoring"))``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from promrw_doctor.collectors.kube import SidecarEnv
from promrw_doctor.collectors.kube_identity import NmiInfo, PodIdentityView
from promrw_doctor.core import FactStore, Target
from promrw_doctor.core.engine import Engine, EngineOptions
from promrw_doctor.core.errors import NotApplicable
from promrw_doctor.core.facts import _Slot, fact_spec
from promrw_doctor.core.model import CheckResult
from promrw_doctor.core.registry import Registry, spec_of
from promrw_doctor.domain.sidecar import settings_from_env

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC).timestamp()
NS = "monitoring"
POD = "prometheus-prom-0"
NODE = "aks-nodepool1-vmss000000"
CLIENT_ID = "9a1b2c3d-4e5f-4a6b-8c7d-1e2f3a4b5c6d"
TENANT_ID = "7d3c2a1b-5e4f-4a6b-9c8d-0e1f2a3b4c5d"
IMAGE = ("mcr.microsoft.com/azuremonitor/containerinsights/ciprod/prometheus-remote-write/images:"
         "prom-remotewrite-20250814.1")
TARGET = Target(id=f"{NS}/{POD}", kind="pod", description="Prometheus pod with remote-write sidecar",
                attributes={"namespace": NS, "pod": POD, "node": NODE, "sidecar_container": "prom-remotewrite",
                            "prometheus_container": "prometheus", "owner": "StatefulSet/prometheus-prom"})


def iso(offset_s: float) -> str:
    return datetime.fromtimestamp(NOW + offset_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NoCluster:
    """Stands in for ``k8s.api``: any use means a test forgot to preset a fact."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a check reached the cluster (k8s.api.{name}); preset the fact instead")


def pod_identity_env(client_id: str = CLIENT_ID) -> dict[str, str]:
    return {"INGESTION_URL": "https://amw-x.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/"
                             "dcr-00000000000000000000000000000000/streams/Microsoft-PrometheusMetrics/api/v1/write"
                             "?api-version=2023-04-24",
            "LISTENING_PORT": "8081", "IDENTITY_TYPE": "userAssigned", "AZURE_CLIENT_ID": client_id}


def sidecar(env: dict[str, str] | None = None, *, mounts: list[dict[str, Any]] | None = None,
            image: str = IMAGE, port: int = 8081) -> dict[str, Any]:
    return {
        "name": "prom-remotewrite", "image": image,
        "ports": [{"name": "rw-port", "containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "rw-port"}},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "rw-port"}},
        "env": [{"name": k, "value": v} for k, v in (env if env is not None else pod_identity_env()).items()],
        "volumeMounts": mounts or [],
    }


def running(name: str = "prom-remotewrite", **kw: Any) -> dict[str, Any]:
    status = {"name": name, "ready": True, "started": True, "restartCount": 0, "image": kw.pop("image", IMAGE),
              "state": {"running": {"startedAt": iso(-86400)}}}
    status.update(kw)
    return status


def make_pod(*, labels: dict[str, str] | None = None, containers: list[dict[str, Any]] | None = None,
             statuses: list[dict[str, Any]] | None = None, volumes: list[dict[str, Any]] | None = None,
             annotations: dict[str, str] | None = None, sa: str = "prometheus-sa",
             prometheus_image: str = "quay.io/prometheus/prometheus:v2.51.2") -> dict[str, Any]:
    prom = {"name": "prometheus", "image": prometheus_image, "ports": [{"name": "http-web", "containerPort": 9090}]}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD, "namespace": NS, "labels": dict(labels or {}),
                     "annotations": dict(annotations or {})},
        "spec": {"nodeName": NODE, "serviceAccountName": sa,
                 "containers": [prom, *(containers if containers is not None else [sidecar()])],
                 "volumes": volumes or []},
        "status": {"phase": "Running", "podIP": "10.244.0.23",
                   "containerStatuses": statuses if statuses is not None else [
                       running("prometheus", image=prometheus_image), running()]},
    }


def sidecar_env(values: dict[str, str | None], **kw: Any) -> SidecarEnv:
    return SidecarEnv(dict(values), {k: "value" for k in values}, **kw)


def settings(values: dict[str, str] | None = None) -> Any:
    return settings_from_env(values if values is not None else pod_identity_env())


def nmi_info(*, daemonsets: int = 1, pods: list[dict[str, Any]] | None = None, mode: str = "managed") -> NmiInfo:
    ds = {"metadata": {"name": "nmi", "namespace": "kube-system"},
          "status": {"desiredNumberScheduled": 1, "numberReady": 1}}
    return NmiInfo(tuple([ds] * daemonsets), tuple(pods or []), mode == "managed", mode)


def nmi_pod(*, ready: bool = True, node: str = NODE, waiting: str | None = None) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": "nmi", "ready": ready, "restartCount": 0 if ready else 12,
                          "state": {"waiting": {"reason": waiting}} if waiting else {"running": {}}}
    return {"metadata": {"name": "nmi-abcde", "namespace": "kube-system"}, "spec": {"nodeName": node},
            "status": {"phase": "Running", "containerStatuses": [cs],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def binding(name: str, selector: Any, identity: str = "prom-rw-mi", ns: str = NS, *,
            keys: tuple[str, str] = ("azureIdentity", "selector")) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {keys[0]: identity, keys[1]: selector}}


def identity(name: str = "prom-rw-mi", client_id: str = CLIENT_ID, ns: str = NS, kind: int = 0,
             client_key: str = "clientID") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"type": kind, client_key: client_id,
                     "resourceID": f"/subscriptions/{TENANT_ID}/resourcegroups/rg/providers/"
                                   f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}"}}


def pi_view(label: str | None = "prom-rw", bindings: list[dict[str, Any]] | None = None,
            identities: list[dict[str, Any]] | None = None, *, namespaced: bool = True,
            other: list[dict[str, Any]] | None = None, installed: bool = True) -> PodIdentityView:
    return PodIdentityView(label=label, label_near=(), namespaced=namespaced, installed=installed,
                           bindings=tuple(bindings if bindings is not None else [binding("b", "prom-rw")]),
                           identities=tuple(identities if identities is not None else [identity()]),
                           other_bindings=tuple(other or []), namespace=NS)


def defaults() -> dict[str, Any]:
    pod = make_pod()
    return {
        "k8s.api": NoCluster(),
        "k8s.log_window": 1800.0,
        "k8s.pod": pod,
        "k8s.sidecar_container": sidecar(),
        "k8s.sidecar_status": running(),
        "k8s.prometheus_container": pod["spec"]["containers"][0],
        "k8s.sidecar_env": sidecar_env(pod_identity_env()),
        "sidecar.settings": settings(),
        "target.variant": None,
        "k8s.prometheus_cr": None,
        "k8s.pod_events": [],
        "k8s.sidecar_previous_logs": None,
        "k8s.sidecar_logs": None,
        "k8s.prometheus_logs": None,
        "k8s.prometheus_metrics": None,
        "k8s.prometheus_rates": None,
        "k8s.prometheus_buildinfo": None,
        "k8s.prometheus_web": (9090, "/"),
        "k8s.remote_write_config": None,
        "k8s.service_account": None,
        "k8s.secret_provider_classes": [],
        "k8s.nmi": nmi_info(),
        "k8s.nmi_pod": None,
        "k8s.nmi_logs": None,
        "k8s.pod_identity": pi_view(),
        "k8s.pod_identity_assigned": [],
    }


class Fails:
    """A preset fact that raises ``exc`` (AccessDenied, NotApplicable, ...) when a check reads it."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


#: Facts that reach Azure, preset to "not available" unless a test gives them (no test may reach Azure).
AZURE_OFF: dict[str, Any] = {
    "azure.sidecar_logs_la": Fails(NotApplicable("no Log Analytics workspace known (monitoring add-on off); "
                                                 "pass --log-analytics-workspace")),
}


def store_with(facts: dict[str, Any], target: Target = TARGET) -> FactStore:
    store = FactStore({"since": "30m"}, now=NOW)
    for name, value in {**AZURE_OFF, **defaults(), **facts}.items():
        spec = fact_spec(name)
        key_target = None if spec is not None and spec.scope == "run" else target
        if isinstance(value, Fails):
            slot = _Slot(error=value.exc)
            slot.event.set()
            store._slots[(name, key_target.id if key_target else "")] = slot
        else:
            store.preset(name, value, key_target)
    return store


def run_check(func: Any, facts: dict[str, Any] | None = None, *, target: Target = TARGET) -> CheckResult:
    """Run one check (its dependencies cut) on preset facts; return its result."""
    spec = replace(spec_of(func), depends_on=())  # type: ignore[arg-type]
    engine = Engine(Registry([spec]), EngineOptions(check_timeout_s=10))
    return engine.run_target([spec], store_with(facts or {}, target), target)[0]


def run_checks(funcs: list[Any], facts: dict[str, Any] | None = None, *, target: Target = TARGET) -> Any:
    """Run several checks with their real dependencies (all must be given) and rank root causes."""
    from promrw_doctor.core.engine import run_checks as engine_run

    reg = Registry([spec_of(f) for f in funcs])  # type: ignore[misc]
    return engine_run(reg, list(reg), [target], store_with(facts or {}, target), command="test",
                      options=EngineOptions(check_timeout_s=10))
