"""Cluster-side Kubernetes checks on hand-filled facts: pass and fail for each."""

from __future__ import annotations

from typing import Any

import pytest
from promrw_doctor.checks.kubernetes.discovery import prometheus_pod, sidecar_present
from promrw_doctor.checks.kubernetes.prometheus_version import prometheus_version
from promrw_doctor.checks.kubernetes.remote_write_url import remote_write_url, url_problem
from promrw_doctor.checks.kubernetes.sidecar_config import sidecar_config
from promrw_doctor.checks.kubernetes.sidecar_health import sidecar_crashloop, sidecar_ready
from promrw_doctor.checks.kubernetes.sidecar_image import sidecar_image

from promrw_doctor.collectors.kube_logs import ContainerLog
from promrw_doctor.collectors.kube_prometheus import RemoteWriteConfig
from promrw_doctor.core import Status, Target
from promrw_doctor.domain.logs import split_lines

from .kube_fixtures import IMAGE, NS, POD, iso, make_pod, pod_identity_env, run_check, running, settings, sidecar
from .kube_fixtures import sidecar_env as env

CLUSTER = Target(id="aks-prod", kind="cluster", attributes={
    "searched": "all namespaces", "namespaces": "all", "context": "aks-prod",
    "selectors": ["app.kubernetes.io/name=prometheus", "operator.prometheus.io/name", "app=prometheus"]})


def codes(result: Any) -> list[str]:
    return [f.code for f in result.findings if f.status.is_problem]


# ------------------------------------------------------------------ discovery


def test_prometheus_pod_found_and_not_found() -> None:
    assert run_check(prometheus_pod).status == Status.PASS
    r = run_check(prometheus_pod, target=CLUSTER)
    assert r.status == Status.FAIL and codes(r) == ["PROM_POD_NOT_FOUND"]
    f = r.findings[0]
    assert "all namespaces" in f.summary and "aks-prod" in f.summary
    assert f.evidence["selectors"][0] == "app.kubernetes.io/name=prometheus"
    assert any("--pod" in c for c in f.remediation)


def test_prometheus_pod_unknown_when_nothing_could_be_listed() -> None:
    denied = Target(id="aks-prod", kind="cluster", attributes={
        "searched": "no namespace", "namespaces": [], "denied": ["list pods in namespace monitoring"]})
    r = run_check(prometheus_pod, target=denied)
    assert r.status == Status.UNKNOWN and r.needs == "list pods in namespace monitoring"


def test_sidecar_present_and_missing() -> None:
    assert run_check(sidecar_present).status == Status.PASS
    pod = make_pod(containers=[])
    rw = RemoteWriteConfig("Prometheus monitoring/prom spec.remoteWrite", ({"url": "http://localhost:8081/api/v1/write"},))
    r = run_check(sidecar_present, {"k8s.pod": pod, "k8s.sidecar_container": None, "k8s.remote_write_config": rw})
    assert codes(r) == ["SIDECAR_MISSING"] and r.findings[0].evidence["remote_write_urls"]
    assert any("prom-remotewrite" in c for c in r.findings[0].remediation)


def test_sidecar_declared_in_cr_but_missing_in_pod_asks_for_a_rollout() -> None:
    cr = {"metadata": {"name": "prom", "namespace": NS}, "spec": {"containers": [sidecar()]}}
    r = run_check(sidecar_present, {"k8s.pod": make_pod(containers=[]), "k8s.sidecar_container": None,
                                    "k8s.prometheus_cr": cr})
    assert codes(r) == ["SIDECAR_MISSING"]
    assert r.findings[0].remediation[0] == f"kubectl -n {NS} rollout restart statefulset/prometheus-prom"


# ------------------------------------------------------------------ config


def test_sidecar_config_complete() -> None:
    r = run_check(sidecar_config)
    assert r.status == Status.PASS and "userAssigned" in r.summary


@pytest.mark.parametrize(("change", "needle"), [
    ({"AZURE_CLIENT_ID": None}, "AZURE_CLIENT_ID is required"),
    ({"LISTENING_PORT": "80a"}, "LISTENING_PORT"),
    ({"IDENTITY_TYPE": "systemAssigned"}, "not one of"),
    ({"INGESTION_URL": "<INGESTION_URL>"}, "placeholder"),
])
def test_sidecar_config_invalid(change: dict[str, str | None], needle: str) -> None:
    values: dict[str, str | None] = {**pod_identity_env(), **change}
    values = {k: v for k, v in values.items() if v is not None}
    r = run_check(sidecar_config, {"k8s.sidecar_env": env(values)})
    assert r.status == Status.FAIL and codes(r) == ["SIDECAR_CONFIG_INVALID"] and needle in r.summary


def test_case_and_whitespace_are_warnings_until_the_container_crashes() -> None:
    values = {**pod_identity_env(), "IDENTITY_TYPE": "UserAssigned "}
    r = run_check(sidecar_config, {"k8s.sidecar_env": env(values)})
    assert r.status == Status.WARN and "whitespace" in r.summary
    crashing = running(ready=False, restartCount=23, state={"waiting": {"reason": "CrashLoopBackOff"}},
                       lastState={"terminated": {"exitCode": 1, "reason": "Error"}})
    r = run_check(sidecar_config, {"k8s.sidecar_env": env(values), "k8s.sidecar_status": crashing})
    assert r.status == Status.FAIL and "crash-looping" in r.summary
    assert any("value: 'userAssigned'" in c for c in r.findings[0].remediation)


def test_probe_port_other_than_listening_port() -> None:
    values = {**pod_identity_env(), "LISTENING_PORT": "9091"}
    r = run_check(sidecar_config, {"k8s.sidecar_env": env(values)})
    assert r.status == Status.FAIL and "readinessProbe targets port rw-port (8081)" in r.summary


def test_values_from_secrets_count_as_present_and_envfrom_secret_is_unknown() -> None:
    values: dict[str, str | None] = {**pod_identity_env(), "AZURE_CLIENT_ID": None}
    r = run_check(sidecar_config, {"k8s.sidecar_env": env(values, unresolved={"AZURE_CLIENT_ID": "from a Secret"})})
    assert r.status == Status.PASS and r.findings[0].evidence["not_read"]
    partial = {k: v for k, v in pod_identity_env().items() if k != "AZURE_CLIENT_ID"}
    r = run_check(sidecar_config, {"k8s.sidecar_env": env(partial, opaque=("envFrom secret rw (not read)",))})
    assert r.status == Status.UNKNOWN and "envFrom secret rw" in r.summary


# ------------------------------------------------------------------ health


def test_crashloop_with_previous_log_and_events() -> None:
    status = running(ready=False, restartCount=23,
                     state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                     lastState={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": iso(-180)}})
    previous = ContainerLog(f"{NS}/{POD}", "prom-remotewrite", True,
                            tuple(split_lines('time="x" level=fatal msg="Invalid IDENTITY_TYPE"')), None, 200)
    event = {"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container", "count": 23,
             "involvedObject": {"fieldPath": "spec.containers{prom-remotewrite}"}}
    r = run_check(sidecar_crashloop, {"k8s.sidecar_status": status, "k8s.sidecar_previous_logs": previous,
                                      "k8s.pod_events": [event]})
    f = r.findings[0]
    assert r.status == Status.FAIL and f.code == "SIDECAR_CRASHLOOP" and "CrashLoopBackOff" in f.summary
    assert f.evidence["restarts"] == 23 and f.evidence["last_termination"]["exitCode"] == 1
    assert "Invalid IDENTITY_TYPE" in f.evidence["previous_log"][0] and "(x23)" in f.evidence["events"][0]
    assert f.remediation[0] == f"kubectl -n {NS} logs {POD} -c prom-remotewrite --previous"
    assert "SIDECAR_CONFIG_INVALID" in f.explained_by


def test_recent_restart_warns_old_restart_passes_oom_advice() -> None:
    recent = running(restartCount=1, lastState={"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                                "finishedAt": iso(-600)}})
    r = run_check(sidecar_crashloop, {"k8s.sidecar_status": recent})
    assert r.status == Status.WARN and any("memory limit" in c for c in r.findings[0].remediation)
    old = running(restartCount=1, lastState={"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                             "finishedAt": iso(-7200)}})
    assert run_check(sidecar_crashloop, {"k8s.sidecar_status": old}).status == Status.PASS
    pulling = running(ready=False, state={"waiting": {"reason": "ImagePullBackOff"}})
    assert run_check(sidecar_crashloop, {"k8s.sidecar_status": pulling}).status == Status.FAIL


def test_ready_and_not_ready() -> None:
    assert run_check(sidecar_ready).status == Status.PASS
    mount = {"type": "Warning", "reason": "FailedMount", "message": "MountVolume.SetUp failed: secretproviderclass "
                                                                    "not found", "involvedObject": {}}
    r = run_check(sidecar_ready, {"k8s.sidecar_status": running(ready=False, state={"waiting": {"reason":
                                                                                                "ContainerCreating"}}),
                                  "k8s.pod_events": [mount]})
    assert r.status == Status.FAIL and "not started" in r.summary
    assert "FailedMount" in r.findings[0].evidence["events"][0]


# ------------------------------------------------------------------ image


def test_image_known_bad_outdated_good() -> None:
    assert run_check(sidecar_image).status == Status.PASS
    bad = IMAGE.replace("20250814.1", "20251030.1")
    r = run_check(sidecar_image, {"k8s.sidecar_status": running(image=bad),
                                  "k8s.sidecar_container": sidecar(image=bad)})
    assert codes(r) == ["SIDECAR_IMAGE_KNOWN_BAD"] and r.status == Status.FAIL
    assert "1372" in r.findings[0].evidence["issue"]
    legacy = "mcr.microsoft.com/azuremonitor/prometheus/promdev/prom-remotewrite:prom-remotewrite-20221012.2"
    r = run_check(sidecar_image, {"k8s.sidecar_status": running(image=legacy),
                                  "k8s.sidecar_container": sidecar(image=legacy)})
    assert r.status == Status.WARN and codes(r) == ["SIDECAR_IMAGE_OUTDATED"]


# ------------------------------------------------------------------ remote write URL


@pytest.mark.parametrize(("url", "problem"), [
    ("http://localhost:8081/api/v1/write", None),
    ("http://127.0.0.1:8081/api/v1/write/", None),
    ("http://10.244.0.23:8081/api/v1/write", None),
    ("http://localhost:8080/api/v1/write", "port 8080"),
    ("http://localhost:8081/write", "path /write"),
    ("https://localhost:8081/api/v1/write", "https"),
    ("http://prometheus-remote.example:8081/api/v1/write", "not to the sidecar"),
    ("https://amw.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/dcr-1/streams/x/api/v1/write",
     "bypassing the sidecar"),
])
def test_url_problem(url: str, problem: str | None) -> None:
    got = url_problem(url, 8081, ["10.244.0.23"])
    assert (got is None) if problem is None else (got is not None and problem in got)


def test_remote_write_url_check() -> None:
    good = RemoteWriteConfig("Prometheus monitoring/prom spec.remoteWrite", ({"url": "http://localhost:8081/api/v1/write"},),
                             "prom")
    assert run_check(remote_write_url, {"k8s.remote_write_config": good}).status == Status.PASS
    bad = RemoteWriteConfig("Prometheus monitoring/prom spec.remoteWrite", ({"url": "http://localhost:8080/api/v1/write"},),
                            "prom")
    cr = {"metadata": {"name": "prom", "annotations": {"meta.helm.sh/release-name": "prometheus"}}}
    r = run_check(remote_write_url, {"k8s.remote_write_config": bad, "k8s.prometheus_cr": cr})
    f = r.findings[0]
    assert codes(r) == ["REMOTE_WRITE_URL_MISMATCH"] and "port 8080" in f.summary and "8081" in f.summary
    assert f.remediation[0] == f"kubectl -n {NS} get prometheus prom -o jsonpath='{{.spec.remoteWrite}}'"
    assert any(c.startswith("helm upgrade prometheus ") for c in f.remediation)
    empty = RemoteWriteConfig("secret monitoring/prometheus-prom (prometheus.yaml.gz)", ())
    assert "no remote_write" in run_check(remote_write_url, {"k8s.remote_write_config": empty}).summary
    no_port = settings({**pod_identity_env(), "LISTENING_PORT": "x"})
    assert run_check(remote_write_url, {"k8s.remote_write_config": good,
                                        "sidecar.settings": no_port}).status == Status.SKIPPED


# ------------------------------------------------------------------ Prometheus version


def test_prometheus_version_from_buildinfo_then_image() -> None:
    r = run_check(prometheus_version, {"k8s.prometheus_buildinfo": {"version": "2.51.2"}})
    assert r.status == Status.PASS and "buildinfo" in r.summary
    r = run_check(prometheus_version, {"k8s.prometheus_buildinfo": {"version": "2.44.0"}})
    assert codes(r) == ["PROMETHEUS_VERSION_UNSUPPORTED"] and "2.45" in r.summary
    old = make_pod(prometheus_image="quay.io/prometheus/prometheus:v2.47.0")
    aad = settings({"INGESTION_URL": "https://x", "LISTENING_PORT": "8081", "IDENTITY_TYPE": "aadApplication"})
    r = run_check(prometheus_version, {"k8s.pod": old, "k8s.prometheus_container": old["spec"]["containers"][0],
                                       "sidecar.settings": aad})
    assert r.status == Status.FAIL and "2.48" in r.summary and "running image" in r.summary


def test_prometheus_version_unknown_and_skip() -> None:
    pod = make_pod(prometheus_image="quay.io/prometheus/prometheus@sha256:abc")
    pod["status"]["containerStatuses"] = []
    r = run_check(prometheus_version, {"k8s.pod": pod, "k8s.prometheus_container": pod["spec"]["containers"][0]})
    assert r.status == Status.UNKNOWN and r.needs == f"get pods/proxy in namespace {NS}"
    r = run_check(prometheus_version, {"sidecar.settings": settings({"IDENTITY_TYPE": "bogus"})})
    assert r.status == Status.SKIPPED


def test_explanation_lists_name_only_catalogued_codes() -> None:
    from promrw_doctor.checks.kubernetes._common import PUBLISH_ROOTS, STARTUP_ROOTS

    from promrw_doctor.core.codes import catalog

    assert set(PUBLISH_ROOTS) | set(STARTUP_ROOTS) <= set(catalog())
