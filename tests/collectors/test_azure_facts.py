"""The pure parts of the Azure collectors: SecretProviderClass objects, Graph keyCredentials, Key Vault
bundles, subscription options, DCR streams, and the cloud-profile error wording."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from promrw_doctor.collectors.azure import extra_clouds, subscriptions_in
from promrw_doctor.collectors.azure_arm import DcrLookup, RoleAssignment
from promrw_doctor.collectors.azure_graph import app_registration
from promrw_doctor.collectors.azure_keyvault import certificate_from_bundle, find_source, parse_objects
from promrw_doctor.core import FactStore, InputError
from promrw_doctor.domain.clouds import PUBLIC, profile_from_dict

SUB = "4f8e2c1a-9b7d-4e3f-8a6c-2d1b0e9f8a7c"
DER = b"0\x82not-really-der-but-hashable"
THUMB = hashlib.sha1(DER).hexdigest().upper()

SPC = {
    "metadata": {"name": "azure-kvname-user-msi", "namespace": "monitoring"},
    "spec": {"provider": "azure", "parameters": {
        "keyvaultName": "kv-prom-lab",
        "objects": "array:\n  - |\n    objectName: other-secret\n    objectType: secret\n"
                   "  - |\n    objectName: prom-rw-cert\n    objectAlias: client.pem\n    objectType: secret\n"
                   "    objectVersion: abc123\n"}},
}


def pod(mount: str = "/mnt/secrets-store") -> dict:
    return {"spec": {
        "volumes": [{"name": "kv", "csi": {"driver": "secrets-store.csi.k8s.io",
                                          "volumeAttributes": {"secretProviderClass": "azure-kvname-user-msi"}}}],
        "containers": [{"name": "prom-remotewrite", "volumeMounts": [{"name": "kv", "mountPath": mount}]}]}}


def test_secret_provider_class_objects() -> None:
    objs = parse_objects(SPC["spec"]["parameters"]["objects"])
    assert [o["objectName"] for o in objs] == ["other-secret", "prom-rw-cert"]
    assert parse_objects("{not: [yaml") == [] and parse_objects(None) == []


def test_the_certificate_path_names_the_key_vault_object() -> None:
    src = find_source(pod(), "prom-remotewrite", "/mnt/secrets-store/client.pem", [SPC])
    assert src is not None
    assert (src.vault, src.object_name, src.object_version) == ("kv-prom-lab", "prom-rw-cert", "abc123")
    assert find_source(pod(), "prom-remotewrite", "/etc/certs/client.pem", [SPC]) is None  # not under the mount
    assert find_source(pod(), "prometheus", "/mnt/secrets-store/client.pem", [SPC]) is None  # other container
    assert find_source(pod(), "prom-remotewrite", "/mnt/secrets-store/client.pem", []) is None  # SPC missing


def test_key_credentials_thumbprint_from_key_or_identifier() -> None:
    raw = {"id": "obj", "appId": "app", "displayName": "prom-rw", "keyCredentials": [
        {"keyId": "k1", "key": base64.b64encode(DER).decode(), "customKeyIdentifier": None,
         "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z",
         "type": "AsymmetricX509Cert", "usage": "Verify"},
        {"keyId": "k2", "customKeyIdentifier": base64.b64encode(bytes.fromhex("BB" * 20)).decode(),
         "endDateTime": "2027-01-01T00:00:00Z", "type": "AsymmetricX509Cert", "usage": "Verify"},
        {"keyId": "k3", "customKeyIdentifier": base64.b64encode(bytes.fromhex("CC" * 20)).decode(),
         "type": "Symmetric", "usage": "Sign"},  # not a certificate Entra verifies assertions with
    ]}
    reg = app_registration(raw)
    assert [k.key_id for k in reg.key_credentials] == ["k1", "k2"]
    assert reg.by_thumbprint(THUMB.lower()) is not None and reg.by_thumbprint("BB" * 20) is not None
    assert reg.by_thumbprint("CC" * 20) is None


def test_key_vault_bundle_and_auto_renew() -> None:
    x5t = base64.urlsafe_b64encode(bytes.fromhex(THUMB)).rstrip(b"=").decode()
    bundle = {"id": "https://kv/certificates/prom-rw-cert/v42", "x5t": x5t,
              "attributes": {"enabled": False, "nbf": 1767225600, "exp": 1798761600}}
    policy = {"lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}]}
    kv = certificate_from_bundle("kv", "prom-rw-cert", bundle, policy)
    assert (kv.version, kv.thumbprint, kv.enabled, kv.auto_renew) == ("v42", THUMB, False, True)
    assert kv.expires is not None and kv.expires.year == 2027
    emails = {"lifetime_actions": [{"action": {"action_type": "EmailContacts"}}]}
    assert certificate_from_bundle("kv", "n", bundle, emails).auto_renew is False
    assert certificate_from_bundle("kv", "n", bundle, None).auto_renew is None


def test_subscriptions_named_in_ids() -> None:
    ids = subscriptions_in([f"azure:///subscriptions/{SUB}/resourceGroups/mc_x/providers/x",
                            f"/subscriptions/{SUB.upper()}/resourcegroups/rg", None, "nothing"])
    assert ids == [SUB]


def test_bad_subscription_option_is_input_error() -> None:
    from promrw_doctor.collectors.azure import _explicit
    from promrw_doctor.core.facts import FactContext

    ok = FactContext(FactStore({"subscriptions": [SUB, f"/subscriptions/{SUB}"], "subscription": None}), None)
    assert _explicit(ok) == [SUB]
    bad = FactContext(FactStore({"subscriptions": ["my-sub-name"]}), None)
    with pytest.raises(InputError, match="not a subscription id"):
        _explicit(bad)


def test_cloud_profile_errors_name_the_file(tmp_path: Path) -> None:
    mars = tmp_path / "mars.yaml"
    mars.write_text("base: mars\n")
    store = FactStore({"cloud_config": str(mars)})
    with pytest.raises(InputError) as err:
        store.get("azure.cloud")
    assert str(err.value) == (f"cloud profile {mars}: unknown cloud 'mars' (expected public, usgov, china, or "
                              "--cloud-config FILE)")


def test_extra_clouds_only_for_custom_profiles() -> None:
    assert extra_clouds(PUBLIC) == ()
    lab = profile_from_dict({"authority_host": "https://a", "arm_endpoint": "https://b", "arm_audience": "x",
                             "graph_endpoint": "https://c", "keyvault_suffix": ".v", "ingestion_audience": "i",
                             "query_audience": "q"})
    assert extra_clouds(lab) == (lab,)


def test_dcr_streams_and_role_scope_containment() -> None:
    d = DcrLookup("dcr-x", {"id": "/s/dcr", "properties": {
        "dataSources": {"prometheusForwarder": [{"streams": ["Microsoft-PrometheusMetrics"]}]},
        "dataFlows": [{"streams": ["Microsoft-PrometheusMetrics", "Custom-X"]}],
        "destinations": {"monitoringAccounts": [{"accountResourceId": "/ws"}]}}}, (SUB,))
    assert d.streams == ["Microsoft-PrometheusMetrics", "Custom-X"] and d.workspace_ids == ["/ws"]
    ra = RoleAssignment("id", f"/subscriptions/{SUB}/resourceGroups/MA_x", "r", "p", None)
    assert ra.covers(f"/subscriptions/{SUB}/resourcegroups/ma_x/providers/Microsoft.Insights/dataCollectionRules/a")
    assert not ra.covers(f"/subscriptions/{SUB}/resourceGroups/MA_x2/providers/x")  # segment boundary
    assert RoleAssignment("id", "/", "r", "p", None).covers("/anything")
