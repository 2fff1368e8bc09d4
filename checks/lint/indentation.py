"""Doc-copy defects in container specs: env outside the container, containerPort outside ports,
probe timings under httpGet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promrw_doctor.core import Finding, Skip, check
from promrw_doctor.core.engine import CheckContext
from promrw_doctor.lint.loader import DocumentSet
from promrw_doctor.lint.views import Workload, to_yaml, workloads

PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")
PROBE_FIELDS = ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                "failureThreshold", "terminationGracePeriodSeconds")
# Container fields that are not fields of the spec one level up (so they were meant for a container).
PROMETHEUS_SPEC_STRAYS = ("env", "envFrom", "ports", "livenessProbe", "readinessProbe", "startupProbe")
POD_SPEC_STRAYS = (*PROMETHEUS_SPEC_STRAYS, "volumeMounts", "image", "imagePullPolicy")
DOCS = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/"


def _docs(ctx: CheckContext) -> DocumentSet:
    docs: DocumentSet = ctx.fact("lint.documents")
    return docs


def _container_defects(ctx: CheckContext, w: Workload, i: int, c: Mapping[str, Any]) -> list[Finding]:
    doc = w.doc
    base = (*w.spec_path, "containers", i)
    name = c.get("name") or f"containers[{i}]"
    subject = f"{w.label} container {name}"
    out: list[Finding] = []
    ports = c.get("ports")
    stray_port = c.get("containerPort")
    if isinstance(ports, list):
        for j, port in enumerate(ports):
            if isinstance(port, Mapping) and "containerPort" not in port:
                fixed = {**port, "containerPort": stray_port if stray_port is not None else "<port>"}
                extra = (f"; containerPort: {stray_port} (line {doc.line(*base, 'containerPort')}) sits at the "
                         "container level instead" if stray_port is not None else "")
                out.append(ctx.fail(
                    "MANIFEST_MISINDENTED",
                    f"{subject}: ports[{j}] ({port.get('name', '?')}) has no containerPort{extra}",
                    location=doc.loc(*base, "ports", j), subject=subject,
                    evidence={"port": dict(port), "container_level_containerPort": stray_port},
                    remediation=["ports:\n" + _indent(to_yaml([fixed]))],
                ))
    elif stray_port is not None:
        out.append(ctx.fail(
            "MANIFEST_MISINDENTED", f"{subject}: containerPort: {stray_port} at the container level; it belongs "
            "in a ports item",
            location=doc.loc(*base, "containerPort"), subject=subject, evidence={"containerPort": stray_port},
            remediation=["ports:\n" + _indent(to_yaml([{"name": "rw-port", "containerPort": stray_port}]))],
        ))
    for probe_name in PROBES:
        probe = c.get(probe_name)
        if not isinstance(probe, Mapping):
            continue
        for handler in HANDLERS:
            h = probe.get(handler)
            if not isinstance(h, Mapping):
                continue
            nested = [f for f in PROBE_FIELDS if f in h]
            if not nested:
                continue
            fixed_probe = {handler: {k: v for k, v in h.items() if k not in PROBE_FIELDS},
                           **{k: v for k, v in probe.items() if k != handler},
                           **{k: h[k] for k in nested}}
            out.append(ctx.fail(
                "MANIFEST_MISINDENTED",
                f"{subject}: {probe_name}.{handler} contains {', '.join(nested)}; they belong to "
                f"{probe_name} itself and are ignored where they are",
                location=doc.loc(*base, probe_name, handler, nested[0]), subject=subject,
                evidence={"probe": probe_name, "handler": handler, "misplaced": nested},
                remediation=[to_yaml({probe_name: fixed_probe})],
            ))
    return out


def _indent(text: str, n: int = 2) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


@check(
    id="lint.manifest-indentation",
    title="Container fields are at the right indentation level",
    category="lint",
    severity="high",
    codes=["MANIFEST_MISINDENTED"],
    needs=["lint.documents"],
    docs_url=DOCS,
    tags=["sidecar", "doc-copy"],
)
def manifest_indentation(ctx: CheckContext) -> list[Finding]:
    """Catch the published YAML's indentation defects before Helm silently drops fields.

    The pod-identity article's sidecar YAML puts `env:` beside `containers:` (so the sidecar gets
    no env and restarts), `containerPort` beside `ports:` instead of inside the port item, and
    `initialDelaySeconds`/`timeoutSeconds` inside `httpGet` (ignored). Each is reported with the
    corrected snippet.
    """
    ws = workloads(_docs(ctx))
    if not ws:
        raise Skip("no Helm values, Prometheus CR, Pod or StatefulSet among the files")
    out: list[Finding] = []
    for w in ws:
        doc = w.doc
        misplaced = POD_SPEC_STRAYS if w.source in ("Pod", "StatefulSet", "Deployment") else PROMETHEUS_SPEC_STRAYS
        for key in misplaced:
            if key not in w.spec:
                continue
            target = next((c.get("name") for c in w.containers
                           if isinstance(c, Mapping) and c.get("name") == "prom-remotewrite"), None)
            where = f"the {target} container" if target else "a container"
            out.append(ctx.fail(
                "MANIFEST_MISINDENTED",
                f"{w.label}: {key}: at {w.dotted(key)} belongs inside {where} "
                f"({w.dotted('containers')}[..].{key}); here it is ignored",
                location=w.loc(key), subject=w.label,
                evidence={"path": w.dotted(key), "line": doc.line(*w.spec_path, key)},
                remediation=[f"indent {key}: under the container item (- name: {target or '<container>'}), "
                             "two spaces deeper than containers:\n"
                             + to_yaml({"containers": [{"name": target or "<container>", key: w.spec[key]}]})],
            ))
        for i, c in enumerate(w.containers):
            if isinstance(c, Mapping):
                out.extend(_container_defects(ctx, w, i, c))
    if not out:
        return [ctx.passed("container env, ports and probes are at the right level")]
    return out
