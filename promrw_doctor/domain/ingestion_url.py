"""The sidecar's ``INGESTION_URL``: parsing and validation. Pure logic, no I/O.

The URL is the single most copy-pasted value in a remote-write setup and the one whose
mistakes are least visible: the sidecar happily starts with a wrong URL and every
write then fails with 404/400/401. A correct URL looks like::

    https://<dce>-<suffix>.<region>-1.metrics.ingest.monitor.azure.com
        /dataCollectionRules/dcr-<32 hex>/streams/Microsoft-PrometheusMetrics/api/v1/write
        ?api-version=2023-04-24

Hosts of the built-in clouds end in ``.metrics.ingest.monitor.azure.{com,us,cn}``; a
custom cloud profile (air-gapped clouds, the lab) may own other hosts, matched on the
host name only (the port is ignored).

:func:`parse_ingestion_url` takes a URL apart (lenient about *content*, strict about
being a URL at all); :func:`ingestion_url_problems` lists every way it deviates from
the documented format, one :class:`UrlProblem` each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from .clouds import BUILTIN, CloudProfile

STREAM = "Microsoft-PrometheusMetrics"
KNOWN_API_VERSIONS: tuple[str, ...] = ("2021-11-01-preview", "2023-04-24")
RECOMMENDED_API_VERSION = "2023-04-24"
# Public, US Gov, China (the firewall FQDNs from the AKS monitoring docs).
INGESTION_HOST_SUFFIXES: tuple[str, ...] = (
    ".metrics.ingest.monitor.azure.com",
    ".metrics.ingest.monitor.azure.us",
    ".metrics.ingest.monitor.azure.cn",
)
PATH_TEMPLATE = "/dataCollectionRules/<DCR-immutable-id>/streams/Microsoft-PrometheusMetrics/api/v1/write"

DCR_IMMUTABLE_ID_RE = re.compile(r"^dcr-[0-9a-f]{32}$")
_PATH_RE = re.compile(
    r"^/dataCollectionRules/(?P<dcr>[^/]+)/streams/(?P<stream>[^/]+)/api/v1/write$"
)
_LOOSE_PATH_RE = re.compile(
    r"(?i)^/datacollectionrules/(?P<dcr>[^/]+)/streams/(?P<stream>[^/]+)/api/v1/write/?$"
)
_API_VERSION_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
# Doc placeholders: <INGESTION-URL>, <INGESTION_URL>, <Metrics-Ingestion-URL>, <DCR-Immutable-ID> ...
_PLACEHOLDER_RE = re.compile(r"<[^<>\s][^<>]{0,80}>")
# Workspace *query* endpoint, a frequent mix-up: https://<ws>.<region>.prometheus.monitor.azure.com
_QUERY_HOST_RE = re.compile(r"(?i)\.prometheus\.monitor\.azure\.(com|us|cn)$")
_LOGS_HOST_RE = re.compile(r"(?i)\.ingest\.monitor\.azure\.(com|us|cn)$")

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class IngestionUrl:
    """A parsed ingestion URL. Fields are ``None`` when the URL lacks that part.

    ``host`` is lower-cased and without port; ``netloc`` is ``host[:port]`` as written
    (lower-cased); ``cloud`` is the built-in or custom profile that owns the host.
    """

    raw: str
    scheme: str
    host: str
    port: int | None
    netloc: str
    path: str
    dcr_immutable_id: str | None
    stream: str | None
    api_version: str | None
    cloud: CloudProfile | None

    @property
    def base_url(self) -> str:
        """``scheme://netloc`` (what a DNS/TLS/reachability probe connects to)."""
        return f"{self.scheme}://{self.netloc}"

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 443 if self.scheme == "https" else 80


@dataclass(frozen=True)
class UrlProblem:
    """One deviation from the documented URL format.

    ``field`` names the part: ``url``, ``placeholder``, ``scheme``, ``host``, ``port``,
    ``path``, ``dcr``, ``stream``, ``api-version``. ``severity`` is ``error`` (writes
    will fail) or ``warning`` (unusual, may work).
    """

    field: str
    message: str
    severity: Severity = "error"


def host_matches_suffix(host: str, suffix: str) -> bool:
    """Does ``host`` belong to ``suffix`` (``.x.y`` = any subdomain; ``x.y`` = that host)? Ports ignored."""
    h = _strip_port(host.strip().lower()).rstrip(".")
    s = _strip_port(suffix.strip().lower()).rstrip(".")
    if not s:
        return False
    if s.startswith("."):
        return h.endswith(s) or h == s[1:]
    return h == s or h.endswith("." + s)


def cloud_owning_host(host: str, extra_clouds: Iterable[CloudProfile] = ()) -> CloudProfile | None:
    """The profile owning an ingestion host: custom profiles first, then the built-in clouds."""
    for profile in (*extra_clouds, *BUILTIN.values()):
        if any(host_matches_suffix(host, s) for s in profile.ingestion_host_suffixes):
            return profile
    return None


def has_placeholder(value: str) -> bool:
    """``<INGESTION-URL>``-style doc placeholders left in a value."""
    return bool(_PLACEHOLDER_RE.search(value))


def parse_ingestion_url(url: str, extra_clouds: Iterable[CloudProfile] = ()) -> IngestionUrl:
    """Take an ingestion URL apart.

    Raises ``ValueError`` (one-line reason) only when the value is not an http(s) URL
    with a host at all (empty, a doc placeholder, no scheme, bad port). Content
    problems (wrong host, path, api-version) are reported by :func:`ingestion_url_problems`.
    """
    if url is None or not str(url).strip():
        raise ValueError("ingestion URL is empty")
    raw = str(url)
    value = raw.strip()
    if has_placeholder(value) and "://" not in value:
        raise ValueError(f"ingestion URL is still a doc placeholder: {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"ingestion URL is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if not scheme:
            raise ValueError(f"ingestion URL has no scheme (expected https://...): {value!r}")
        raise ValueError(f"ingestion URL scheme {parts.scheme!r} is not https")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"ingestion URL has no host: {value!r}")
    netloc = host if port is None else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    dcr = stream = None
    m = _LOOSE_PATH_RE.match(parts.path)
    if m:
        dcr, stream = m.group("dcr"), m.group("stream")
    query = parse_qs(parts.query, keep_blank_values=True)
    versions = query.get("api-version")
    api_version = versions[0] if versions else None
    return IngestionUrl(
        raw=raw,
        scheme=scheme,
        host=host,
        port=port,
        netloc=netloc,
        path=parts.path,
        dcr_immutable_id=dcr,
        stream=stream,
        api_version=api_version,
        cloud=cloud_owning_host(host, tuple(extra_clouds)),
    )


def ingestion_url_problems(url: str, extra_clouds: Iterable[CloudProfile] = ()) -> list[UrlProblem]:
    """Every way ``url`` deviates from the documented ingestion URL format (empty list: well formed)."""
    extra = tuple(extra_clouds)
    if url is None or not str(url).strip():
        return [UrlProblem("url", "INGESTION_URL is empty")]
    value = str(url)
    problems: list[UrlProblem] = []
    if value != value.strip():
        problems.append(UrlProblem("url", "INGESTION_URL has leading/trailing whitespace", "warning"))
    stripped = value.strip()
    placeholder = _PLACEHOLDER_RE.search(stripped)
    if placeholder is not None:
        problems.append(UrlProblem(
            "placeholder",
            f"INGESTION_URL still contains a doc placeholder ({placeholder.group(0)}); "
            "use the workspace's Metrics ingestion endpoint",
        ))
        if "://" not in stripped:
            return problems
    try:
        parsed = parse_ingestion_url(stripped, extra)
    except ValueError as exc:
        problems.append(UrlProblem("url", str(exc)))
        return problems

    if parsed.scheme != "https":
        problems.append(UrlProblem("scheme", f"scheme is {parsed.scheme}://; the ingestion endpoint needs https://"))
    parts = urlsplit(stripped)
    if parts.username or parts.password:
        problems.append(UrlProblem("url", "INGESTION_URL must not carry user info (user:pass@)"))
    if parts.fragment:
        problems.append(UrlProblem("url", f"INGESTION_URL has a #fragment ({parts.fragment!r})", "warning"))

    owned = parsed.cloud is not None
    if not owned:
        if _QUERY_HOST_RE.search(parsed.host):
            problems.append(UrlProblem(
                "host",
                f"host {parsed.host} is the workspace's query endpoint; use the Metrics ingestion endpoint "
                "(*.metrics.ingest.monitor.azure.com) from the workspace Overview page",
            ))
        elif _LOGS_HOST_RE.search(parsed.host):
            problems.append(UrlProblem(
                "host",
                f"host {parsed.host} is a logs ingestion endpoint; use the Metrics ingestion endpoint "
                "(*.metrics.ingest.monitor.azure.com)",
            ))
        else:
            problems.append(UrlProblem(
                "host",
                f"host {parsed.host} is not an Azure Monitor metrics ingestion endpoint "
                "(*.metrics.ingest.monitor.azure.com, .us or .cn)",
            ))
    builtin_or_unknown = parsed.cloud is None or parsed.cloud.name in BUILTIN
    if parsed.port is not None and parsed.port != 443 and builtin_or_unknown:
        problems.append(UrlProblem("port", f"port {parsed.port}: the ingestion endpoint listens on 443"))

    problems.extend(_path_problems(parsed.path))
    problems.extend(_api_version_problems(parts.query))
    return problems


def _path_problems(path: str) -> list[UrlProblem]:
    if path in ("", "/"):
        return [UrlProblem(
            "path",
            f"URL has no path: it is only the endpoint; append {PATH_TEMPLATE}",
        )]
    m = _PATH_RE.match(path)
    if m is None:
        loose = _LOOSE_PATH_RE.match(path)
        if loose is not None:
            return [UrlProblem(
                "path",
                f"path {path!r} differs in case or trailing slash from {PATH_TEMPLATE}",
            )]
        return [UrlProblem("path", f"path {path!r} is not {PATH_TEMPLATE}")]
    out: list[UrlProblem] = []
    dcr, stream = m.group("dcr"), m.group("stream")
    if has_placeholder(dcr):
        pass  # already reported as a placeholder
    elif not DCR_IMMUTABLE_ID_RE.match(dcr):
        if dcr.lower().startswith("dcr-") and re.fullmatch(r"[0-9a-f]{32}", dcr[4:].lower()):
            out.append(UrlProblem("dcr", f"DCR immutable id {dcr!r} should be lower case", "warning"))
        else:
            out.append(UrlProblem(
                "dcr",
                f"{dcr!r} is not a DCR immutable id (dcr- followed by 32 hex digits; "
                "the DCR's properties.immutableId, not its name)",
            ))
    if stream != STREAM:
        out.append(UrlProblem("stream", f"stream {stream!r} must be {STREAM}"))
    return out


def _api_version_problems(query: str) -> list[UrlProblem]:
    values = parse_qs(query, keep_blank_values=True).get("api-version")
    known = ", ".join(KNOWN_API_VERSIONS)
    if not values:
        return [UrlProblem(
            "api-version",
            f"api-version query parameter is missing (use ?api-version={RECOMMENDED_API_VERSION})",
        )]
    if len(values) > 1:
        return [UrlProblem("api-version", f"api-version given {len(values)} times")]
    version = values[0]
    if version in KNOWN_API_VERSIONS:
        return []
    if _API_VERSION_SHAPE.match(version):
        # A newer version may exist; we cannot prove it wrong, so warn.
        return [UrlProblem("api-version", f"api-version {version!r} is not a known version ({known})",
                           "warning")]
    return [UrlProblem("api-version", f"api-version {version!r} is malformed (known: {known})")]


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [v6]:port
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def example_url(host: str = "<dce>.<region>-1.metrics.ingest.monitor.azure.com",
                dcr: str = "dcr-<32 hex>") -> str:
    """A correctly shaped URL, for remediation text."""
    return (f"https://{host}/dataCollectionRules/{dcr}/streams/{STREAM}/api/v1/write"
            f"?api-version={RECOMMENDED_API_VERSION}")
