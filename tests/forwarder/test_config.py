"""Forwarder configuration from the sidecar's env vars and flags (rules shared with the doctor)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from promrw_doctor.core.errors import InputError
from promrw_doctor.forwarder.config import config_from_env

URL = ("https://amw-1a2b.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/"
       "dcr-0123456789abcdef0123456789abcdef/streams/Microsoft-PrometheusMetrics/api/v1/write"
       "?api-version=2023-04-24")
CID = "11111111-2222-3333-4444-555555555555"
TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def _env(**kw: str) -> dict[str, str]:
    env = {"INGESTION_URL": URL, "LISTENING_PORT": "8081", "IDENTITY_TYPE": "userAssigned",
           "AZURE_CLIENT_ID": CID}
    env.update(kw)
    return {k: v for k, v in env.items() if v != "-"}


def test_user_assigned_defaults() -> None:
    cfg = config_from_env(_env(CLUSTER="aks-1"))
    assert cfg.listen_host == "127.0.0.1" and cfg.listen_port == 8081 and cfg.cluster == "aks-1"
    assert cfg.identity.identity_type == "userAssigned" and cfg.identity.client_id == CID
    assert cfg.identity.scope == "https://monitor.azure.com/.default"
    assert cfg.identity.authority_host is None and not cfg.identity.disable_instance_discovery
    assert cfg.warnings == () and not cfg.validate and not cfg.pass_through_4xx
    assert cfg.listen_url == "http://127.0.0.1:8081/api/v1/write"


def test_flags_override_env_and_port_defaults() -> None:
    cfg = config_from_env(_env(LISTENING_PORT="-"), flags={"client_id": "22222222-2222-3333-4444-555555555555",
                                                           "cluster": "flag-cluster"})
    assert cfg.listen_port == 8081
    assert cfg.identity.client_id.startswith("2222") and cfg.cluster == "flag-cluster"


@pytest.mark.parametrize(("env", "words"), [
    (_env(INGESTION_URL="-"), "INGESTION_URL is not set"),
    (_env(IDENTITY_TYPE="systemAssigned"), "IDENTITY_TYPE 'systemAssigned' is not one of"),
    (_env(AZURE_CLIENT_ID="-"), "AZURE_CLIENT_ID is required with IDENTITY_TYPE=userAssigned"),
    (_env(AZURE_CLIENT_ID="<MANAGED-IDENTITY-CLIENT-ID>"), "doc placeholder"),
    (_env(IDENTITY_TYPE="aadApplication"), "AZURE_TENANT_ID is required"),
    (_env(LISTENING_PORT="80a"), "not a port number"),
    (_env(INGESTION_URL="http://ingest.example.net/api/v1/write"), "must be https://"),
    (_env(IDENTITY_TYPE="workloadIdentity", AZURE_CLIENT_ID="-"), "needs AZURE_TENANT_ID and AZURE_CLIENT_ID"),
    (_env(CLOUD="AZURECUSTOM"), "requires INGESTION_AAD_AUDIENCE"),
    (_env(IDENTITY_TYPE="clientSecret", AZURE_TENANT_ID=TID), "needs AZURE_CLIENT_SECRET"),
    (_env(AAD_HOST_ENDPOINT="http://login.example"), "must be https://"),
])
def test_errors_are_one_line(env: dict[str, str], words: str) -> None:
    with pytest.raises(InputError) as exc:
        config_from_env(env)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_usgov_cloud_selects_audience_and_authority() -> None:
    url = URL.replace("monitor.azure.com", "monitor.azure.us")
    cfg = config_from_env(_env(INGESTION_URL=url, CLOUD="AZUREGOVERNMENT", IDENTITY_TYPE="aadApplication",
                               AZURE_TENANT_ID=TID, AZURE_CLIENT_CERTIFICATE_PATH="/mnt/secrets-store/c"))
    assert cfg.identity.scope == "https://monitor.azure.us/.default"
    assert cfg.identity.authority_host == "https://login.microsoftonline.us"
    assert not cfg.identity.disable_instance_discovery


def test_china_cloud() -> None:
    url = URL.replace("monitor.azure.com", "monitor.azure.cn")
    cfg = config_from_env(_env(INGESTION_URL=url, CLOUD="AZURE_CHINA"))
    assert cfg.identity.scope == "https://monitor.azure.cn/.default"
    assert cfg.identity.authority_host == "https://login.chinacloudapi.cn"


def test_usgov_host_without_audience_is_refused() -> None:
    url = URL.replace("monitor.azure.com", "monitor.azure.us")
    with pytest.raises(InputError, match=re.escape("INGESTION_AAD_AUDIENCE=https://monitor.azure.us/.default")):
        config_from_env(_env(INGESTION_URL=url))


@pytest.mark.parametrize("aud", ["https://monitor.azure.us", "https://monitor.azure.us/",
                                 "https://monitor.azure.us/.default"])
def test_audience_with_or_without_default(aud: str) -> None:
    url = URL.replace("monitor.azure.com", "monitor.azure.us")
    cfg = config_from_env(_env(INGESTION_URL=url, INGESTION_AAD_AUDIENCE=aud))
    assert cfg.identity.scope == "https://monitor.azure.us/.default"


def test_custom_cloud_authority_override_disables_instance_discovery() -> None:
    airgap = URL.replace("amw-1a2b.eastus-1.metrics.ingest.monitor.azure.com", "ingest.airgap.example")
    cfg = config_from_env(_env(INGESTION_URL=airgap, CLOUD="AZURECUSTOM",
                               INGESTION_AAD_AUDIENCE="https://monitor.azure.airgap/.default",
                               AAD_HOST_ENDPOINT="login.airgap.example", AZURE_AUTHORITY_HOST="https://other"))
    assert cfg.identity.authority_host == "https://login.airgap.example"  # AAD_HOST_ENDPOINT wins
    assert cfg.identity.disable_instance_discovery
    assert cfg.identity.scope == "https://monitor.azure.airgap/.default"
    flag = config_from_env(_env(), authority_host="https://127.0.0.1:8443")
    assert flag.identity.authority_host == "https://127.0.0.1:8443" and flag.identity.disable_instance_discovery


def test_cloud_profile_file(tmp_path: Path) -> None:
    prof = tmp_path / "cloud.json"
    prof.write_text(json.dumps({
        "name": "lab", "authority_host": "https://127.0.0.1:9443", "arm_endpoint": "https://127.0.0.1:9444",
        "arm_audience": "https://management.lab/", "graph_endpoint": "https://127.0.0.1:9445",
        "keyvault_suffix": ".vault.lab", "ingestion_audience": "https://monitor.lab",
        "query_audience": "https://prometheus.monitor.lab", "ingestion_host_suffixes": ["127.0.0.1"]}))
    url = "http://127.0.0.1:9000/dataCollectionRules/dcr-0123456789abcdef0123456789abcdef/streams/" \
          "Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24"
    cfg = config_from_env(_env(INGESTION_URL=url), cloud_config=str(prof))
    assert cfg.identity.scope == "https://monitor.lab/.default"
    assert cfg.identity.authority_host == "https://127.0.0.1:9443"
    assert cfg.identity.disable_instance_discovery and cfg.cloud.name == "lab"


def test_plain_http_is_allowed_only_on_loopback() -> None:
    cfg = config_from_env(_env(INGESTION_URL="http://127.0.0.1:9/api/v1/write"))
    assert any("https" in w for w in cfg.warnings)  # the doctor's URL advice, as warnings


def test_non_loopback_listen_is_warned() -> None:
    cfg = config_from_env(_env(), listen_host="0.0.0.0")
    assert any("not loopback" in w for w in cfg.warnings)


def test_client_secret_is_dev_only_and_hidden() -> None:
    cfg = config_from_env(_env(IDENTITY_TYPE="clientSecret", AZURE_TENANT_ID=TID, AZURE_CLIENT_SECRET="shh-123456"))
    assert cfg.identity.identity_type == "clientSecret"
    assert any("development only" in w for w in cfg.warnings)
    assert "shh-123456" not in repr(cfg)


def test_limits_are_checked() -> None:
    with pytest.raises(InputError, match="max buffered bytes"):
        config_from_env(_env(), max_body_bytes=10_000_000, max_buffered_bytes=1_000_000)
    with pytest.raises(InputError, match="unknown forwarder option"):
        config_from_env(_env(), max_bodies=3)


def test_workload_identity_reads_webhook_env() -> None:
    cfg = config_from_env(_env(IDENTITY_TYPE="workloadIdentity", AZURE_TENANT_ID=TID,
                               AZURE_FEDERATED_TOKEN_FILE="/var/run/secrets/azure/wi/token/azure-identity-token",
                               AZURE_AUTHORITY_HOST="https://login.microsoftonline.com/"))
    assert cfg.identity.federated_token_file.endswith("azure-identity-token")
    assert cfg.identity.authority_host == "https://login.microsoftonline.com"
    assert not cfg.identity.disable_instance_discovery
