"""The sidecar image: not a known-bad tag, not the legacy registry path, not very old."""

from __future__ import annotations

from typing import Any

from promrw_doctor.core import check
from promrw_doctor.domain.images import (
    KNOWN_BAD_TAG_ISSUES,
    KNOWN_GOOD_FALLBACK_TAG,
    LATEST_KNOWN_SIDECAR_TAG,
    SIDECAR_REPOSITORY,
    parse_image,
    sidecar_image_problems,
)

from ._common import container_name, helm_release, helm_values, pod_of


@check(id="kubernetes.sidecar-image", title="Sidecar image is a good, current release", category="kubernetes",
       severity="high", codes=["SIDECAR_IMAGE_KNOWN_BAD", "SIDECAR_IMAGE_OUTDATED"],
       depends_on=["kubernetes.sidecar-present"], needs=["k8s.sidecar_container"], tags=["sidecar", "image"])
def sidecar_image(ctx: Any) -> Any:
    """The sidecar runs a published, good tag.

    ``prom-remotewrite-20251030.1`` stops sending data without an error
    (Azure/prometheus-collector#1372); the legacy ``.../promdev/prom-remotewrite`` path gets no
    releases; tags a year older than the newest release miss fixes. The image the kubelet
    actually runs (container status) is judged, not only the spec.
    """
    container = ctx.fact("k8s.sidecar_container")
    status = ctx.try_fact("k8s.sidecar_status") or {}
    image = str(status.get("image") or container.get("image") or "")
    ns, pod = pod_of(ctx.target)
    cname = container_name(ctx.target)
    problems = sidecar_image_problems(image)
    evidence: dict[str, Any] = {"image": image}
    if status.get("imageID"):
        evidence["imageID"] = status["imageID"]
    release = helm_release(ctx.try_fact("k8s.prometheus_cr"))
    bad = [p for p in problems if p.kind == "known-bad"]
    old = [p for p in problems if p.kind in ("legacy-registry", "outdated")]
    notes = [p for p in problems if p.kind not in ("known-bad", "legacy-registry", "outdated")]
    if bad:
        tag = parse_image(image).tag or ""
        evidence["issue"] = KNOWN_BAD_TAG_ISSUES.get(tag)
        return ctx.fail(
            "SIDECAR_IMAGE_KNOWN_BAD", f"{cname} in {ns}/{pod}: {bad[0].message}", evidence=evidence,
            remediation=helm_values(ns, release, f"prometheus.prometheusSpec.containers[name={cname}].image: "
                                                 f"{SIDECAR_REPOSITORY}:{KNOWN_GOOD_FALLBACK_TAG} (or "
                                                 f"{LATEST_KNOWN_SIDECAR_TAG})"),
        )
    if old:
        return ctx.warn(
            "SIDECAR_IMAGE_OUTDATED", f"{cname} in {ns}/{pod}: " + "; ".join(p.message for p in old), evidence=evidence,
            remediation=helm_values(ns, release, f"prometheus.prometheusSpec.containers[name={cname}].image: "
                                                 f"{SIDECAR_REPOSITORY}:{LATEST_KNOWN_SIDECAR_TAG}"),
        )
    if notes:
        evidence["notes"] = [p.message for p in notes]
    return ctx.passed(f"{cname} runs {image}", evidence=evidence)
