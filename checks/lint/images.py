"""Container images: the sidecar's tag/registry and the Prometheus version."""

from __future__ import annotations

from promrw_doctor.core import Finding, Severity, Skip, check
from promrw_doctor.core.engine import CheckContext
from promrw_doctor.domain.images import (
    KNOWN_BAD_TAG_ISSUES,
    LATEST_KNOWN_SIDECAR_TAG,
    SIDECAR_REPOSITORY,
    minimum_prometheus_version,
    parse_image,
    parse_prometheus_version,
    prometheus_version_problem,
    sidecar_image_problems,
)
from promrw_doctor.domain.sidecar import find_placeholder
from promrw_doctor.lint.loader import DocumentSet
from promrw_doctor.lint.views import all_sidecars, prometheus_version_source, to_yaml

RELEASE_NOTES = "https://github.com/Azure/prometheus-collector/blob/main/REMOTE-WRITE-RELEASENOTES.md"
TROUBLESHOOTING = "https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-remote-write-troubleshooting"
_CODES = {
    "known-bad": "SIDECAR_IMAGE_KNOWN_BAD",
    "legacy-registry": "SIDECAR_IMAGE_OUTDATED",
    "outdated": "SIDECAR_IMAGE_OUTDATED",
    "tag-format": "SIDECAR_IMAGE_TAG_UNRECOGNIZED",
    "no-tag": "SIDECAR_IMAGE_TAG_UNRECOGNIZED",
    "unknown-repository": "SIDECAR_IMAGE_TAG_UNRECOGNIZED",
}


@check(
    id="lint.sidecar-image",
    title="Sidecar image is a current, known-good release",
    category="lint",
    severity="high",
    codes=["SIDECAR_IMAGE_KNOWN_BAD", "SIDECAR_IMAGE_OUTDATED", "SIDECAR_IMAGE_TAG_UNRECOGNIZED",
           "SIDECAR_CONFIG_INVALID"],
    needs=["lint.documents"],
    depends_on=["lint.sidecar-present"],
    docs_url=RELEASE_NOTES,
    tags=["sidecar", "image"],
)
def sidecar_image(ctx: CheckContext) -> list[Finding]:
    """The sidecar image should be a current `prom-remotewrite-YYYYMMDD.N` tag from the current registry path.

    Current path: `mcr.microsoft.com/azuremonitor/containerinsights/ciprod/prometheus-remote-write/images`.

    `prom-remotewrite-20251030.1` stops sending data (Azure/prometheus-collector#1372): downgrade
    to 20250814.1 or upgrade to 20260226.1. The legacy path `.../prometheus/promdev/prom-remotewrite`
    gets no releases, and tags more than 12 months older than the newest known are outdated.
    """
    docs: DocumentSet = ctx.fact("lint.documents")
    out: list[Finding] = []
    recommended = f"{SIDECAR_REPOSITORY}:{LATEST_KNOWN_SIDECAR_TAG}"
    for s in all_sidecars(docs):
        subject = f"{s.workload.label} container {s.name}"
        image = s.image
        loc = s.loc("image")
        if image is None:
            out.append(ctx.fail("SIDECAR_CONFIG_INVALID", f"{subject}: has no image", location=s.loc(),
                                subject=subject, remediation=[to_yaml({"image": recommended})]))
            continue
        if find_placeholder(image) is not None:
            continue  # lint.placeholders
        problems = sidecar_image_problems(image)
        if not problems:
            out.append(ctx.passed(f"{subject}: image {image}", location=loc, subject=subject))
            continue
        tag = parse_image(image).tag
        for p in problems:
            code = _CODES[p.kind]
            if p.kind == "known-bad":
                out.append(ctx.fail(
                    code, f"{subject}: {p.message}", location=loc, subject=subject,
                    evidence={"image": image, "issue": KNOWN_BAD_TAG_ISSUES.get(tag or "")},
                    docs_url=KNOWN_BAD_TAG_ISSUES.get(tag or ""),
                    remediation=[to_yaml({"image": recommended}),
                                 to_yaml({"image": f"{SIDECAR_REPOSITORY}:prom-remotewrite-20250814.1"})],
                ))
            else:
                severity = Severity.MEDIUM if code == "SIDECAR_IMAGE_OUTDATED" else Severity.LOW
                out.append(ctx.warn(code, f"{subject}: {p.message}", location=loc, subject=subject,
                                    severity=severity, evidence={"image": image},
                                    remediation=[to_yaml({"image": recommended})]))
    if not out:
        raise Skip("sidecar image is a placeholder (see lint.placeholders)")
    return out


@check(
    id="lint.prometheus-version",
    title="Prometheus is new enough for the sidecar's authentication",
    category="lint",
    severity="high",
    codes=["PROMETHEUS_VERSION_UNSUPPORTED"],
    needs=["lint.documents"],
    depends_on=["lint.sidecar-present"],
    docs_url=TROUBLESHOOTING,
    tags=["prometheus", "image"],
)
def prometheus_version(ctx: CheckContext) -> list[Finding]:
    """Prometheus must be at least 2.45 for managed/pod/workload identity and 2.48 for an Entra application.

    The troubleshooting article's "Supported versions". Read from `prometheusSpec.image.tag`
    (or `version`), a Prometheus CR's `spec.version`/`spec.image`, or the `prometheus` container's
    image; when the files leave the chart default in place the check is skipped.
    """
    docs: DocumentSet = ctx.fact("lint.documents")
    out: list[Finding] = []
    for s in all_sidecars(docs):
        w = s.workload
        source = prometheus_version_source(w)
        identity = s.identity_type
        if source is None or identity is None:
            continue
        value, path = source
        version = parse_prometheus_version(value)
        minimum = minimum_prometheus_version(identity)
        if version is None or minimum is None:
            continue
        loc = w.doc.loc(*path)
        problem = prometheus_version_problem(version, identity)
        if problem is None:
            out.append(ctx.passed(f"{w.label}: Prometheus {version} >= {minimum} ({identity})", location=loc,
                                  subject=w.label))
            continue
        tag_path = ".".join(str(p) for p in path)
        out.append(ctx.fail(
            "PROMETHEUS_VERSION_UNSUPPORTED", f"{w.label}: {problem}", location=loc, subject=w.label,
            evidence={"version": str(version), "minimum": str(minimum), "identity_type": identity,
                      "source": tag_path},
            remediation=[f"set {tag_path} to v{minimum} or newer (e.g. v2.55.1)",
                         "helm upgrade -f <values.yaml> prometheus prometheus-community/kube-prometheus-stack "
                         "--namespace <namespace>"],
        ))
    if not out:
        raise Skip("no Prometheus version in the files (the chart default applies); set "
                   "prometheus.prometheusSpec.image.tag to check it")
    return out
