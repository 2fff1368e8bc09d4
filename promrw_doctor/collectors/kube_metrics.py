"""Prometheus's own view, read through the API server's pod proxy (a GET; never a port-forward).

Why the pod proxy: it needs nothing but ``get pods/proxy`` in the namespace, works from
anywhere the kubeconfig works, and reaches the Prometheus web port exactly as the kubelet
sees it. Three reads: ``/metrics`` (remote-write queue counters), ``/api/v1/status/buildinfo``
(the version), and one PromQL query for rates over the last 5 minutes — the last only works
when Prometheus scrapes itself (kube-prometheus-stack does), otherwise the checks fall back
to the counters.

Facts (target scope): ``k8s.prometheus_web`` (``(scheme, port, route prefix)``),
``k8s.prometheus_metrics`` (:class:`~promrw_doctor.domain.logs.MetricsSnapshot`),
``k8s.prometheus_buildinfo`` (dict or None), ``k8s.prometheus_rates``
(``{url: QueueRates}`` or None).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..core.errors import AccessDenied, Unreachable
from ..core.facts import FactContext, fact
from ..domain.logs import MetricsSnapshot, QueueRates
from .kube import pod_key
from .kube_client import ApiError, KubeClient, needs

DEFAULT_WEB_PORT = 9090
WEB_PORT_NAMES = ("web", "http-web", "http")
RATE_WINDOW = "5m"


def web_endpoint(container: Mapping[str, Any] | None) -> tuple[int, str]:
    """(port, route prefix) of the Prometheus web UI from its container spec."""
    if not container:
        return DEFAULT_WEB_PORT, "/"
    ports = [p for p in container.get("ports") or [] if isinstance(p, Mapping) and p.get("containerPort")]
    port = next((int(p["containerPort"]) for p in ports if p.get("name") in WEB_PORT_NAMES), None)
    if port is None:
        port = next((int(p["containerPort"]) for p in ports if int(p["containerPort"]) == DEFAULT_WEB_PORT),
                    int(ports[0]["containerPort"]) if ports else DEFAULT_WEB_PORT)
    prefix = "/"
    for arg in (container.get("args") or []) + (container.get("command") or []):
        text = str(arg)
        if text.startswith("--web.listen-address="):
            tail = text.split("=", 1)[1].rsplit(":", 1)[-1]
            if tail.isdigit():
                port = int(tail)
        if text.startswith("--web.route-prefix="):
            prefix = "/" + text.split("=", 1)[1].strip("/")
    return port, prefix if prefix.endswith("/") else prefix + "/"


@fact("k8s.prometheus_web", scope="target")
def prometheus_web(ctx: FactContext) -> tuple[int, str]:
    """Port and route prefix of the Prometheus web server in the target pod."""
    return web_endpoint(ctx.fact("k8s.prometheus_container"))


def proxy_get(client: KubeClient, namespace: str, pod: str, port: int, path: str,
              query: list[tuple[str, Any]] | None = None) -> tuple[int, str]:
    """GET through ``pods/<pod>:<port>/proxy/<path>``: (status, body). 403 -> ``AccessDenied``;
    the proxy failing to reach the pod (502/503) -> ``Unreachable``. Tries ``https:`` when
    Prometheus answers plain HTTP with a TLS complaint."""
    where = f"Prometheus in pod {namespace}/{pod} (port {port}) through the API server's pod proxy"
    for scheme in ("", "https:"):
        url = (f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{scheme}{quote(pod, safe='')}:{port}"
               f"/proxy/{path.lstrip('/')}")
        try:
            return 200, client.get_text(url, query or [], accept="text/plain, application/json, */*")
        except ApiError as exc:
            if exc.status == 403 and ("forbidden" in exc.message.lower() or exc.reason == "Forbidden"):
                raise AccessDenied(needs("get", "pods/proxy", namespace), exc.message) from None
            if exc.status == 400 and "HTTPS" in exc.message and not scheme:
                continue
            if exc.status in (502, 503, 504):
                raise Unreachable(where, exc.message) from None
            return exc.status, exc.message
    raise Unreachable(where, "no answer over http or https")  # pragma: no cover - loop always returns


def _target(ctx: FactContext) -> tuple[KubeClient, str, str, int, str]:
    ns, name = pod_key(ctx.fact("k8s.pod"))
    port, prefix = ctx.fact("k8s.prometheus_web")
    return ctx.fact("k8s.api"), ns, name, port, prefix


@fact("k8s.prometheus_metrics", scope="target")
def prometheus_metrics(ctx: FactContext) -> MetricsSnapshot:
    """Prometheus's ``/metrics``, reduced to the remote-write queue counters."""
    client, ns, name, port, prefix = _target(ctx)
    status, body = proxy_get(client, ns, name, port, prefix + "metrics")
    if status != 200:
        raise Unreachable(f"Prometheus /metrics in pod {ns}/{name}", f"HTTP {status}: {body[:200]}")
    return MetricsSnapshot.from_text(body, ctx.now, source=f"{ns}/{name}:{port}{prefix}metrics")


@fact("k8s.prometheus_buildinfo", scope="target")
def prometheus_buildinfo(ctx: FactContext) -> dict[str, Any] | None:
    """``/api/v1/status/buildinfo`` data (``version`` etc.), or None when Prometheus is too old to have it."""
    client, ns, name, port, prefix = _target(ctx)
    status, body = proxy_get(client, ns, name, port, prefix + "api/v1/status/buildinfo")
    if status != 200:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    info = data.get("data") if isinstance(data, dict) else None
    return info if isinstance(info, dict) else None


def rates_query(window: str = RATE_WINDOW) -> str:
    """One PromQL query for every rate the remote-write judgement uses, tagged by a ``kind`` label."""
    parts = []
    for kind, expr in (
        ("failed", f"rate(prometheus_remote_storage_samples_failed_total[{window}])"),
        ("dropped", f"rate(prometheus_remote_storage_samples_dropped_total[{window}])"),
        ("retried", f"rate(prometheus_remote_storage_samples_retried_total[{window}])"),
        ("pending_deriv", f"deriv(prometheus_remote_storage_samples_pending[{window}])"),
    ):
        parts.append(f'label_replace(sum by (url) ({expr}), "kind", "{kind}", "", "")')
    return " or ".join(parts)


def parse_rates(body: str, window: str = RATE_WINDOW) -> dict[str, QueueRates] | None:
    """``{url: QueueRates}`` from the query answer; None when Prometheus does not scrape itself."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("status") != "success":
        return None
    result = (data.get("data") or {}).get("result") or []
    values: dict[str, dict[str, float]] = {}
    for row in result:
        metric = row.get("metric") or {}
        try:
            value = float((row.get("value") or [0, "nan"])[1])
        except (TypeError, ValueError):
            continue
        values.setdefault(str(metric.get("url", "")), {})[str(metric.get("kind"))] = value
    if not values:
        return None
    return {url: QueueRates(url, window, v.get("failed"), v.get("dropped"), v.get("retried"), v.get("pending_deriv"))
            for url, v in values.items()}


@fact("k8s.prometheus_rates", scope="target")
def prometheus_rates(ctx: FactContext) -> dict[str, QueueRates] | None:
    """Failed/dropped/retried sample rates and the pending trend over 5 minutes, from Prometheus's own TSDB."""
    client, ns, name, port, prefix = _target(ctx)
    status, body = proxy_get(client, ns, name, port, prefix + "api/v1/query", [("query", rates_query())])
    if status != 200:
        return None
    return parse_rates(body)
