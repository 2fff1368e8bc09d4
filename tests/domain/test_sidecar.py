"""Sidecar env rules per IDENTITY_TYPE, and audience/cloud rules (pure)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from promrw_doctor.domain.clouds import USGOV, profile_from_dict
from promrw_doctor.domain.sidecar import (
    IDENTITY_TYPES,
    PLACEHOLDER_RE,
    SidecarSettings,
    audience_problems,
    effective_ingestion_audience,
    env_problems,
    settings_from_env,
)

CID = "11111111-2222-3333-4444-555555555555"
TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
URL = (
    "https://amw.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/"
    "dcr-0123456789abcdef0123456789abcdef/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24"
)
BASE = {"INGESTION_URL": URL, "LISTENING_PORT": "8081"}


def kinds(env: Mapping[str, str | None], **kw: object) -> list[tuple[str, str]]:
    return [(p.field, p.kind) for p in env_problems(env, **kw)]  # type: ignore[arg-type]


def test_identity_types() -> None:
    assert IDENTITY_TYPES == ("userAssigned", "aadApplication", "workloadIdentity")


def test_user_assigned_complete() -> None:
    assert env_problems({**BASE, "IDENTITY_TYPE": "userAssigned", "AZURE_CLIENT_ID": CID}) == []


def test_user_assigned_needs_client_id() -> None:
    assert kinds({**BASE, "IDENTITY_TYPE": "userAssigned"}) == [("AZURE_CLIENT_ID", "missing")]


def test_aad_application_needs_three() -> None:
    got = kinds({**BASE, "IDENTITY_TYPE": "aadApplication"})
    assert got == [
        ("AZURE_CLIENT_ID", "missing"),
        ("AZURE_TENANT_ID", "missing"),
        ("AZURE_CLIENT_CERTIFICATE_PATH", "missing"),
    ]
    ok = {
        **BASE,
        "IDENTITY_TYPE": "aadApplication",
        "AZURE_CLIENT_ID": CID,
        "AZURE_TENANT_ID": TID,
        "AZURE_CLIENT_CERTIFICATE_PATH": "/mnt/secrets-store/cert",
    }
    assert env_problems(ok) == []


def test_workload_identity_needs_label_not_client_id() -> None:
    env = {**BASE, "IDENTITY_TYPE": "workloadIdentity"}
    assert env_problems(env) == []  # labels unknown: not judged
    assert env_problems(env, pod_labels={"azure.workload.identity/use": "true"}) == []
    assert kinds(env, pod_labels={}) == [("pod label azure.workload.identity/use", "label")]
    (p,) = env_problems(env, pod_labels={"azure.workload.identity/use": True})
    assert "boolean" in p.message
    (p,) = env_problems(env, pod_labels={"azure.workload.identity/use": "false"})
    assert "'false'" in p.message


def test_unknown_identity_type_lists_accepted_values() -> None:
    (p,) = env_problems({**BASE, "IDENTITY_TYPE": "systemAssigned"})
    assert p.kind == "unknown-value"
    for t in IDENTITY_TYPES:
        assert t in p.message


def test_identity_type_case_is_a_warning() -> None:
    (p,) = env_problems({**BASE, "IDENTITY_TYPE": "UserAssigned", "AZURE_CLIENT_ID": CID})
    assert (p.kind, p.severity) == ("case", "warning")


def test_common_required() -> None:
    got = kinds({"IDENTITY_TYPE": "userAssigned", "AZURE_CLIENT_ID": CID})
    assert got == [("INGESTION_URL", "missing"), ("LISTENING_PORT", "missing")]


@pytest.mark.parametrize("port", ["0", "65536", "http", "80.5", "-1"])
def test_bad_listening_port(port: str) -> None:
    assert ("LISTENING_PORT", "invalid") in kinds(
        {**BASE, "LISTENING_PORT": port, "IDENTITY_TYPE": "userAssigned", "AZURE_CLIENT_ID": CID}
    )


def test_placeholders_are_reported_once_and_not_as_format_errors() -> None:
    env = {
        **BASE,
        "INGESTION_URL": "<INGESTION_URL>",
        "IDENTITY_TYPE": "userAssigned",
        "AZURE_CLIENT_ID": "<MANAGED-IDENTITY-CLIENT-ID>",
        "CLUSTER": "<CLUSTER-NAME>",
    }
    assert kinds(env) == [
        ("INGESTION_URL", "placeholder"),
        ("AZURE_CLIENT_ID", "placeholder"),
        ("CLUSTER", "placeholder"),
    ]


def test_guid_format() -> None:
    got = kinds(
        {
            **BASE,
            "IDENTITY_TYPE": "aadApplication",
            "AZURE_CLIENT_ID": "my-app",
            "AZURE_TENANT_ID": "contoso.onmicrosoft.com",
            "AZURE_CLIENT_CERTIFICATE_PATH": "cert.pem",
        }
    )
    assert got == [
        ("AZURE_CLIENT_ID", "format"),
        ("AZURE_TENANT_ID", "format"),
        ("AZURE_CLIENT_CERTIFICATE_PATH", "format"),
    ]


def test_value_from_counts_as_present() -> None:
    assert env_problems({**BASE, "IDENTITY_TYPE": "userAssigned", "AZURE_CLIENT_ID": None}) == []


def test_placeholder_re() -> None:
    for s in ("<INGESTION-URL>", "<CLUSTER-NAME>", "<APP-REGISTRATION -CLIENT-ID>", "<client-id>"):
        assert PLACEHOLDER_RE.search(s)
    assert not PLACEHOLDER_RE.search("a < 5 and b > 3")


def test_settings_from_env_is_lenient() -> None:
    s = settings_from_env(
        {
            "LISTENING_PORT": " 8081 ",
            "IDENTITY_TYPE": "userAssigned",
            "AAD_HOST_ENDPOINT": "https://login.microsoftonline.us",
            "CLOUD": "AZUREGOVERNMENT",
        }
    )
    assert s.listening_port == 8081 and s.identity_type == "userAssigned"
    assert s.authority_host == "https://login.microsoftonline.us" and s.cloud == "AZUREGOVERNMENT"
    assert s.ingestion_url is None
    assert settings_from_env({"LISTENING_PORT": "x"}).listening_port is None
    assert settings_from_env({"AZURE_AUTHORITY_HOST": "a", "AAD_HOST_ENDPOINT": "b"}).authority_host == "a"


# --------------------------------------------------------------------------- audience

GOV_HOST = "amw.usgovvirginia-1.metrics.ingest.monitor.azure.us"
PUB_HOST = "amw.eastus-1.metrics.ingest.monitor.azure.com"


def test_effective_audience() -> None:
    assert effective_ingestion_audience(SidecarSettings()) == "https://monitor.azure.com/.default"
    assert (
        effective_ingestion_audience(SidecarSettings(cloud="AZURE_GOVERNMENT"))
        == "https://monitor.azure.us/.default"
    )
    assert effective_ingestion_audience(SidecarSettings(audience="https://x/")) == "https://x/"


def test_effective_audience_custom_cloud_uses_host_profile() -> None:
    lab = profile_from_dict(
        {
            "authority_host": "https://127.0.0.1:1",
            "arm_endpoint": "https://127.0.0.1:2",
            "arm_audience": "https://m",
            "graph_endpoint": "https://127.0.0.1:3",
            "keyvault_suffix": ".v",
            "ingestion_audience": "https://monitor.lab",
            "query_audience": "https://q",
        }
    )
    assert (
        effective_ingestion_audience(SidecarSettings(cloud="AZURECUSTOM"), lab)
        == "https://monitor.lab/.default"
    )


def test_sovereign_host_without_audience_fails() -> None:
    (p,) = audience_problems(SidecarSettings(), GOV_HOST)
    assert p.severity == "error" and "https://monitor.azure.us/.default" in p.message


@pytest.mark.parametrize("cloud", ["AZUREGOVERNMENT", "AZURE_GOVERNMENT", "azuregovernment"])
def test_both_cloud_spellings_accepted(cloud: str) -> None:
    assert audience_problems(SidecarSettings(cloud=cloud), GOV_HOST) == []


def test_matching_audience_ok_and_missing_default_is_warning() -> None:
    assert audience_problems(SidecarSettings(audience="https://monitor.azure.us/.default"), GOV_HOST) == []
    (p,) = audience_problems(SidecarSettings(audience="https://monitor.azure.us/"), GOV_HOST)
    assert p.severity == "warning" and "/.default" in p.message


def test_wrong_audience_for_host() -> None:
    probs = audience_problems(SidecarSettings(audience="https://monitor.azure.com/.default"), GOV_HOST)
    assert [p.severity for p in probs] == ["error"]
    probs = audience_problems(SidecarSettings(audience="https://monitor.azure.us/.default"), PUB_HOST)
    assert [p.severity for p in probs] == ["error"]


def test_cloud_for_other_cloud_than_host() -> None:
    (p,) = audience_problems(SidecarSettings(cloud="AZURECHINA"), GOV_HOST)
    assert p.field == "CLOUD" and p.severity == "error"


def test_public_host_defaults_fine() -> None:
    assert audience_problems(SidecarSettings(), PUB_HOST) == []
    assert (
        audience_problems(SidecarSettings(ingestion_url=f"https://{GOV_HOST}/x"), None)[0].severity == "error"
    )
    assert USGOV.name == "usgov"


def test_unknown_cloud_value_warns_and_custom_needs_audience() -> None:
    (p,) = audience_problems(SidecarSettings(cloud="MOON"), PUB_HOST)
    assert p.severity == "warning" and "AZUREGOVERNMENT" in p.message
    (p,) = audience_problems(SidecarSettings(cloud="AZURECUSTOM"), PUB_HOST)
    assert p.field == "INGESTION_AAD_AUDIENCE"
