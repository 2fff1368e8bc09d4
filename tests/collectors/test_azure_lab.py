"""The Azure collectors and checks against the lab's emulators, through the real client stacks.

Real ``requests`` (ARM, Graph, Key Vault), azure-identity (the doctor's DefaultAzureCredential
against the lab's Entra, and CertificateCredential as the sidecar's application) and
``MetricsClient`` (workspace metrics). The doctor reaches the lab only through its files
(kubeconfig, cloud profile, env). Covered here:

* each Azure-side fact on a healthy world (what it found and where it looked);
* every ``doctor_denied`` permission switch in turn: the checks that need it are ``unknown``
  naming the Azure action, the others still run, nothing fails;
* the broken Azure-side scenarios diagnosed the same way over a US Gov-shaped cloud profile;
* the emulators' request logs: the doctor only read.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from promrw_doctor import api
from promrw_doctor.core import FactStore, Status
from promrw_doctor.core.environ import patched_environ
from promrw_doctor.core.model import Report
from promrw_doctor.lab.emulators.azure_common import PERMISSIONS
from promrw_doctor.lab.scenario import Scenario, load_scenario
from promrw_doctor.lab.world import LabWorld

pytestmark = pytest.mark.slow

AZURE_CHECKS = ("azure.", "identity.sidecar-token", "identity.certificate")


# --------------------------------------------------------------------------- harness

def doctor_kwargs(world: LabWorld, **extra: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"kubeconfig": str(world.kubeconfig), "context": world.context,
                              "cloud_config": str(world.cloud_config)}
    env = world.scenario.sidecar_env()
    cert = env.get("AZURE_CLIENT_CERTIFICATE_PATH")
    if env.get("IDENTITY_TYPE") == "aadApplication" and cert and world.pod_path(cert).is_file():
        kwargs["client_certificate"] = str(world.pod_path(cert))
    kwargs.update(extra)
    return kwargs


def diagnose(world: LabWorld, **extra: Any) -> Report:
    with patched_environ(world.env_vars()):
        return api.diagnose(**doctor_kwargs(world, **extra))


def statuses(report: Report) -> dict[str, Any]:
    return {r.check_id: r for r in report.results if r.check_id.startswith(AZURE_CHECKS)}


def assert_read_only(world: LabWorld) -> None:
    for emulator, rows in world.request_logs().items():
        kind = emulator.split(":")[0]
        if kind in ("arm", "graph", "keyvault"):
            writes = [(m, p) for m, p in rows if m not in ("GET", "HEAD")]
            assert not writes, f"{emulator}: the doctor wrote {writes[:3]}"
        if kind == "metrics":
            assert all(m == "POST" and "metrics:getBatch" in p for m, p in rows if m != "GET")


def facts_in(world: LabWorld, *names: str, **options: Any) -> dict[str, Any]:
    """Compute Azure facts for the world's Prometheus pod the way a run does."""
    with patched_environ(world.env_vars()):
        opts = {"kubeconfig": str(world.kubeconfig), "context": world.context,
                "cloud_config": str(world.cloud_config), **options}
        store = FactStore(opts)
        target = store.get("k8s.targets")[0]
        return {n: store.get(n, target) for n in names}


@pytest.fixture(scope="module")
def pi_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabWorld]:
    with LabWorld(load_scenario("healthy-pod-identity"), tmp_path_factory.mktemp("pi"), traffic=False) as w:
        yield w


@pytest.fixture(scope="module")
def app_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabWorld]:
    with LabWorld(load_scenario("healthy-entra-cert"), tmp_path_factory.mktemp("app"), traffic=False) as w:
        yield w


@pytest.fixture
def denied(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Set a world's doctor_denied switches for one test, restore them after."""
    worlds: list[tuple[LabWorld, set[str]]] = []

    def deny(world: LabWorld, *perms: str) -> None:
        worlds.append((world, set(world.azure_state.doctor_denied)))
        world.azure_state.doctor_denied = set(perms)

    yield deny
    for world, before in worlds:
        world.azure_state.doctor_denied = before


# --------------------------------------------------------------------------- facts on a healthy world

def test_facts_of_a_pod_identity_world(pi_world: LabWorld) -> None:
    st = pi_world.azure_state
    f = facts_in(pi_world, "azure.subscriptions", "azure.dcr", "azure.dce", "azure.workspace", "azure.principal",
                 "azure.role_assignments", "azure.cluster", "azure.kubelet_role_assignments",
                 "azure.workspace_metrics")
    assert f["azure.subscriptions"].ids == (st.subscription_id.lower(),)
    dcr = f["azure.dcr"]
    assert dcr.dcr is not None and dcr.id == st.dcrs[0].id and dcr.streams == ["Microsoft-PrometheusMetrics"]
    assert dcr.where() == f"ARM list of Microsoft.Insights/dataCollectionRules per subscription in " \
                          f"/subscriptions/{st.subscription_id.lower()}"
    assert f["azure.dce"]["id"] == st.dces[0].id
    assert f["azure.workspace"]["id"] == st.workspaces[0].id
    p = f["azure.principal"].principal
    assert (p.principal_id, p.kind, p.display_name) == (st.identities[0].principal_id, "ManagedIdentity", "prom-rw-mi")
    assert p.source.startswith("ARM userAssignedIdentities")
    ras = f["azure.role_assignments"]
    assert [a.scope for a in ras.of_role("3913510d-42f4-4e42-8a64-420c390055eb")] == [st.dcrs[0].id]
    assert f["azure.cluster"].name == "aks-lab" and f["azure.cluster"].matched_by.startswith("node resource group")
    assert len(f["azure.kubelet_role_assignments"].items) == 2
    m = f["azure.workspace_metrics"].metrics
    assert m["ActiveTimeSeriesPercentUtilization"].maximum == 12
    assert m["EventsPerMinuteIngestedPercentUtilization"].maximum == 9


def test_facts_of_an_entra_application_world(app_world: LabWorld) -> None:
    cert = str(app_world.pod_path("/mnt/secrets-store/prom-rw-cert"))
    f = facts_in(app_world, "azure.keyvault_source", "azure.keyvault_certificate", "azure.application",
                 "azure.principal", "azure.sidecar_token", "azure.certificate_file", client_certificate=cert)
    src = f["azure.keyvault_source"]
    assert (src.vault, src.object_name, src.object_type) == ("kv-prom-lab", "prom-rw-cert", "secret")
    kv = f["azure.keyvault_certificate"]
    app_reg = f["azure.application"]
    assert kv.thumbprint == f["azure.certificate_file"].thumbprint
    assert kv.auto_renew is True and kv.enabled
    assert app_reg.by_thumbprint(kv.thumbprint) is not None
    assert f["azure.principal"].principal.kind == "Application"
    tok = f["azure.sidecar_token"]
    assert tok.ok and tok.claims.aud == "https://monitor.azure.com" and tok.claims.appid == app_reg.app_id
    assert "access_token" not in repr(tok) and "eyJ" not in repr(tok)


def test_healthy_worlds_pass_and_only_read(pi_world: LabWorld, app_world: LabWorld) -> None:
    for world in (pi_world, app_world):
        report = diagnose(world)
        assert not report.root_causes
        bad = {k: r.summary for k, r in statuses(report).items() if r.status not in (Status.PASS, Status.SKIPPED)}
        assert not bad
        assert_read_only(world)


OTHER_SUB = "0f0f0f0f-0000-4000-8000-000000000001"


def subscription_scope(world: LabWorld, monkeypatch: pytest.MonkeyPatch, *, env: str | None = None,
                       **options: Any) -> Any:
    """``azure.subscriptions`` with the lab's env but ``AZURE_SUBSCRIPTION_ID`` only when ``env`` is given."""
    values = {k: v for k, v in world.env_vars().items() if k != "AZURE_SUBSCRIPTION_ID"}
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    if env is not None:
        values["AZURE_SUBSCRIPTION_ID"] = env
    with patched_environ(values):
        opts = {"kubeconfig": str(world.kubeconfig), "context": world.context,
                "cloud_config": str(world.cloud_config), **options}
        store = FactStore(opts)
        return store.get("azure.subscriptions", store.get("k8s.targets")[0])


def subscription_lists(world: LabWorld) -> int:
    return sum(1 for name, rows in world.request_logs().items() if name.split(":")[0] == "arm"
               for m, p in rows if m == "GET" and p.split("?")[0].rstrip("/") == "/subscriptions")


def test_subscription_sources_in_order(pi_world: LabWorld, denied: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """--subscription, then AZURE_SUBSCRIPTION_ID (plus what the cluster names), then ARM's list."""
    sub = pi_world.azure_state.subscription_id.lower()
    before = subscription_lists(pi_world)
    given = subscription_scope(pi_world, monkeypatch, env=sub, subscription=OTHER_SUB)
    assert (given.ids, given.source) == ((OTHER_SUB,), "--subscription")
    env = subscription_scope(pi_world, monkeypatch, env=OTHER_SUB)
    assert (env.ids, env.source) == ((OTHER_SUB, sub), "AZURE_SUBSCRIPTION_ID + cluster")
    assert subscription_lists(pi_world) == before  # neither source lists anything
    listed = subscription_scope(pi_world, monkeypatch)
    assert (listed.ids, listed.source, listed.notes) == ((sub,), "listed", ())
    assert subscription_lists(pi_world) == before + 1
    # The doctor may read no subscription: ARM's list is empty; the cluster's own still gets searched.
    deny(denied, pi_world, "arm:subscriptions/read")
    hidden = subscription_scope(pi_world, monkeypatch)
    assert (hidden.ids, hidden.source) == ((sub,), "cluster")
    assert hidden.notes and "list is empty" in hidden.notes[0] and not hidden.denied


def test_listed_subscriptions_drive_a_whole_diagnosis(pi_world: LabWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    values = {k: v for k, v in pi_world.env_vars().items() if k != "AZURE_SUBSCRIPTION_ID"}
    with patched_environ(values):
        report = api.diagnose(**doctor_kwargs(pi_world))
    assert not report.root_causes
    bad = {k: r.summary for k, r in statuses(report).items() if r.status not in (Status.PASS, Status.SKIPPED)}
    assert not bad
    assert_read_only(pi_world)


# --------------------------------------------------------------------------- permission switches

# permission switch -> (world, the Azure permission ``needs`` must name, checks that become unknown)
SWITCHES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "arm:roleAssignments/read": ("pi", "Microsoft.Authorization/roleAssignments/read",
                                 ("azure.role-assignment", "azure.pod-identity-roles")),
    "arm:dataCollectionRules/read": ("pi", "Microsoft.Insights/dataCollectionRules/read",
                                     ("azure.dcr-found", "azure.dce-match", "azure.role-assignment",
                                      "azure.workspace-quota")),
    "arm:dataCollectionEndpoints/read": ("pi", "Microsoft.Insights/dataCollectionEndpoints/read",
                                         ("azure.dce-match",)),
    "arm:accounts/read": ("pi", "Microsoft.Monitor/accounts/read", ("azure.workspace-quota",)),
    "arm:managedClusters/read": ("pi", "Microsoft.ContainerService/managedClusters/read",
                                 ("azure.pod-identity-roles",)),
    "metrics:read": ("pi", "Microsoft.Insights/metrics/read", ("azure.workspace-quota",)),
    "arm:userAssignedIdentities/read": ("pi", "", ()),  # Graph finds the identity instead
    "arm:roleDefinitions/read": ("pi", "", ()),  # never needed
    "graph:Application.Read.All": ("app", "Application.Read.All",
                                   ("azure.identity-found", "azure.role-assignment",
                                    "identity.certificate-registered")),
    "keyvault:certificates/get": ("app", "", ()),  # the certificate file and the app still tell its validity
    "arm:subscriptions/read": ("pi", "", ()),  # AZURE_SUBSCRIPTION_ID names it (see the sources test below)
}


def test_every_lab_permission_switch_is_covered() -> None:
    assert set(SWITCHES) == set(PERMISSIONS)


@pytest.mark.parametrize("permission", sorted(SWITCHES))
def test_doctor_denied_permission(permission: str, pi_world: LabWorld, app_world: LabWorld, denied: Any) -> None:
    which, action, affected = SWITCHES[permission]
    world = pi_world if which == "pi" else app_world
    deny(denied, world, permission)
    report = diagnose(world)
    results = statuses(report)
    for check_id in affected:
        r = results[check_id]
        assert r.status == Status.UNKNOWN, f"{check_id}: {r.status.value} {r.summary}"
        assert r.needs and action in r.needs, (check_id, r.needs, action)
    for check_id, r in results.items():
        if check_id not in affected:
            assert r.status in (Status.PASS, Status.SKIPPED), f"{check_id} with {permission}: {r.summary}"
    assert not [r for r in report.results if r.status == Status.FAIL]
    assert not report.root_causes
    assert_read_only(world)


def deny(fixture: Any, world: LabWorld, *perms: str) -> None:
    fixture(world, *perms)


def test_denied_role_read_names_the_scope(pi_world: LabWorld, denied: Any) -> None:
    deny(denied, pi_world, "arm:roleAssignments/read")
    r = statuses(diagnose(pi_world))["azure.role-assignment"]
    sub = pi_world.azure_state.subscription_id.lower()
    assert r.needs == f"Reader (Microsoft.Authorization/roleAssignments/read) on /subscriptions/{sub}"


def test_every_switch_at_once_still_completes(pi_world: LabWorld, denied: Any) -> None:
    deny(denied, pi_world, *PERMISSIONS)
    report = diagnose(pi_world)
    results = statuses(report)
    assert results["azure.ingestion-url"].status == Status.PASS
    assert results["azure.audience"].status == Status.PASS
    assert all(r.status in (Status.PASS, Status.SKIPPED, Status.UNKNOWN) for r in results.values())
    assert not report.root_causes


def test_query_access_with_probe(pi_world: LabWorld, denied: Any) -> None:
    only = ["azure.query-access", "azure.dcr-found", "azure.ingestion-url"]
    r = statuses(diagnose(pi_world, probe=True, only=only))["azure.query-access"]
    assert r.status == Status.PASS, r.summary
    deny(denied, pi_world, "query:read")
    report = diagnose(pi_world, probe=True, only=only)
    r = statuses(report)["azure.query-access"]
    assert r.status == Status.WARN and r.findings[0].code == "QUERY_ACCESS_MISSING"
    assert "Monitoring Data Reader" in r.findings[0].remediation[0]


# --------------------------------------------------------------------------- US Gov-shaped cloud profile

SIDECAR_KINDS = {"Pod": ("spec", "containers"), "StatefulSet": ("spec", "template", "spec", "containers"),
                 "Prometheus": ("spec", "containers")}


def as_usgov(scenario: Scenario, *, set_audience: bool = True) -> Scenario:
    """The same world in a US Gov-shaped cloud: the lab's profile uses US Gov audiences, and the sidecar
    is configured for US Gov (as it must be there)."""
    az = copy.deepcopy(scenario.azure)
    az["cloud"] = "usgov"
    kube = copy.deepcopy(scenario.kubernetes)
    if set_audience:
        for obj in kube["objects"]:
            path = SIDECAR_KINDS.get(obj.get("kind", ""))
            if path is None:
                continue
            node: Any = obj
            for key in path:
                node = (node or {}).get(key)
            for c in node or []:
                if c.get("name") == "prom-remotewrite":
                    env = [e for e in c.get("env") or [] if e.get("name") not in ("INGESTION_AAD_AUDIENCE", "CLOUD")]
                    env += [{"name": "INGESTION_AAD_AUDIENCE", "value": "https://monitor.azure.us/.default"},
                            {"name": "CLOUD", "value": "AZUREUSGOVERNMENT"}]
                    c["env"] = env
    return replace(scenario, azure=az, kubernetes=kube)


@pytest.mark.parametrize("name", ["role-missing", "role-on-wrong-scope", "role-propagating", "wrong-dcr-id",
                                  "throttled", "cert-expired", "cert-not-on-app", "cert-expiring-soon",
                                  "healthy-pod-identity", "healthy-entra-cert"])
def test_usgov_profile_diagnoses_the_same(name: str, tmp_path: Path) -> None:
    scenario = as_usgov(load_scenario(name))
    with LabWorld(scenario, tmp_path / "lab", traffic=False) as world:
        profile = world.profile()
        assert profile["ingestion_audience"] == "https://monitor.azure.us"
        report = diagnose(world)
        assert_read_only(world)
    got = sorted({rc.code for rc in report.root_causes})
    detail = "\n".join(f"{r.status.value} {r.check_id}: {r.summary}" for r in report.results
                       if r.status not in (Status.PASS, Status.SKIPPED))
    assert got == sorted(scenario.expected_root_causes), detail
    assert statuses(report)["azure.audience"].status == Status.PASS


def test_usgov_profile_without_the_audience_is_audience_mismatch(tmp_path: Path) -> None:
    scenario = as_usgov(load_scenario("healthy-pod-identity"), set_audience=False)
    with LabWorld(scenario, tmp_path / "lab", traffic=False) as world:
        r = statuses(diagnose(world))["azure.audience"]
    assert r.status == Status.FAIL and r.findings[0].code == "AUDIENCE_MISMATCH"
    assert "https://monitor.azure.us/.default" in r.summary


# --------------------------------------------------------------------------- token as the sidecar's identity

def test_unregistered_certificate_file_fails_token_and_registration(app_world: LabWorld, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from promrw_doctor.lab.pki import make_client_certificate

    now = datetime.now(UTC)
    other = make_client_certificate("not-uploaded", now - timedelta(days=1), now + timedelta(days=300))
    pem = tmp_path / "other.pem"
    pem.write_bytes(other.pem_bundle())
    report = diagnose(app_world, client_certificate=str(pem))
    results = statuses(report)
    tok = results["identity.sidecar-token"]
    assert tok.status == Status.FAIL and "AADSTS700027" in tok.summary
    assert tok.findings[0].evidence["certificate"] == "not-registered"
    assert "access_token" not in str(tok.findings[0].evidence) and "eyJ" not in str(tok.to_dict())
    assert [rc.code for rc in report.root_causes] == ["CERT_NOT_REGISTERED"]
    assert "identity.sidecar-token" in report.root_causes[0].consequences


@pytest.fixture
def in_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Pretend the doctor runs in a pod of namespace ``monitoring`` (service-account dir, env)."""
    from promrw_doctor.collectors import azure_token

    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "namespace").write_text("monitoring")
    monkeypatch.setattr(azure_token, "SA_DIR", sa)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")

    def as_pod(name: str, **env: str) -> None:
        monkeypatch.setenv("POD_NAME", name)
        for k, v in env.items():
            monkeypatch.setenv(k, v)

    return as_pod


def test_in_cluster_pod_identity_gets_a_token_through_nmi(pi_world: LabWorld, in_cluster: Any) -> None:
    _ns, pod = pi_world.scenario.prometheus_pod
    in_cluster(pod)
    results = statuses(diagnose(pi_world))
    tok = results["identity.sidecar-token"]
    assert tok.status == Status.PASS and "same aadpodidbinding" in tok.findings[0].evidence["how"]
    assert results["identity.sidecar-token-claims"].status == Status.PASS


def test_in_cluster_workload_identity_gets_a_token_by_federation(tmp_path: Path, in_cluster: Any) -> None:
    with LabWorld(load_scenario("healthy-workload-identity"), tmp_path / "lab", traffic=False, store=False) as world:
        _ns, pod = world.scenario.prometheus_pod
        token_file = world.scenario.sidecar_env()["AZURE_FEDERATED_TOKEN_FILE"]
        in_cluster(pod, AZURE_FEDERATED_TOKEN_FILE=str(world.pod_path(token_file)))
        results = statuses(diagnose(world))
    tok = results["identity.sidecar-token"]
    assert tok.status == Status.PASS, tok.summary
    assert "same service account" in tok.findings[0].evidence["how"]
    assert tok.findings[0].evidence["claims"]["aud"] == "https://monitor.azure.com"


def test_in_cluster_in_another_namespace_is_not_the_pods_identity(pi_world: LabWorld, in_cluster: Any,
                                                                  tmp_path: Path) -> None:
    from promrw_doctor.collectors import azure_token

    (azure_token.SA_DIR / "namespace").write_text("kube-system")
    in_cluster("doctor-abc")
    tok = statuses(diagnose(pi_world))["identity.sidecar-token"]
    assert tok.status == Status.SKIPPED and "--client-certificate" in tok.summary
