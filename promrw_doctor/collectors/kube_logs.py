"""Container logs through the API server (``pods/log``), with a time window and a line cap.

Why bounded: on-call runs happen when things burn and a crash-looping sidecar can have
megabytes of log; ``--since`` (default 30m) and a tail cap (2 000 lines) keep every read
cheap and the evidence about *now*. The previous container's log (``previous=true``) is
read without the window: a crash loop's last words may be older than 30 minutes.

Facts (target scope, values :class:`ContainerLog` or None): ``k8s.sidecar_logs``,
``k8s.sidecar_previous_logs`` (None when there was no previous container),
``k8s.prometheus_logs``, ``k8s.nmi_logs`` (the NMI pod on the same node, only lines that
name this pod).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core.errors import AccessDenied, NotApplicable
from ..core.facts import FactContext, fact
from ..domain.logs import LogLine, split_lines
from .kube import pod_key
from .kube_client import PODS, ApiError, KubeClient, needs

DEFAULT_TAIL = 2000
PREVIOUS_TAIL = 200


@dataclass(frozen=True)
class ContainerLog:
    """Lines of one container's log within the window (oldest first)."""

    pod: str  # "<ns>/<name>"
    container: str
    previous: bool
    lines: tuple[LogLine, ...]
    since_s: float | None
    tail: int
    note: str | None = None  # why there are no lines (e.g. the container is waiting to start), or their source
    workspace: str | None = None  # the Log Analytics workspace (customer id) when the lines came from ContainerLogV2

    @property
    def truncated(self) -> bool:
        return len(self.lines) >= self.tail

    def command(self) -> str:
        """The kubectl command that shows the same lines (for remediation and evidence)."""
        ns, name = self.pod.split("/", 1)
        extra = " --previous" if self.previous else (f" --since={int(self.since_s)}s" if self.since_s else "")
        return f"kubectl -n {ns} logs {name} -c {self.container}{extra}"


def read_log(client: KubeClient, namespace: str, pod: str, container: str, *, since_s: float | None,
             tail: int, previous: bool = False, now: float | None = None) -> ContainerLog | None:
    """One log read. None: ``previous`` asked and there was no previous container.

    ``AccessDenied`` names ``get pods/log in namespace <ns>``.
    """
    query: list[tuple[str, Any]] = [("container", container), ("tailLines", tail)]
    if since_s:
        query.append(("sinceSeconds", max(1, math.ceil(since_s))))
    if previous:
        query.append(("previous", "true"))
    where = f"{namespace}/{pod}"
    try:
        text = client.get_text(PODS.path(namespace, pod, "log"), query, accept="text/plain, */*")
    except ApiError as exc:
        if exc.status == 403:
            raise AccessDenied(needs("get", "pods/log", namespace), exc.message) from None
        if exc.status == 404:
            raise NotApplicable(f"pod {where} no longer exists") from None
        if exc.status == 400 and previous and "previous terminated container" in exc.message:
            return None
        if exc.status == 400 and ("waiting to start" in exc.message or "ContainerCreating" in exc.message):
            return ContainerLog(where, container, previous, (), since_s, tail, note=exc.message)
        raise
    return ContainerLog(where, container, previous, tuple(split_lines(text, now)), since_s, tail)


def _tail(ctx: FactContext) -> int:
    try:
        return max(1, int(ctx.option("log_tail_lines") or DEFAULT_TAIL))
    except (TypeError, ValueError):
        return DEFAULT_TAIL


def _container_log(ctx: FactContext, container_fact: str, *, previous: bool = False) -> ContainerLog | None:
    container = ctx.fact(container_fact)
    if container is None:
        raise NotApplicable(f"no such container ({container_fact})")
    ns, name = pod_key(ctx.fact("k8s.pod"))
    since = None if previous else float(ctx.fact("k8s.log_window"))
    tail = PREVIOUS_TAIL if previous else _tail(ctx)
    return read_log(ctx.fact("k8s.api"), ns, name, str(container.get("name")), since_s=since, tail=tail,
                    previous=previous, now=ctx.now)


@fact("k8s.sidecar_logs", scope="target")
def sidecar_logs(ctx: FactContext) -> ContainerLog | None:
    """The sidecar's log over ``--since`` (summary lines and errors)."""
    return _container_log(ctx, "k8s.sidecar_container")


@fact("k8s.sidecar_previous_logs", scope="target")
def sidecar_previous_logs(ctx: FactContext) -> ContainerLog | None:
    """The previous (crashed) sidecar container's last lines, or None when it never restarted."""
    status = ctx.fact("k8s.sidecar_status") or {}
    if not status.get("restartCount") and not (status.get("lastState") or {}).get("terminated"):
        return None
    return _container_log(ctx, "k8s.sidecar_container", previous=True)


@fact("k8s.prometheus_logs", scope="target")
def prometheus_logs(ctx: FactContext) -> ContainerLog | None:
    """The Prometheus container's log over ``--since`` (remote-write errors)."""
    return _container_log(ctx, "k8s.prometheus_container")


def mentions_pod(line: str, namespace: str, pod: str) -> bool:
    """Does an NMI line concern this pod? (NMI names pods as ``<ns>/<pod>`` or ``podname: <pod>``.)"""
    return f"{namespace}/{pod}" in line or f"podname: {pod}" in line or f"pod: {pod}" in line or \
        f"pod:{pod}" in line


@fact("k8s.nmi_logs", scope="target")
def nmi_logs(ctx: FactContext) -> ContainerLog | None:
    """Lines of the node's NMI log (``--since``) that concern the Prometheus pod; None without NMI."""
    nmi = ctx.fact("k8s.nmi_pod")
    if nmi is None:
        return None
    ns, name = pod_key(ctx.fact("k8s.pod"))
    nmi_ns, nmi_name = pod_key(nmi)
    specs = (nmi.get("spec") or {}).get("containers") or [{}]
    container = next((c.get("name") for c in specs if c.get("name") == "nmi"), specs[0].get("name") or "nmi")
    log = read_log(ctx.fact("k8s.api"), nmi_ns, nmi_name, str(container), since_s=float(ctx.fact("k8s.log_window")),
                   tail=_tail(ctx), now=ctx.now)
    if log is None:
        return None
    lines = tuple(ln for ln in log.lines if mentions_pod(ln.text, ns, name))
    return ContainerLog(log.pod, log.container, False, lines, log.since_s, log.tail, log.note)
