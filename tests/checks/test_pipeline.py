"""Pipeline checks (sidecar summary/error lines, Prometheus log + self-metrics) and the root-cause graph."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from promrw_doctor.checks.identity.nmi import nmi
from promrw_doctor.checks.identity.pod_identity import (
    pod_identity_assigned,
    pod_identity_binding,
    pod_identity_binding_valid,
    pod_identity_client_id,
    pod_identity_label,
)
from promrw_doctor.checks.kubernetes.discovery import prometheus_pod, sidecar_present
from promrw_doctor.checks.kubernetes.sidecar_config import sidecar_config
from promrw_doctor.checks.kubernetes.sidecar_health import sidecar_crashloop, sidecar_ready
from promrw_doctor.checks.pipeline.prometheus_remote_write import prometheus_remote_write
from promrw_doctor.checks.pipeline.sidecar_publishing import sidecar_publishing

from promrw_doctor.collectors.kube_logs import ContainerLog
from promrw_doctor.core import Status
from promrw_doctor.domain.logs import MetricsSnapshot, QueueRates, split_lines

from .kube_fixtures import NOW, NS, POD, make_pod, nmi_pod, pod_identity_env, run_check, run_checks, running
from .kube_fixtures import sidecar_env as env

URL = "http://localhost:8081/api/v1/write"


def stamp(offset_s: float) -> str:
    return datetime.fromtimestamp(NOW + offset_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(offset_s: float, failed: int, ok: int) -> str:
    return (f'time="{stamp(offset_s)}" level=info msg="Metric packets published in last 1 minute" '
            f"avgBytesPerRequest=19713 avgRequestDurationInSec=0.023 failedPublishing={failed} "
            f"successfullyPublished={ok}")


def sidecar_log(*lines: str, note: str | None = None) -> ContainerLog:
    return ContainerLog(f"{NS}/{POD}", "prom-remotewrite", False, tuple(split_lines("\n".join(lines), NOW)), 1800.0,
                        2000, note)


def prom_log(*lines: str) -> ContainerLog:
    return ContainerLog(f"{NS}/{POD}", "prometheus", False, tuple(split_lines("\n".join(lines), NOW)), 1800.0, 2000)


def metrics(failed: float = 0, sent_lag: float = 7, samples: float = 1e7, dropped: float = 0) -> MetricsSnapshot:
    text = (f'prometheus_remote_storage_samples_total{{remote_name="a",url="{URL}"}} {samples}\n'
            f'prometheus_remote_storage_samples_failed_total{{remote_name="a",url="{URL}"}} {failed}\n'
            f'prometheus_remote_storage_samples_dropped_total{{remote_name="a",url="{URL}"}} {dropped}\n'
            f"prometheus_remote_storage_highest_timestamp_in_seconds {NOW - 5}\n"
            f'prometheus_remote_storage_queue_highest_sent_timestamp_seconds{{remote_name="a",url="{URL}"}} '
            f"{NOW - 5 - sent_lag}\n")
    return MetricsSnapshot.from_text(text, NOW)


# ------------------------------------------------------------------ sidecar publishing


def test_publishing_ok() -> None:
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": sidecar_log(summary(-120, 0, 120), summary(-60, 0, 121))})
    assert r.status == Status.PASS and "241 packets published" in r.summary


def test_publishing_failed_with_403_line() -> None:
    log = sidecar_log(summary(-180, 122, 0),
                      f'time="{stamp(-170)}" level=error msg="Failed to publish metrics" statusCode=403 '
                      'error="AuthorizationFailed"', summary(-60, 121, 0))
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": log})
    f = r.findings[0]
    assert r.status == Status.FAIL and f.code == "PUBLISH_FAILING" and "Monitoring Metrics Publisher" in f.summary
    assert f.evidence["errors"][0]["statuses"] == ["403"] and f.evidence["failedPublishing_total"] == 243
    assert "ROLE_ASSIGNMENT_MISSING" in f.explained_by and "SIDECAR_IMAGE_KNOWN_BAD" in f.explained_by
    assert f.remediation == [f"kubectl -n {NS} logs {POD} -c prom-remotewrite --since=30m"]


def test_publishing_nothing_and_legacy_format() -> None:
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": sidecar_log(summary(-120, 0, 0), summary(-60, 0, 0))})
    assert r.status == Status.FAIL and "published nothing" in r.summary
    legacy = (f'time="{stamp(-60)}" level=info msg="Metric packets published in last 1 minute" avgBytesPerRequest=1 '
              "avgRequestDuration=0.1 failedPublishingToAll=4 successfullyPublishedToAll=100 "
              "successfullyPublishedToSome=2")
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": sidecar_log(legacy)})
    assert r.status == Status.FAIL and r.findings[0].evidence["field_sets"] == ["legacy"]
    assert "4 packets failed, 102 published" in r.summary


def test_publishing_recovered_warns_and_no_lines_pass() -> None:
    lines = [summary(-1200, 30, 1)] + [summary(-600 + 60 * i, 0, 100) for i in range(9)]
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": sidecar_log(*lines)})
    assert r.status == Status.WARN and "none in the last 5 minutes" in r.summary
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": sidecar_log('time="x" level=info msg="Starting"')})
    assert r.status == Status.PASS and "cannot confirm" in r.summary
    waiting = sidecar_log(note='container "prom-remotewrite" is waiting to start: CrashLoopBackOff')
    assert run_check(sidecar_publishing, {"k8s.sidecar_logs": waiting}).status == Status.PASS


def test_errors_without_summary_fail() -> None:
    log = sidecar_log(f'time="{stamp(-30)}" level=error msg="x" '
                      'error="dial tcp: lookup h on 10.0.0.10:53: no such host"')
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": log})
    assert r.status == Status.FAIL and "DNS" in r.summary


# ------------------------------------------------------------------ Prometheus


def test_prometheus_clean() -> None:
    r = run_check(prometheus_remote_write, {"k8s.prometheus_logs": prom_log('ts=x level=info msg="Done replaying WAL"'),
                                            "k8s.prometheus_metrics": metrics()})
    assert r.status == Status.PASS and "1 queue" in r.summary


def test_prometheus_log_non_recoverable_with_status() -> None:
    line = ('ts=2026-11-21T11:58:00.000Z caller=dedupe.go:112 component=remote level=error remote_name=a '
            f'url={URL} msg="non-recoverable error" count=2000 exemplarCount=0 '
            'err="server returned HTTP status 404 Not Found: 404 page not found"')
    r = run_check(prometheus_remote_write, {"k8s.prometheus_logs": prom_log(line)})
    f = r.findings[0]
    assert r.status == Status.FAIL and f.code == "PROMETHEUS_REMOTE_WRITE_FAILING" and "HTTP 404 Not Found" in f.summary
    assert "REMOTE_WRITE_URL_MISMATCH" in f.explained_by and f.evidence["metrics"] == "not read"


def test_prometheus_metrics_lag_failed_share_and_rates() -> None:
    r = run_check(prometheus_remote_write, {"k8s.prometheus_metrics": metrics(sent_lag=600)})
    assert r.status == Status.FAIL and "600s behind" in r.summary
    r = run_check(prometheus_remote_write, {"k8s.prometheus_metrics": metrics(failed=5e5, samples=1e6)})
    assert r.status == Status.FAIL and "since Prometheus started" in r.summary
    rates = {URL: QueueRates(URL, "5m", failed=12.5)}
    r = run_check(prometheus_remote_write, {"k8s.prometheus_metrics": metrics(failed=10),
                                            "k8s.prometheus_rates": rates})
    assert r.status == Status.FAIL and "12.5 samples/s failed" in r.summary
    # With real rates, old failures (a small cumulative count) do not fail the check.
    calm = {URL: QueueRates(URL, "5m", failed=0.0, dropped=0.0, pending_deriv=0.0)}
    r = run_check(prometheus_remote_write, {"k8s.prometheus_metrics": metrics(failed=10), "k8s.prometheus_rates": calm})
    assert r.status == Status.PASS


def test_prometheus_unknown_when_nothing_readable() -> None:
    r = run_check(prometheus_remote_write)
    assert r.status == Status.UNKNOWN and r.needs == f"get pods/log and get pods/proxy in namespace {NS}"


# ------------------------------------------------------------------ the graph: root cause first


CHAIN = [prometheus_pod, sidecar_present, sidecar_config, sidecar_crashloop, sidecar_ready, pod_identity_label,
         pod_identity_binding_valid, pod_identity_binding, pod_identity_client_id, pod_identity_assigned, nmi,
         sidecar_publishing, prometheus_remote_write]


def _failing_world(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "k8s.sidecar_logs": sidecar_log(summary(-120, 120, 0), summary(-60, 121, 0)),
        "k8s.prometheus_logs": prom_log('ts=x level=warn msg="Failed to send batch, retrying" err="500"'),
        "k8s.pod": make_pod(labels={"aadpodidbinding": "prom-rw"}),
        "target.variant": "podIdentity",
        "k8s.nmi_pod": nmi_pod(),
        "k8s.pod_identity_assigned": [{"metadata": {"name": "a"}, "status": {"status": "Assigned"}, "spec": {
            "pod": POD, "podNamespace": NS, "azureIdentityRef": {"metadata": {"name": "prom-rw-mi"}}}}],
    }
    return {**base, **changes}


def test_label_missing_is_the_only_root_cause() -> None:
    report = run_checks(CHAIN, _failing_world(**{"k8s.pod": make_pod(labels={})}))
    assert [rc.code for rc in report.root_causes] == ["POD_IDENTITY_LABEL_MISSING"]
    by = {r.check_id: r for r in report.results}
    assert by["pipeline.sidecar-publishing"].findings[0].consequence_of == "POD_IDENTITY_LABEL_MISSING"
    assert by["identity.pod-identity-binding"].status == Status.BLOCKED
    assert by["pipeline.prometheus-remote-write"].status == Status.BLOCKED
    assert "pipeline.sidecar-publishing" in report.root_causes[0].consequences


def test_config_invalid_explains_the_crash_loop() -> None:
    crashing = running(ready=False, restartCount=5, state={"waiting": {"reason": "CrashLoopBackOff"}},
                       lastState={"terminated": {"exitCode": 1, "reason": "Error"}})
    values = {k: v for k, v in pod_identity_env().items() if k != "AZURE_CLIENT_ID"}
    report = run_checks(CHAIN, _failing_world(**{"k8s.sidecar_status": crashing, "k8s.sidecar_env": env(values)}))
    assert [rc.code for rc in report.root_causes] == ["SIDECAR_CONFIG_INVALID"]
    by = {r.check_id: r for r in report.results}
    assert by["kubernetes.sidecar-crashloop"].findings[0].consequence_of == "SIDECAR_CONFIG_INVALID"
    assert by["pipeline.sidecar-publishing"].status == Status.BLOCKED


def test_unexplained_publishing_failure_stands_alone() -> None:
    report = run_checks(CHAIN, _failing_world())
    assert [rc.code for rc in report.root_causes] == ["PUBLISH_FAILING"]
