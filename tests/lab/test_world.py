"""LabWorld end to end, through the files it writes and the real client libraries.

The fast tests run a world without its Prometheus store (``store=False``: no process);
tests that start real Prometheus are marked ``slow``.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from promrw_doctor.core.errors import InputError
from promrw_doctor.lab.scenario import load_scenario
from promrw_doctor.lab.world import CONTEXT, LabWorld

POD = "prometheus-prometheus-kube-prometheus-prometheus-0"


def _port_open(url: str) -> bool:
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


def _processes_under(path: Path) -> list[int]:
    """PIDs whose command line mentions ``path`` (prometheus children, the forwarder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if str(path) in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def world() -> Iterator[LabWorld]:
    with LabWorld(load_scenario("healthy-pod-identity"), store=False) as w:
        yield w


def _doctor_credential(w: LabWorld) -> object:
    from azure.identity import ClientSecretCredential

    env = w.env_vars()
    return ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"],
                                  authority=env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True,
                                  connection_verify=env["REQUESTS_CA_BUNDLE"])


# ----------------------------------------------------------------------------- files
def test_files_are_written(world: LabWorld) -> None:
    for f in world.files().values():
        assert f.is_file()
    assert (world.env_file.stat().st_mode & 0o777) == 0o600
    assert (world.kubeconfig.stat().st_mode & 0o777) == 0o600
    kc = yaml.safe_load(world.kubeconfig.read_text())
    assert kc["current-context"] == CONTEXT
    assert kc["clusters"][0]["cluster"]["server"] == world.endpoints["kube"]
    assert base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]) == \
        world.ca_bundle.read_bytes()
    env_text = world.env_file.read_text()
    assert "LAB ONLY" in env_text
    for key in ("REQUESTS_CA_BUNDLE", "AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "AZURE_CLIENT_ID",
                "AZURE_CLIENT_SECRET", "AZURE_POD_IDENTITY_AUTHORITY_HOST", "KUBECONFIG",
                "PROMRW_DOCTOR_CLOUD_CONFIG"):
        assert f"\n{key}=" in env_text
    # The env file is shell-loadable and says the same as env_vars().
    out = subprocess.run(["bash", "-c", f"set -a; . {world.env_file}; set +a; env"], capture_output=True,
                         text=True, check=True, env={"PATH": os.environ["PATH"]}).stdout
    loaded = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    for k, v in world.env_vars().items():
        assert loaded[k] == v


def test_cloud_profile_loads_and_points_at_the_lab(world: LabWorld) -> None:
    from promrw_doctor.domain.clouds import load_profile_file

    p = load_profile_file(world.cloud_config)
    assert p.authority_host == world.endpoints["entra"]
    assert p.arm_endpoint == world.endpoints["arm"]
    assert p.ingestion_audience == "https://monitor.azure.com"
    assert p.owns_ingestion_host("127.0.0.1")
    assert p.disable_instance_discovery
    assert p.keyvault_url("kv-prom-lab") == world.endpoints["keyvault"] + "/kv-prom-lab"
    assert p.extra["keyvault_url_template"] == world.endpoints["keyvault"] + "/{vault}"


# ----------------------------------------------------------------------------- real clients
def test_kubernetes_client_lists_the_prometheus_pod(world: LabWorld) -> None:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(world.kubeconfig), context=CONTEXT)
    v1 = client.CoreV1Api(api_client)
    pods = v1.list_namespaced_pod("monitoring", label_selector="app.kubernetes.io/name=prometheus")
    assert [p.metadata.name for p in pods.items] == [POD]
    pod = pods.items[0]
    sidecar = next(c for c in pod.spec.containers if c.name == "prom-remotewrite")
    env = {e.name: e.value for e in sidecar.env}
    ingestion = world.endpoints["ingestion:amw-lab"]
    assert env["INGESTION_URL"].startswith(ingestion + "/dataCollectionRules/dcr-")  # placeholder filled
    assert pod.metadata.labels["aadpodidbinding"] == "prom-rw"
    log = v1.read_namespaced_pod_log(POD, "monitoring", container="prom-remotewrite", tail_lines=1)
    assert "successfullyPublished=" in log and "{{" not in log
    buildinfo = v1.connect_get_namespaced_pod_proxy_with_path(f"{POD}:9090", "monitoring",
                                                              "api/v1/status/buildinfo")
    assert "2.51.2" in buildinfo


def test_azure_identity_gets_a_doctor_token_and_requests_reads_the_dcr(world: LabWorld) -> None:
    cred = _doctor_credential(world)
    token = cred.get_token("https://management.core.windows.net/.default")  # type: ignore[attr-defined]
    dcr = world.azure_state.dcrs[0]
    r = requests.get(world.endpoints["arm"] + dcr.id, params={"api-version": "2022-06-01"},
                     headers={"Authorization": f"Bearer {token.token}"}, verify=str(world.ca_bundle), timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["properties"]["immutableId"] == "dcr-8d2e4f6a1b3c5d7e9f0a2b4c6d8e0f1a"
    assert "/resourceGroups/MA_amw-lab_eastus_managed/" in body["id"]
    # The role assignment the scenario describes, resolved to the identity's principal id.
    r = requests.get(world.endpoints["arm"] + dcr.id + "/providers/Microsoft.Authorization/roleAssignments",
                     params={"api-version": "2022-04-01"}, headers={"Authorization": f"Bearer {token.token}"},
                     verify=str(world.ca_bundle), timeout=10)
    assert r.status_code == 200
    principals = {ra["properties"]["principalId"] for ra in r.json()["value"]}
    assert "0b1c2d3e-4f5a-4b6c-9d8e-2f3a4b5c6d7e" in principals


def test_pod_identity_token_through_nmi(world: LabWorld) -> None:
    r = requests.get(world.endpoints["imds"] + "/metadata/identity/oauth2/token",
                     params={"api-version": "2018-02-01", "resource": "https://monitor.azure.com",
                             "client_id": "9a1b2c3d-4e5f-4a6b-8c7d-1e2f3a4b5c6d"},
                     headers={"Metadata": "true"}, timeout=10)
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"


@pytest.mark.kubectl
def test_kubectl_get_pods(world: LabWorld, tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(world.kubeconfig)}
    out = subprocess.run([kubectl, "get", "pods", "-n", "monitoring"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert POD in out.stdout


def test_request_logs_show_reads_only(world: LabWorld) -> None:
    logs = world.request_logs()
    assert {"entra", "arm", "kube", "imds"} <= set(logs)
    assert ("GET", "/api/v1/namespaces/monitoring/pods") in [(m, p.split("?")[0]) for m, p in logs["kube"]]
    assert all(m == "GET" for m, _ in logs["kube"])
    assert all(m in ("GET", "HEAD") for m, _ in logs["arm"])


# ----------------------------------------------------------------------------- variants and switches
def test_entra_cert_world_mounts_a_pfx_the_sidecar_can_use(tmp_path: Path) -> None:
    from azure.identity import CertificateCredential
    from cryptography.hazmat.primitives.serialization import pkcs12

    with LabWorld(load_scenario("healthy-entra-cert"), tmp_path / "run", store=False) as w:
        cert_file = w.pod_path("/mnt/secrets-store/prom-rw-cert")
        key, cert, _ = pkcs12.load_key_and_certificates(cert_file.read_bytes(), None)
        assert key is not None and cert is not None
        registered = w.azure_state.applications[0].key_credentials[0]
        assert registered.thumbprint == w.certificates["prom-rw-cert"].thumbprint
        cred = CertificateCredential(w.tenant_id, "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f",
                                     certificate_path=str(cert_file), authority=w.endpoints["entra"],
                                     disable_instance_discovery=True, connection_verify=str(w.ca_bundle))
        assert cred.get_token("https://monitor.azure.com/.default").token
        kv = w.azure_state.keyvault_certificates
        assert [c.name for c in kv] == ["prom-rw-cert"]
    assert (tmp_path / "run").is_dir()  # a caller-given workdir is left in place


def test_cert_objecttype_cert_mounts_no_private_key() -> None:
    with LabWorld(load_scenario("cert-objecttype-cert"), store=False) as w:
        data = w.pod_path("/mnt/secrets-store/prom-rw-cert").read_bytes()
        assert b"BEGIN CERTIFICATE" in data and b"PRIVATE KEY" not in data
        # The thumbprint placeholder in the sidecar log is the generated certificate's.
    expired = load_scenario("cert-expired")
    with LabWorld(expired, store=False) as w:
        log = w.kube_state.logs[f"monitoring/{POD}/prom-remotewrite"]
        assert w.certificates["prom-rw-cert"].thumbprint in log


def test_nmi_down_means_connection_refused() -> None:
    with LabWorld(load_scenario("nmi-not-running"), store=False) as w:
        assert "imds" not in w.apps
        assert not _port_open(w.endpoints["imds"])


def test_doctor_denied_is_a_403_naming_the_permission() -> None:
    with LabWorld(load_scenario("doctor-no-role-read"), store=False) as w:
        token = _doctor_credential(w).get_token(  # type: ignore[attr-defined]
            "https://management.core.windows.net/.default").token
        dcr = w.azure_state.dcrs[0].id
        r = requests.get(w.endpoints["arm"] + dcr + "/providers/Microsoft.Authorization/roleAssignments",
                         params={"api-version": "2022-04-01"}, headers={"Authorization": f"Bearer {token}"},
                         verify=str(w.ca_bundle), timeout=10)
        assert r.status_code == 403
        assert "Microsoft.Authorization/roleAssignments/read" in r.json()["error"]["message"]


def test_kube_deny_is_a_403_status() -> None:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    with LabWorld(load_scenario("doctor-no-log-read"), store=False) as w:
        v1 = client.CoreV1Api(config.new_client_from_config(config_file=str(w.kubeconfig), context=CONTEXT))
        assert v1.read_namespaced_pod(POD, "monitoring").metadata.name == POD
        with pytest.raises(ApiException) as info:
            v1.read_namespaced_pod_log(POD, "monitoring", container="prom-remotewrite")
        assert info.value.status == 403


def test_usgov_world_profile() -> None:
    from promrw_doctor.domain.clouds import load_profile_file

    with LabWorld(load_scenario("healthy-usgov"), store=False) as w:
        p = load_profile_file(w.cloud_config)
        assert p.ingestion_audience == "https://monitor.azure.us"
        assert p.arm_audience == "https://management.core.usgovcloudapi.net"
        assert "AZUREGOVERNMENT" in p.sidecar_names
        assert w.azure_state.dcrs[0].id.split("/")[4] == "MA_amw-lab_usgovvirginia_managed"


def test_bad_permission_switch_is_input_error(tmp_path: Path) -> None:
    s = load_scenario("healthy-pod-identity").with_denials(azure=["arm:everything"])
    with pytest.raises(InputError, match="unknown permission switch 'arm:everything'"):
        LabWorld(s, tmp_path / "w", store=False).start()


def test_teardown_closes_ports_and_removes_the_directory() -> None:
    w = LabWorld(load_scenario("healthy-managed-identity"), store=False).start()
    urls = [u for u in w.endpoints.values() if u.startswith(("http://", "https://"))]
    assert all(_port_open(u) for u in urls)
    workdir = w.workdir
    w.close()
    assert not workdir.exists()
    assert not any(_port_open(u) for u in urls)
    w.close()  # idempotent


def test_keep_leaves_the_directory(tmp_path: Path) -> None:
    w = LabWorld(load_scenario("healthy-managed-identity"), store=False, keep=True).start()
    w.close()
    try:
        assert (w.workdir / "kubeconfig").is_file()
    finally:
        shutil.rmtree(w.workdir, ignore_errors=True)


# ----------------------------------------------------------------------------- real Prometheus
@pytest.mark.slow
def test_world_with_store_seeds_data_and_leaves_no_process() -> None:
    with LabWorld(load_scenario("healthy-workload-identity")) as w:
        workdir = w.workdir
        assert _processes_under(workdir), "the receiver runs under the run directory"
        from azure.identity import ClientSecretCredential

        env = w.env_vars()
        cred = ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"],
                                      authority=env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True,
                                      connection_verify=env["REQUESTS_CA_BUNDLE"])
        token = cred.get_token("https://prometheus.monitor.azure.com/.default").token
        r = requests.get(w.azure_state.workspaces[0].query_endpoint + "/api/v1/query",
                         params={"query": 'count(up{cluster="aks-lab"})'},
                         headers={"Authorization": f"Bearer {token}"}, verify=str(w.ca_bundle), timeout=10)
        assert r.status_code == 200, r.text
        assert float(r.json()["data"]["result"][0]["value"][1]) >= 1
        urls = [*w.endpoints.values(), w.receiver.url]
    assert not workdir.exists()
    assert _processes_under(workdir) == []
    assert not any(_port_open(u) for u in urls if u.startswith("http"))


@pytest.mark.slow
def test_live_traffic_reaches_the_workspace_store() -> None:
    with LabWorld(load_scenario("healthy-workload-identity"), traffic=True, summary_interval_s=2) as w:
        assert w.forwarder_url and w.sender is not None
        deadline = time.monotonic() + 45
        arrived = None
        while time.monotonic() < deadline:
            arrived = w.receiver.value('count(prometheus_build_info{cluster="aks-lab"})')
            if arrived:
                break
            time.sleep(1)
        assert arrived, "samples from the sender reached the store through forwarder + ingestion"
        records = w.request_logs()["ingestion:amw-lab"]
        assert records
        key = f"monitoring/{POD}/prom-remotewrite"
        deadline = time.monotonic() + 10
        while "successfullyPublished=" not in w.kube_state.logs[key].split("ready", 1)[-1] \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "msg=ready" in w.kube_state.logs[key]
        workdir = w.workdir
    assert _processes_under(workdir) == []


@pytest.mark.slow
def test_lab_run_diagnoses_a_healthy_world_with_the_probe() -> None:
    """The README's command, end to end: world up, doctor + canary probe against it, verdict, teardown."""
    import json
    import sys

    out = subprocess.run([sys.executable, "-m", "promrw_doctor", "lab", "run", "-s", "healthy-pod-identity",
                          "--probe", "-o", "json"], capture_output=True, text=True, timeout=300)
    doc = json.loads(out.stdout)
    (entry,) = doc["scenarios"]
    assert entry["scenario"] == "healthy-pod-identity"
    assert entry["expected_probe_stage"] == "ok"
    assert (entry["match"], out.returncode) == (True, 0), (entry["root_causes"], entry.get("probe_stage"))
    assert "AZURE_CLIENT_SECRET" not in out.stdout and "client_secret" not in out.stdout.lower()
