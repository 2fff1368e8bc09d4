"""Helpers shared by the live cluster-side checks (kubernetes, identity, pipeline). No checks here.

Why one place: remediation must name the real pod, namespace, container and Helm release
the same way in every finding, and the lists of codes that can explain a publishing failure
must agree between the checks that mark themselves as consequences. A new root-cause code
(cluster or Azure side) that explains "nothing is published" belongs in these lists;
``tests/checks/test_kubernetes.py`` keeps them to codes that exist in the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promrw_doctor.core import Target

SIDECAR = "prom-remotewrite"
KPS_CHART = "prometheus-community/kube-prometheus-stack"

#: Defects of the pod/sidecar itself that explain the sidecar not working.
SIDECAR_ROOTS: tuple[str, ...] = (
    "SIDECAR_CONFIG_INVALID", "SIDECAR_IMAGE_KNOWN_BAD", "INGESTION_URL_INVALID",
)
#: Identity wiring defects (cluster side and Azure side) that make token acquisition fail.
IDENTITY_ROOTS: tuple[str, ...] = (
    "POD_IDENTITY_LABEL_MISSING", "POD_IDENTITY_BINDING_MISMATCH", "POD_IDENTITY_BINDING_INVALID",
    "POD_IDENTITY_CLIENT_ID_MISMATCH", "POD_IDENTITY_NOT_ASSIGNED", "NMI_UNHEALTHY", "POD_IDENTITY_ROLES_MISSING",
    "WORKLOAD_IDENTITY_MISCONFIGURED", "CERT_NOT_MOUNTED", "CERT_NO_PRIVATE_KEY", "AUDIENCE_MISMATCH",
    "CERT_EXPIRED", "CERT_NOT_YET_VALID", "CERT_NOT_REGISTERED", "IDENTITY_NOT_FOUND", "TOKEN_ACQUISITION_FAILED",
    "TOKEN_CLAIMS_UNEXPECTED",
)
#: Azure-side defects that make ingestion refuse what the sidecar sends.
AZURE_ROOTS: tuple[str, ...] = (
    "ROLE_ASSIGNMENT_MISSING", "ROLE_ASSIGNMENT_PROPAGATING", "DCR_NOT_FOUND", "DCE_MISMATCH", "INGESTION_THROTTLED",
)
#: Everything upstream of the publish step (the write path's root causes).
PUBLISH_ROOTS: tuple[str, ...] = (*SIDECAR_ROOTS, "REMOTE_WRITE_URL_MISMATCH", *IDENTITY_ROOTS, *AZURE_ROOTS)
#: What explains a sidecar that will not start or stay ready.
STARTUP_ROOTS: tuple[str, ...] = (*SIDECAR_ROOTS, *IDENTITY_ROOTS)


def pod_of(target: Target) -> tuple[str, str]:
    """(namespace, pod name) of a pod target."""
    return str(target.attributes.get("namespace", "")), str(target.attributes.get("pod", ""))


def container_name(target: Target, default: str = SIDECAR) -> str:
    return str(target.attributes.get("sidecar_container") or default)


def helm_release(cr: Mapping[str, Any] | None) -> str | None:
    """The Helm release that owns a Prometheus CR (kube-prometheus-stack annotates/labels it)."""
    if not cr:
        return None
    meta = cr.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    release = annotations.get("meta.helm.sh/release-name") or labels.get("release")
    return str(release) if release else None


def helm_set(namespace: str, release: str | None, assignments: Mapping[str, str]) -> str:
    """``helm upgrade ... --reuse-values --set k=v`` that makes a fix survive the next rollout."""
    sets = " ".join(f"--set {k}={v}" for k, v in assignments.items())
    return f"helm upgrade {release or '<release>'} {KPS_CHART} -n {namespace} --reuse-values {sets}"


def helm_values(namespace: str, release: str | None, snippet: str) -> list[str]:
    """A values snippet (flow style, one line) and the upgrade that applies it."""
    return [
        f"Helm values (kube-prometheus-stack): {snippet}",
        f"helm upgrade {release or '<release>'} {KPS_CHART} -n {namespace} --reuse-values -f fix-values.yaml",
    ]


def describe(namespace: str, pod: str) -> str:
    return f"kubectl -n {namespace} describe pod {pod}"


def logs(namespace: str, pod: str, container: str, *, previous: bool = False, since: str | None = None) -> str:
    extra = " --previous" if previous else (f" --since={since}" if since else "")
    return f"kubectl -n {namespace} logs {pod} -c {container}{extra}"


def since_text(seconds: float | None) -> str:
    if not seconds:
        return "30m"
    s = int(seconds)
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def env_of(container: Mapping[str, Any] | None) -> dict[str, Any]:
    """``env`` entries by name (raw dicts), for evidence that shows where a value came from."""
    return {str(e.get("name")): e for e in (container or {}).get("env") or [] if isinstance(e, Mapping)}
