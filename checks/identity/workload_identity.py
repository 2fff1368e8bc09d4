"""Workload identity is wired into the running pod: label, ServiceAccount, injected env, token volume."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from promrw_doctor.core import check
from promrw_doctor.domain.sidecar import workload_identity_label_problems

from ..kubernetes._common import container_name, helm_release, pod_of

INJECTED_ENV = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST")
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
SKIP_ANNOTATION = "azure.workload.identity/skip-containers"
TOKEN_AUDIENCE = "api://AzureADTokenExchange"
NEW_TOKEN_DIR = "/var/run/secrets/azure/wi/token"  # webhook >= v1.6.0
OLD_TOKEN_DIR = "/var/run/secrets/azure/tokens"  # webhook <= v1.5.x


def covering_mount(path: str, mounts: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The volumeMount whose mountPath contains ``path`` (longest wins); subPath mounts must match exactly."""
    best: Mapping[str, Any] | None = None
    for m in mounts or []:
        mp = str(m.get("mountPath") or "").rstrip("/")
        if not mp:
            continue
        inside = path == mp if m.get("subPath") else (path == mp or path.startswith(mp + "/"))
        if inside and (best is None or len(mp) > len(str(best.get("mountPath")))):
            best = m
    return best


def token_sources(volume: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The projected serviceAccountToken sources of a volume."""
    projected = (volume or {}).get("projected") or {}
    return [s["serviceAccountToken"] for s in projected.get("sources") or []
            if isinstance(s, Mapping) and isinstance(s.get("serviceAccountToken"), Mapping)]


def wi_problems(pod: Mapping[str, Any], container: Mapping[str, Any], env: Mapping[str, str | None],
                sa: Mapping[str, Any] | None, sa_read: bool) -> list[str]:
    """Everything that keeps the webhook's credentials from reaching the sidecar (pure)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    problems = [p.message for p in workload_identity_label_problems(meta.get("labels") or {})]
    cname = str(container.get("name"))
    skipped = str((meta.get("annotations") or {}).get(SKIP_ANNOTATION) or "")
    if cname in [s.strip() for s in skipped.split(";")]:
        problems.append(f"pod annotation {SKIP_ANNOTATION}={skipped!r} excludes {cname} from injection")
    sa_name = str(spec.get("serviceAccountName") or "default")
    annotated = None
    if sa_read:
        if sa is None:
            problems.append(f"ServiceAccount {sa_name} does not exist")
        else:
            annotated = ((sa.get("metadata") or {}).get("annotations") or {}).get(CLIENT_ID_ANNOTATION)
            if not annotated and not env.get("AZURE_CLIENT_ID"):
                problems.append(f"ServiceAccount {sa_name} lacks the annotation {CLIENT_ID_ANNOTATION}: the webhook "
                                "has no client id to inject")
    missing = [n for n in INJECTED_ENV if not env.get(n)]
    if missing:
        problems.append(f"{cname} lacks the webhook-injected env {', '.join(missing)}: the pod was not mutated "
                        "(label added after the pod was created, webhook not installed, or container skipped)")
    if annotated and env.get("AZURE_CLIENT_ID") and str(annotated).lower() != str(env["AZURE_CLIENT_ID"]).lower():
        problems.append(f"AZURE_CLIENT_ID {env['AZURE_CLIENT_ID']} differs from ServiceAccount {sa_name} annotation "
                        f"{annotated}: the annotation changed after the pod was created")
    volumes = {str(v.get("name")): v for v in spec.get("volumes") or [] if isinstance(v, Mapping)}
    token_file = env.get("AZURE_FEDERATED_TOKEN_FILE")
    if token_file:
        mount = covering_mount(str(token_file), container.get("volumeMounts") or [])
        if mount is None:
            problems.append(f"AZURE_FEDERATED_TOKEN_FILE {token_file} is not under any volumeMount of {cname} "
                            f"(webhook >= v1.6 mounts {NEW_TOKEN_DIR}, <= v1.5 {OLD_TOKEN_DIR})")
        else:
            sources = token_sources(volumes.get(str(mount.get("name"))))
            if not sources:
                problems.append(f"{token_file} is on volume {mount.get('name')}, which is not a projected "
                                "service-account token")
            elif not any(s.get("audience") == TOKEN_AUDIENCE for s in sources):
                problems.append(f"the projected token on volume {mount.get('name')} has audience "
                                f"{sources[0].get('audience')!r}, not {TOKEN_AUDIENCE}")
    elif not any(any(s.get("audience") == TOKEN_AUDIENCE for s in token_sources(v)) for v in volumes.values()):
        problems.append(f"the pod has no projected service-account token volume with audience {TOKEN_AUDIENCE}")
    return problems


@check(id="identity.workload-identity", title="Workload identity is injected into the sidecar", category="identity",
       severity="critical", codes=["WORKLOAD_IDENTITY_MISCONFIGURED"], variants=["workloadIdentity"],
       depends_on=["kubernetes.sidecar-present"], needs=["k8s.pod", "k8s.sidecar_container", "k8s.sidecar_env"],
       tags=["workload-identity"])
def workload_identity(ctx: Any) -> Any:
    """The pod is labelled ``azure.workload.identity/use: "true"``, its ServiceAccount carries
    ``azure.workload.identity/client-id``, and the webhook injected ``AZURE_CLIENT_ID``,
    ``AZURE_TENANT_ID``, ``AZURE_FEDERATED_TOKEN_FILE``, ``AZURE_AUTHORITY_HOST`` and a projected
    token (audience ``api://AzureADTokenExchange``) mounted where the env says.

    The webhook mutates pods only at creation: a label or annotation added later needs a
    restart. Both token layouts (webhook <= v1.5 ``.../azure/tokens``, >= v1.6
    ``.../azure/wi/token``) are fine as long as the file is where the env points.
    """
    pod = ctx.fact("k8s.pod")
    container = ctx.fact("k8s.sidecar_container")
    env = ctx.fact("k8s.sidecar_env")
    sa_read = True
    try:
        sa = ctx.fact("k8s.service_account")
    except Exception:
        sa, sa_read = None, False
    ns, name = pod_of(ctx.target)
    problems = wi_problems(pod, container, env.values, sa, sa_read)
    sa_name = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    evidence: dict[str, Any] = {"service_account": sa_name,
                                "token_file": env.values.get("AZURE_FEDERATED_TOKEN_FILE")}
    if not sa_read:
        evidence["note"] = "ServiceAccount not read (permission)"
    if not problems:
        return ctx.passed(f"workload identity injected into {container_name(ctx.target)}", evidence=evidence)
    release = helm_release(ctx.try_fact("k8s.prometheus_cr"))
    remediation = [
        f"helm upgrade {release or '<release>'} prometheus-community/kube-prometheus-stack -n {ns} --reuse-values "
        "--set-string 'prometheus.prometheusSpec.podMetadata.labels.azure\\.workload\\.identity/use=true'",
        f"kubectl -n {ns} annotate serviceaccount {sa_name} {CLIENT_ID_ANNOTATION}=<client-id> --overwrite",
        f"kubectl -n {ns} delete pod {name}   # the webhook injects only when the pod is created",
        "kubectl get mutatingwebhookconfiguration azure-wi-webhook-mutating-webhook-configuration",
    ]
    evidence["problems"] = problems
    return ctx.fail("WORKLOAD_IDENTITY_MISCONFIGURED", "; ".join(problems), evidence=evidence, remediation=remediation)
