"""Prometheus's remote_write URL reaches the sidecar (loopback, LISTENING_PORT, /api/v1/write)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from promrw_doctor.core import Skip, check

from ._common import helm_release, helm_values, pod_of

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
WRITE_PATH = "/api/v1/write"


def url_problem(url: str, port: int, pod_ips: Sequence[str] = ()) -> str | None:
    """Why ``url`` does not reach a sidecar listening on ``port`` in the same pod; None when it does."""
    try:
        parts = urlsplit(url.strip())
        url_port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https"):
        return f"{url}: scheme {parts.scheme or '(none)'} is not http"
    if ".metrics.ingest.monitor.azure." in host or host.endswith(".ingest.monitor.azure.com"):
        return (f"{url} points at the ingestion endpoint directly, bypassing the sidecar: Prometheus sends no "
                "Entra token and gets 401")
    if host not in LOOPBACK_HOSTS and host not in pod_ips:
        return f"{url} goes to {host}, not to the sidecar in the same pod (localhost:{port})"
    effective = url_port or (443 if parts.scheme == "https" else 80)
    if effective != port:
        return f"{url} uses port {effective} but the sidecar listens on LISTENING_PORT {port}"
    if parts.scheme == "https":
        return f"{url} uses https, but the sidecar serves plain http on localhost"
    if (parts.path or "/").rstrip("/") != WRITE_PATH:
        return f"{url} has path {parts.path or '/'}; the sidecar accepts {WRITE_PATH}"
    return None


def judge(urls: Sequence[Mapping[str, Any]], port: int, pod_ips: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(URLs that reach the sidecar, reasons for those that do not)."""
    good, bad = [], []
    for entry in urls:
        url = str(entry.get("url") or "")
        why = url_problem(url, port, pod_ips)
        if why is None:
            good.append(url)
        else:
            bad.append(why)
    return good, bad


@check(id="kubernetes.remote-write-url", title="Prometheus remote-writes to the sidecar", category="kubernetes",
       severity="critical", codes=["REMOTE_WRITE_URL_MISMATCH"], depends_on=["kubernetes.sidecar-present"],
       needs=["sidecar.settings", "k8s.remote_write_config"], tags=["prometheus", "config"])
def remote_write_url(ctx: Any) -> Any:
    """A ``remote_write`` URL of Prometheus is ``http://localhost:<LISTENING_PORT>/api/v1/write``.

    Read from the Prometheus CR (``spec.remoteWrite``), else the operator's generated config
    Secret (only if RBAC allows it), else a ConfigMap. A wrong port (8080 is the config
    reloader's), a wrong path, https, or the ingestion URL itself (no token) all mean no
    sample reaches the sidecar.
    """
    settings = ctx.fact("sidecar.settings")
    rw = ctx.fact("k8s.remote_write_config")
    ns = pod_of(ctx.target)[0]
    port = settings.listening_port
    if port is None:
        raise Skip("LISTENING_PORT is missing or invalid (reported by kubernetes.sidecar-config)")
    status = (ctx.try_fact("k8s.pod") or {}).get("status") or {}
    pod_ips = [str(status.get("podIP"))] if status.get("podIP") else []
    urls = [u["url"] for u in rw.urls]
    evidence: dict[str, Any] = {"source": rw.source, "remote_write_urls": urls, "listening_port": port}
    if rw.notes:
        evidence["notes"] = list(rw.notes)
    good, bad = judge(rw.urls, port, pod_ips)
    want = f"http://localhost:{port}/api/v1/write"
    if good:
        if bad:
            evidence["other_urls"] = bad
        return ctx.passed(f"Prometheus writes to the sidecar at {good[0]}", evidence=evidence)
    cr = ctx.try_fact("k8s.prometheus_cr")
    release = helm_release(cr)
    remediation = []
    if rw.cr:
        remediation.append(f"kubectl -n {ns} get prometheus {rw.cr} -o jsonpath='{{.spec.remoteWrite}}'")
    remediation += helm_values(ns, release, f"prometheus.prometheusSpec.remoteWrite: [{{url: '{want}'}}]")
    summary = ("Prometheus has no remote_write entry" if not urls else
               f"no remote_write URL reaches the sidecar ({want}): " + "; ".join(bad))
    return ctx.fail("REMOTE_WRITE_URL_MISMATCH", summary + f" [{rw.source}]", evidence=evidence,
                    remediation=remediation)
