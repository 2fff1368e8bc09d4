"""INGESTION_URL parsing and validation (pure)."""

from __future__ import annotations

import pytest

from promrw_doctor.domain.clouds import CHINA, PUBLIC, USGOV, profile_from_dict
from promrw_doctor.domain.ingestion_url import (
    IngestionUrl,
    cloud_owning_host,
    example_url,
    host_matches_suffix,
    ingestion_url_problems,
    parse_ingestion_url,
)

DCR = "dcr-0123456789abcdef0123456789abcdef"
GOOD = (
    "https://amw-abcd.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/"
    f"{DCR}/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24"
)


def fields(url: str, **kw: object) -> list[str]:
    return [p.field for p in ingestion_url_problems(url, **kw)]  # type: ignore[arg-type]


def test_parse_good_url() -> None:
    u = parse_ingestion_url(GOOD)
    assert isinstance(u, IngestionUrl)
    assert u.scheme == "https"
    assert u.host == "amw-abcd.eastus-1.metrics.ingest.monitor.azure.com"
    assert u.port is None and u.effective_port == 443
    assert u.dcr_immutable_id == DCR
    assert u.stream == "Microsoft-PrometheusMetrics"
    assert u.api_version == "2023-04-24"
    assert u.cloud is PUBLIC
    assert u.base_url == "https://amw-abcd.eastus-1.metrics.ingest.monitor.azure.com"
    assert ingestion_url_problems(GOOD) == []


@pytest.mark.parametrize("suffix, cloud", [(".us", USGOV), (".cn", CHINA)])
def test_sovereign_hosts_belong_to_their_cloud(suffix: str, cloud: object) -> None:
    url = GOOD.replace(".azure.com", ".azure" + suffix)
    assert parse_ingestion_url(url).cloud is cloud
    assert ingestion_url_problems(url) == []


def test_old_api_version_is_known() -> None:
    assert ingestion_url_problems(GOOD.replace("2023-04-24", "2021-11-01-preview")) == []


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("<INGESTION-URL>", "placeholder"),
        ("<INGESTION_URL>", "placeholder"),
        ("amw.eastus-1.metrics.ingest.monitor.azure.com/x", "no scheme"),
        ("ftp://amw.eastus-1.metrics.ingest.monitor.azure.com/", "scheme"),
        ("https:///path", "no host"),
        ("https://host:99999/", "not a valid URL"),
    ],
)
def test_parse_rejects_non_urls(bad: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_ingestion_url(bad)


def test_parse_error_is_one_line() -> None:
    with pytest.raises(ValueError) as exc:
        parse_ingestion_url("https://host:99999/")
    assert "\n" not in str(exc.value)


def test_http_scheme_is_a_problem() -> None:
    assert "scheme" in fields(GOOD.replace("https://", "http://"))


def test_foreign_host() -> None:
    probs = ingestion_url_problems(GOOD.replace("metrics.ingest.monitor.azure.com", "example.com"))
    assert [p.field for p in probs] == ["host"]


def test_query_endpoint_host_is_explained() -> None:
    url = GOOD.replace("eastus-1.metrics.ingest.monitor", "eastus.prometheus.monitor")
    (p,) = [p for p in ingestion_url_problems(url) if p.field == "host"]
    assert "query endpoint" in p.message


def test_endpoint_only_without_path() -> None:
    probs = ingestion_url_problems("https://amw-abcd.eastus-1.metrics.ingest.monitor.azure.com")
    assert {p.field for p in probs} == {"path", "api-version"}
    assert "only the endpoint" in next(p.message for p in probs if p.field == "path")


@pytest.mark.parametrize(
    "old, new, field",
    [
        (DCR, "dcr-000000000000000", "dcr"),
        (DCR, "my-dcr-name", "dcr"),
        ("Microsoft-PrometheusMetrics", "Microsoft-Syslog", "stream"),
        ("/api/v1/write", "/api/v1/push", "path"),
        ("dataCollectionRules", "datacollectionrules", "path"),
        ("?api-version=2023-04-24", "", "api-version"),
        ("2023-04-24", "latest", "api-version"),
    ],
)
def test_path_and_query_problems(old: str, new: str, field: str) -> None:
    assert field in fields(GOOD.replace(old, new))


def test_unknown_but_well_formed_api_version_is_a_warning() -> None:
    (p,) = ingestion_url_problems(GOOD.replace("2023-04-24", "2030-01-01"))
    assert p.field == "api-version" and p.severity == "warning"


def test_missing_api_version_is_an_error() -> None:
    (p,) = ingestion_url_problems(GOOD.split("?")[0])
    assert p.severity == "error"


def test_placeholder_inside_url() -> None:
    url = GOOD.replace(DCR, "<DCR-Immutable-ID>")
    probs = ingestion_url_problems(url)
    assert [p.field for p in probs] == ["placeholder"]


def test_custom_cloud_host_matching_ignores_port() -> None:
    lab = profile_from_dict(
        {
            "name": "lab",
            "authority_host": "https://127.0.0.1:1",
            "arm_endpoint": "https://127.0.0.1:2",
            "arm_audience": "https://management.lab",
            "graph_endpoint": "https://127.0.0.1:3",
            "keyvault_suffix": ".vault.lab",
            "ingestion_audience": "https://monitor.lab",
            "query_audience": "https://prometheus.monitor.lab",
            "ingestion_host_suffixes": ["127.0.0.1:4443"],
        }
    )
    url = (
        f"https://127.0.0.1:5555/dataCollectionRules/{DCR}/streams/Microsoft-PrometheusMetrics/api/v1/write"
        "?api-version=2023-04-24"
    )
    assert parse_ingestion_url(url, (lab,)).cloud is lab
    assert ingestion_url_problems(url, (lab,)) == []
    assert "host" in fields(url)  # without the profile, loopback is not an ingestion host


def test_host_suffix_rules() -> None:
    assert host_matches_suffix("a.metrics.ingest.monitor.azure.com", ".metrics.ingest.monitor.azure.com")
    assert not host_matches_suffix(
        "evilmetrics.ingest.monitor.azure.com.example", ".metrics.ingest.monitor.azure.com"
    )
    assert host_matches_suffix("lab.local:8443", "lab.local")
    assert cloud_owning_host("x.metrics.ingest.monitor.azure.us") is USGOV


def test_example_url_is_well_formed() -> None:
    assert ingestion_url_problems(example_url("a.eastus-1.metrics.ingest.monitor.azure.com", DCR)) == []
