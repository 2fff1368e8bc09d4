"""Prometheus is new enough for the sidecar's authentication mode."""

from __future__ import annotations

from typing import Any

from promrw_doctor.core import Skip, Unknown, check
from promrw_doctor.domain.images import (
    minimum_prometheus_version,
    parse_prometheus_version,
    prometheus_version_problem,
)

from ._common import helm_release, pod_of


def observed_version(buildinfo: Any, metrics: Any, status_image: str | None, spec_image: str | None,
                     cr_version: str | None) -> tuple[str | None, str]:
    """(version, where it came from), most authoritative first: what the process says, then images.

    Only values that read as a version count (``latest`` or a digest-only image tell nothing).
    """
    candidates = (
        ((buildinfo or {}).get("version") if isinstance(buildinfo, dict) else None, "/api/v1/status/buildinfo"),
        (getattr(metrics, "version", None), "prometheus_build_info"),
        (status_image, "running image"), (spec_image, "container image"), (cr_version, "Prometheus CR spec.version"),
    )
    for value, where in candidates:
        parsed = parse_prometheus_version(str(value)) if value else None
        if parsed is not None:
            return str(parsed), where
    return None, ""


@check(id="kubernetes.prometheus-version", title="Prometheus version supports the sidecar's auth mode",
       category="kubernetes", severity="high", codes=["PROMETHEUS_VERSION_UNSUPPORTED"],
       depends_on=["kubernetes.sidecar-present"], needs=["sidecar.settings", "k8s.pod"], tags=["prometheus"])
def prometheus_version(ctx: Any) -> Any:
    """Prometheus is at least 2.45 (managed/workload identity) or 2.48 (Entra application).

    The troubleshooting article: "Prometheus versions greater than v2.45 are required for
    managed identity authentication", "greater than v2.48 ... for Microsoft Entra ID
    application authentication". The version comes from Prometheus itself (buildinfo through
    the pod proxy, or its build_info metric), else from the image tag.
    """
    settings = ctx.fact("sidecar.settings")
    kind = settings.canonical_identity_type
    if minimum_prometheus_version(kind) is None:
        raise Skip("IDENTITY_TYPE is unknown (reported by kubernetes.sidecar-config)")
    container = ctx.try_fact("k8s.prometheus_container") or {}
    pod = ctx.fact("k8s.pod")
    status: dict[str, Any] = next((cs for cs in (pod.get("status") or {}).get("containerStatuses") or []
                   if cs.get("name") == container.get("name")), {})
    cr = ctx.try_fact("k8s.prometheus_cr") or {}
    version, source = observed_version(ctx.try_fact("k8s.prometheus_buildinfo"),
                                       ctx.try_fact("k8s.prometheus_metrics"), status.get("image"),
                                       container.get("image"), (cr.get("spec") or {}).get("version"))
    ns, name = pod_of(ctx.target)
    if version is None:
        raise Unknown("could not tell the Prometheus version (no buildinfo through the pod proxy, no image tag)",
                      needs=f"get pods/proxy in namespace {ns}")
    problem = prometheus_version_problem(version, kind)
    evidence = {"version": version, "source": source, "identity_type": kind,
                "minimum": str(minimum_prometheus_version(kind))}
    if problem is None:
        return ctx.passed(f"Prometheus {version} (from {source}) supports {kind}", evidence=evidence)
    release = helm_release(cr)
    minimum = minimum_prometheus_version(kind)
    return ctx.fail(
        "PROMETHEUS_VERSION_UNSUPPORTED", f"{problem} [pod {ns}/{name}, from {source}]", evidence=evidence,
        remediation=[f"helm upgrade {release or '<release>'} prometheus-community/kube-prometheus-stack -n {ns} "
                     f"--reuse-values --set prometheus.prometheusSpec.version=v{minimum}  # or newer"],
    )
