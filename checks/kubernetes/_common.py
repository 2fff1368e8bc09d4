"""Helpers shared by the live cluster-side checks (kubernetes, identity, pipeline). No checks here.

Why one place: remediation must name the real pod, namespace, container and Helm release
the same way in every finding, and the lists of codes that can explain a publishing failure
must agree between the checks that mark themselves as consequences: they all derive from
one table, WRITE_PATH_CAUSES. A new root-cause code (cluster or Azure side) that explains
"nothing is published" belongs in that table; ``tests/checks/test_explanations.py`` keeps it
to codes that exist in the catalog and that a check emits.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from promrw_doctor.core import Target

SIDECAR = "prom-remotewrite"
KPS_CHART = "prometheus-community/kube-prometheus-stack"

# ---------------------------------------------------------------------------- what explains what
# THE one table of root causes of a broken write path (Prometheus -> sidecar -> Entra token ->
# ingestion), by the step each one breaks. Every explanation list below is derived from it, so the
# lists cannot drift apart. ``tests/checks/test_explanations.py`` keeps it to catalogued codes that a
# check really emits, and makes every code of a live kubernetes/identity/azure check land either here
# or in NOT_WRITE_PATH_CAUSES (with the reason), so a new code forces the decision.


class Step(StrEnum):
    """The step of the write path a root cause breaks."""

    SIDECAR = "sidecar"  # the pod/sidecar itself: it cannot start, or forwards to nowhere useful
    ROUTE = "route"  # Prometheus does not send to the sidecar
    TOKEN = "token"  # the sidecar gets no token for its identity (it also fails to start or stay ready)
    REFUSED = "refused"  # the sidecar has a token, but ingestion refuses it or the write (401/403/404/429)


WRITE_PATH_CAUSES: Mapping[str, Step] = MappingProxyType({
    "SIDECAR_CONFIG_INVALID": Step.SIDECAR,
    "SIDECAR_IMAGE_KNOWN_BAD": Step.SIDECAR,
    "INGESTION_URL_INVALID": Step.SIDECAR,
    "REMOTE_WRITE_URL_MISMATCH": Step.ROUTE,
    # cluster-side identity wiring
    "POD_IDENTITY_LABEL_MISSING": Step.TOKEN,
    "POD_IDENTITY_BINDING_MISMATCH": Step.TOKEN,
    "POD_IDENTITY_BINDING_INVALID": Step.TOKEN,
    "POD_IDENTITY_CLIENT_ID_MISMATCH": Step.TOKEN,
    "POD_IDENTITY_NOT_ASSIGNED": Step.TOKEN,
    "NMI_UNHEALTHY": Step.TOKEN,
    "WORKLOAD_IDENTITY_MISCONFIGURED": Step.TOKEN,
    "CERT_NOT_MOUNTED": Step.TOKEN,
    "CERT_NO_PRIVATE_KEY": Step.TOKEN,
    # Azure/Entra-side identity
    "POD_IDENTITY_ROLES_MISSING": Step.TOKEN,  # MIC cannot assign the identity: NMI answers 404
    "IDENTITY_NOT_FOUND": Step.TOKEN,
    "CERT_EXPIRED": Step.TOKEN,
    "CERT_NOT_YET_VALID": Step.TOKEN,
    "CERT_NOT_REGISTERED": Step.TOKEN,
    "TOKEN_ACQUISITION_FAILED": Step.TOKEN,  # itself explained by the codes above when they are present
    # ingestion refuses
    "AUDIENCE_MISMATCH": Step.REFUSED,  # a public-cloud token sent to a sovereign endpoint: 401
    "TOKEN_CLAIMS_UNEXPECTED": Step.REFUSED,
    "ROLE_ASSIGNMENT_MISSING": Step.REFUSED,
    "ROLE_ASSIGNMENT_PROPAGATING": Step.REFUSED,
    "DCR_NOT_FOUND": Step.REFUSED,
    "DCE_MISMATCH": Step.REFUSED,
    "INGESTION_THROTTLED": Step.REFUSED,
})

#: Problem codes of live checks that do NOT explain a failing write path, and why.
NOT_WRITE_PATH_CAUSES: Mapping[str, str] = MappingProxyType({
    "CERT_EXPIRING_SOON": "the certificate is still valid: writes work until it expires",
    "QUOTA_NEAR_LIMIT": "below 100 % ingestion still accepts everything; INGESTION_THROTTLED is the refusal",
    "QUERY_ACCESS_MISSING": "the doctor's own read access to the query endpoint, not the sidecar's write path",
    "SIDECAR_IMAGE_OUTDATED": "an old or legacy-path image still publishes",
    "PROMETHEUS_VERSION_UNSUPPORTED": "concerns Prometheus's own remote write (explains that check), not the sidecar",
    "PROM_POD_NOT_FOUND": "every cluster-side check depends on it: blocked, not explained",
    "SIDECAR_MISSING": "the publishing check depends on it: blocked, not explained",
    "SIDECAR_CRASHLOOP": "a symptom (explained by STARTUP_ROOTS); the publishing check depends on it",
    "SIDECAR_NOT_READY": "a symptom (explained by STARTUP_ROOTS); the publishing check depends on it",
})


def causes_at(*steps: Step) -> tuple[str, ...]:
    """The root-cause codes that break the write path at one of ``steps``, in table order."""
    return tuple(code for code, step in WRITE_PATH_CAUSES.items() if step in steps)


#: Defects of the pod/sidecar itself that explain the sidecar not working.
SIDECAR_ROOTS: tuple[str, ...] = causes_at(Step.SIDECAR)
#: Identity defects (cluster side and Azure side) that leave the sidecar without a token.
IDENTITY_ROOTS: tuple[str, ...] = causes_at(Step.TOKEN)
#: What makes ingestion refuse what the sidecar sends (Azure side, or a token for the wrong audience).
AZURE_ROOTS: tuple[str, ...] = causes_at(Step.REFUSED)
#: Everything upstream of the publish step (the write path's root causes).
PUBLISH_ROOTS: tuple[str, ...] = causes_at(*Step)
#: What explains a sidecar that will not start or stay ready.
STARTUP_ROOTS: tuple[str, ...] = causes_at(Step.SIDECAR, Step.TOKEN)


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
