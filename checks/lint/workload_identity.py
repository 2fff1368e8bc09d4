"""Workload identity: the pod label that makes the webhook inject credentials."""

from __future__ import annotations

from promrw_doctor.core import Finding, Skip, check
from promrw_doctor.core.engine import CheckContext
from promrw_doctor.domain.sidecar import (
    POD_IDENTITY_LABEL,
    WORKLOAD_IDENTITY_LABEL,
    workload_identity_label_problems,
)
from promrw_doctor.lint.loader import DocumentSet
from promrw_doctor.lint.views import all_sidecars, to_yaml

DOCS = "https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-remote-write-azure-workload-identity"


@check(
    id="lint.workload-identity-label",
    title='Pod is labelled azure.workload.identity/use: "true"',
    category="lint",
    severity="critical",
    codes=["WORKLOAD_IDENTITY_MISCONFIGURED"],
    needs=["lint.documents"],
    depends_on=["lint.sidecar-present"],
    docs_url=DOCS,
    tags=["workload-identity"],
)
def workload_identity_label(ctx: CheckContext) -> list[Finding]:
    """With IDENTITY_TYPE workloadIdentity the pod needs the label `azure.workload.identity/use: "true"`.

    The workload identity webhook injects AZURE_CLIENT_ID, AZURE_TENANT_ID and the federated token
    file only into pods with that label; the value must be the string "true" (an unquoted YAML
    `true` is a boolean, which a label cannot hold).
    """
    docs: DocumentSet = ctx.fact("lint.documents")
    sidecars = [s for s in all_sidecars(docs) if s.identity_type == "workloadIdentity"]
    if not sidecars:
        raise Skip("no sidecar with IDENTITY_TYPE workloadIdentity")
    out: list[Finding] = []
    for s in sidecars:
        w = s.workload
        labels = w.labels
        problems = workload_identity_label_problems(labels)
        loc = (w.doc.loc(*w.labels_path, WORKLOAD_IDENTITY_LABEL) if WORKLOAD_IDENTITY_LABEL in labels
               else w.doc.loc(*w.labels_path) if w.doc.has(*w.labels_path) else w.loc())
        tree: dict[str, object] = {WORKLOAD_IDENTITY_LABEL: "true"}
        for key in reversed([str(p) for p in w.labels_path]):
            tree = {key: tree}
        fix = [to_yaml(tree),
               "kubectl annotate serviceaccount <prometheus service account> -n <namespace> "
               "azure.workload.identity/client-id=<identity client id>"]
        for p in problems:
            out.append(ctx.fail(
                "WORKLOAD_IDENTITY_MISCONFIGURED", f"{w.label}: {p.message}", location=loc, subject=w.label,
                evidence={"pod_labels": dict(labels)}, remediation=fix,
            ))
        if not problems:
            out.append(ctx.passed(f'{w.label}: {WORKLOAD_IDENTITY_LABEL}: "true" is set', location=loc,
                                  subject=w.label))
        if POD_IDENTITY_LABEL in labels:
            out.append(ctx.warn(
                "WORKLOAD_IDENTITY_MISCONFIGURED",
                f"{w.label}: also labelled {POD_IDENTITY_LABEL}; with NMI running, IMDS calls are intercepted "
                "by pod identity",
                location=w.doc.loc(*w.labels_path, POD_IDENTITY_LABEL), subject=w.label,
                evidence={"pod_labels": dict(labels)},
                remediation=[f"remove {POD_IDENTITY_LABEL} from {'.'.join(map(str, w.labels_path))}"],
            ))
    return out
