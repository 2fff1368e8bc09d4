"""Identity checks on hand-filled facts: pod identity chain, NMI, workload identity, certificate mounts."""

from __future__ import annotations

from typing import Any

from promrw_doctor.checks.identity.cert_mount import cert_mount, cert_private_key, locate, spc_objects
from promrw_doctor.checks.identity.nmi import nmi
from promrw_doctor.checks.identity.pod_identity import (
    pod_identity_assigned,
    pod_identity_binding,
    pod_identity_binding_valid,
    pod_identity_client_id,
    pod_identity_label,
)
from promrw_doctor.checks.identity.workload_identity import workload_identity

from promrw_doctor.collectors.kube_logs import ContainerLog
from promrw_doctor.core import Status
from promrw_doctor.domain.logs import split_lines

from .kube_fixtures import (
    CLIENT_ID,
    NODE,
    NS,
    POD,
    TENANT_ID,
    binding,
    identity,
    make_pod,
    nmi_info,
    nmi_pod,
    pi_view,
    pod_identity_env,
    run_check,
    settings,
    sidecar,
)
from .kube_fixtures import sidecar_env as env

OTHER_ID = "0b1c2d3e-4f5a-4b6c-9d8e-2f3a4b5c6d7e"


def codes(result: Any) -> list[str]:
    return [f.code for f in result.findings if f.status.is_problem]


# ------------------------------------------------------------------ label


def test_label_present_missing_and_not_kept_by_the_cr() -> None:
    labelled = make_pod(labels={"aadpodidbinding": "prom-rw"})
    cr = {"metadata": {"name": "prom", "labels": {"release": "prometheus"}},
          "spec": {"podMetadata": {"labels": {"aadpodidbinding": "prom-rw"}}}}
    assert run_check(pod_identity_label, {"k8s.pod": labelled, "k8s.prometheus_cr": cr}).status == Status.PASS
    r = run_check(pod_identity_label, {"k8s.pod": make_pod(labels={"app": "prometheus"}), "k8s.prometheus_cr": cr})
    f = r.findings[0]
    assert r.status == Status.FAIL and f.code == "POD_IDENTITY_LABEL_MISSING"
    assert f.remediation[0] == f"kubectl -n {NS} label pod {POD} aadpodidbinding=prom-rw --overwrite"
    assert "podMetadata: {labels: {aadpodidbinding: prom-rw}}" in f.remediation[1]
    assert f.remediation[2].startswith("helm upgrade prometheus prometheus-community/kube-prometheus-stack -n "
                                       f"{NS} --reuse-values --set prometheus.prometheusSpec.podMetadata.labels."
                                       "aadpodidbinding=prom-rw")
    r = run_check(pod_identity_label, {"k8s.pod": labelled, "k8s.prometheus_cr": {"metadata": {"name": "prom"},
                                                                                   "spec": {}}})
    assert r.status == Status.WARN and "next rollout" in r.summary


def test_label_with_wrong_case_is_named() -> None:
    r = run_check(pod_identity_label, {"k8s.pod": make_pod(labels={"aadPodIdBinding": "prom-rw"})})
    assert r.status == Status.FAIL and "aadPodIdBinding" in r.summary


# ------------------------------------------------------------------ bindings


def test_binding_with_capitalised_keys_is_invalid() -> None:
    bad = binding("prom-rw-binding", "prom-rw", keys=("AzureIdentity", "Selector"))
    r = run_check(pod_identity_binding_valid, {"k8s.pod_identity": pi_view(bindings=[bad])})
    f = r.findings[0]
    assert r.status == Status.FAIL and f.code == "POD_IDENTITY_BINDING_INVALID"
    assert "spec.AzureIdentity is ignored" in f.summary and "spec.Selector is ignored" in f.summary
    assert any('"selector":"prom-rw"' in c for c in f.remediation)


def test_binding_naming_a_missing_identity_is_invalid() -> None:
    view = pi_view(bindings=[binding("b", "prom-rw", identity="nope")], identities=[identity()])
    r = run_check(pod_identity_binding_valid, {"k8s.pod_identity": view})
    assert r.status == Status.FAIL and "names AzureIdentity nope which does not exist" in r.summary
    assert "existing: prom-rw-mi" in r.summary


def test_valid_bindings_and_unrelated_bindings_pass() -> None:
    assert run_check(pod_identity_binding_valid).status == Status.PASS
    unrelated = pi_view(bindings=[binding("x", "other-app", keys=("AzureIdentity", "Selector"))])
    r = run_check(pod_identity_binding_valid, {"k8s.pod_identity": unrelated})
    assert r.status == Status.PASS and "no AzureIdentityBinding is meant for" in r.summary


def test_binding_match_exact() -> None:
    r = run_check(pod_identity_binding)
    assert r.status == Status.PASS and "monitoring/b" in r.summary


def test_binding_mismatch_shows_near_misses() -> None:
    view = pi_view(bindings=[binding("quoted", "\u201cprom-rw\u201d"), binding("cased", "Prom-RW"),
                             binding("similar", "prom_rw")])
    r = run_check(pod_identity_binding, {"k8s.pod_identity": view})
    f = r.findings[0]
    assert r.status == Status.FAIL and f.code == "POD_IDENTITY_BINDING_MISMATCH"
    near = " ".join(f.evidence["near_misses"])
    assert "typographic quotes" in near and "case" in near
    assert f.evidence["similar"] == ["monitoring/similar selector 'prom_rw'"]
    assert any("patch azureidentitybinding quoted" in c for c in f.remediation)


def test_binding_in_another_namespace_in_namespaced_mode() -> None:
    view = pi_view(bindings=[], other=[binding("elsewhere", "prom-rw", ns="default")])
    r = run_check(pod_identity_binding, {"k8s.pod_identity": view})
    assert r.status == Status.FAIL and "no AzureIdentityBinding in namespace monitoring" in r.summary
    assert r.findings[0].evidence["other_namespaces"] == ["default/elsewhere selector 'prom-rw'"]
    r = run_check(pod_identity_binding, {"k8s.pod_identity": pi_view(bindings=[], installed=False)})
    assert "not installed" in r.summary


# ------------------------------------------------------------------ identity


def test_client_id_match_mismatch_and_type() -> None:
    assert run_check(pod_identity_client_id).status == Status.PASS
    r = run_check(pod_identity_client_id, {"sidecar.settings": settings(pod_identity_env(OTHER_ID))})
    f = r.findings[0]
    assert r.status == Status.FAIL and f.code == "POD_IDENTITY_CLIENT_ID_MISMATCH"
    assert CLIENT_ID in f.summary and OTHER_ID in f.summary
    assert f.remediation[0].startswith("az identity show --ids /subscriptions/")
    r = run_check(pod_identity_client_id, {"k8s.pod_identity": pi_view(identities=[identity(kind=1)])})
    assert r.status == Status.FAIL and "type 1" in r.summary
    r = run_check(pod_identity_client_id, {"k8s.pod_identity": pi_view(identities=[identity(client_key="ClientID")])})
    assert r.status == Status.FAIL and "ClientID" in r.summary
    r = run_check(pod_identity_client_id, {"sidecar.settings": settings({"IDENTITY_TYPE": "userAssigned"})})
    assert r.status == Status.SKIPPED


def _assigned(state: str, identity_name: str = "prom-rw-mi") -> dict[str, Any]:
    return {"metadata": {"name": f"{POD}-{NS}-{identity_name}", "namespace": NS},
            "spec": {"pod": POD, "podNamespace": NS,
                     "azureIdentityRef": {"metadata": {"name": identity_name, "namespace": NS}}},
            "status": {"status": state}}


def test_assignment_states() -> None:
    assert run_check(pod_identity_assigned, {"k8s.pod_identity_assigned": [_assigned("Assigned")]}).status == \
        Status.PASS
    r = run_check(pod_identity_assigned, {"k8s.pod_identity_assigned": [_assigned("Created")]})
    assert r.status == Status.FAIL and r.findings[0].code == "POD_IDENTITY_NOT_ASSIGNED" and "Created" in r.summary
    assert any("component=mic" in c for c in r.findings[0].remediation)
    # Assigned, but for another identity than the binding's.
    r = run_check(pod_identity_assigned, {"k8s.pod_identity_assigned": [_assigned("Assigned", "other")]})
    assert r.status == Status.FAIL
    # Standard mode (MIC): nothing assigned is a failure; managed mode has no MIC.
    r = run_check(pod_identity_assigned, {"k8s.nmi": nmi_info(mode="standard")})
    assert r.status == Status.FAIL and "created no AzureAssignedIdentity" in r.summary
    assert run_check(pod_identity_assigned, {"k8s.nmi": nmi_info(mode="managed")}).status == Status.PASS


# ------------------------------------------------------------------ NMI


def test_nmi_missing_absent_on_node_not_ready_and_ready() -> None:
    r = run_check(nmi, {"k8s.nmi": nmi_info(daemonsets=0)})
    assert r.status == Status.FAIL and "no NMI DaemonSet" in r.summary
    r = run_check(nmi, {"k8s.nmi_pod": None})
    assert r.status == Status.FAIL and f"no NMI pod runs on node {NODE}" in r.summary
    r = run_check(nmi, {"k8s.nmi_pod": nmi_pod(ready=False, waiting="CrashLoopBackOff")})
    f = r.findings[0]
    assert r.status == Status.FAIL and "CrashLoopBackOff" in f.summary and not f.explained_by
    assert "kubectl -n kube-system rollout restart ds/nmi" in f.remediation
    r = run_check(nmi, {"k8s.nmi_pod": nmi_pod()})
    assert r.status == Status.PASS


def test_nmi_log_errors_for_the_pod_are_a_consequence_candidate() -> None:
    line = (f"E1121 11:59:00.000000 1 server.go:389] failed to get matching identities for pod: {NS}/{POD}, error: "
            "no azure identity found for request clientID 0b1c##### REDACTED #####6d7e")
    log = ContainerLog("kube-system/nmi-abcde", "nmi", False, tuple(split_lines(line)), 1800.0, 2000)
    r = run_check(nmi, {"k8s.nmi_pod": nmi_pod(), "k8s.nmi_logs": log})
    f = r.findings[0]
    assert r.status == Status.FAIL and "do not match" in f.summary
    assert "POD_IDENTITY_CLIENT_ID_MISMATCH" in f.explained_by and f.evidence["errors"][0]["count"] == 1


# ------------------------------------------------------------------ workload identity


WI_ENV = {"INGESTION_URL": "https://x", "LISTENING_PORT": "8081", "IDENTITY_TYPE": "workloadIdentity",
          "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_TENANT_ID": TENANT_ID,
          "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
          "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/"}
TOKEN_VOLUME = {"name": "azure-identity-token", "projected": {"sources": [{"serviceAccountToken": {
    "audience": "api://AzureADTokenExchange", "expirationSeconds": 3600, "path": "azure-identity-token"}}]}}
SA = {"metadata": {"name": "prometheus-sa", "annotations": {"azure.workload.identity/client-id": CLIENT_ID}}}


def _wi(env_values: dict[str, str], *, labels: dict[str, str] | None = None,
        mount: str = "/var/run/secrets/azure/tokens", volume: dict[str, Any] | None = None,
        sa: dict[str, Any] | None = None) -> dict[str, Any]:
    container = sidecar(env_values, mounts=[{"name": "azure-identity-token", "mountPath": mount, "readOnly": True}])
    pod = make_pod(labels=labels if labels is not None else {"azure.workload.identity/use": "true"},
                   containers=[container], volumes=[volume or TOKEN_VOLUME])
    return {"k8s.pod": pod, "k8s.sidecar_container": container, "k8s.sidecar_env": env(env_values),
            "k8s.service_account": sa if sa is not None else SA}


def test_workload_identity_wired() -> None:
    assert run_check(workload_identity, _wi(WI_ENV)).status == Status.PASS
    new_layout = {**WI_ENV, "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/wi/token/azure-identity-token"}
    assert run_check(workload_identity, _wi(new_layout, mount="/var/run/secrets/azure/wi/token")).status == Status.PASS


def test_workload_identity_not_injected() -> None:
    bare = {k: v for k, v in WI_ENV.items() if not k.startswith("AZURE_")}
    r = run_check(workload_identity, _wi(bare, labels={}, sa={"metadata": {"name": "prometheus-sa"}}))
    f = r.findings[0]
    assert r.status == Status.FAIL and f.code == "WORKLOAD_IDENTITY_MISCONFIGURED"
    assert 'azure.workload.identity/use: "true" is missing' in f.summary
    assert "lacks the annotation azure.workload.identity/client-id" in f.summary
    assert "lacks the webhook-injected env" in f.summary
    assert any("delete pod" in c for c in f.remediation)


def test_workload_identity_token_path_and_audience() -> None:
    moved = {**WI_ENV, "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"}
    r = run_check(workload_identity, _wi(moved, mount="/var/run/secrets/azure/wi/token"))
    assert r.status == Status.FAIL and "is not under any volumeMount" in r.summary and "v1.6" in r.summary
    wrong = {"name": "azure-identity-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "api://other", "path": "azure-identity-token"}}]}}
    r = run_check(workload_identity, _wi(WI_ENV, volume=wrong))
    assert r.status == Status.FAIL and "api://other" in r.summary


# ------------------------------------------------------------------ certificate


SPC = {"metadata": {"name": "azure-kvname-user-msi", "namespace": NS}, "spec": {"provider": "azure", "parameters": {
    "keyvaultName": "kv", "objects": "array:\n  - |\n    objectName: prom-rw-cert\n    objectType: secret\n"
                                     "    objectFormat: pfx\n  - |\n    objectName: other\n    objectAlias: "
                                     "renamed.pem\n    objectType: cert\n"}}}
CSI_VOLUME = {"name": "secrets-store-inline", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": True,
                                                       "volumeAttributes": {"secretProviderClass":
                                                                            "azure-kvname-user-msi"}}}


def _cert(path: str, *, spcs: list[dict[str, Any]] | None = None, mount: str = "/mnt/secrets-store") -> dict[str, Any]:
    values = {"INGESTION_URL": "https://x", "LISTENING_PORT": "8081", "IDENTITY_TYPE": "aadApplication",
              "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_CERTIFICATE_PATH": path}
    container = sidecar(values, mounts=[{"name": "secrets-store-inline", "mountPath": mount, "readOnly": True}])
    pod = make_pod(containers=[container], volumes=[CSI_VOLUME])
    return {"k8s.pod": pod, "k8s.sidecar_container": container, "k8s.sidecar_env": env(values),
            "sidecar.settings": settings(values), "k8s.secret_provider_classes": [SPC] if spcs is None else spcs}


def test_spc_objects_and_locate_alias() -> None:
    assert [o["objectName"] for o in spc_objects(SPC)] == ["prom-rw-cert", "other"]
    facts = _cert("/mnt/secrets-store/renamed.pem")
    loc = locate("/mnt/secrets-store/renamed.pem", facts["k8s.pod"], facts["k8s.sidecar_container"], [SPC])
    assert not loc.problems and loc.obj is not None and loc.obj["objectName"] == "other"


def test_cert_mounted_with_key() -> None:
    facts = _cert("/mnt/secrets-store/prom-rw-cert")
    assert run_check(cert_mount, facts).status == Status.PASS
    r = run_check(cert_private_key, facts)
    assert r.status == Status.PASS and "objectType secret" in r.summary


def test_cert_path_names_another_file() -> None:
    r = run_check(cert_mount, _cert("/mnt/secrets-store/prom-rw-certificate"))
    f = r.findings[0]
    assert r.status == Status.FAIL and f.code == "CERT_NOT_MOUNTED" and "not 'prom-rw-certificate'" in f.summary


def test_cert_not_under_a_mount_or_spc_missing() -> None:
    r = run_check(cert_mount, _cert("/etc/certs/prom-rw-cert"))
    assert r.status == Status.FAIL and "not under any volumeMount" in r.summary
    r = run_check(cert_mount, _cert("/mnt/secrets-store/prom-rw-cert", spcs=[]))
    assert r.status == Status.FAIL and "SecretProviderClass azure-kvname-user-msi does not exist" in r.summary


def test_cert_object_type_cert_has_no_private_key() -> None:
    r = run_check(cert_private_key, _cert("/mnt/secrets-store/renamed.pem"))
    f = r.findings[0]
    assert r.status == Status.FAIL and f.code == "CERT_NO_PRIVATE_KEY" and "objectType: cert" in f.summary
