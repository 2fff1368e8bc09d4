"""Is the sidecar container running and ready? (restarts, waiting reasons, readiness)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from promrw_doctor.core import check
from promrw_doctor.domain.logs import last_lines, parse_rfc3339, quote

from ._common import STARTUP_ROOTS, container_name, describe, logs, pod_of

#: Waiting reasons that mean the container cannot run (not merely starting).
BAD_WAITING = frozenset({
    "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
    "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "PreCreateHookError",
    "PostStartHookError",
})
IMAGE_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})


def container_events(events: Sequence[Mapping[str, Any]], container: str, *, warning_only: bool = True) -> list[str]:
    """Event messages about one container (``fieldPath: spec.containers{name}``), newest last, quoted."""
    out = []
    for e in events or []:
        path = str((e.get("involvedObject") or {}).get("fieldPath") or "")
        if path and f"{{{container}}}" not in path:
            continue
        if warning_only and e.get("type") != "Warning":
            continue
        count = f" (x{e.get('count')})" if e.get("count") and int(e.get("count") or 0) > 1 else ""
        out.append(quote(f"{e.get('reason')}: {e.get('message')}{count}"))
    return out[-5:]


def crash_state(status: Mapping[str, Any], now: float, window_s: float) -> tuple[str, str] | None:
    """("fail"|"warn", why) when the container cannot run or restarted within the window; None when fine."""
    state = status.get("state") or {}
    waiting = state.get("waiting") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    restarts = int(status.get("restartCount") or 0)
    if waiting.get("reason") in BAD_WAITING:
        why = f"container is waiting: {waiting.get('reason')}"
        if waiting.get("message"):
            why += f" ({waiting['message']})"
        return "fail", why
    term = state.get("terminated") or {}
    if term and term.get("exitCode") not in (None, 0):
        return "fail", f"container terminated: {term.get('reason')} (exit code {term.get('exitCode')})"
    if restarts and last:
        finished = parse_rfc3339(str(last.get("finishedAt") or "")) if last.get("finishedAt") else None
        if finished is None or now - finished <= window_s:
            return "warn", (f"container restarted {restarts} time(s); last exit {last.get('reason')} "
                            f"(exit code {last.get('exitCode')}) at {last.get('finishedAt')}")
    return None


@check(id="kubernetes.sidecar-crashloop", title="Sidecar container runs without restarting",
       category="kubernetes", severity="critical", codes=["SIDECAR_CRASHLOOP"],
       depends_on=["kubernetes.sidecar-present"], needs=["k8s.sidecar_status", "k8s.log_window"],
       tags=["sidecar"])
def sidecar_crashloop(ctx: Any) -> Any:
    """The sidecar is running: not in CrashLoopBackOff, not stuck before start, no recent restarts.

    When it does crash the finding carries the restart count, the waiting reason, the last
    termination reason and exit code, warning events, and the previous container's last log
    lines — the evidence the troubleshooting article asks for. A crash is usually a
    consequence (env, identity, certificate); the doctor then ranks that cause first.
    """
    status = ctx.fact("k8s.sidecar_status")
    ns, pod = pod_of(ctx.target)
    cname = container_name(ctx.target)
    if status is None:
        return ctx.fail("SIDECAR_CRASHLOOP", f"container {cname} has no status yet (pod not started)",
                        remediation=[describe(ns, pod)], explained_by=STARTUP_ROOTS)
    window = float(ctx.fact("k8s.log_window"))
    verdict = crash_state(status, ctx.now, window)
    restarts = int(status.get("restartCount") or 0)
    if verdict is None:
        return ctx.passed(f"{cname} running, {restarts} restart(s)", evidence={"restarts": restarts})
    level, why = verdict
    last = (status.get("lastState") or {}).get("terminated") or {}
    evidence: dict[str, Any] = {"container": cname, "restarts": restarts, "state": status.get("state")}
    if last:
        evidence["last_termination"] = {k: last.get(k) for k in ("reason", "exitCode", "startedAt", "finishedAt")
                                        if last.get(k) is not None}
    previous = ctx.try_fact("k8s.sidecar_previous_logs")
    if previous is not None and previous.lines:
        evidence["previous_log"] = last_lines(previous.lines, 10)
    events = container_events(ctx.try_fact("k8s.pod_events", []) or [], cname)
    if events:
        evidence["events"] = events
    remediation = [logs(ns, pod, cname, previous=True), describe(ns, pod)]
    waiting = ((status.get("state") or {}).get("waiting") or {}).get("reason")
    if last.get("reason") == "OOMKilled":
        remediation.append("raise the prom-remotewrite memory limit (docs size it at 150Mi request / 200Mi limit per "
                           "150k series) in prometheus.prometheusSpec.containers[name=prom-remotewrite].resources")
    if waiting in IMAGE_REASONS:
        remediation.append(f"kubectl -n {ns} get pod {pod} -o "
                           f"jsonpath='{{.spec.containers[?(@.name==\"{cname}\")].image}}'")
    summary = f"{cname} in {ns}/{pod}: {why}"
    if level == "fail":
        return ctx.fail("SIDECAR_CRASHLOOP", summary, evidence=evidence, remediation=remediation,
                        explained_by=STARTUP_ROOTS)
    return ctx.warn("SIDECAR_CRASHLOOP", summary, evidence=evidence, remediation=remediation,
                    explained_by=STARTUP_ROOTS)


@check(id="kubernetes.sidecar-ready", title="Sidecar container is ready", category="kubernetes", severity="high",
       codes=["SIDECAR_NOT_READY"], depends_on=["kubernetes.sidecar-crashloop"], needs=["k8s.sidecar_status"],
       tags=["sidecar"])
def sidecar_ready(ctx: Any) -> Any:
    """The sidecar's readiness probe (``/ready`` on ``rw-port``) passes.

    A running but unready sidecar usually cannot get a token or its certificate; a container
    that never started is usually waiting on a volume (the Secrets Store CSI mount). The pod's
    warning events say which probe or mount fails.
    """
    status = ctx.fact("k8s.sidecar_status") or {}
    ns, pod = pod_of(ctx.target)
    cname = container_name(ctx.target)
    if status.get("ready"):
        return ctx.passed(f"{cname} is ready")
    state = status.get("state") or {}
    events = container_events(ctx.try_fact("k8s.pod_events", []) or [], cname)
    pod_events = [quote(f"{e.get('reason')}: {e.get('message')}") for e in ctx.try_fact("k8s.pod_events", []) or []
                  if e.get("type") == "Warning" and e.get("reason") in ("FailedMount", "FailedAttachVolume")]
    evidence: dict[str, Any] = {"container": cname, "state": state}
    if events or pod_events:
        evidence["events"] = events + pod_events[-3:]
    if "waiting" in state:
        why = f"not started: waiting ({(state.get('waiting') or {}).get('reason') or 'ContainerCreating'})"
    else:
        why = "running but its readiness probe fails"
    return ctx.fail("SIDECAR_NOT_READY", f"{cname} in {ns}/{pod} is not ready: {why}", evidence=evidence,
                    remediation=[describe(ns, pod), logs(ns, pod, cname, since="10m")],
                    explained_by=STARTUP_ROOTS)
