"""NMI (aad-pod-identity's node agent) is present, ready on the Prometheus pod's node, and not failing for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promrw_doctor.core import check
from promrw_doctor.domain.logs import default_signatures, match_signatures

from ..kubernetes._common import IDENTITY_ROOTS, pod_of

#: NMI log errors about the pod are usually caused by these (label, binding, client id, assignment).
NMI_LOG_ROOTS = tuple(c for c in IDENTITY_ROOTS if c.startswith("POD_IDENTITY_"))


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    m = obj.get("metadata") or {}
    return str(m.get("namespace") or ""), str(m.get("name") or "")


def pod_not_ready(pod: Mapping[str, Any]) -> str | None:
    """Why an NMI pod is not serving (phase, Ready condition, container waiting reason), or None."""
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Running"):
        return f"phase {status.get('phase')}"
    for cs in status.get("containerStatuses") or []:
        if not cs.get("ready"):
            waiting = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
            restarts = cs.get("restartCount") or 0
            return f"container {cs.get('name')} not ready" + (f" ({waiting}, {restarts} restarts)" if waiting else "")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") != "True":
            return f"Ready={cond.get('status')} ({cond.get('reason') or cond.get('message') or 'no reason'})"
    return None


@check(id="identity.nmi", title="NMI serves token requests on the Prometheus pod's node", category="identity",
       severity="critical", codes=["NMI_UNHEALTHY"], variants=["podIdentity"],
       depends_on=["kubernetes.sidecar-present"], needs=["k8s.nmi", "k8s.pod"], tags=["pod-identity"])
def nmi(ctx: Any) -> Any:
    """An NMI DaemonSet exists, its pod on the Prometheus pod's node is ready, and its log shows no
    errors for this pod.

    With pod identity, IMDS traffic from every pod on the node is redirected to the local NMI.
    If NMI is missing or not ready the sidecar's token request is refused; if NMI logs errors
    for this pod (no matching identity, token failure) the label/binding/assignment chain or
    Entra is at fault — those are then the root cause.
    """
    info = ctx.fact("k8s.nmi")
    pod = ctx.fact("k8s.pod")
    ns, name = pod_of(ctx.target)
    node = (pod.get("spec") or {}).get("nodeName")
    if not info.daemonsets:
        where = "the cluster" if info.cluster_wide else "kube-system/default"
        return ctx.fail("NMI_UNHEALTHY", f"no NMI DaemonSet found in {where}: nothing answers the sidecar's IMDS "
                                         "token requests for pod identity",
                        evidence={"note": info.note} if info.note else {},
                        remediation=["kubectl get ds -A -l component=nmi",
                                     "az aks show -g <resource-group> -n <cluster> --query podIdentityProfile"])
    ds = info.daemonsets[0]
    dns, dname = _meta(ds)
    ds_status = ds.get("status") or {}
    evidence: dict[str, Any] = {"daemonset": f"{dns}/{dname}", "mode": info.mode or "standard",
                                "desired": ds_status.get("desiredNumberScheduled"),
                                "ready": ds_status.get("numberReady"), "node": node}
    restart = f"kubectl -n {dns} rollout restart ds/{dname}"
    nmi_pod = ctx.try_fact("k8s.nmi_pod")
    if nmi_pod is None:
        return ctx.fail("NMI_UNHEALTHY", f"no NMI pod runs on node {node} (DaemonSet {dns}/{dname} ready "
                                         f"{ds_status.get('numberReady')}/{ds_status.get('desiredNumberScheduled')})",
                        evidence=evidence,
                        remediation=[f"kubectl -n {dns} get pods -o wide --field-selector spec.nodeName={node}",
                                     f"kubectl -n {dns} describe ds {dname}", restart])
    pns, pname = _meta(nmi_pod)
    evidence["nmi_pod"] = f"{pns}/{pname}"
    why = pod_not_ready(nmi_pod)
    if why is not None:
        return ctx.fail("NMI_UNHEALTHY", f"NMI pod {pns}/{pname} on node {node} is not ready: {why}",
                        evidence=evidence,
                        remediation=[f"kubectl -n {pns} logs {pname} --previous",
                                     f"kubectl -n {pns} describe pod {pname}", restart])
    log = ctx.try_fact("k8s.nmi_logs")
    if log is None:
        evidence["log"] = "not read"
        return ctx.passed(f"NMI pod {pns}/{pname} on node {node} is ready", evidence=evidence)
    hits = match_signatures(log.lines, default_signatures(), "nmi")
    if not hits:
        return ctx.passed(f"NMI pod {pns}/{pname} on node {node} is ready; no errors for {ns}/{name}",
                          evidence=evidence)
    evidence["errors"] = [h.evidence() for h in hits]
    return ctx.fail("NMI_UNHEALTHY", f"NMI on node {node} fails token requests for {ns}/{name}: "
                                     f"{hits[0].signature.meaning}",
                    evidence=evidence, explained_by=NMI_LOG_ROOTS,
                    remediation=[f"kubectl -n {pns} logs {pname} --since=30m | grep {name}",
                                 f"kubectl -n {ns} get azureassignedidentity -o wide"])
