"""The lab's Kubernetes API server, driven by the real ``kubernetes`` client, raw HTTP and kubectl.

Each test starts its own server on loopback (plain HTTP, or HTTPS with a per-session CA and
a bearer token) from a fresh :class:`KubeState`, and talks to it through a kubeconfig file in
``tmp_path``: nothing here reads or writes ``~/.kube``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from promrw_doctor.lab.emulators.kubeapi import DenyRule, KubeState, ProxyTarget, make_app
from promrw_doctor.lab.server import LabServer

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z: a fixed "now" for log filtering and AGE
TOKEN = "lab-kube-token-0123456789"
USER = "system:serviceaccount:promrw:doctor"


def iso(offset: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + offset))


# --------------------------------------------------------------------------------------------- the world


def _pod(
    ns: str,
    name: str,
    labels: dict[str, str],
    containers: list[str],
    *,
    node: str = "aks-node-0",
    ip: str = "10.244.0.5",
    statuses: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    **spec: Any,
) -> dict[str, Any]:
    if statuses is None:
        statuses = [
            {"name": c, "ready": True, "restartCount": 0, "state": {"running": {"startedAt": iso(-3600)}}}
            for c in containers
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "creationTimestamp": iso(-7200)},
        "spec": {
            "nodeName": node,
            "containers": [{"name": c, "image": f"example/{c}:1"} for c in containers],
            **spec,
        },
        "status": {"phase": phase, "podIP": ip, "containerStatuses": statuses},
    }


def world() -> list[dict[str, Any]]:
    """A small AKS-like cluster: Prometheus with the remote-write sidecar, NMI, pod identity CRs."""
    setup = _pod(
        "monitoring",
        "setup-job",
        {"app": "setup"},
        ["main"],
        phase="Pending",
        ip="",
        initContainers=[{"name": "wait", "image": "busybox"}],
        statuses=[
            {
                "name": "main",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}},
            }
        ],
    )
    setup["status"]["initContainerStatuses"] = [
        {"name": "wait", "ready": False, "restartCount": 0, "state": {"running": {"startedAt": iso(-10)}}}
    ]
    sidecar_crash = [
        {
            "name": "prometheus",
            "ready": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": iso(-3600)}},
        },
        {
            "name": "prom-remotewrite",
            "ready": False,
            "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": iso(-300)}},
        },
    ]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}},
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "aks-node-0", "labels": {"kubernetes.io/role": "agent"}},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.29.2"},
                "addresses": [{"type": "InternalIP", "address": "10.224.0.4"}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "aks-node-1"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]},
        },
        _pod(
            "monitoring",
            "prometheus-0",
            {
                "app": "prometheus",
                "aadpodidbinding": "prom-rw",
                "statefulset.kubernetes.io/pod-name": "prometheus-0",
            },
            ["prometheus", "prom-remotewrite"],
            statuses=sidecar_crash,
        ),
        _pod(
            "monitoring", "grafana-7d9f", {"app": "grafana"}, ["grafana"], node="aks-node-1", ip="10.244.1.7"
        ),
        setup,
        _pod(
            "kube-system", "nmi-abcde", {"component": "nmi", "tier": "node", "k8s-app": "aad-pod-id"}, ["nmi"]
        ),
        _pod(
            "kube-system",
            "nmi-fghij",
            {"component": "nmi", "tier": "node", "k8s-app": "aad-pod-id"},
            ["nmi"],
            node="aks-node-1",
            ip="10.244.1.2",
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "nmi", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": {"component": "nmi"}},
                "template": {"spec": {"containers": [{"name": "nmi", "image": "mcr/nmi:v1.8.17"}]}},
            },
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 2},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "prometheus", "namespace": "monitoring"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "prometheus"}}},
            "status": {"readyReplicas": 0},
        },
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "prometheus-0.17a", "namespace": "monitoring"},
            "involvedObject": {"kind": "Pod", "name": "prometheus-0", "namespace": "monitoring"},
            "reason": "BackOff",
            "type": "Warning",
            "message": "Back-off restarting failed container",
            "firstTimestamp": iso(-600),
            "lastTimestamp": iso(-60),
            "count": 7,
        },
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "grafana-7d9f.17b", "namespace": "monitoring"},
            "involvedObject": {"kind": "Pod", "name": "grafana-7d9f", "namespace": "monitoring"},
            "reason": "Pulled",
            "type": "Normal",
            "message": "Container image pulled",
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "prometheus", "namespace": "monitoring"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "prom-rw", "namespace": "monitoring"},
            "type": "Opaque",
            "data": {"k": "dg=="},
        },
        {
            "apiVersion": "aadpodidentity.k8s.io/v1",
            "kind": "AzureIdentity",
            "metadata": {"name": "prom-rw-id", "namespace": "monitoring"},
            "spec": {
                "type": 0,
                "clientID": "11111111-2222-3333-4444-555555555555",
                "resourceID": "/subscriptions/x",
            },
        },
        {
            "apiVersion": "aadpodidentity.k8s.io/v1",
            "kind": "AzureIdentityBinding",
            "metadata": {"name": "prom-rw-binding", "namespace": "monitoring", "labels": {"team": "obs"}},
            "spec": {"azureIdentity": "prom-rw-id", "selector": "prom-rw"},
        },
        {
            "apiVersion": "aadpodidentity.k8s.io/v1",
            "kind": "AzureIdentityBinding",
            "metadata": {"name": "other-binding", "namespace": "default"},
            "spec": {"azureIdentity": "other", "selector": "other"},
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "Prometheus",
            "metadata": {"name": "prometheus", "namespace": "monitoring"},
            "spec": {"version": "v2.51.2", "replicas": 1},
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": "node-exporter", "namespace": "monitoring"},
            "spec": {},
        },
    ]


SIDECAR_LOG = (
    "\n".join(
        [
            f'time="{iso(-300)}" level=info msg="Starting prom-remotewrite"',
            f'time="{iso(-120)}" level=error msg="Failed to get token" error="ManagedIdentityCredential"',
            "    continuation line without a timestamp",
            f"ts={iso(-30)} caller=main.go:1 level=warn msg=retrying",
            f"{iso(-5)} plain ISO timestamped line",
        ]
    )
    + "\n"
)


def new_state(**kw: Any) -> KubeState:
    logs = {
        "monitoring/prometheus-0/prom-remotewrite": SIDECAR_LOG,
        "monitoring/prometheus-0/prom-remotewrite/previous": 'level=fatal msg="panic: no identity"\n',
        "monitoring/prometheus-0/prometheus": "prometheus line 1\nprometheus line 2\n",
        "monitoring/grafana-7d9f/grafana": "g1\ng2\ng3\n",
    }
    kw.setdefault("clock", lambda: T0)
    return KubeState(objects=world(), logs=logs, **kw)


# --------------------------------------------------------------------------------------------- plumbing


@dataclass
class Tls:
    ssl_context: Any
    ca_pem: bytes


@pytest.fixture(scope="session")
def tls() -> Tls:
    """The lab CA (``promrw_doctor.lab.pki``) when present; else a self-signed loopback certificate."""
    try:
        from promrw_doctor.lab.pki import CertificateAuthority
    except ImportError:  # pragma: no cover - pki.py is written by another helper
        return _self_signed()
    ca = CertificateAuthority.create()
    return Tls(ca.issue_server().ssl_context(), ca.cert_pem)


def _self_signed() -> Tls:  # pragma: no cover - fallback only
    import datetime
    import ipaddress
    import ssl
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as d:
        Path(d, "c.pem").write_bytes(cert_pem)
        Path(d, "k.pem").write_bytes(key_pem)
        ctx.load_cert_chain(Path(d, "c.pem"), Path(d, "k.pem"))
    return Tls(ctx, cert_pem)


@pytest.fixture
def lab() -> Iterator[LabServer]:
    with LabServer() as server:
        yield server


@dataclass
class Cluster:
    state: KubeState
    url: str
    kubeconfig: Path
    api: client.ApiClient
    ca_file: Path | None

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def http(
        self, path: str, accept: str = "application/json", token: str | None = None, method: str = "GET"
    ) -> requests.Response:
        """Raw HTTP, for what the generated client hides (Accept negotiation, headers, bodies)."""
        headers = {"Accept": accept}
        if token or self.state.token:
            headers["Authorization"] = f"Bearer {token or self.state.token}"
        verify: Any = str(self.ca_file) if self.ca_file else True
        return requests.request(method, self.url + path, headers=headers, timeout=10, verify=verify)


def write_kubeconfig(path: Path, url: str, *, ca_pem: bytes | None = None, token: str | None = None) -> Path:
    cluster: dict[str, Any] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user: dict[str, Any] = {"token": token} if token else {}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": cluster}],
        "users": [{"name": "doctor", "user": user}],
        "contexts": [
            {"name": "lab", "context": {"cluster": "lab", "user": "doctor", "namespace": "monitoring"}}
        ],
        "current-context": "lab",
    }
    path.write_text(json.dumps(doc, indent=1))  # JSON is YAML
    return path


@pytest.fixture
def serve(lab: LabServer, tmp_path: Path, tls: Tls) -> Iterator[Callable[..., Cluster]]:
    """``serve(state, tls=False, client_token=...)`` -> a running :class:`Cluster`."""
    clients: list[client.ApiClient] = []

    def _serve(
        state: KubeState | None = None, *, https: bool = False, client_token: str | None = None
    ) -> Cluster:
        state = state if state is not None else new_state()
        endpoint = lab.add(
            f"kube{len(clients)}", make_app(state), ssl_context=tls.ssl_context if https else None
        )
        url = endpoint.url if not https else f"https://localhost:{endpoint.port}"
        token = client_token if client_token is not None else state.token
        kc = write_kubeconfig(
            tmp_path / f"kubeconfig{len(clients)}", url, ca_pem=tls.ca_pem if https else None, token=token
        )
        ca_file = None
        if https:
            ca_file = tmp_path / "ca.pem"
            ca_file.write_bytes(tls.ca_pem)
        api = config.new_client_from_config(config_file=str(kc))
        clients.append(api)
        return Cluster(state, url, kc, api, ca_file)

    yield _serve
    for api in clients:
        api.close()


def status_of(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


def names(items: Any) -> list[str]:
    return [i.metadata.name if hasattr(i, "metadata") else i["metadata"]["name"] for i in items]


# --------------------------------------------------------------------------------------------- list / get


def test_list_pods_with_label_selectors(serve: Callable[..., Cluster]) -> None:
    core = serve().core
    got = core.list_namespaced_pod("monitoring", label_selector="app=prometheus")
    assert names(got.items) == ["prometheus-0"]
    assert got.kind == "PodList" and got.api_version == "v1" and got.metadata.resource_version
    assert names(core.list_namespaced_pod("monitoring", label_selector="app in (grafana, setup)").items) == [
        "grafana-7d9f",
        "setup-job",
    ]
    # != and notin match objects *without* the label, as on a real server
    assert names(core.list_namespaced_pod("monitoring", label_selector="aadpodidbinding!=prom-rw").items) == [
        "grafana-7d9f",
        "setup-job",
    ]
    assert names(core.list_namespaced_pod("monitoring", label_selector="app notin (prometheus)").items) == [
        "grafana-7d9f",
        "setup-job",
    ]
    assert names(core.list_namespaced_pod("monitoring", label_selector="aadpodidbinding").items) == [
        "prometheus-0"
    ]
    assert names(
        core.list_namespaced_pod("monitoring", label_selector="!aadpodidbinding,app==grafana").items
    ) == ["grafana-7d9f"]
    everywhere = core.list_pod_for_all_namespaces(label_selector="component=nmi,tier=node")
    assert [(p.metadata.namespace, p.metadata.name) for p in everywhere.items] == [
        ("kube-system", "nmi-abcde"),
        ("kube-system", "nmi-fghij"),
    ]
    assert names(core.list_namespaced_pod("nowhere").items) == []  # a missing namespace lists empty


def test_list_with_field_selectors(serve: Callable[..., Cluster]) -> None:
    core = serve().core
    on_node1 = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=aks-node-1")
    assert names(on_node1.items) == ["nmi-fghij", "grafana-7d9f"]  # etcd order: namespace, then name
    assert names(core.list_namespaced_pod("monitoring", field_selector="status.phase!=Running").items) == [
        "setup-job"
    ]
    assert names(
        core.list_pod_for_all_namespaces(
            field_selector="metadata.name=nmi-abcde,metadata.namespace=kube-system"
        ).items
    ) == ["nmi-abcde"]
    events = core.list_namespaced_event(
        "monitoring", field_selector="involvedObject.name=prometheus-0,involvedObject.kind=Pod"
    )
    assert [e.reason for e in events.items] == ["BackOff"]
    assert names(
        core.list_event_for_all_namespaces(
            field_selector="involvedObject.namespace=monitoring,type=Normal"
        ).items
    ) == ["grafana-7d9f.17b"]


def test_bad_selectors_are_400_bad_request(serve: Callable[..., Cluster]) -> None:
    core = serve().core
    with pytest.raises(ApiException) as bad_label:
        core.list_namespaced_pod("monitoring", label_selector="app in ()")
    assert bad_label.value.status == 400
    assert status_of(bad_label.value)["reason"] == "BadRequest"
    with pytest.raises(ApiException) as bad_field:
        core.list_namespaced_pod("monitoring", field_selector="spec.containers=x")
    assert status_of(bad_field.value)["message"] == "field label not supported: spec.containers"


def test_read_pod_and_defaulted_metadata(serve: Callable[..., Cluster]) -> None:
    state = new_state()
    state.objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bare"}})
    pod = serve(state).core.read_namespaced_pod("prometheus-0", "monitoring")
    assert pod.kind == "Pod" and [c.name for c in pod.spec.containers] == ["prometheus", "prom-remotewrite"]
    assert pod.metadata.uid and pod.metadata.resource_version and pod.metadata.creation_timestamp
    cm = client.CoreV1Api(serve(state).api).read_namespaced_config_map("bare", "default")
    assert cm.metadata.namespace == "default" and cm.metadata.uid
    assert "uid" not in state.objects[-1]["metadata"]  # the caller's manifests are not modified


def test_not_found_status(serve: Callable[..., Cluster]) -> None:
    cluster = serve()
    with pytest.raises(ApiException) as exc:
        cluster.core.read_namespaced_pod("nope", "monitoring")
    body = status_of(exc.value)
    assert exc.value.status == 404
    assert (body["reason"], body["message"]) == ("NotFound", 'pods "nope" not found')
    assert body["details"] == {"name": "nope", "kind": "pods"}
    with pytest.raises(ApiException) as crd:
        cluster.custom.get_namespaced_custom_object(
            "aadpodidentity.k8s.io", "v1", "monitoring", "azureidentitybindings", "missing"
        )
    assert (
        status_of(crd.value)["message"] == 'azureidentitybindings.aadpodidentity.k8s.io "missing" not found'
    )


def test_custom_objects(serve: Callable[..., Cluster]) -> None:
    custom = serve().custom
    bindings = custom.list_namespaced_custom_object(
        "aadpodidentity.k8s.io", "v1", "monitoring", "azureidentitybindings"
    )
    assert bindings["kind"] == "AzureIdentityBindingList"
    assert bindings["apiVersion"] == "aadpodidentity.k8s.io/v1"
    assert names(bindings["items"]) == ["prom-rw-binding"]
    assert bindings["items"][0]["spec"] == {"azureIdentity": "prom-rw-id", "selector": "prom-rw"}
    every = custom.list_cluster_custom_object("aadpodidentity.k8s.io", "v1", "azureidentitybindings")
    assert names(every["items"]) == ["other-binding", "prom-rw-binding"]  # etcd order: namespace, name
    assert names(
        custom.list_cluster_custom_object(
            "aadpodidentity.k8s.io", "v1", "azureidentitybindings", label_selector="team=obs"
        )["items"]
    ) == ["prom-rw-binding"]
    proms = custom.list_cluster_custom_object("monitoring.coreos.com", "v1", "prometheuses")
    assert proms["kind"] == "PrometheusList" and names(proms["items"]) == ["prometheus"]
    assert (
        custom.get_namespaced_custom_object(
            "monitoring.coreos.com", "v1", "monitoring", "servicemonitors", "node-exporter"
        )["kind"]
        == "ServiceMonitor"
    )
    # an installed CRD group with no objects lists empty
    spcs = custom.list_namespaced_custom_object(
        "secrets-store.csi.x-k8s.io", "v1", "monitoring", "secretproviderclasses"
    )
    assert spcs["items"] == []


def test_uninstalled_crd_group_is_a_404_like_a_real_cluster(serve: Callable[..., Cluster]) -> None:
    state = new_state(crd_groups={"aadpodidentity.k8s.io"})
    cluster = serve(state)
    with pytest.raises(ApiException) as exc:
        cluster.custom.list_namespaced_custom_object(
            "secrets-store.csi.x-k8s.io", "v1", "monitoring", "secretproviderclasses"
        )
    assert exc.value.status == 404 and exc.value.body.strip() == "404 page not found"
    groups = [g["name"] for g in cluster.http("/apis").json()["groups"]]
    # aadpodidentity (listed) and monitoring.coreos.com (it has objects) are installed
    assert set(groups) == {"apps", "apiextensions.k8s.io", "aadpodidentity.k8s.io", "monitoring.coreos.com"}
    crds = client.ApiextensionsV1Api(cluster.api).list_custom_resource_definition()
    assert "azureidentitybindings.aadpodidentity.k8s.io" in names(crds.items)
    assert not any(n.endswith("secrets-store.csi.x-k8s.io") for n in names(crds.items))


def test_apps_and_cluster_scoped(serve: Callable[..., Cluster]) -> None:
    cluster = serve()
    apps = client.AppsV1Api(cluster.api)
    assert names(apps.list_daemon_set_for_all_namespaces(label_selector="").items) == ["nmi"]
    assert apps.read_namespaced_stateful_set("prometheus", "monitoring").spec.replicas == 1
    assert names(cluster.core.list_node().items) == ["aks-node-0", "aks-node-1"]
    namespaces = names(cluster.core.list_namespace().items)
    assert namespaces == ["default", "kube-system", "monitoring"]  # referenced namespaces exist
    assert cluster.core.read_namespace("kube-system").status.phase == "Active"


# --------------------------------------------------------------------------------------------- logs


def test_logs_container_tail_and_default(serve: Callable[..., Cluster]) -> None:
    core = serve().core
    tail = core.read_namespaced_pod_log(
        "prometheus-0", "monitoring", container="prom-remotewrite", tail_lines=2
    )
    assert tail == SIDECAR_LOG.splitlines(keepends=True)[-2] + SIDECAR_LOG.splitlines(keepends=True)[-1]
    assert core.read_namespaced_pod_log("grafana-7d9f", "monitoring") == "g1\ng2\ng3\n"  # single container
    assert core.read_namespaced_pod_log("grafana-7d9f", "monitoring", tail_lines=0) == ""


def test_logs_since_seconds_uses_line_timestamps(serve: Callable[..., Cluster]) -> None:
    core = serve().core
    recent = core.read_namespaced_pod_log(
        "prometheus-0", "monitoring", container="prom-remotewrite", since_seconds=60
    )
    assert recent.splitlines() == [
        "    continuation line without a timestamp",
        SIDECAR_LOG.splitlines()[3],
        SIDECAR_LOG.splitlines()[4],
    ]
    wider = core.read_namespaced_pod_log(
        "prometheus-0", "monitoring", container="prom-remotewrite", since_seconds=200
    )
    assert "Failed to get token" in wider and "Starting" not in wider


def test_logs_previous(serve: Callable[..., Cluster]) -> None:
    core = serve().core
    prev = core.read_namespaced_pod_log(
        "prometheus-0", "monitoring", container="prom-remotewrite", previous=True
    )
    assert "panic: no identity" in prev
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod_log("prometheus-0", "monitoring", container="prometheus", previous=True)
    assert exc.value.status == 400
    assert status_of(exc.value)["message"] == (
        'previous terminated container "prometheus" in pod "prometheus-0" not found'
    )


def test_logs_errors_use_real_wording(serve: Callable[..., Cluster]) -> None:
    core = serve().core
    with pytest.raises(ApiException) as two:
        core.read_namespaced_pod_log("prometheus-0", "monitoring")
    assert two.value.status == 400
    assert status_of(two.value)["message"] == (
        "a container name must be specified for pod prometheus-0, "
        "choose one of: [prometheus prom-remotewrite]"
    )
    with pytest.raises(ApiException) as unknown:
        core.read_namespaced_pod_log("prometheus-0", "monitoring", container="sidecar")
    assert status_of(unknown.value)["message"] == "container sidecar is not valid for pod prometheus-0"
    with pytest.raises(ApiException) as waiting:
        core.read_namespaced_pod_log("setup-job", "monitoring", container="main")
    assert status_of(waiting.value)["message"] == (
        'container "main" in pod "setup-job" is waiting to start: PodInitializing'
    )
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod_log("ghost", "monitoring")
    assert missing.value.status == 404


# --------------------------------------------------------------------------------------------- proxy

BUILDINFO = '{"status":"success","data":{"version":"2.51.2","revision":"abc"}}'


def test_proxy_canned(serve: Callable[..., Cluster]) -> None:
    state = new_state(
        proxy={
            "monitoring/prometheus-0:9090": ProxyTarget.canned(
                {
                    "/api/v1/status/buildinfo": (200, "application/json", BUILDINFO),
                    "/metrics": (
                        200,
                        "text/plain; version=0.0.4",
                        "prometheus_remote_storage_samples_failed_total 0\n",
                    ),
                }
            )
        }
    )
    core = serve(state).core
    resp = core.connect_get_namespaced_pod_proxy_with_path(
        "prometheus-0:9090", "monitoring", "api/v1/status/buildinfo", _preload_content=False
    )
    assert resp.status == 200 and json.loads(resp.data)["data"]["version"] == "2.51.2"
    metrics = core.connect_get_namespaced_pod_proxy_with_path(
        "prometheus-0:9090", "monitoring", "metrics", _preload_content=False
    )
    assert metrics.data.startswith(b"prometheus_remote_storage_samples_failed_total")
    assert metrics.headers["Content-Type"].startswith("text/plain")
    with pytest.raises(ApiException) as unknown_path:
        core.connect_get_namespaced_pod_proxy_with_path("prometheus-0:9090", "monitoring", "nope")
    assert unknown_path.value.status == 404
    with pytest.raises(ApiException) as other_port:  # no target on :8080 -> the API server's 503
        core.connect_get_namespaced_pod_proxy_with_path("prometheus-0:8080", "monitoring", "metrics")
    assert other_port.value.status == 503
    assert status_of(other_port.value)["message"] == (
        "error trying to reach service: dial tcp 10.244.0.5:8080: connect: connection refused"
    )
    with pytest.raises(ApiException) as no_pod:
        core.connect_get_namespaced_pod_proxy_with_path("ghost:9090", "monitoring", "metrics")
    assert no_pod.value.status == 404


def test_proxy_to_a_real_upstream(serve: Callable[..., Cluster], lab: LabServer) -> None:
    seen: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        if request.path == "/api/v1/query":
            return web.json_response({"status": "success", "data": {"query": request.query.get("query")}})
        return web.Response(status=503, text="upstream busy")

    upstream = web.Application()
    upstream.router.add_get("/{tail:.*}", anything)
    up = lab.add("upstream", upstream)
    state = new_state(proxy={"monitoring/prometheus-0:9090": up.url})  # a plain URL string works too
    cluster = serve(state)
    core = cluster.core
    raw = cluster.http(
        "/api/v1/namespaces/monitoring/pods/prometheus-0:9090/proxy/api/v1/query?query=up%7Bjob%3D%22x%22%7D"
    )
    assert raw.status_code == 200 and raw.json()["data"]["query"] == 'up{job="x"}'
    assert seen[-1] == "/api/v1/query?query=up%7Bjob%3D%22x%22%7D"
    via_client = core.connect_get_namespaced_pod_proxy_with_path(
        "prometheus-0:9090", "monitoring", "api/v1/query", _preload_content=False
    )
    assert via_client.status == 200 and json.loads(via_client.data)["status"] == "success"
    with pytest.raises(ApiException) as busy:  # upstream status and body pass through
        core.connect_get_namespaced_pod_proxy_with_path("prometheus-0:9090", "monitoring", "busy")
    assert busy.value.status == 503 and busy.value.body == "upstream busy"


def test_proxy_upstream_down_is_503_status(serve: Callable[..., Cluster]) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    state = new_state(proxy={"monitoring/prometheus-0": ProxyTarget.to(f"http://127.0.0.1:{dead}")})
    core = serve(state).core
    with pytest.raises(ApiException) as exc:
        core.connect_get_namespaced_pod_proxy_with_path("prometheus-0", "monitoring", "metrics")
    body = status_of(exc.value)
    assert exc.value.status == 503 and body["reason"] == "ServiceUnavailable"
    assert body["message"].startswith("error trying to reach service: dial tcp 10.244.0.5:80")


# --------------------------------------------------------------------------------------------- authz / authn


def test_deny_is_a_real_forbidden_status(serve: Callable[..., Cluster]) -> None:
    state = new_state(
        deny=[
            DenyRule("list", "pods", "monitoring"),
            DenyRule("get", "pods/log"),
            DenyRule("list", "nodes"),
            DenyRule("list", "azureidentitybindings"),
        ]
    )
    cluster = serve(state)
    core = cluster.core
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_pod("monitoring")
    body = status_of(exc.value)
    assert exc.value.status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        f'pods is forbidden: User "{USER}" cannot list resource "pods" in API group "" '
        'in the namespace "monitoring"'
    )
    assert body["details"] == {"kind": "pods"}
    assert names(core.list_namespaced_pod("kube-system").items) == ["nmi-abcde", "nmi-fghij"]
    with pytest.raises(ApiException) as all_ns:  # listing across namespaces needs the cluster-wide grant
        core.list_pod_for_all_namespaces()
    assert status_of(all_ns.value)["message"].endswith(
        'cannot list resource "pods" in API group "" at the cluster scope'
    )
    assert (
        core.read_namespaced_pod("prometheus-0", "monitoring").metadata.name == "prometheus-0"
    )  # get is fine
    with pytest.raises(ApiException) as log:
        core.read_namespaced_pod_log("grafana-7d9f", "monitoring")
    assert status_of(log.value)["message"] == (
        f'pods "grafana-7d9f" is forbidden: User "{USER}" cannot get resource "pods/log" in API group "" in '
        'the namespace "monitoring"'
    )
    with pytest.raises(ApiException) as nodes:
        core.list_node()
    assert status_of(nodes.value)["message"] == (
        f'nodes is forbidden: User "{USER}" cannot list resource "nodes" in API group "" at the cluster scope'
    )
    with pytest.raises(ApiException) as crd:
        cluster.custom.list_namespaced_custom_object(
            "aadpodidentity.k8s.io", "v1", "default", "azureidentitybindings"
        )
    assert status_of(crd.value)["message"] == (
        f'azureidentitybindings.aadpodidentity.k8s.io is forbidden: User "{USER}" cannot list resource '
        '"azureidentitybindings" in API group "aadpodidentity.k8s.io" in the namespace "default"'
    )
    state.deny.clear()  # rules are read per request
    assert core.list_node().items


def test_https_with_token(serve: Callable[..., Cluster]) -> None:
    state = new_state(token=TOKEN)
    cluster = serve(state, https=True)
    assert cluster.url.startswith("https://localhost:")
    assert names(cluster.core.list_namespaced_pod("monitoring", label_selector="app=grafana").items) == [
        "grafana-7d9f"
    ]
    log = cluster.core.read_namespaced_pod_log("prometheus-0", "monitoring", container="prometheus")
    assert log == "prometheus line 1\nprometheus line 2\n"

    state.token_expired = True
    with pytest.raises(ApiException) as expired:
        cluster.core.list_namespaced_pod("monitoring")
    body = status_of(expired.value)
    assert expired.value.status == 401 and (body["reason"], body["message"]) == (
        "Unauthorized",
        "Unauthorized",
    )


def test_wrong_or_missing_token_is_401(serve: Callable[..., Cluster]) -> None:
    state = new_state(token=TOKEN)
    wrong = serve(state, https=True, client_token="not-the-token")
    with pytest.raises(ApiException) as exc:
        wrong.core.list_namespaced_pod("monitoring")
    assert exc.value.status == 401 and status_of(exc.value)["reason"] == "Unauthorized"
    anonymous = serve(state, https=True, client_token="")
    with pytest.raises(ApiException) as anon:
        anonymous.core.list_namespaced_pod("monitoring")
    assert anon.value.status == 401
    # like system:public-info-viewer: /version answers an anonymous probe, never a bad token
    assert (
        requests.get(anonymous.url + "/version", verify=str(anonymous.ca_file), timeout=10).status_code == 200
    )
    assert wrong.http("/version", token="not-the-token").status_code == 401


# ----------------------------------------------------------------------------------------- read-only, faults


def test_reads_are_gets_and_writes_are_405(serve: Callable[..., Cluster]) -> None:
    cluster = serve()
    cluster.core.list_namespaced_pod("monitoring")
    cluster.core.read_namespaced_pod_log("grafana-7d9f", "monitoring", tail_lines=1)
    cluster.custom.list_cluster_custom_object("aadpodidentity.k8s.io", "v1", "azureidentities")
    assert cluster.state.writes() == []
    assert [m for m, _ in cluster.state.requests] == ["GET", "GET", "GET"]
    assert cluster.state.requests[1] == (
        "GET",
        "/api/v1/namespaces/monitoring/pods/grafana-7d9f/log?tailLines=1",
    )
    with pytest.raises(ApiException) as exc:
        cluster.core.delete_namespaced_pod("prometheus-0", "monitoring")
    assert exc.value.status == 405 and status_of(exc.value)["reason"] == "MethodNotAllowed"
    assert cluster.http("/api/v1/namespaces/monitoring/pods", method="POST").status_code == 405
    assert cluster.state.writes() == [
        ("DELETE", "/api/v1/namespaces/monitoring/pods/prometheus-0"),
        ("POST", "/api/v1/namespaces/monitoring/pods"),
    ]
    assert cluster.core.read_namespaced_pod("prometheus-0", "monitoring")  # nothing was deleted


def test_fault_hook_500_and_invalid_json(serve: Callable[..., Cluster]) -> None:
    state = new_state(
        fault={
            "/api/v1/namespaces/monitoring/pods": (
                500,
                '{"kind":"Status","code":500,"message":"etcd timeout"}',
            ),
            "/api/v1/namespaces/monitoring/pods/grafana": (200, "<html>not json</html>"),
            "/apis/aadpodidentity.k8s.io": (200, "{truncated"),
        }
    )
    cluster = serve(state)
    with pytest.raises(ApiException) as exc:
        cluster.core.list_namespaced_pod("monitoring")
    assert exc.value.status == 500 and "etcd timeout" in exc.value.body
    raw = cluster.core.read_namespaced_pod("grafana-7d9f", "monitoring", _preload_content=False)
    assert raw.status == 200 and raw.data == b"<html>not json</html>"  # longest prefix wins
    with pytest.raises(ValueError):  # what the generated client does with an invalid JSON body
        cluster.custom.list_cluster_custom_object("aadpodidentity.k8s.io", "v1", "azureidentities")
    assert cluster.core.list_namespaced_pod("kube-system").items  # other paths are unaffected
    assert len(state.requests) == 4  # faulted requests are recorded too


def test_handler_bug_is_a_500_status_not_a_dropped_connection(serve: Callable[..., Cluster]) -> None:
    state = new_state(validate=False)  # with validation on, make_app would refuse this pod up front
    state.objects.append(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "weird", "namespace": "odd"},
            "spec": {"containers": "not-a-list"},
            "status": {"containerStatuses": "nope"},
        }
    )
    cluster = serve(state)
    resp = cluster.http("/api/v1/namespaces/odd/pods", accept="application/json;as=Table;v=v1;g=meta.k8s.io")
    assert resp.status_code == 500
    body = resp.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "InternalError", 500)
    assert cluster.http("/api/v1/namespaces/odd/pods").status_code == 200  # plain JSON still works


# --------------------------------------------------------------------------------------------- wire details

TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)


def test_table_pods(serve: Callable[..., Cluster]) -> None:
    cluster = serve()
    table = cluster.http("/api/v1/namespaces/monitoring/pods?limit=500", accept=TABLE).json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    cols = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert cols[:5] == [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0)]
    assert ("IP", 1) in cols and ("Node", 1) in cols
    rows = {r["cells"][0]: r for r in table["rows"]}
    assert rows["prometheus-0"]["cells"][:5] == [
        "prometheus-0",
        "1/2",
        "CrashLoopBackOff",
        "3 (5m ago)",
        "120m",
    ]
    assert rows["prometheus-0"]["cells"][5:7] == ["10.244.0.5", "aks-node-0"]
    assert rows["setup-job"]["cells"][1:3] == ["0/1", "Init:0/1"]
    assert (
        rows["grafana-7d9f"]["object"]["kind"] == "PartialObjectMetadata"
    )  # includeObject defaults to Metadata
    assert rows["grafana-7d9f"]["object"]["metadata"]["namespace"] == "monitoring"
    full = cluster.http("/api/v1/namespaces/monitoring/pods?includeObject=Object", accept=TABLE).json()
    assert full["rows"][0]["object"]["kind"] == "Pod" and "spec" in full["rows"][0]["object"]
    bare = cluster.http(
        "/api/v1/namespaces/monitoring/pods/grafana-7d9f?includeObject=None", accept=TABLE
    ).json()
    assert len(bare["rows"]) == 1 and "object" not in bare["rows"][0]


def test_table_other_kinds(serve: Callable[..., Cluster]) -> None:
    cluster = serve()
    aib = cluster.http("/apis/aadpodidentity.k8s.io/v1/azureidentitybindings", accept=TABLE).json()
    aib_columns = [c["name"] for c in aib["columnDefinitions"]]
    assert aib_columns == ["Name", "AzureIdentity", "Selector", "Age"]
    ds = cluster.http("/apis/apps/v1/namespaces/kube-system/daemonsets", accept=TABLE).json()
    assert ds["rows"][0]["cells"][:4] == ["nmi", 2, 2, 2]
    nodes = cluster.http("/api/v1/nodes", accept=TABLE).json()
    assert [r["cells"][:3] for r in nodes["rows"]] == [
        ["aks-node-0", "Ready", "agent"],
        ["aks-node-1", "NotReady", "<none>"],
    ]
    events = cluster.http("/api/v1/namespaces/monitoring/events", accept=TABLE).json()
    backoff = next(r for r in events["rows"] if r["cells"][2] == "BackOff")
    assert backoff["cells"][:4] == ["60s", "Warning", "BackOff", "pod/prometheus-0"]


def test_partial_object_metadata_list(serve: Callable[..., Cluster]) -> None:
    meta = (
        serve()
        .http(
            "/api/v1/namespaces/kube-system/pods",
            accept="application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
        )
        .json()
    )
    assert meta["kind"] == "PartialObjectMetadataList"
    assert [i["metadata"]["name"] for i in meta["items"]] == ["nmi-abcde", "nmi-fghij"]
    assert "spec" not in meta["items"][0]


def test_discovery_documents(serve: Callable[..., Cluster]) -> None:
    cluster = serve()
    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
    api = cluster.http("/api", accept=aggregated)
    assert api.status_code == 200 and api.json()["kind"] == "APIVersions" and api.json()["versions"] == ["v1"]
    apis = cluster.http("/apis", accept=aggregated).json()
    assert apis["kind"] == "APIGroupList"  # the legacy form: kubectl falls back to per-group discovery
    core = {r["name"]: r for r in cluster.http("/api/v1").json()["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["namespaced"] is True
    assert core["pods"]["verbs"] == ["get", "list", "watch"] and core["pods"]["kind"] == "Pod"
    assert core["nodes"]["namespaced"] is False and "pods/log" in core and "pods/proxy" in core
    apps = {r["name"]: r for r in cluster.http("/apis/apps/v1").json()["resources"]}
    assert apps["daemonsets"]["shortNames"] == ["ds"] and apps["statefulsets"]["shortNames"] == ["sts"]
    pi = cluster.http("/apis/aadpodidentity.k8s.io/v1").json()
    assert pi["groupVersion"] == "aadpodidentity.k8s.io/v1"
    assert {r["kind"] for r in pi["resources"]} == {
        "AzureIdentity",
        "AzureIdentityBinding",
        "AzureAssignedIdentity",
        "AzurePodIdentityException",
    }
    version = client.VersionApi(cluster.api).get_code()
    assert (version.major, version.minor, version.git_version) == ("1", "29", "v1.29.0-promrw-lab")
    assert cluster.http("/openapi/v2").status_code == 404


def test_pagination_and_stale_continue(serve: Callable[..., Cluster]) -> None:
    cluster = serve()
    first = cluster.core.list_pod_for_all_namespaces(limit=2)
    assert first.metadata is not None and first.metadata.remaining_item_count == 3
    second = cluster.core.list_pod_for_all_namespaces(limit=2, _continue=first.metadata._continue)
    assert second.metadata is not None and second.metadata._continue
    third = cluster.core.list_pod_for_all_namespaces(limit=2, _continue=second.metadata._continue)
    assert third.metadata is not None and third.metadata._continue is None
    assert len(set(names(first.items + second.items + third.items))) == 5
    cluster.state.changed()
    cluster.state.objects.append(_pod("monitoring", "late", {}, ["c"]))
    with pytest.raises(ApiException) as exc:
        cluster.core.list_pod_for_all_namespaces(limit=2, _continue=second.metadata._continue)
    assert exc.value.status == 410 and status_of(exc.value)["reason"] == "Expired"
    assert "late" in names(cluster.core.list_namespaced_pod("monitoring").items)  # the index was rebuilt


def test_watch_streams_initial_state(serve: Callable[..., Cluster]) -> None:
    cluster = serve()
    resp = cluster.http("/api/v1/namespaces/kube-system/pods?watch=true&timeoutSeconds=1")
    events = [json.loads(line) for line in resp.text.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "nmi-abcde"),
        ("ADDED", "nmi-fghij"),
    ]


def test_make_app_rejects_bad_manifests() -> None:
    with pytest.raises(ValueError, match=r"objects\[0\].*unknown kind 'Widget'.*serves: Pod \(v1\)"):
        make_app(
            KubeState(objects=[{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}])
        )
    with pytest.raises(ValueError, match="unknown kind 'Pod' in apiVersion 'apps/v1'"):
        make_app(KubeState(objects=[{"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "p"}}]))
    with pytest.raises(ValueError, match=r"metadata\.name is required"):
        make_app(KubeState(objects=[{"apiVersion": "v1", "kind": "Pod", "metadata": {}}]))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}}
    with pytest.raises(ValueError, match="duplicate Pod a/p"):
        make_app(KubeState(objects=[pod, dict(pod)]))
    with pytest.raises(ValueError, match="unknown API group"):
        make_app(KubeState(crd_groups={"nope.example.com"}))


# --------------------------------------------------------------------------------------------- kubectl

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def kubectl(cluster: Cluster, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run kubectl against ``cluster`` with HOME, cache and kubeconfig confined to ``tmp_path``."""
    assert KUBECTL is not None
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "HOME")}
    env.update(HOME=str(home), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    return subprocess.run(
        [
            KUBECTL,
            f"--kubeconfig={cluster.kubeconfig}",
            f"--cache-dir={tmp_path / 'cache'}",
            "--request-timeout=20s",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )


@pytest.fixture
def kube_cluster(serve: Callable[..., Cluster]) -> Cluster:
    """HTTPS + bearer token, as the lab's kubeconfig is; the clock is real so AGE is short."""
    state = new_state(token=TOKEN, clock=time.time)
    return serve(state, https=True)


@pytest.mark.kubectl
@needs_kubectl
def test_kubectl_get_pods_all_namespaces(kube_cluster: Cluster, tmp_path: Path) -> None:
    out = kubectl(kube_cluster, tmp_path, "get", "pods", "-A")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    row = next(line.split() for line in lines if " prometheus-0 " in line)
    assert row[:4] == ["monitoring", "prometheus-0", "1/2", "CrashLoopBackOff"]
    assert sum(1 for line in lines[1:] if line.startswith("kube-system")) == 2


@pytest.mark.kubectl
@needs_kubectl
def test_kubectl_get_pods_wide(kube_cluster: Cluster, tmp_path: Path) -> None:
    out = kubectl(kube_cluster, tmp_path, "get", "pods", "-n", "monitoring", "-o", "wide")
    assert out.returncode == 0, out.stderr
    header = out.stdout.splitlines()[0]
    for col in ("NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE"):
        assert col in header
    grafana = next(line.split() for line in out.stdout.splitlines() if line.startswith("grafana-7d9f"))
    assert grafana[1:3] == ["1/1", "Running"] and "10.244.1.7" in grafana and "aks-node-1" in grafana


@pytest.mark.kubectl
@needs_kubectl
def test_kubectl_get_azureidentitybindings(kube_cluster: Cluster, tmp_path: Path) -> None:
    out = kubectl(kube_cluster, tmp_path, "get", "azureidentitybindings", "-A")
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    assert [r[:2] for r in rows[1:]] == [["default", "other-binding"], ["monitoring", "prom-rw-binding"]]


@pytest.mark.kubectl
@needs_kubectl
def test_kubectl_logs_and_version(kube_cluster: Cluster, tmp_path: Path) -> None:
    logs = kubectl(kube_cluster, tmp_path, "logs", "prometheus-0", "-c", "prom-remotewrite", "--tail=2")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == SIDECAR_LOG.splitlines()[-2:]
    version = kubectl(kube_cluster, tmp_path, "version")
    assert version.returncode == 0, version.stderr
    assert "Server Version: v1.29.0-promrw-lab" in version.stdout
    assert "Client Version: v1.29." in version.stdout  # the dispatcher picked the matching minor
    assert kube_cluster.state.writes() == []
    assert all(m == "GET" for m, _ in kube_cluster.state.requests)
    log_path = "/api/v1/namespaces/monitoring/pods/prometheus-0/log?container=prom-remotewrite&tailLines=2"
    assert any(p.startswith(log_path) for _, p in kube_cluster.state.requests)


@pytest.mark.kubectl
@needs_kubectl
def test_kubectl_sees_forbidden_and_expired(kube_cluster: Cluster, tmp_path: Path) -> None:
    kube_cluster.state.deny.append(DenyRule("list", "pods", "monitoring"))
    denied = kubectl(kube_cluster, tmp_path, "get", "pods", "-n", "monitoring")
    assert denied.returncode != 0
    assert (
        f'Error from server (Forbidden): pods is forbidden: User "{USER}" cannot list resource "pods" in API '
        'group "" in the namespace "monitoring"'
    ) in denied.stderr
    kube_cluster.state.token_expired = True
    expired = kubectl(kube_cluster, tmp_path, "get", "pods", "-n", "kube-system")
    assert expired.returncode != 0
    assert "You must be logged in to the server" in expired.stderr


def test_deny_rules_from_scenario_mappings() -> None:
    rule = DenyRule.from_mapping({"verb": "get", "resource": "pods/log", "namespace": "monitoring"})
    assert rule == DenyRule("get", "pods/log", "monitoring")
    assert DenyRule.from_mapping({"verb": "list", "resource": "secrets"}).namespace is None
    with pytest.raises(ValueError, match="verb 'delete'"):
        DenyRule.from_mapping({"verb": "delete", "resource": "pods"})
    with pytest.raises(ValueError, match="unknown key"):
        DenyRule.from_mapping({"verb": "get", "resource": "pods", "ns": "x"})


def test_accept_negotiation(serve: Callable[..., Cluster]) -> None:
    cluster = serve()
    protobuf_only = cluster.http("/api/v1/namespaces/monitoring/pods", accept="application/vnd.kubernetes.protobuf")
    assert protobuf_only.status_code == 406 and protobuf_only.json()["reason"] == "NotAcceptable"
    both = cluster.http(
        "/api/v1/namespaces/monitoring/pods", accept="application/vnd.kubernetes.protobuf,application/json"
    )
    assert both.status_code == 200 and both.json()["kind"] == "PodList"
    assert both.headers["Content-Type"].startswith("application/json")
