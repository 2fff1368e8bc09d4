"""The sidecar's env, as the running container has it, is complete and valid for its IDENTITY_TYPE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promrw_doctor.core import Unknown, check
from promrw_doctor.domain.sidecar import canonical_identity_type, env_problems, parse_port

from ._common import container_name, helm_release, helm_values, pod_of

#: Values the sidecar is not known to trim: a stray space is a different value.
WHITESPACE_SENSITIVE = ("INGESTION_URL", "LISTENING_PORT", "IDENTITY_TYPE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
                        "AZURE_CLIENT_CERTIFICATE_PATH", "INGESTION_AAD_AUDIENCE", "CLOUD")
CRASH_REASONS = frozenset({"CrashLoopBackOff", "Error", "RunContainerError"})


def whitespace_problems(values: Mapping[str, str | None]) -> list[str]:
    """Values with leading/trailing whitespace (``"UserAssigned "`` is not ``userAssigned``)."""
    out = []
    for name in WHITESPACE_SENSITIVE:
        v = values.get(name)
        if isinstance(v, str) and v and v != v.strip():
            out.append(f"{name} {v!r} has leading/trailing whitespace")
    return out


def probe_port_problems(container: Mapping[str, Any], listening_port: int | None) -> list[str]:
    """Probes/ports that target another port than the one the sidecar listens on."""
    if listening_port is None:
        return []
    named = {str(p.get("name")): p.get("containerPort") for p in container.get("ports") or [] if isinstance(p, Mapping)}
    out = []
    for kind in ("readinessProbe", "livenessProbe"):
        probe = container.get(kind) or {}
        port = (probe.get("httpGet") or {}).get("port")
        if port is None:
            continue
        number = named.get(str(port)) if isinstance(port, str) and not str(port).isdigit() else port
        if parse_port(number) is not None and parse_port(number) != listening_port:
            out.append(f"{kind} targets port {port} ({number}) but LISTENING_PORT is {listening_port}: the probe "
                       "fails and the kubelet restarts the container")
    return out


def is_crashing(status: Mapping[str, Any] | None) -> bool:
    """The container is restarting with an error (evidence that a config doubt is fatal)."""
    if not status:
        return False
    waiting = ((status.get("state") or {}).get("waiting") or {}).get("reason")
    last = (status.get("lastState") or {}).get("terminated") or {}
    return waiting in CRASH_REASONS or (bool(status.get("restartCount")) and last.get("exitCode") not in (None, 0))


@check(id="kubernetes.sidecar-config", title="Sidecar env is complete and valid for its IDENTITY_TYPE",
       category="kubernetes", severity="high", codes=["SIDECAR_CONFIG_INVALID"],
       depends_on=["kubernetes.sidecar-present"], needs=["k8s.sidecar_env", "k8s.sidecar_container"],
       tags=["sidecar", "config"])
def sidecar_config(ctx: Any) -> Any:
    """The running sidecar's env has what its ``IDENTITY_TYPE`` requires, well formed.

    ``INGESTION_URL``, ``LISTENING_PORT`` and ``IDENTITY_TYPE`` always; ``AZURE_CLIENT_ID``
    for ``userAssigned``; client id, tenant id and certificate path for ``aadApplication``.
    Placeholders left from the docs, non-GUID ids, a bad port, stray whitespace, and probes
    aimed at another port than ``LISTENING_PORT`` are reported. Values from ConfigMaps are
    resolved; values from Secrets are never read (only their presence counts). Doubtful
    values (case, whitespace) become failures when the container is crash-looping.
    """
    env = ctx.fact("k8s.sidecar_env")
    container = ctx.fact("k8s.sidecar_container")
    status = ctx.try_fact("k8s.sidecar_status")
    ns, pod = pod_of(ctx.target)
    cname = container_name(ctx.target)
    problems = env_problems(env.values, pod_labels=None)
    if env.opaque:
        hidden = [p for p in problems if p.kind == "missing"]
        problems = [p for p in problems if p.kind != "missing"]
        if hidden and not problems:
            raise Unknown(f"{', '.join(p.field for p in hidden)} may come from {'; '.join(env.opaque)}",
                          needs="get secrets in namespace " + ns)
    errors = [p.message for p in problems if p.severity == "error"]
    warnings = [p.message for p in problems if p.severity != "error"]
    errors += probe_port_problems(container, parse_port(env.values.get("LISTENING_PORT")))
    spaced = whitespace_problems(env.values)
    crashing = is_crashing(status)
    if crashing:
        errors += spaced + warnings
        warnings = []
    else:
        warnings += spaced
    evidence: dict[str, Any] = {"container": cname, "sources": dict(env.sources)}
    if env.unresolved:
        evidence["not_read"] = dict(env.unresolved)
    if crashing:
        evidence["container_restarting"] = True
    if not errors and not warnings:
        kind = canonical_identity_type(env.values.get("IDENTITY_TYPE"))
        return ctx.passed(f"env complete for IDENTITY_TYPE={kind}", evidence=evidence)
    fixes = _fixes(env.values)
    release = helm_release(ctx.try_fact("k8s.prometheus_cr"))
    remediation = [f"kubectl -n {ns} get pod {pod} -o jsonpath='{{.spec.containers[?(@.name==\"{cname}\")].env}}'"]
    if fixes:
        listed = ", ".join(f"{{name: {k}, value: '{v}'}}" for k, v in fixes.items())
        remediation += helm_values(ns, release, f"prometheus.prometheusSpec.containers[name={cname}].env: [{listed}]")
    else:
        remediation += helm_values(ns, release, f"prometheus.prometheusSpec.containers[name={cname}].env "
                                               "(complete it for your IDENTITY_TYPE)")
    evidence["problems"] = errors + warnings
    summary = "; ".join(errors + warnings)
    if errors:
        if crashing and (spaced or warnings):
            summary += " (the container is crash-looping)"
        return ctx.fail("SIDECAR_CONFIG_INVALID", summary, evidence=evidence, remediation=remediation)
    return ctx.warn("SIDECAR_CONFIG_INVALID", summary, evidence=evidence, remediation=remediation)


def _fixes(values: Mapping[str, str | None]) -> dict[str, str]:
    """Corrected values the doctor can state with certainty (case/whitespace of IDENTITY_TYPE, stray spaces)."""
    out: dict[str, str] = {}
    raw = values.get("IDENTITY_TYPE")
    if isinstance(raw, str):
        canonical = canonical_identity_type(raw)
        if canonical and canonical != raw:
            out["IDENTITY_TYPE"] = canonical
    for name in WHITESPACE_SENSITIVE:
        v = values.get(name)
        if isinstance(v, str) and v != v.strip() and name not in out:
            out[name] = v.strip()
    return out

