"""Who the sidecar is in Azure, and whether it may publish: identity, Monitoring Metrics Publisher, pod identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from promrw_doctor.core import Severity, check
from promrw_doctor.domain.certs import iso

from ._common import (
    MIO_ROLE,
    MIO_ROLE_ID,
    MMP_ROLE,
    MMP_ROLE_ID,
    PROPAGATION_MINUTES,
    VMC_ROLE,
    VMC_ROLE_ID,
    optional,
    scope_label,
)

# Cluster-side findings that already explain an unknown client id (the sidecar names the wrong id).
CLIENT_ID_ROOTS = ("POD_IDENTITY_CLIENT_ID_MISMATCH", "SIDECAR_CONFIG_INVALID", "WORKLOAD_IDENTITY_MISCONFIGURED")


@check(id="azure.identity-found", title="The sidecar's client id is a real identity", category="azure",
       severity="critical", codes=["IDENTITY_NOT_FOUND"], needs=["azure.principal"], tags=["azure", "identity"])
def identity_found(ctx: Any) -> Any:
    """``AZURE_CLIENT_ID`` resolves to a user-assigned managed identity (ARM) or a service principal
    (Microsoft Graph, tenant-wide: applications and managed identities).

    Why: a principal (object) id or a resource name in place of the client id, or a deleted
    identity, makes every token request fail (IMDS/NMI 404, AADSTS700016). When the value is
    another identity's principal id, the finding says whose and what its client id is.
    """
    lookup = ctx.fact("azure.principal")
    evidence: dict[str, Any] = {"client_id": lookup.client_id, "searched": list(lookup.searched)}
    p = lookup.principal
    if p is None:
        other = lookup.object_id_of
        if other is not None:
            evidence["is_principal_id_of"] = f"{other.display_name} (client id {other.client_id})"
            summary = (f"AZURE_CLIENT_ID {lookup.client_id} is the principal (object) id of {other.kind} "
                       f"{other.display_name}, not a client id; its client id is {other.client_id}")
        else:
            summary = (f"AZURE_CLIENT_ID {lookup.client_id} is no managed identity or service principal "
                       f"(searched {'; '.join(lookup.searched) or 'nothing'})")
        return ctx.fail(
            "IDENTITY_NOT_FOUND", summary,
            evidence=evidence, explained_by=CLIENT_ID_ROOTS,
            remediation=[f"az identity list --query \"[?clientId=='{lookup.client_id}' || "
                         f"principalId=='{lookup.client_id}'].{{name:name, clientId:clientId}}\" -o table",
                         f"az ad sp show --id {lookup.client_id} --query \"{{appId:appId, id:id}}\"",
                         "set AZURE_CLIENT_ID to the identity's client id (not its principal/object id)"])
    evidence.update({"principal_id": p.principal_id, "kind": p.kind, "name": p.display_name,
                     "resource_id": p.resource_id, "found_via": p.source})
    return ctx.passed(f"{p.kind} {p.display_name or p.client_id} (principal {p.principal_id})",
                      evidence={k: v for k, v in evidence.items() if v})


def _age_minutes(created: datetime | None, now: datetime) -> float | None:
    if created is None:
        return None
    return (now - created) / timedelta(minutes=1)


@check(id="azure.role-assignment", title="The sidecar's identity holds Monitoring Metrics Publisher on the DCR",
       category="azure", severity="critical", codes=["ROLE_ASSIGNMENT_MISSING", "ROLE_ASSIGNMENT_PROPAGATING"],
       depends_on=["azure.dcr-found", "azure.identity-found"],
       needs=["azure.role_assignments", "azure.dcr", "azure.principal"], tags=["azure", "rbac"])
def role_assignment(ctx: Any) -> Any:
    """The sidecar's principal holds **Monitoring Metrics Publisher** (3913510d-…) on the workspace's
    data collection rule or a scope containing it, assigned at least 30 minutes ago.

    Why: ingestion authorizes each write against the DCR (403 AuthorizationFailed otherwise).
    The pod-identity article assigns roles on the node resource group ``MC_…``, which does not
    contain the DCR (it lives in ``MA_<workspace>_<region>_managed``); when the role is held
    elsewhere the finding names that scope. Assignments take about 30 minutes to take effect.
    """
    lookup = ctx.fact("azure.dcr")
    principal = ctx.fact("azure.principal").principal
    assignments = ctx.fact("azure.role_assignments")
    now = datetime.fromtimestamp(ctx.now, UTC)
    mmp = assignments.of_role(MMP_ROLE_ID)
    effective = [a for a in mmp if a.covers(lookup.id)]
    elsewhere = [a for a in mmp if not a.covers(lookup.id)]
    evidence: dict[str, Any] = {"principal_id": principal.principal_id, "client_id": principal.client_id,
                                "dcr": lookup.id, "searched": list(assignments.searched)}
    if assignments.partial:
        evidence["not_searched"] = list(assignments.partial)
    grant = (f"az role assignment create --assignee {principal.client_id} --role \"{MMP_ROLE}\" "
             f"--scope {lookup.id}")
    if effective:
        evidence["assigned_on"] = [a.scope for a in effective]
        ages = [_age_minutes(a.created_on, now) for a in effective]
        if any(age is None or age >= PROPAGATION_MINUTES for age in ages):
            return ctx.passed(f"{MMP_ROLE} on {scope_label(effective[0].scope)}", evidence=evidence)
        first = min(effective, key=lambda a: a.created_on or now)  # all are younger than 30 minutes here
        created = first.created_on or now
        ready = created + timedelta(minutes=PROPAGATION_MINUTES)
        evidence["created_on"] = iso(created)
        evidence["effective_from"] = iso(ready)
        return ctx.warn(
            "ROLE_ASSIGNMENT_PROPAGATING",
            f"{MMP_ROLE} was assigned on {scope_label(first.scope)} {_age_minutes(created, now):.0f} minute(s) "
            f"ago; it takes about 30 minutes to take effect: writes should succeed from {iso(ready)}",
            evidence=evidence, severity=Severity.MEDIUM,
            remediation=[f"wait until {iso(ready)}, then: kubectl -n {ctx.target.attributes.get('namespace', '<ns>')} "
                         f"logs {ctx.target.attributes.get('pod', '<pod>')} -c prom-remotewrite --since=5m"])
    if elsewhere:
        evidence["assigned_elsewhere"] = [a.scope for a in elsewhere]
        where = "; ".join(f"{scope_label(a.scope)} ({a.scope})" for a in elsewhere[:3])
        summary = (f"{MMP_ROLE} is assigned on {where}, which does not contain the DCR {lookup.name}; "
                   f"ingestion needs it on the DCR ({lookup.id})")
    else:
        summary = (f"{principal.display_name or principal.client_id} has no {MMP_ROLE} role on the DCR "
                   f"{lookup.name} or any scope containing it")
    return ctx.fail("ROLE_ASSIGNMENT_MISSING", summary, evidence=evidence,
                    remediation=[grant, "allow up to 30 minutes for the assignment to take effect"])


@check(id="azure.pod-identity-roles", title="The kubelet identity may assign the pod's identity (aad-pod-identity)",
       category="azure", severity="high", codes=["POD_IDENTITY_ROLES_MISSING"], variants=["podIdentity"],
       needs=["azure.kubelet_role_assignments", "azure.cluster"], tags=["azure", "rbac", "pod-identity"])
def pod_identity_roles(ctx: Any) -> Any:
    """The cluster's kubelet identity holds **Managed Identity Operator** on the pod's identity (or a scope
    containing it) and **Virtual Machine Contributor** on the node resource group.

    Why: aad-pod-identity's MIC acts as the kubelet identity to attach the identity to the node
    VMSS; without these roles it fails (LinkedAuthorizationFailed), the AzureAssignedIdentity
    stays ``Created`` and NMI answers 404.
    """
    match = ctx.fact("azure.cluster")
    assignments = ctx.fact("azure.kubelet_role_assignments")
    node_rg_id = match.node_resource_group_id
    identity_id: str | None = None
    lookup, _ = optional(ctx, "azure.principal")
    if lookup is not None and lookup.principal is not None and lookup.principal.resource_id:
        identity_id = lookup.principal.resource_id
    if identity_id is None:
        view, _ = optional(ctx, "k8s.pod_identity")
        for ident in getattr(view, "identities", ()) or ():
            rid = (ident.get("spec") or {}).get("resourceID")
            if rid:
                identity_id = str(rid)
                break
    mio_target = identity_id or node_rg_id
    mio_ok = any(a.covers(mio_target) for a in assignments.of_role(MIO_ROLE_ID))
    vmc_ok = any(a.covers(node_rg_id) for a in assignments.of_role(VMC_ROLE_ID))
    kubelet_client = str(match.kubelet.get("clientId") or "<kubelet client id>")
    evidence: dict[str, Any] = {"cluster": match.id, "matched_by": match.matched_by,
                                "kubelet_identity": match.kubelet.get("resourceId") or kubelet_client,
                                "node_resource_group": node_rg_id, "pod_identity": identity_id,
                                "searched": list(assignments.searched)}
    missing: list[str] = []
    fixes: list[str] = []
    if not mio_ok:
        missing.append(f"{MIO_ROLE} on {scope_label(mio_target, match.node_resource_group)}")
        scope = identity_id.rsplit("/providers/", 1)[0] if identity_id else node_rg_id
        fixes.append(f"az role assignment create --assignee {kubelet_client} --role \"{MIO_ROLE}\" --scope {scope}")
    if not vmc_ok:
        missing.append(f"{VMC_ROLE} on {scope_label(node_rg_id, match.node_resource_group)}")
        fixes.append(f"az role assignment create --assignee {kubelet_client} --role \"{VMC_ROLE}\" "
                     f"--scope {node_rg_id}")
    evidence = {k: v for k, v in evidence.items() if v}
    if missing:
        return ctx.fail("POD_IDENTITY_ROLES_MISSING",
                        f"the kubelet identity of {match.name} lacks {' and '.join(missing)}: MIC cannot assign "
                        "the pod's identity to the nodes", evidence=evidence, remediation=fixes)
    return ctx.passed(f"kubelet identity of {match.name} holds {MIO_ROLE} and {VMC_ROLE}", evidence=evidence)
