"""Forwarder settings from the sidecar's env vars (and CLI flags that override them).

The env rules themselves (required vars per ``IDENTITY_TYPE``, placeholders, GUIDs,
audience vs cloud) live in :mod:`promrw_doctor.domain.sidecar` and
:mod:`promrw_doctor.domain.ingestion_url`, so the forwarder refuses exactly what the
doctor reports. This module adds what only a running forwarder needs: where to
listen, limits, timeouts, and the resolved :class:`IdentitySettings`.

Every problem becomes :class:`~promrw_doctor.core.errors.InputError` (one line, exit 2).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import InputError
from ..domain import clouds
from ..domain.clouds import CloudProfile
from ..domain.ingestion_url import ingestion_url_problems, parse_ingestion_url
from ..domain.sidecar import (
    DEFAULT_LISTENING_PORT,
    KNOWN_ENV,
    audience_problems,
    canonical_identity_type,
    effective_ingestion_audience,
    env_problems,
    parse_port,
    settings_from_env,
)
from ..identity.settings import CLIENT_SECRET, IdentitySettings, needs_instance_discovery_disabled

# Env the forwarder reads beyond the sidecar's documented set (azure-identity conventions).
EXTRA_ENV = ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
             "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_SECRET", "REQUESTS_CA_BUNDLE",
             clouds.ENV_CLOUD_CONFIG)
MiB = 1024 * 1024


@dataclass(frozen=True)
class ForwarderConfig:
    """A complete, validated forwarder configuration. Build it with :func:`config_from_env`."""

    ingestion_url: str
    identity: IdentitySettings
    listen_host: str = "127.0.0.1"
    listen_port: int = DEFAULT_LISTENING_PORT
    cluster: str | None = None
    cloud: CloudProfile = clouds.PUBLIC
    validate: bool = False  # decode + check every body (costs CPU; off on the hot path)
    pass_through_4xx: bool = False  # answer upstream 401/403 as-is (Prometheus then drops the batch)
    max_body_bytes: int = 10 * MiB
    max_in_flight: int = 64
    # Open client connections; beyond it new ones get a canned 503 (bounds per-connection buffers).
    max_connections: int = 256
    # All request bodies held at once: bounds memory however slow the upstream is.
    max_buffered_bytes: int = 64 * MiB
    upstream_timeout: float = 25.0  # below Prometheus' default remote_timeout (30 s): we answer first
    read_timeout: float = 30.0  # whole-body read deadline (slowloris)
    # Idle keep-alive connections, and connections still sending request headers, are closed after this.
    idle_timeout: float = 75.0
    auth_retry_after_s: int = 30  # Retry-After on the 503 that stands in for a persistent 401/403
    busy_retry_after_s: int = 1
    no_token_retry_after_s: int = 10
    shutdown_grace_s: float = 25.0
    summary_interval_s: float = 60.0
    ca_bundle: str | None = None  # trusted for ingestion TLS (else REQUESTS_CA_BUNDLE, else system)
    warnings: tuple[str, ...] = field(default=())

    @property
    def listen_url(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"http://{host}:{self.listen_port}/api/v1/write"

    def with_changes(self, **changes: Any) -> ForwarderConfig:
        return replace(self, **changes)


# CLI flag name -> env var it overrides.
FLAG_ENV = {
    "ingestion_url": "INGESTION_URL",
    "listening_port": "LISTENING_PORT",
    "identity_type": "IDENTITY_TYPE",
    "client_id": "AZURE_CLIENT_ID",
    "tenant_id": "AZURE_TENANT_ID",
    "certificate_path": "AZURE_CLIENT_CERTIFICATE_PATH",
    "audience": "INGESTION_AAD_AUDIENCE",
    "cloud": "CLOUD",
    "cluster": "CLUSTER",
    "federated_token_file": "AZURE_FEDERATED_TOKEN_FILE",
}


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _authority(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip().rstrip("/")
    if v.lower().startswith("http://"):
        raise InputError(f"authority host {v!r} must be https:// (Entra clients refuse plain HTTP)")
    if "://" not in v:
        v = "https://" + v
    if not urlsplit(v).hostname:
        raise InputError(f"authority host {value!r} is not a URL")
    return v


def config_from_env(
    env: Mapping[str, str] | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
    cloud_config: str | None = None,
    authority_host: str | None = None,
    ca_bundle: str | None = None,
    **options: Any,
) -> ForwarderConfig:
    """Resolve the forwarder's configuration.

    ``env`` defaults to ``os.environ``; ``flags`` (keys of :data:`FLAG_ENV`) override
    env values; ``options`` set :class:`ForwarderConfig` fields directly (limits,
    timeouts, ``listen_host``, ``validate`` ...). Raises ``InputError`` on any error.
    """
    source = dict(os.environ if env is None else env)
    merged: dict[str, str] = {k: source[k] for k in (*KNOWN_ENV, *EXTRA_ENV) if source.get(k) is not None}
    for key, value in (flags or {}).items():
        if value is None or value == "":
            continue
        if key not in FLAG_ENV:
            raise InputError(f"unknown forwarder setting {key!r}")
        merged[FLAG_ENV[key]] = str(value)
    warnings: list[str] = []
    if not merged.get("LISTENING_PORT"):
        merged["LISTENING_PORT"] = str(DEFAULT_LISTENING_PORT)

    raw_type = (merged.get("IDENTITY_TYPE") or "").strip()
    dev_secret = raw_type.lower() == CLIENT_SECRET.lower()
    sidecar_env = {k: v for k, v in merged.items() if k in KNOWN_ENV}
    if dev_secret:
        sidecar_env["IDENTITY_TYPE"] = "userAssigned"  # judged separately below
    problems = env_problems(sidecar_env)
    errors = [p.message for p in problems if p.severity == "error"
              and not (dev_secret and p.field == "AZURE_CLIENT_ID")]
    warnings += [p.message for p in problems if p.severity != "error"]
    if errors:
        raise InputError(_join(errors))

    st = settings_from_env(sidecar_env)
    identity_type = CLIENT_SECRET if dev_secret else canonical_identity_type(st.identity_type)
    assert identity_type is not None  # env_problems rejected unknown values
    url = (st.ingestion_url or "").strip()
    try:
        parsed = parse_ingestion_url(url)
    except ValueError as exc:
        raise InputError(f"INGESTION_URL: {exc}") from None
    if parsed.scheme != "https" and not is_loopback(parsed.host):
        raise InputError("INGESTION_URL must be https:// (a bearer token would cross the network in clear "
                         f"text): {parsed.base_url}")

    profile = _cloud_profile(cloud_config or merged.get(clouds.ENV_CLOUD_CONFIG), st.cloud)
    extra_clouds = (profile,) if profile.name not in clouds.BUILTIN else ()
    for p in ingestion_url_problems(url, extra_clouds):
        # The documented URL shape is advice here: the lab and air-gapped clouds use other hosts.
        warnings.append(f"INGESTION_URL: {p.message}")
    if extra_clouds and not st.audience:
        # A cloud profile file is the forwarder's own extension: its audience is the default there.
        st = replace(st, audience=clouds.scope(profile.ingestion_audience))
    audience_issues = audience_problems(st, parsed.host, extra_clouds)
    errs = [a.message for a in audience_issues if a.severity == "error"]
    if errs:
        raise InputError(_join(errs))
    warnings += [a.message for a in audience_issues if a.severity != "error"]
    scope = effective_ingestion_audience(st, profile if extra_clouds else None)

    authority = _authority(authority_host or merged.get("AAD_HOST_ENDPOINT") or st.authority_host)
    if authority is None and profile.name != "public":
        authority = profile.authority_host
    disable_discovery = profile.disable_instance_discovery or needs_instance_discovery_disabled(authority)

    tenant = st.tenant_id
    client = st.client_id
    if identity_type in ("workloadIdentity", CLIENT_SECRET) and (not tenant or not client):
        pairs = (("AZURE_TENANT_ID", tenant), ("AZURE_CLIENT_ID", client))
        missing = " and ".join(n for n, v in pairs if not v)
        hint = (" (the workload identity webhook injects them: is the service account annotated "
                "azure.workload.identity/client-id?)" if identity_type == "workloadIdentity" else "")
        raise InputError(f"IDENTITY_TYPE={identity_type} needs {missing}{hint}")
    if dev_secret:
        if not merged.get("AZURE_CLIENT_SECRET"):
            raise InputError("IDENTITY_TYPE=clientSecret needs AZURE_CLIENT_SECRET")
        warnings.append("IDENTITY_TYPE=clientSecret is for local development only; "
                        "the sidecar has no such mode")
    bundle = ca_bundle or merged.get("REQUESTS_CA_BUNDLE")
    if bundle and not os.path.isfile(bundle):
        raise InputError(f"CA bundle {bundle}: no such file")

    identity = IdentitySettings(
        identity_type=identity_type,
        audience=scope,
        client_id=client,
        tenant_id=tenant,
        certificate_path=st.certificate_path,
        certificate_password=merged.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None,
        send_certificate_chain=_truthy(merged.get("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")),
        federated_token_file=merged.get("AZURE_FEDERATED_TOKEN_FILE") or None,
        client_secret=(merged.get("AZURE_CLIENT_SECRET") or None) if dev_secret else None,
        authority_host=authority,
        disable_instance_discovery=disable_discovery,
        ca_bundle=ca_bundle,
        imds_retry_total=options.pop("imds_retry_total", None),
    )
    port = parse_port(merged["LISTENING_PORT"])
    assert port is not None  # env_problems checked it
    cfg = ForwarderConfig(ingestion_url=url, identity=identity, listen_port=port, cluster=st.cluster,
                          cloud=profile, ca_bundle=bundle, warnings=tuple(warnings))
    unknown = sorted(k for k in options if k not in ForwarderConfig.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown forwarder option(s): {', '.join(unknown)}")
    cfg = replace(cfg, **{k: v for k, v in options.items() if v is not None})
    _check_limits(cfg)
    if not is_loopback(cfg.listen_host):
        exposed = (f"listening on {cfg.listen_host}, not loopback: anything that can reach this address "
                   "can write to the workspace with this identity")
        cfg = replace(cfg, warnings=(*cfg.warnings, exposed))
    return cfg


def _cloud_profile(config_file: str | None, cloud_env: str | None) -> CloudProfile:
    if config_file:
        return clouds.load_profile_file(config_file)
    return clouds.from_sidecar_cloud(cloud_env) or clouds.PUBLIC


def _check_limits(cfg: ForwarderConfig) -> None:
    if cfg.max_body_bytes < 1024:
        raise InputError(f"max body size {cfg.max_body_bytes} is too small (minimum 1024 bytes)")
    if cfg.max_in_flight < 1:
        raise InputError("max in-flight requests must be at least 1")
    if cfg.max_connections < cfg.max_in_flight:
        raise InputError(f"max connections ({cfg.max_connections}) must be at least max in-flight "
                         f"({cfg.max_in_flight})")
    if cfg.max_buffered_bytes < cfg.max_body_bytes:
        raise InputError(f"max buffered bytes ({cfg.max_buffered_bytes}) must be at least the max body size "
                         f"({cfg.max_body_bytes})")
    for name in ("upstream_timeout", "read_timeout", "idle_timeout", "shutdown_grace_s"):
        if getattr(cfg, name) <= 0:
            raise InputError(f"{name.replace('_', '-')} must be positive")


def _join(errors: list[str]) -> str:
    if len(errors) == 1:
        return errors[0]
    return f"{errors[0]} (and {len(errors) - 1} more: {'; '.join(errors[1:])})"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")
