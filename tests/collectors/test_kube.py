"""Kubernetes collectors against the lab's API server emulator, through the real ``kubernetes`` client.

One lab world (healthy pod identity, HTTPS + bearer token, kubeconfig written by the lab)
serves every test; each test changes the emulator's state (RBAC denials, faults, objects)
and the fixture restores it. Only the cluster-side checks run (no Azure calls).
"""

from __future__ import annotations

import base64
import copy
import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promrw_doctor import api
from promrw_doctor.core import InputError, Status
from promrw_doctor.core.model import Report
from promrw_doctor.lab.emulators.kubeapi import DenyRule
from promrw_doctor.lab.scenario import load_scenario
from promrw_doctor.lab.world import LabWorld

# The cluster-side checks only (by id): no Azure-side check may run here (no Azure credential, no network).
CLUSTER_SIDE = ("kubernetes.*", "identity.pod-identity-*", "identity.nmi", "identity.workload-identity",
                "identity.cert-mount", "identity.cert-private-key", "pipeline.sidecar-publishing",
                "pipeline.prometheus-remote-write")
NS = "monitoring"
POD = "prometheus-prometheus-kube-prometheus-prometheus-0"
SIDECAR_SECRET = "prometheus-prometheus-kube-prometheus-prometheus"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabWorld]:
    scenario = load_scenario("healthy-pod-identity")
    with LabWorld(scenario, tmp_path_factory.mktemp("kube") / "lab", traffic=False, store=False) as w:
        yield w


@pytest.fixture
def lab(world: LabWorld) -> Iterator[LabWorld]:
    """The world with its Kubernetes state restored after the test."""
    state = world.kube_state
    saved = (copy.deepcopy(state.objects), list(state.deny), dict(state.fault), state.token_expired)
    state.requests.clear()
    yield world
    state.objects[:] = saved[0]
    state.deny[:] = saved[1]
    state.fault.clear()
    state.fault.update(saved[2])
    state.token_expired = saved[3]
    state.changed()


def diagnose(world: LabWorld, **kw: Any) -> Report:
    kw.setdefault("only", CLUSTER_SIDE)
    report = api.diagnose(kubeconfig=str(world.kubeconfig), context=world.context, **kw)
    assert {r.category for r in report.results} <= {"kubernetes", "identity", "pipeline"}
    return report


def result(report: Report, check_id: str) -> Any:
    return next(r for r in report.results if r.check_id == check_id)


def pod_object(world: LabWorld) -> dict[str, Any]:
    return next(o for o in world.kube_state.objects if o["kind"] == "Pod" and o["metadata"]["name"] == POD)


def test_zero_config_discovery_and_read_only(lab: LabWorld) -> None:
    report = diagnose(lab)
    assert [t.id for t in report.targets] == [f"{NS}/{POD}"]
    assert report.root_causes == []
    assert not [r.check_id for r in report.results if r.status in (Status.FAIL, Status.ERROR, Status.UNKNOWN)]
    assert report.context["context"] == lab.context and report.context["searched"] == "all namespaces"
    requests = lab.kube_state.requests
    assert requests and all(method == "GET" for method, _ in requests)
    assert any("/proxy/metrics" in path for _, path in requests)  # self-metrics through the pod proxy
    assert not any("/secrets" in path for _, path in requests)  # the CR was readable: no Secret read


def test_namespace_without_prometheus_names_where_it_looked(lab: LabWorld) -> None:
    report = diagnose(lab, namespace="kube-system")
    assert [rc.code for rc in report.root_causes] == ["PROM_POD_NOT_FOUND"]
    rc = report.root_causes[0]
    assert "namespace kube-system" in rc.summary and lab.context in rc.summary
    blocked = [r for r in report.results if r.status == Status.BLOCKED]
    assert blocked and all(r.blocked_by == "kubernetes.prometheus-pod" for r in blocked)


def test_cluster_wide_pod_list_forbidden_searches_each_namespace(lab: LabWorld) -> None:
    lab.kube_state.deny.append(DenyRule("list", "pods", "kube-system"))
    report = diagnose(lab)
    assert [t.id for t in report.targets] == [f"{NS}/{POD}"]
    assert any("forbidden" in n for n in report.context["notes"])
    nmi = result(report, "identity.nmi")  # NMI pods live in kube-system, which we may not list
    assert nmi.status == Status.UNKNOWN and nmi.needs == "list pods in namespace kube-system"


def test_no_list_at_all_falls_back_to_the_context_namespace(lab: LabWorld) -> None:
    lab.kube_state.deny += [DenyRule("list", "pods", "kube-system"), DenyRule("list", "namespaces")]
    report = diagnose(lab)
    assert report.targets[0].kind == "cluster"
    notes = " ".join(report.context["notes"])
    assert "context's namespace default" in notes
    assert [rc.code for rc in report.root_causes] == ["PROM_POD_NOT_FOUND"]


def test_logs_forbidden_is_unknown_naming_the_permission(lab: LabWorld) -> None:
    lab.kube_state.deny.append(DenyRule("get", "pods/log", NS))
    report = diagnose(lab)
    pub = result(report, "pipeline.sidecar-publishing")
    assert pub.status == Status.UNKNOWN and pub.needs == f"get pods/log in namespace {NS}"
    assert report.root_causes == []


def _config_secret(url: str) -> dict[str, Any]:
    cfg = f"global: {{scrape_interval: 30s}}\nremote_write:\n- url: {url}\n  basic_auth: {{password: hunter2}}\n"
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SIDECAR_SECRET, "namespace": NS},
            "type": "Opaque", "data": {"prometheus.yaml.gz": base64.b64encode(gzip.compress(cfg.encode())).decode()}}


def test_remote_write_config_from_the_generated_secret(lab: LabWorld) -> None:
    lab.kube_state.deny.append(DenyRule("list", "prometheuses", NS))
    lab.kube_state.objects.append(_config_secret("http://user:pw@localhost:8080/api/v1/write"))
    lab.kube_state.changed()
    report = diagnose(lab)
    url = result(report, "kubernetes.remote-write-url")
    assert url.status == Status.FAIL and f"secret {NS}/{SIDECAR_SECRET}" in url.summary
    assert "user:pw" not in str(url.findings[0].evidence) and "hunter2" not in str(url.findings[0].to_dict())


def test_remote_write_config_denied_everywhere_names_every_permission(lab: LabWorld) -> None:
    lab.kube_state.objects.append(_config_secret("http://localhost:8081/api/v1/write"))
    lab.kube_state.deny += [DenyRule("list", "prometheuses", NS), DenyRule("get", "secrets", NS),
                            DenyRule("get", "pods/proxy", NS)]
    lab.kube_state.changed()
    report = diagnose(lab)
    url = result(report, "kubernetes.remote-write-url")
    assert url.status == Status.UNKNOWN
    assert "list prometheuses.monitoring.coreos.com in namespace monitoring" in url.needs
    assert f"get secrets in namespace {NS}" in url.needs and f"get pods/proxy in namespace {NS}" in url.needs
    # Without the pod proxy the version still comes from the running image; logs still judge Prometheus.
    assert result(report, "kubernetes.prometheus-version").status == Status.PASS
    assert result(report, "pipeline.prometheus-remote-write").status == Status.PASS


def test_remote_write_config_from_the_running_config_when_cr_denied(lab: LabWorld) -> None:
    lab.kube_state.deny.append(DenyRule("list", "prometheuses", NS))
    report = diagnose(lab)
    url = result(report, "kubernetes.remote-write-url")
    assert url.status == Status.PASS and "/api/v1/status/config" in url.findings[0].evidence["source"]


def test_configmap_env_is_resolved_and_secrets_are_never_read(lab: LabWorld) -> None:
    pod = pod_object(lab)
    side = next(c for c in pod["spec"]["containers"] if c["name"] == "prom-remotewrite")
    client_id = next(e["value"] for e in side["env"] if e["name"] == "AZURE_CLIENT_ID")
    side["env"] = [e for e in side["env"] if e["name"] not in ("AZURE_CLIENT_ID", "CLUSTER")] + [
        {"name": "AZURE_CLIENT_ID", "valueFrom": {"configMapKeyRef": {"name": "rw-settings", "key": "clientId"}}},
        {"name": "CLUSTER", "valueFrom": {"secretKeyRef": {"name": "rw-secret", "key": "cluster"}}}]
    lab.kube_state.objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "rw-settings", "namespace": NS},
                                   "data": {"clientId": client_id}})
    lab.kube_state.changed()
    report = diagnose(lab)
    cfg = result(report, "kubernetes.sidecar-config")
    assert cfg.status == Status.PASS
    assert cfg.findings[0].evidence["sources"]["AZURE_CLIENT_ID"] == "configMap rw-settings/clientId"
    assert "not read" in cfg.findings[0].evidence["sources"]["CLUSTER"]
    assert result(report, "identity.pod-identity-client-id").status == Status.PASS
    assert not any("/secrets" in p for _, p in lab.kube_state.requests)


def test_no_per_pod_requests_on_a_bigger_cluster(lab: LabWorld) -> None:
    diagnose(lab)
    small = {re.sub(r"[&?]continue=[^&]*", "", p) for _, p in lab.kube_state.requests}
    lab.kube_state.objects.extend({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"web-{i}", "namespace": f"team-{i % 7}", "labels": {"app": "web"}},
        "spec": {"nodeName": "aks-nodepool1-31415926-vmss000000", "containers": [{"name": "web", "image": "nginx"}]},
        "status": {"phase": "Running"}} for i in range(400))
    lab.kube_state.changed()
    lab.kube_state.requests.clear()
    report = diagnose(lab)
    large = {re.sub(r"[&?]continue=[^&]*", "", p) for _, p in lab.kube_state.requests}
    assert report.root_causes == [] and large == small


def test_pod_option_and_missing_pod(lab: LabWorld) -> None:
    report = diagnose(lab, pod=POD, namespace=NS)
    assert [t.id for t in report.targets] == [f"{NS}/{POD}"]
    with pytest.raises(InputError, match=f"pod {NS}/nope not found"):
        diagnose(lab, pod="nope", namespace=NS)


@pytest.mark.parametrize(("fault", "message"), [
    ((500, '{"kind":"Status","status":"Failure","message":"etcdserver: leader changed","code":500}'),
     "unexpected answer from the API server"),
    ((200, "{not json"), "not JSON"),
])
def test_unexpected_answers_during_discovery_are_input_errors(lab: LabWorld, fault: tuple[int, str],
                                                              message: str) -> None:
    lab.kube_state.fault["/api/v1/pods"] = fault
    with pytest.raises(InputError, match=message) as info:
        diagnose(lab)
    assert "\n" not in str(info.value)


def test_expired_token_and_unknown_context_are_input_errors(lab: LabWorld, tmp_path: Path) -> None:
    lab.kube_state.token_expired = True
    with pytest.raises(InputError, match="401 Unauthorized"):
        diagnose(lab)
    lab.kube_state.token_expired = False
    with pytest.raises(InputError, match="context 'nope' not found"):
        api.diagnose(kubeconfig=str(lab.kubeconfig), context="nope", only=CLUSTER_SIDE)
    with pytest.raises(InputError, match="--since"):
        diagnose(lab, since="soon")


def test_unexpected_answer_after_discovery_is_an_error_not_an_abort(lab: LabWorld) -> None:
    lab.kube_state.fault["/apis/aadpodidentity.k8s.io/v1/azureidentitybindings"] = (500, "boom")
    report = diagnose(lab)
    binding = result(report, "identity.pod-identity-binding-valid")
    assert binding.status == Status.ERROR and "500" in binding.summary


def _rbac_rules() -> list[dict[str, Any]]:
    import yaml

    docs = yaml.safe_load_all((Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml").read_text())
    role = next(d for d in docs if d and d.get("kind") == "ClusterRole")
    return list(role["rules"])


def _permission(path: str) -> tuple[str, str, str] | None:
    """(verb, api group, resource[/sub]) an API path needs; None for non-resource paths like /version."""
    path = path.split("?", 1)[0]
    m = re.match(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/[^/]+)?/(?P<res>[^/]+)(?:/(?P<name>[^/]+)"
                 r"(?:/(?P<sub>[^/]+))?)?", path)
    if m is None:
        return None
    resource = m["res"] + (f"/{m['sub']}" if m["sub"] else "")
    return ("get" if m["name"] else "list"), m["group"] or "", resource


def test_the_shipped_cluster_role_allows_every_request_and_only_reads(lab: LabWorld) -> None:
    rules = _rbac_rules()
    assert all(set(r["verbs"]) <= {"get", "list"} for r in rules)
    assert not any("secrets" in r["resources"] for r in rules)
    diagnose(lab)
    needed = {p for _, path in lab.kube_state.requests if (p := _permission(path)) is not None}
    assert ("list", "", "pods") in needed and ("get", "", "pods/proxy") in needed
    for verb, group, resource in needed:
        assert any(verb in r["verbs"] and group in r["apiGroups"] and resource in r["resources"] for r in rules), \
            f"deploy/rbac.yaml lacks {verb} {resource} ({group or 'core'})"


def test_several_prometheus_pods_are_each_checked(lab: LabWorld) -> None:
    twin = copy.deepcopy(pod_object(lab))
    twin["metadata"]["namespace"] = "monitoring-b"
    twin["metadata"].pop("uid", None)
    plain = copy.deepcopy(twin)  # a Prometheus without sidecar is not a target when others have one
    plain["metadata"]["name"] = "prometheus-other-0"
    plain["spec"]["containers"] = [c for c in plain["spec"]["containers"] if c["name"] != "prom-remotewrite"]
    lab.kube_state.objects += [twin, plain]
    lab.kube_state.changed()
    report = diagnose(lab)
    assert sorted(t.id for t in report.targets) == [f"monitoring-b/{POD}", f"{NS}/{POD}"]
    assert {r.target for r in report.results} == {f"monitoring-b/{POD}", f"{NS}/{POD}"}
