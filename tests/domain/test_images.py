"""Sidecar image tags/registry and Prometheus version rules (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from promrw_doctor.domain.images import (
    KNOWN_BAD_TAGS,
    LATEST_KNOWN_SIDECAR_TAG,
    LEGACY_SIDECAR_REPOSITORY,
    SIDECAR_REPOSITORY,
    PromVersion,
    is_sidecar_image,
    is_very_old,
    minimum_prometheus_version,
    parse_image,
    parse_prometheus_version,
    parse_sidecar_tag,
    prometheus_version_problem,
    sidecar_image_problems,
)


def test_parse_image_forms() -> None:
    r = parse_image(f"{SIDECAR_REPOSITORY}:prom-remotewrite-20250814.1")
    assert (r.registry, r.tag, r.digest) == ("mcr.microsoft.com", "prom-remotewrite-20250814.1", None)
    assert r.name == SIDECAR_REPOSITORY
    r = parse_image("prometheus:v2.44.0")
    assert (r.registry, r.repository, r.tag) == ("docker.io", "library/prometheus", "v2.44.0")
    r = parse_image("localhost:5000/prom/prometheus@sha256:" + "a" * 64)
    assert (r.registry, r.repository, r.tag) == ("localhost:5000", "prom/prometheus", None)
    assert r.digest == "sha256:" + "a" * 64
    with pytest.raises(ValueError):
        parse_image("  ")


def test_parse_sidecar_tag() -> None:
    t = parse_sidecar_tag("prom-remotewrite-20250814.1")
    assert t is not None and t.built == date(2025, 8, 14) and t.build == 1
    assert parse_sidecar_tag("prom-remotewrite-20251399.1") is None  # no month 13
    assert parse_sidecar_tag("latest") is None
    assert parse_sidecar_tag(None) is None


def test_known_bad_tag_is_an_error_with_advice() -> None:
    problems = sidecar_image_problems(f"{SIDECAR_REPOSITORY}:prom-remotewrite-20251030.1")
    assert [(p.kind, p.severity) for p in problems] == [("known-bad", "error")]
    assert "#1372" in problems[0].message and "20250814.1" in problems[0].message
    assert "prom-remotewrite-20251030.1" in KNOWN_BAD_TAGS


def test_current_tags_are_fine() -> None:
    assert sidecar_image_problems(f"{SIDECAR_REPOSITORY}:{LATEST_KNOWN_SIDECAR_TAG}") == []
    assert sidecar_image_problems(f"{SIDECAR_REPOSITORY}:prom-remotewrite-20250814.1") == []


def test_legacy_registry_and_very_old() -> None:
    kinds = [
        p.kind for p in sidecar_image_problems(f"{LEGACY_SIDECAR_REPOSITORY}:prom-remotewrite-20221012.2")
    ]
    assert kinds == ["legacy-registry", "outdated"]
    assert is_very_old("prom-remotewrite-20240617.1")
    assert not is_very_old("prom-remotewrite-20250326.1")


def test_tag_form_and_missing_tag() -> None:
    assert [p.kind for p in sidecar_image_problems(f"{SIDECAR_REPOSITORY}:v1")] == ["tag-format"]
    assert [p.kind for p in sidecar_image_problems(SIDECAR_REPOSITORY)] == ["no-tag"]
    assert sidecar_image_problems(f"{SIDECAR_REPOSITORY}@sha256:" + "b" * 64) == []


def test_mirror_is_reported_but_tag_still_judged() -> None:
    kinds = [
        p.kind
        for p in sidecar_image_problems("myacr.azurecr.io/prom-remotewrite:prom-remotewrite-20251030.1")
    ]
    assert kinds == ["unknown-repository", "known-bad"]


def test_is_sidecar_image() -> None:
    assert is_sidecar_image(f"{SIDECAR_REPOSITORY}:prom-remotewrite-20250814.1")
    assert is_sidecar_image(f"{LEGACY_SIDECAR_REPOSITORY}:prom-remotewrite-20221012.2")
    assert not is_sidecar_image("quay.io/prometheus/prometheus:v2.51.0")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("quay.io/prometheus/prometheus:v2.44.0", PromVersion(2, 44, 0)),
        ("v2.48.1", PromVersion(2, 48, 1)),
        ("2.45", PromVersion(2, 45, 0)),
        ("prom/prometheus:v3.5.0-distroless", PromVersion(3, 5, 0)),
        ("prometheus:v2.51.2", PromVersion(2, 51, 2)),
        ("quay.io/prometheus/prometheus:latest", None),
        ("quay.io/prometheus/prometheus@sha256:" + "c" * 64, None),
        ("latest", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_prometheus_version(value: str | None, expected: PromVersion | None) -> None:
    assert parse_prometheus_version(value) == expected


def test_minimums() -> None:
    assert minimum_prometheus_version("userAssigned") == PromVersion(2, 45)
    assert minimum_prometheus_version("workloadIdentity") == PromVersion(2, 45)
    assert minimum_prometheus_version("aadApplication") == PromVersion(2, 48)
    assert minimum_prometheus_version("bogus") is None


def test_version_problem() -> None:
    assert prometheus_version_problem("v2.44.0", "userAssigned") is not None
    assert prometheus_version_problem("v2.45.0", "userAssigned") is None
    msg = prometheus_version_problem("v2.47.2", "aadApplication")
    assert msg is not None and "2.48.0" in msg and "Entra application" in msg
    assert prometheus_version_problem("v2.48.0", "aadApplication") is None
    assert prometheus_version_problem("latest", "aadApplication") is None
    assert prometheus_version_problem(PromVersion(3, 0), "userAssigned") is None
