"""The remote-write sidecar in Helm values / manifests: present, env complete, Prometheus pointed at it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from promrw_doctor.core import Finding, Skip, check
from promrw_doctor.core.engine import CheckContext
from promrw_doctor.domain.images import LATEST_KNOWN_SIDECAR_TAG, SIDECAR_REPOSITORY
from promrw_doctor.domain.sidecar import (
    DEFAULT_LISTENING_PORT,
    IDENTITY_TYPES,
    REQUIRED_ENV,
    SIDECAR_CONTAINER_NAME,
    env_problems,
    parse_port,
)
from promrw_doctor.lint.loader import DocumentSet
from promrw_doctor.lint.views import Sidecar, Workload, all_sidecars, sidecars_of, to_yaml, workloads

DOCS = "https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-remote-write"
TROUBLESHOOTING = "https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-remote-write-troubleshooting"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_ENV_HINTS = {
    "INGESTION_URL": "<Metrics ingestion endpoint of the Azure Monitor workspace>",
    "LISTENING_PORT": "'8081'",
    "IDENTITY_TYPE": "userAssigned | aadApplication | workloadIdentity",
    "AZURE_CLIENT_ID": "<client id GUID>",
    "AZURE_TENANT_ID": "<tenant id GUID>",
    "AZURE_CLIENT_CERTIFICATE_PATH": "/mnt/secrets-store/<objectName>",
}


def _docs(ctx: CheckContext) -> DocumentSet:
    docs: DocumentSet = ctx.fact("lint.documents")
    return docs


def sidecar_snippet(identity_type: str = "userAssigned", port: int = DEFAULT_LISTENING_PORT) -> dict[str, Any]:
    """The documented sidecar container (as a dict) for an identity type."""
    env = [
        {"name": "INGESTION_URL", "value": _ENV_HINTS["INGESTION_URL"]},
        {"name": "LISTENING_PORT", "value": str(port)},
        {"name": "IDENTITY_TYPE", "value": identity_type},
    ]
    for name in REQUIRED_ENV.get(identity_type, ()):
        env.append({"name": name, "value": _ENV_HINTS[name]})
    return {
        "name": SIDECAR_CONTAINER_NAME,
        "image": f"{SIDECAR_REPOSITORY}:{LATEST_KNOWN_SIDECAR_TAG}",
        "imagePullPolicy": "Always",
        "ports": [{"name": "rw-port", "containerPort": port}],
        "livenessProbe": {"httpGet": {"path": "/health", "port": "rw-port"},
                          "initialDelaySeconds": 10, "timeoutSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "rw-port"},
                           "initialDelaySeconds": 10, "timeoutSeconds": 10},
        "env": env,
    }


def _misplaced_sidecar(w: Workload) -> str | None:
    """Where a prom-remotewrite container sits if not under containers (initContainers, one level up)."""
    doc = w.doc
    candidates: list[tuple[str | int, ...]] = [(*w.spec_path, "initContainers")]
    if len(w.spec_path) > 1:
        candidates.append((*w.spec_path[:-1], "containers"))
    candidates.append(("containers",))
    for path in candidates:
        items = doc.get(*path)
        if isinstance(items, list):
            for i, c in enumerate(items):
                if isinstance(c, Mapping) and c.get("name") == SIDECAR_CONTAINER_NAME:
                    return doc.loc(*path, i)
    return None


@check(
    id="lint.sidecar-present",
    title="Remote-write sidecar container is defined",
    category="lint",
    severity="critical",
    codes=["SIDECAR_MISSING"],
    needs=["lint.documents"],
    docs_url=DOCS,
    tags=["sidecar"],
)
def sidecar_present(ctx: CheckContext) -> list[Finding]:
    """The Prometheus pod needs the `prom-remotewrite` container (Helm: `prometheus.prometheusSpec.containers`).

    The sidecar attaches the Entra token and forwards to the ingestion endpoint; without it nothing
    reaches Azure Monitor. Found by name `prom-remotewrite`, by image, or by an `INGESTION_URL` env.
    """
    ws = workloads(_docs(ctx))
    if not ws:
        raise Skip("no Helm values (prometheus.prometheusSpec), Prometheus CR, Pod or StatefulSet among the files")
    out: list[Finding] = []
    for w in ws:
        found = sidecars_of(w)
        if found:
            for s in found:
                out.append(ctx.passed(f"{w.label}: sidecar container {s.name} found", location=s.loc(),
                                      subject=w.label))
            continue
        names = [c.get("name") for c in w.containers if isinstance(c, Mapping)]
        misplaced = _misplaced_sidecar(w)
        summary = f"{w.label}: no prom-remotewrite container under {w.dotted('containers')}"
        if misplaced:
            summary += f" (one is defined at {misplaced}, where it is not run as a sidecar)"
        out.append(ctx.fail(
            "SIDECAR_MISSING", summary,
            location=w.loc("containers") if w.doc.has(*w.spec_path, "containers") else w.loc(),
            subject=w.label,
            evidence={"containers": names, "misplaced_at": misplaced},
            remediation=[f"add under {w.dotted('containers')}:\n" + to_yaml([sidecar_snippet()])],
        ))
    return out


def _env_entry_snippet(name: str, value: str) -> str:
    return to_yaml([{"name": name, "value": value}])


def _misplaced_env(s: Sidecar) -> str | None:
    w = s.workload
    for path in ((*w.spec_path, "env"), (*w.spec_path[:-1], "env") if len(w.spec_path) > 1 else ("env",), ("env",)):
        if w.doc.has(*path):
            return w.doc.loc(*path)
    return None


@check(
    id="lint.sidecar-env",
    title="Sidecar env is complete for its IDENTITY_TYPE",
    category="lint",
    severity="high",
    codes=["SIDECAR_CONFIG_INVALID"],
    needs=["lint.documents"],
    depends_on=["lint.sidecar-present"],
    docs_url=TROUBLESHOOTING,
    tags=["sidecar"],
)
def sidecar_env(ctx: CheckContext) -> list[Finding]:
    """The sidecar's env must hold INGESTION_URL, LISTENING_PORT, IDENTITY_TYPE and what that type needs.

    `userAssigned` needs `AZURE_CLIENT_ID`; `aadApplication` needs `AZURE_CLIENT_ID`,
    `AZURE_TENANT_ID` and `AZURE_CLIENT_CERTIFICATE_PATH`; `workloadIdentity` gets its client id
    from the webhook (see lint.workload-identity-label). IDENTITY_TYPE must be one of those three,
    LISTENING_PORT a port, client/tenant ids GUIDs, and every value a YAML string. The
    troubleshooting article: a restarting container is "likely due to misconfiguration ... verify
    ... AZURE_CLIENT_ID and IDENTITY_TYPE". Placeholders are reported by lint.placeholders.
    """
    out: list[Finding] = []
    for s in all_sidecars(_docs(ctx)):
        subject = f"{s.workload.label} container {s.name}"
        if "env" not in s.container:
            misplaced = _misplaced_env(s)
            out.append(ctx.fail(
                "SIDECAR_CONFIG_INVALID",
                f"{subject}: has no env"
                + (f"; an env: block is at {misplaced}, outside the container (mis-indented)" if misplaced else ""),
                location=s.loc(), subject=subject,
                evidence={"container": s.name, "misplaced_env": misplaced},
                explained_by=("MANIFEST_MISINDENTED",) if misplaced else (),
                remediation=[f"indent env: under {s.dotted()}:\n" + to_yaml({"env": sidecar_snippet()["env"]})],
            ))
            continue
        findings: list[Finding] = []
        for shape in s.shape_problems:
            findings.append(ctx.fail(
                "SIDECAR_CONFIG_INVALID", f"{subject}: {shape.message}",
                location=s.doc.loc(*s.path, *shape.path), subject=subject,
                evidence={"container": s.name},
                remediation=["write env as a list of {name, value} items with string values, e.g.\n"
                             + _env_entry_snippet("LISTENING_PORT", "8081")],
            ))
        for p in env_problems(s.env):
            if p.kind == "placeholder":
                continue
            value = s.env.get(p.field)
            fix: list[str]
            if p.kind == "missing":
                fix = [f"add to {s.dotted('env')}:\n" + _env_entry_snippet(p.field, _ENV_HINTS.get(p.field, "<value>"))]
                if p.field == "AZURE_CLIENT_ID" and s.identity_type == "userAssigned":
                    fix.append("az identity show -g <resource-group> -n <identity-name> --query clientId -o tsv")
            elif p.kind in ("unknown-value", "case"):
                fix = [_env_entry_snippet("IDENTITY_TYPE", " | ".join(IDENTITY_TYPES))]
            elif p.field == "LISTENING_PORT":
                fix = [_env_entry_snippet("LISTENING_PORT", str(DEFAULT_LISTENING_PORT))]
            elif p.field == "AZURE_TENANT_ID":
                fix = ["az account show --query tenantId -o tsv"]
            elif p.field == "AZURE_CLIENT_ID":
                fix = ["az identity show -g <resource-group> -n <identity-name> --query clientId -o tsv"
                       if s.identity_type != "aadApplication"
                       else "az ad app list --display-name <app-name> --query '[].appId' -o tsv"]
            else:
                fix = [_env_entry_snippet(p.field, _ENV_HINTS.get(p.field, "<value>"))]
            make = ctx.warn if p.severity == "warning" else ctx.fail
            findings.append(make(
                "SIDECAR_CONFIG_INVALID", f"{subject}: {p.message}",
                location=s.env_loc(p.field), subject=subject,
                evidence={"env": p.field, "value": value, "problem": p.kind,
                          "identity_type": s.env.get("IDENTITY_TYPE")},
                remediation=fix,
            ))
        if findings:
            out.extend(findings)
        else:
            out.append(ctx.passed(f"{subject}: env complete for IDENTITY_TYPE={s.env.get('IDENTITY_TYPE')}",
                                  location=s.loc("env"), subject=subject))
    return out


def expected_port(s: Sidecar) -> int | None:
    """LISTENING_PORT, else the containerPort of the rw-port port."""
    port = s.settings.listening_port
    if port is not None:
        return port
    ports = s.container.get("ports")
    if isinstance(ports, list):
        for p in ports:
            if isinstance(p, Mapping) and parse_port(p.get("containerPort")) is not None:
                return parse_port(p.get("containerPort"))
    return None


def _url_reason(url: str, port: int | None) -> str | None:
    """Why ``url`` does not reach the sidecar (None: it does)."""
    try:
        parts = urlsplit(url.strip())
        url_port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    host = (parts.hostname or "").lower()
    if ".metrics.ingest.monitor.azure." in host:
        return (f"{url} goes straight to the ingestion endpoint, bypassing the sidecar (no Entra token "
                "is attached)")
    if host not in _LOOPBACK:
        return f"{url} points at {host or 'no host'}, not at the sidecar on localhost"
    if parts.scheme != "http":
        return f"{url} uses {parts.scheme}://; the sidecar listens on plain http inside the pod"
    if port is not None and (url_port or 80) != port:
        return f"{url} uses port {url_port or 80} but the sidecar listens on LISTENING_PORT {port}"
    if parts.path.rstrip("/") != "/api/v1/write":
        return f"{url} has path {parts.path or '/'!r}; the sidecar accepts /api/v1/write"
    return None


@check(
    id="lint.remote-write-url",
    title="Prometheus remote-writes to the sidecar's LISTENING_PORT",
    category="lint",
    severity="critical",
    codes=["REMOTE_WRITE_URL_MISMATCH"],
    needs=["lint.documents"],
    depends_on=["lint.sidecar-present"],
    docs_url=DOCS,
    tags=["sidecar"],
)
def remote_write_url(ctx: CheckContext) -> list[Finding]:
    """`remoteWrite[].url` must be `http://localhost:<LISTENING_PORT>/api/v1/write`.

    Prometheus reaches the sidecar over the pod's loopback; a different port, https, another
    path, or the ingestion endpoint itself means samples never pass through the sidecar.
    """
    out: list[Finding] = []
    for s in all_sidecars(_docs(ctx)):
        w = s.workload
        if w.remote_write_path is None:
            continue
        port = expected_port(s)
        subject = w.label
        rw = w.doc.get(*w.remote_write_path)
        fix_port = port or DEFAULT_LISTENING_PORT
        fix = [f"set {w.dotted('remoteWrite')}:\n"
               + to_yaml([{"url": f"http://localhost:{fix_port}/api/v1/write"}])]
        if not isinstance(rw, list) or not rw:
            out.append(ctx.fail(
                "REMOTE_WRITE_URL_MISMATCH", f"{subject}: {w.dotted('remoteWrite')} is not set; Prometheus "
                "never sends samples to the sidecar",
                location=w.doc.loc(*w.remote_write_path) if w.doc.has(*w.remote_write_path) else w.loc(),
                subject=subject, evidence={"listening_port": port}, remediation=fix,
            ))
            continue
        reasons: list[tuple[int, str]] = []
        ok = None
        for i, entry in enumerate(rw):
            url = entry.get("url") if isinstance(entry, Mapping) else None
            if not isinstance(url, str) or not url.strip():
                reasons.append((i, f"remoteWrite[{i}] has no url"))
                continue
            reason = _url_reason(url, port)
            if reason is None:
                ok = (i, url)
                break
            reasons.append((i, reason))
        if ok is not None:
            note = "" if port is not None else " (LISTENING_PORT unknown: port not compared)"
            out.append(ctx.passed(f"{subject}: remoteWrite[{ok[0]}] {ok[1]} reaches the sidecar{note}",
                                  location=w.doc.loc(*w.remote_write_path, ok[0]), subject=subject))
            continue
        i, reason = reasons[0]
        out.append(ctx.fail(
            "REMOTE_WRITE_URL_MISMATCH", f"{subject}: {reason}",
            location=w.doc.loc(*w.remote_write_path, i, "url") if w.doc.has(*w.remote_write_path, i, "url")
            else w.doc.loc(*w.remote_write_path, i),
            subject=subject,
            evidence={"urls": [e.get("url") for e in rw if isinstance(e, Mapping)], "listening_port": port,
                      "reasons": [r for _, r in reasons]},
            remediation=fix,
        ))
    if not out:
        raise Skip("no Helm values or Prometheus CR with a sidecar (remoteWrite lives in the Prometheus config)")
    return out


@check(
    id="lint.external-label-cluster",
    title="externalLabels.cluster is set",
    category="lint",
    severity="info",
    codes=["EXTERNAL_LABEL_CLUSTER_MISSING"],
    needs=["lint.documents"],
    depends_on=["lint.sidecar-present"],
    docs_url="https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-remote-write-managed-identity",
    tags=["sidecar"],
)
def external_label_cluster(ctx: CheckContext) -> list[Finding]:
    """Advice: set `externalLabels.cluster` so series from several clusters in one workspace stay apart.

    Every remote-write article sets it; without it two clusters writing the same series
    overwrite each other's samples in the workspace and dashboards cannot filter by cluster.
    """
    out: list[Finding] = []
    for w in workloads(_docs(ctx)):
        if w.external_labels_path is None or not sidecars_of(w):
            continue
        labels = w.doc.get(*w.external_labels_path)
        cluster = labels.get("cluster") if isinstance(labels, Mapping) else None
        if isinstance(cluster, str) and cluster.strip():
            out.append(ctx.passed(f"{w.label}: externalLabels.cluster = {cluster}",
                                  location=w.doc.loc(*w.external_labels_path, "cluster"), subject=w.label))
        else:
            out.append(ctx.note(
                "EXTERNAL_LABEL_CLUSTER_MISSING",
                f"{w.label}: {w.dotted('externalLabels')}.cluster is not set; add it so this cluster's series "
                "can be told apart in the workspace",
                location=w.doc.loc(*w.external_labels_path) if w.doc.has(*w.external_labels_path) else w.loc(),
                subject=w.label, evidence={"externalLabels": labels if isinstance(labels, Mapping) else None},
                remediation=[to_yaml({"externalLabels": {"cluster": "<cluster name>"}})],
            ))
    if not out:
        raise Skip("no Helm values or Prometheus CR with a sidecar")
    return out
