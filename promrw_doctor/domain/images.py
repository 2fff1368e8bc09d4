"""Container images: the sidecar's tag and registry path, and the Prometheus version. Pure logic.

Why it matters: one published sidecar tag stops sending data (Azure/prometheus-collector#1372),
old docs point at a registry path that no longer receives releases, and Prometheus
itself must be new enough for the sidecar's auth flow (the troubleshooting doc:
"greater than v2.45" for managed identity, "greater than v2.48" for Entra applications).

The known tags come from ``REMOTE-WRITE-RELEASENOTES.md`` in Azure/prometheus-collector;
the sidecar tag form is ``prom-remotewrite-YYYYMMDD.N``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

SIDECAR_REPOSITORY = "mcr.microsoft.com/azuremonitor/containerinsights/ciprod/prometheus-remote-write/images"
LEGACY_SIDECAR_REPOSITORY = "mcr.microsoft.com/azuremonitor/prometheus/promdev/prom-remotewrite"
SIDECAR_TAG_RE = re.compile(r"^prom-remotewrite-(?P<date>\d{8})\.(?P<build>\d+)$")

# Newest first (release notes, newest stored revision).
KNOWN_SIDECAR_TAGS: tuple[str, ...] = (
    "prom-remotewrite-20260226.1",
    "prom-remotewrite-20251030.1",
    "prom-remotewrite-20250814.1",
    "prom-remotewrite-20250326.1",
    "prom-remotewrite-20250214.1",
    "prom-remotewrite-20250106.1",
    "prom-remotewrite-20240617.1",
    "prom-remotewrite-20240507.987",
)
LATEST_KNOWN_SIDECAR_TAG = KNOWN_SIDECAR_TAGS[0]
KNOWN_GOOD_FALLBACK_TAG = "prom-remotewrite-20250814.1"
KNOWN_BAD_TAGS: dict[str, str] = {
    "prom-remotewrite-20251030.1": (
        "data stops flowing (Azure/prometheus-collector#1372); downgrade to prom-remotewrite-20250814.1 "
        "or upgrade to prom-remotewrite-20260226.1"
    ),
}
KNOWN_BAD_TAG_ISSUES: dict[str, str] = {
    "prom-remotewrite-20251030.1": "https://github.com/Azure/prometheus-collector/issues/1372",
}
# "Very old": built more than this many months before the newest known tag.
VERY_OLD_MONTHS = 12

# Minimum Prometheus version per sidecar IDENTITY_TYPE (troubleshooting doc, "Supported versions").
MIN_PROMETHEUS_MANAGED_IDENTITY = (2, 45, 0)
MIN_PROMETHEUS_AAD_APPLICATION = (2, 48, 0)
MIN_PROMETHEUS_BY_IDENTITY_TYPE: dict[str, tuple[int, int, int]] = {
    "userAssigned": MIN_PROMETHEUS_MANAGED_IDENTITY,
    "workloadIdentity": MIN_PROMETHEUS_MANAGED_IDENTITY,
    "aadApplication": MIN_PROMETHEUS_AAD_APPLICATION,
}

ImageProblemKind = Literal[
    "known-bad", "legacy-registry", "outdated", "tag-format", "no-tag", "unknown-repository"
]


@dataclass(frozen=True)
class ImageRef:
    """A container image reference taken apart (Docker reference grammar, lenient)."""

    raw: str
    registry: str  # "docker.io" when not given
    repository: str  # path without registry: "prometheus/prometheus"
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """``registry/repository`` (what ``SIDECAR_REPOSITORY`` is compared with)."""
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True)
class SidecarTag:
    raw: str
    built: date
    build: int


@dataclass(frozen=True)
class ImageProblem:
    kind: ImageProblemKind
    message: str
    severity: Literal["error", "warning"] = "warning"


def parse_image(ref: str) -> ImageRef:
    """Split ``[registry/]repository[:tag][@digest]``. Raises ``ValueError`` for an empty reference."""
    raw = ref
    value = (ref or "").strip()
    if not value:
        raise ValueError("image reference is empty")
    digest = None
    if "@" in value:
        value, digest = value.split("@", 1)
    tag = None
    last_slash = value.rfind("/")
    colon = value.rfind(":")
    if colon > last_slash:
        value, tag = value[:colon], value[colon + 1:]
    first, sep, rest = value.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first.lower(), rest
    else:
        registry, repository = "docker.io", value
        if "/" not in repository:
            repository = f"library/{repository}"
    return ImageRef(raw=raw, registry=registry, repository=repository, tag=tag or None, digest=digest or None)


def parse_sidecar_tag(tag: str | None) -> SidecarTag | None:
    """``prom-remotewrite-20250814.1`` -> date 2025-08-14, build 1; anything else -> None."""
    if not tag:
        return None
    m = SIDECAR_TAG_RE.match(tag.strip())
    if m is None:
        return None
    d = m.group("date")
    try:
        built = date(int(d[:4]), int(d[4:6]), int(d[6:]))
    except ValueError:
        return None
    return SidecarTag(raw=tag.strip(), built=built, build=int(m.group("build")))


def months_between(older: date, newer: date) -> int:
    """Whole months from ``older`` to ``newer`` (negative if ``older`` is later)."""
    months = (newer.year - older.year) * 12 + (newer.month - older.month)
    if newer.day < older.day:
        months -= 1
    return months


def is_very_old(tag: str, newest: str = LATEST_KNOWN_SIDECAR_TAG, months: int = VERY_OLD_MONTHS) -> bool:
    t, n = parse_sidecar_tag(tag), parse_sidecar_tag(newest)
    if t is None or n is None:
        return False
    return months_between(t.built, n.built) > months


def is_sidecar_image(image: str) -> bool:
    """Does this image look like the remote-write sidecar (either registry path, or its tag form)?"""
    try:
        ref = parse_image(image)
    except ValueError:
        return False
    name = ref.name.lower()
    return (
        name in (SIDECAR_REPOSITORY, LEGACY_SIDECAR_REPOSITORY)
        or "prom-remotewrite" in name
        or "prometheus-remote-write" in name
        or parse_sidecar_tag(ref.tag) is not None
    )


def sidecar_image_problems(image: str, *, newest_known: str = LATEST_KNOWN_SIDECAR_TAG) -> list[ImageProblem]:
    """Known-bad tag (error), legacy registry path, very old tag, tag not in the documented form."""
    try:
        ref = parse_image(image)
    except ValueError as exc:
        return [ImageProblem("no-tag", str(exc), "error")]
    problems: list[ImageProblem] = []
    name = ref.name.lower()
    recommended = f"{SIDECAR_REPOSITORY}:{newest_known}"
    if name == LEGACY_SIDECAR_REPOSITORY:
        problems.append(ImageProblem(
            "legacy-registry",
            f"image uses the legacy registry path {LEGACY_SIDECAR_REPOSITORY}, "
            f"which no longer gets releases; use {recommended}",
        ))
    elif name != SIDECAR_REPOSITORY:
        problems.append(ImageProblem(
            "unknown-repository",
            f"image repository {ref.name} is not the published sidecar ({SIDECAR_REPOSITORY}); "
            "fine for a mirror, but tags cannot be judged against the release notes",
        ))
    if ref.tag is None:
        if ref.digest is None:
            problems.append(ImageProblem("no-tag", f"image has no tag (implicit :latest); pin {recommended}"))
        return problems
    if ref.tag in KNOWN_BAD_TAGS:
        problems.append(ImageProblem("known-bad", f"tag {ref.tag}: {KNOWN_BAD_TAGS[ref.tag]}", "error"))
        return problems
    parsed = parse_sidecar_tag(ref.tag)
    if parsed is None:
        problems.append(ImageProblem(
            "tag-format",
            f"tag {ref.tag!r} is not of the form prom-remotewrite-YYYYMMDD.N; pin {recommended}",
        ))
        return problems
    if is_very_old(ref.tag, newest_known):
        problems.append(ImageProblem(
            "outdated",
            f"tag {ref.tag} is more than {VERY_OLD_MONTHS} months older than {newest_known}; "
            f"upgrade to {recommended}",
        ))
    return problems


# --------------------------------------------------------------------------- Prometheus


@dataclass(frozen=True, order=True)
class PromVersion:
    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def at_least(self, minimum: tuple[int, int, int]) -> bool:
        return (self.major, self.minor, self.patch) >= minimum


_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+._].*)?$")


def parse_prometheus_version(value: str | None) -> PromVersion | None:
    """A Prometheus version from ``v2.44.0``, ``2.48``, ``quay.io/prometheus/prometheus:v2.44.0``,
    ``...:v2.51.2-distroless``; None for ``latest``, a digest-only image, or anything unrecognised."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if "/" in text or ("@" in text) or (":" in text and not text[0].isdigit() and not text.startswith("v")):
        try:
            ref = parse_image(text)
        except ValueError:
            return None
        text = ref.tag or ""
    m = _VERSION_RE.match(text)
    if m is None:
        return None
    return PromVersion(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def minimum_prometheus_version(identity_type: str | None) -> PromVersion | None:
    """The lowest Prometheus the sidecar supports for this IDENTITY_TYPE (None: unknown type)."""
    if identity_type is None:
        return None
    for key, minimum in MIN_PROMETHEUS_BY_IDENTITY_TYPE.items():
        if key.lower() == identity_type.strip().lower():
            return PromVersion(*minimum)
    return None


def prometheus_version_problem(version: str | PromVersion | None, identity_type: str | None) -> str | None:
    """A one-line reason when ``version`` is below the minimum for ``identity_type``; else None."""
    parsed = version if isinstance(version, PromVersion) else parse_prometheus_version(version)
    minimum = minimum_prometheus_version(identity_type)
    if parsed is None or minimum is None:
        return None
    if parsed >= minimum:
        return None
    aad_app = minimum == PromVersion(*MIN_PROMETHEUS_AAD_APPLICATION)
    kind = "Entra application" if aad_app else "managed identity"
    return (f"Prometheus {parsed} is older than {minimum}, "
            f"the minimum for {kind} authentication ({identity_type})")
