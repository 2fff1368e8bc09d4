"""The ``prom-remotewrite`` sidecar's settings: env rules per identity type. Pure logic, no I/O.

The sidecar is configured only through environment variables and fails late (restart
loop, or 401s at the first write) when one is missing or wrong. These rules encode the
documented requirements so that lint (Helm values) and live checks (the running pod)
judge a configuration the same way:

=====================  ==================================================================
``IDENTITY_TYPE``      required env / labels
=====================  ==================================================================
``userAssigned``       ``AZURE_CLIENT_ID`` (managed identity or pod identity)
``aadApplication``     ``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID``, ``AZURE_CLIENT_CERTIFICATE_PATH``
``workloadIdentity``   pod label ``azure.workload.identity/use: "true"`` (the webhook injects
                       ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_FEDERATED_TOKEN_FILE``)
=====================  ==================================================================

Every function is lenient about input shape (missing keys, ``None`` values) and reports,
never raises, so one broken value does not hide the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from .clouds import (
    BUILTIN,
    CUSTOM_SIDECAR_NAMES,
    PUBLIC,
    CloudProfile,
    from_sidecar_cloud,
    normalize_audience,
)
from .clouds import scope as audience_scope
from .ingestion_url import cloud_owning_host

SIDECAR_CONTAINER_NAME = "prom-remotewrite"
IDENTITY_TYPES: tuple[str, ...] = ("userAssigned", "aadApplication", "workloadIdentity")
REQUIRED_ENV: dict[str, tuple[str, ...]] = {
    "userAssigned": ("AZURE_CLIENT_ID",),
    "aadApplication": ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_CERTIFICATE_PATH"),
    "workloadIdentity": (),
}
# Required for every identity type.
COMMON_REQUIRED_ENV: tuple[str, ...] = ("INGESTION_URL", "LISTENING_PORT", "IDENTITY_TYPE")
KNOWN_ENV: tuple[str, ...] = (
    "INGESTION_URL", "LISTENING_PORT", "IDENTITY_TYPE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH", "CLUSTER", "INGESTION_AAD_AUDIENCE", "CLOUD", "AAD_HOST_ENDPOINT",
    "AZURE_AUTHORITY_HOST", "TRACE_LOGGING",
)
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
WORKLOAD_IDENTITY_LABEL_VALUE = "true"
POD_IDENTITY_LABEL = "aadpodidbinding"
DEFAULT_LISTENING_PORT = 8081  # what every doc example uses; the sidecar's own default is undocumented

# Doc placeholders left in: <INGESTION-URL>, <CLUSTER-NAME>, <APP-REGISTRATION -CLIENT-ID>, <client-id> ...
PLACEHOLDER_RE = re.compile(r"<[A-Za-z][A-Za-z0-9 _.:/\-]{0,80}>")
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

ProblemKind = Literal["missing", "unknown-value", "invalid", "placeholder", "format", "case", "label"]
Severity = Literal["error", "warning"]


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(GUID_RE.match(value.strip()))


def find_placeholder(value: object) -> str | None:
    """The first ``<PLACEHOLDER>`` in ``value``, or None."""
    if not isinstance(value, str):
        return None
    m = PLACEHOLDER_RE.search(value)
    return m.group(0) if m else None


@dataclass(frozen=True)
class SidecarSettings:
    """The sidecar's configuration as read from its env (raw strings, stripped; ``None`` = unset)."""

    ingestion_url: str | None = None
    listening_port: int | None = None
    identity_type: str | None = None
    client_id: str | None = None
    tenant_id: str | None = None
    certificate_path: str | None = None
    audience: str | None = None  # raw INGESTION_AAD_AUDIENCE
    cloud: str | None = None  # raw CLOUD
    cluster: str | None = None
    authority_host: str | None = None  # AZURE_AUTHORITY_HOST or AAD_HOST_ENDPOINT
    listening_port_raw: str | None = None

    @property
    def canonical_identity_type(self) -> str | None:
        """``identity_type`` mapped onto :data:`IDENTITY_TYPES` (case-insensitive), or None."""
        return canonical_identity_type(self.identity_type)


@dataclass(frozen=True)
class EnvProblem:
    """One problem with the sidecar env. ``field`` is the env name (or ``pod label <key>``)."""

    field: str
    message: str
    kind: ProblemKind
    severity: Severity = "error"


@dataclass(frozen=True)
class AudienceProblem:
    field: str  # INGESTION_AAD_AUDIENCE | CLOUD
    message: str
    severity: Severity = "error"


def canonical_identity_type(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip()
    for t in IDENTITY_TYPES:
        if v.lower() == t.lower():
            return t
    return None


def _clean(env: Mapping[str, str | None], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_port(value: object) -> int | None:
    """A TCP port 1..65535 from an int or a decimal string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= 65535 else None
    if isinstance(value, str) and value.strip().isdigit():
        port = int(value.strip())
        return port if 1 <= port <= 65535 else None
    return None


def settings_from_env(env: Mapping[str, str | None]) -> SidecarSettings:
    """Read :class:`SidecarSettings` from an env mapping. Lenient: bad values become ``None``."""
    port_raw = _clean(env, "LISTENING_PORT")
    return SidecarSettings(
        ingestion_url=_clean(env, "INGESTION_URL"),
        listening_port=parse_port(port_raw),
        identity_type=_clean(env, "IDENTITY_TYPE"),
        client_id=_clean(env, "AZURE_CLIENT_ID"),
        tenant_id=_clean(env, "AZURE_TENANT_ID"),
        certificate_path=_clean(env, "AZURE_CLIENT_CERTIFICATE_PATH"),
        audience=_clean(env, "INGESTION_AAD_AUDIENCE"),
        cloud=_clean(env, "CLOUD"),
        cluster=_clean(env, "CLUSTER"),
        authority_host=_clean(env, "AZURE_AUTHORITY_HOST") or _clean(env, "AAD_HOST_ENDPOINT"),
        listening_port_raw=port_raw,
    )


def workload_identity_label_problems(pod_labels: Mapping[str, object] | None) -> list[EnvProblem]:
    """The webhook only mutates pods labelled ``azure.workload.identity/use: "true"`` (a string)."""
    field = f"pod label {WORKLOAD_IDENTITY_LABEL}"
    labels = pod_labels or {}
    if WORKLOAD_IDENTITY_LABEL not in labels:
        near = [k for k in labels if k.lower().replace(" ", "") == WORKLOAD_IDENTITY_LABEL]
        hint = f" (found {near[0]!r}: label keys are case-sensitive)" if near else ""
        return [EnvProblem(field, f'pod label {WORKLOAD_IDENTITY_LABEL}: "true" is missing{hint}; '
                                  "without it the webhook injects no credentials", "label")]
    value = labels[WORKLOAD_IDENTITY_LABEL]
    if value is True:
        return [EnvProblem(field, f'{WORKLOAD_IDENTITY_LABEL} is the YAML boolean true; quote it: "true" '
                                  "(label values must be strings)", "label")]
    if not isinstance(value, str) or value.strip() != WORKLOAD_IDENTITY_LABEL_VALUE:
        return [EnvProblem(field, f'{WORKLOAD_IDENTITY_LABEL} is {value!r}; it must be "true"', "label")]
    return []


def env_problems(
    env: Mapping[str, str | None],
    *,
    pod_labels: Mapping[str, object] | None = None,
) -> list[EnvProblem]:
    """Every problem with the sidecar env (empty list: complete and well formed).

    ``env`` maps names to values; a ``None`` value means "set, but from ``valueFrom``"
    (present, value unknown: no format checks). ``pod_labels`` enables the
    workload-identity label check; leave it ``None`` when the labels are unknown.
    """
    problems: list[EnvProblem] = []
    present = {k for k in env}

    for name in COMMON_REQUIRED_ENV:
        if name not in present or (env.get(name) is not None and not str(env.get(name)).strip()):
            problems.append(EnvProblem(name, f"{name} is not set", "missing"))

    for name, value in env.items():
        ph = find_placeholder(value)
        if ph is not None:
            problems.append(EnvProblem(name, f"{name} still holds the doc placeholder {ph}", "placeholder"))

    raw_type = _clean(env, "IDENTITY_TYPE")
    identity_type: str | None = None
    if raw_type is not None and find_placeholder(raw_type) is None:
        identity_type = canonical_identity_type(raw_type)
        if identity_type is None:
            problems.append(EnvProblem(
                "IDENTITY_TYPE",
                f"IDENTITY_TYPE {raw_type!r} is not one of {', '.join(IDENTITY_TYPES)}",
                "unknown-value",
            ))
        elif identity_type != raw_type:
            problems.append(EnvProblem(
                "IDENTITY_TYPE",
                f"IDENTITY_TYPE {raw_type!r} differs in case from the documented {identity_type!r}",
                "case", "warning",
            ))

    if identity_type is not None:
        for name in REQUIRED_ENV[identity_type]:
            if name not in present or (env.get(name) is not None and not str(env.get(name)).strip()):
                problems.append(EnvProblem(
                    name, f"{name} is required with IDENTITY_TYPE={identity_type}", "missing"))
        if identity_type == "workloadIdentity" and pod_labels is not None:
            problems.extend(workload_identity_label_problems(pod_labels))

    port_raw = env.get("LISTENING_PORT")
    if port_raw is not None and str(port_raw).strip() and find_placeholder(port_raw) is None \
            and parse_port(port_raw) is None:
        problems.append(EnvProblem(
            "LISTENING_PORT", f"LISTENING_PORT {port_raw!r} is not a port number (1-65535)", "invalid"))

    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        value = _clean(env, name)
        if value is not None and find_placeholder(value) is None and not is_guid(value):
            problems.append(EnvProblem(name, f"{name} {value!r} is not a GUID", "format"))

    cert = _clean(env, "AZURE_CLIENT_CERTIFICATE_PATH")
    if cert is not None and find_placeholder(cert) is None and not cert.startswith("/"):
        problems.append(EnvProblem(
            "AZURE_CLIENT_CERTIFICATE_PATH",
            f"AZURE_CLIENT_CERTIFICATE_PATH {cert!r} is not an absolute path", "format"))
    return problems


# --------------------------------------------------------------------------- audience


def effective_ingestion_audience(
    settings: SidecarSettings, profile_for_host: CloudProfile | None = None
) -> str:
    """The token scope the sidecar will request for ingestion.

    ``INGESTION_AAD_AUDIENCE`` wins verbatim; else a recognised ``CLOUD`` selects that
    cloud's audience; else, for ``CLOUD=AZURECUSTOM``, ``profile_for_host`` (the custom
    profile owning the ingestion host); else the public audience. The sidecar does not
    derive the audience from the ingestion host, which is why sovereign clouds need an
    explicit setting.
    """
    if settings.audience:
        return settings.audience
    profile = from_sidecar_cloud(settings.cloud)
    if profile is not None:
        return audience_scope(profile.ingestion_audience)
    custom = bool(settings.cloud) and str(settings.cloud).strip().upper() in CUSTOM_SIDECAR_NAMES
    if custom and profile_for_host is not None:
        return audience_scope(profile_for_host.ingestion_audience)
    return audience_scope(PUBLIC.ingestion_audience)


def audience_problems(
    settings: SidecarSettings,
    ingestion_host: str | None,
    extra_clouds: Iterable[CloudProfile] = (),
) -> list[AudienceProblem]:
    """Does the audience the sidecar will use belong to the cloud of the ingestion host?

    A ``.azure.us``/``.azure.cn`` host needs ``INGESTION_AAD_AUDIENCE`` (or ``CLOUD``) for
    that cloud, else every token is minted for the public audience and ingestion answers
    401. An audience without ``/.default`` is a warning (the workload-identity article
    says token acquisition fails without it; the managed-identity article omits it).
    """
    problems: list[AudienceProblem] = []
    host = ingestion_host or ""
    if settings.ingestion_url and not host:
        try:
            host = (urlsplit(settings.ingestion_url.strip()).hostname or "").lower()
        except ValueError:
            host = ""
    host_cloud = cloud_owning_host(host, tuple(extra_clouds)) if host else None
    cloud_profile = from_sidecar_cloud(settings.cloud)
    raw_cloud = (settings.cloud or "").strip()
    cloud_is_custom = raw_cloud.upper() in CUSTOM_SIDECAR_NAMES

    if raw_cloud and cloud_profile is None and not cloud_is_custom and find_placeholder(raw_cloud) is None:
        known = sorted({n for p in BUILTIN.values() for n in p.sidecar_names[:2]} | set(CUSTOM_SIDECAR_NAMES))
        problems.append(AudienceProblem("CLOUD", f"CLOUD {raw_cloud!r} is not a documented value "
                                                 f"({', '.join(known)})", "warning"))

    audience = settings.audience
    if audience and find_placeholder(audience) is not None:
        return problems  # placeholders are reported elsewhere
    if audience:
        if not audience.rstrip().endswith("/.default"):
            problems.append(AudienceProblem(
                "INGESTION_AAD_AUDIENCE",
                f"INGESTION_AAD_AUDIENCE {audience!r} lacks the /.default suffix; "
                f"use {audience_scope(audience)}",
                "warning",
            ))
        normalized = normalize_audience(audience).lower()
        if host_cloud is not None and normalized != normalize_audience(host_cloud.ingestion_audience).lower():
            problems.append(AudienceProblem(
                "INGESTION_AAD_AUDIENCE",
                f"INGESTION_AAD_AUDIENCE {audience!r} does not match the {host_cloud.name} "
                f"ingestion host {host} (expected {audience_scope(host_cloud.ingestion_audience)})",
            ))
        if cloud_profile is not None and normalized != normalize_audience(
                cloud_profile.ingestion_audience).lower():
            problems.append(AudienceProblem(
                "CLOUD",
                f"CLOUD={raw_cloud} selects {cloud_profile.name} but INGESTION_AAD_AUDIENCE is {audience!r}",
                "warning",
            ))
        return problems

    if cloud_is_custom:
        problems.append(AudienceProblem(
            "INGESTION_AAD_AUDIENCE",
            f"CLOUD={raw_cloud} requires INGESTION_AAD_AUDIENCE=<audience-for-your-cloud>/.default",
        ))
        return problems
    if host_cloud is None:
        return problems
    effective = effective_ingestion_audience(settings, host_cloud)
    expected = host_cloud.ingestion_audience
    if normalize_audience(effective).lower() != normalize_audience(expected).lower():
        if cloud_profile is not None:
            message = (f"CLOUD={raw_cloud} selects {cloud_profile.name} but the ingestion host {host} is in "
                       f"{host_cloud.name}; set INGESTION_AAD_AUDIENCE={audience_scope(expected)}")
            problems.append(AudienceProblem("CLOUD", message))
        else:
            message = (f"ingestion host {host} is in the {host_cloud.name} cloud but neither "
                       f"INGESTION_AAD_AUDIENCE nor CLOUD is set: tokens will be minted for {effective}; set "
                       f"INGESTION_AAD_AUDIENCE={audience_scope(expected)}")
            problems.append(AudienceProblem("INGESTION_AAD_AUDIENCE", message))
    return problems
