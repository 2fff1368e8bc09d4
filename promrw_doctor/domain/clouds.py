"""Azure cloud profiles: which hosts and token audiences belong together.

Built-in profiles: ``public``, ``usgov``, ``china``. A custom profile file (YAML or
JSON; ``--cloud-config FILE`` or ``PROMRW_DOCTOR_CLOUD_CONFIG``) serves air-gapped
clouds and is how the lab and test worlds are reached. Loading a malformed file
raises :class:`~promrw_doctor.core.errors.InputError` with a one-line reason.

Audiences are stored without ``/.default``; use :func:`scope` to build a token scope.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import InputError

ENV_CLOUD_CONFIG = "PROMRW_DOCTOR_CLOUD_CONFIG"


@dataclass(frozen=True)
class CloudProfile:
    name: str
    authority_host: str  # https://login.microsoftonline.com
    arm_endpoint: str  # https://management.azure.com
    arm_audience: str  # https://management.core.windows.net/
    graph_endpoint: str  # https://graph.microsoft.com
    keyvault_suffix: str  # .vault.azure.net
    ingestion_audience: str  # https://monitor.azure.com
    query_audience: str  # https://prometheus.monitor.azure.com
    resource_graph_endpoint: str  # usually the ARM endpoint
    ingestion_host_suffixes: tuple[str, ...] = ()  # .metrics.ingest.monitor.azure.com
    # Sidecar CLOUD env spellings that select this cloud (both documented spellings).
    sidecar_names: tuple[str, ...] = ()
    # Workspace platform metrics (azure-monitor-querymetrics MetricsClient, regional data plane).
    metrics_endpoint_template: str = "https://{region}.metrics.monitor.azure.com"
    metrics_audience: str = "https://metrics.monitor.azure.com"
    # Key Vault data plane: "{vault}" and "{suffix}" are filled in.
    keyvault_url_template: str = "https://{vault}{suffix}"
    # Lab / air-gapped clouds: MSAL must not call public instance discovery.
    disable_instance_discovery: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ingestion_host_suffixes"] = list(self.ingestion_host_suffixes)
        d["sidecar_names"] = list(self.sidecar_names)
        return d

    def keyvault_url(self, vault: str) -> str:
        return self.keyvault_url_template.format(vault=vault, suffix=self.keyvault_suffix).rstrip("/")

    def metrics_endpoint(self, region: str) -> str:
        return self.metrics_endpoint_template.format(region=region).rstrip("/")

    def owns_ingestion_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host.endswith(s.lower()) or host == s.lower().lstrip(".") for s in self.ingestion_host_suffixes)


PUBLIC = CloudProfile(
    name="public",
    authority_host="https://login.microsoftonline.com",
    arm_endpoint="https://management.azure.com",
    arm_audience="https://management.core.windows.net/",
    graph_endpoint="https://graph.microsoft.com",
    keyvault_suffix=".vault.azure.net",
    ingestion_audience="https://monitor.azure.com",
    query_audience="https://prometheus.monitor.azure.com",
    resource_graph_endpoint="https://management.azure.com",
    ingestion_host_suffixes=(".metrics.ingest.monitor.azure.com",),
    sidecar_names=("AZUREPUBLIC", "AZURE_PUBLIC", "AZUREPUBLICCLOUD", "PUBLIC"),
)
USGOV = CloudProfile(
    name="usgov",
    authority_host="https://login.microsoftonline.us",
    arm_endpoint="https://management.usgovcloudapi.net",
    arm_audience="https://management.core.usgovcloudapi.net",
    graph_endpoint="https://graph.microsoft.us",
    keyvault_suffix=".vault.usgovcloudapi.net",
    ingestion_audience="https://monitor.azure.us",
    query_audience="https://prometheus.monitor.azure.us",
    resource_graph_endpoint="https://management.usgovcloudapi.net",
    ingestion_host_suffixes=(".metrics.ingest.monitor.azure.us",),
    metrics_endpoint_template="https://{region}.metrics.monitor.azure.us",
    metrics_audience="https://metrics.monitor.azure.us",
    sidecar_names=("AZUREGOVERNMENT", "AZURE_GOVERNMENT", "AZUREUSGOVERNMENT", "AZUREUSGOVERNMENTCLOUD", "USGOV"),
)
CHINA = CloudProfile(
    name="china",
    authority_host="https://login.chinacloudapi.cn",
    arm_endpoint="https://management.chinacloudapi.cn",
    arm_audience="https://management.core.chinacloudapi.cn",
    graph_endpoint="https://microsoftgraph.chinacloudapi.cn",
    keyvault_suffix=".vault.azure.cn",
    ingestion_audience="https://monitor.azure.cn",
    query_audience="https://prometheus.monitor.azure.cn",  # UNCONFIRMED upstream; see domain notes §4
    resource_graph_endpoint="https://management.chinacloudapi.cn",
    ingestion_host_suffixes=(".metrics.ingest.monitor.azure.cn",),
    metrics_endpoint_template="https://{region}.metrics.monitor.azure.cn",
    metrics_audience="https://metrics.monitor.azure.cn",
    sidecar_names=("AZURECHINA", "AZURE_CHINA", "AZURECHINACLOUD", "CHINA"),
)

BUILTIN: dict[str, CloudProfile] = {p.name: p for p in (PUBLIC, USGOV, CHINA)}
CUSTOM_SIDECAR_NAMES = ("AZURECUSTOM", "AZURE_CUSTOM")

_REQUIRED = (
    "authority_host",
    "arm_endpoint",
    "arm_audience",
    "graph_endpoint",
    "keyvault_suffix",
    "ingestion_audience",
    "query_audience",
)
_URL_FIELDS = ("authority_host", "arm_endpoint", "graph_endpoint", "resource_graph_endpoint")


def normalize_audience(audience: str) -> str:
    """``https://monitor.azure.com//.default`` and ``https://monitor.azure.com/`` -> ``https://monitor.azure.com``."""
    a = audience.strip()
    if a.endswith("/.default"):
        a = a[: -len("/.default")]
    return a.rstrip("/")


def scope(audience: str) -> str:
    return normalize_audience(audience) + "/.default"


def builtin(name: str) -> CloudProfile:
    key = name.strip().lower()
    aliases = {"azurepubliccloud": "public", "azureusgovernment": "usgov", "azurechinacloud": "china",
               "azureusgovernmentcloud": "usgov", "gov": "usgov", "us-gov": "usgov"}
    key = aliases.get(key, key)
    if key not in BUILTIN:
        raise InputError(f"unknown cloud {name!r} (expected public, usgov, china, or --cloud-config FILE)")
    return BUILTIN[key]


def from_sidecar_cloud(value: str | None) -> CloudProfile | None:
    """Map the sidecar's ``CLOUD`` env value (either documented spelling) to a profile; None if custom/unknown."""
    if not value:
        return None
    v = value.strip().upper()
    for p in BUILTIN.values():
        if v in p.sidecar_names:
            return p
    return None


def cloud_for_ingestion_host(host: str, extra: tuple[CloudProfile, ...] = ()) -> CloudProfile | None:
    for p in (*extra, *BUILTIN.values()):
        if p.owns_ingestion_host(host):
            return p
    return None


def load_profile_file(path: str | os.PathLike[str]) -> CloudProfile:
    """Load and validate a custom cloud profile file (YAML or JSON)."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"cloud profile {p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"cloud profile {p}: is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cloud profile {p}: cannot read: {exc}") from None
    try:
        import yaml

        data = yaml.safe_load(raw) if not raw.lstrip().startswith("{") else json.loads(raw)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cloud profile {p}: not valid YAML/JSON: {first}") from None
    if not isinstance(data, dict):
        raise InputError(f"cloud profile {p}: expected a mapping of settings, got {type(data).__name__}")
    return profile_from_dict(data, origin=str(p))


def profile_from_dict(data: dict[str, Any], origin: str = "cloud profile") -> CloudProfile:
    base_name = data.get("base")
    base = builtin(str(base_name)) if base_name else None
    values: dict[str, Any] = base.to_dict() if base else {}
    known = set(CloudProfile.__dataclass_fields__)
    unknown = sorted(k for k in data if k not in known and k != "base")
    if unknown:
        raise InputError(f"{origin}: unknown setting(s): {', '.join(unknown)}")
    values.update({k: v for k, v in data.items() if k != "base"})
    values.setdefault("name", "custom")
    missing = [k for k in _REQUIRED if not values.get(k)]
    if missing:
        raise InputError(f"{origin}: missing required setting(s): {', '.join(missing)}")
    values.setdefault("resource_graph_endpoint", values["arm_endpoint"])
    if not values.get("resource_graph_endpoint"):
        values["resource_graph_endpoint"] = values["arm_endpoint"]
    for k in _URL_FIELDS:
        u = urlsplit(str(values[k]))
        if u.scheme != "https" or not u.hostname:
            raise InputError(f"{origin}: {k} must be an https:// URL, got {values[k]!r}")
    for k in ("ingestion_audience", "query_audience", "arm_audience"):
        values[k] = str(values[k])
    suffixes = values.get("ingestion_host_suffixes") or ()
    if isinstance(suffixes, str):
        suffixes = (suffixes,)
    if not isinstance(suffixes, list | tuple) or not all(isinstance(s, str) for s in suffixes):
        raise InputError(f"{origin}: ingestion_host_suffixes must be a list of host suffixes")
    values["ingestion_host_suffixes"] = tuple(suffixes)
    values["sidecar_names"] = tuple(values.get("sidecar_names") or CUSTOM_SIDECAR_NAMES)
    values["disable_instance_discovery"] = bool(values.get("disable_instance_discovery", base is None))
    extra = values.get("extra") or {}
    if not isinstance(extra, dict):
        raise InputError(f"{origin}: extra must be a mapping")
    values["extra"] = extra
    for k in ("authority_host", "arm_endpoint", "graph_endpoint", "resource_graph_endpoint"):
        values[k] = str(values[k]).rstrip("/")
    return CloudProfile(**values)


def resolve(name: str | None = None, config_file: str | None = None) -> CloudProfile:
    """The doctor's cloud: ``--cloud-config``/``PROMRW_DOCTOR_CLOUD_CONFIG`` wins, else ``--cloud`` (default public)."""
    path = config_file or os.environ.get(ENV_CLOUD_CONFIG)
    if path:
        return load_profile_file(path)
    return builtin(name or "public")


def with_overrides(profile: CloudProfile, **changes: Any) -> CloudProfile:
    return replace(profile, **{k: v for k, v in changes.items() if v is not None})
