"""Pod identity wiring across files: pod label vs binding selector, sidecar client id vs AzureIdentity."""

from __future__ import annotations

from promrw_doctor.core import Finding, Skip, check
from promrw_doctor.core.engine import CheckContext
from promrw_doctor.core.model import Variant
from promrw_doctor.domain.podidentity import LABEL_KEY, compare_selector
from promrw_doctor.domain.sidecar import find_placeholder, is_guid
from promrw_doctor.lint.loader import DocumentSet, LintDocument
from promrw_doctor.lint.views import Sidecar, all_sidecars, to_yaml

ARTICLE = "https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-remote-write-azure-ad-pod-identity"
BINDING_DOCS = "https://azure.github.io/aad-pod-identity/docs/concepts/azureidentitybinding/"


def _docs(ctx: CheckContext) -> DocumentSet:
    docs: DocumentSet = ctx.fact("lint.documents")
    return docs


def _pod_identity_sidecars(docs: DocumentSet) -> list[Sidecar]:
    bindings = bool(docs.of_kind("AzureIdentityBinding"))
    return [s for s in all_sidecars(docs) if s.variant(bindings) == Variant.POD_IDENTITY.value]


def _selectors(docs: DocumentSet) -> list[tuple[LintDocument, str]]:
    """Bindings with a usable ``spec.selector`` (exact key; mis-cased keys are ignored by NMI too)."""
    out = []
    for b in docs.of_kind("AzureIdentityBinding"):
        sel = b.get("spec", "selector")
        if isinstance(sel, str | int) and str(sel).strip():
            out.append((b, str(sel)))
    return out


def _label_snippet(s: Sidecar, value: str) -> str:
    w = s.workload
    path = [str(p) for p in w.labels_path]
    tree: dict[str, object] = {LABEL_KEY: value}
    for key in reversed(path):
        tree = {key: tree}
    return to_yaml(tree)


@check(
    id="lint.pod-identity-label",
    title="Prometheus pod carries the aadpodidbinding label of a binding",
    category="lint",
    severity="critical",
    codes=["POD_IDENTITY_LABEL_MISSING", "POD_IDENTITY_BINDING_MISMATCH"],
    needs=["lint.documents"],
    depends_on=["lint.sidecar-present"],
    docs_url=ARTICLE,
    tags=["pod-identity"],
)
def pod_identity_label(ctx: CheckContext) -> list[Finding]:
    """With pod identity, `podMetadata.labels.aadpodidbinding` must equal a binding's `spec.selector`.

    NMI hands a token only to pods whose `aadpodidbinding` label equals a binding's selector,
    compared as exact strings: a missing label, or one differing in case, whitespace or quotes,
    leaves the sidecar's IMDS requests unanswered (404). Pod identity is assumed when the sidecar
    uses `userAssigned` and the label is set or an AzureIdentityBinding is among the files.
    """
    docs = _docs(ctx)
    sidecars = _pod_identity_sidecars(docs)
    if not sidecars:
        raise Skip("no sidecar using pod identity (userAssigned with an aadpodidbinding label or a binding given)")
    selectors = _selectors(docs)
    bindings = docs.of_kind("AzureIdentityBinding")
    out: list[Finding] = []
    for s in sidecars:
        w = s.workload
        subject = w.label
        labels = w.labels
        label_path = (*w.labels_path, LABEL_KEY)
        if LABEL_KEY not in labels:
            value = selectors[0][1] if len(selectors) == 1 else "<spec.selector of your AzureIdentityBinding>"
            out.append(ctx.fail(
                "POD_IDENTITY_LABEL_MISSING",
                f"{subject}: sidecar uses pod identity but the pod has no {LABEL_KEY} label "
                f"({'.'.join(map(str, w.labels_path))})",
                location=w.doc.loc(*w.labels_path) if w.doc.has(*w.labels_path) else w.loc(),
                subject=subject,
                evidence={"pod_labels": dict(labels), "binding_selectors": [sel for _, sel in selectors]},
                remediation=[_label_snippet(s, value)],
            ))
            continue
        label = labels[LABEL_KEY]
        loc = w.doc.loc(*label_path)
        if not bindings:
            out.append(ctx.passed(f"{subject}: {LABEL_KEY}={label} (no AzureIdentityBinding given to compare with)",
                                  location=loc, subject=subject))
            continue
        if not selectors:
            out.append(ctx.fail(
                "POD_IDENTITY_BINDING_MISMATCH",
                f"{subject}: {LABEL_KEY}={label!r} cannot match: no AzureIdentityBinding has a valid spec.selector",
                location=loc, subject=subject, evidence={"label": label},
                explained_by=("POD_IDENTITY_BINDING_INVALID",),
                remediation=[f"fix the binding(s) in {', '.join(sorted({b.file for b in bindings}))} "
                             "(see lint.binding-keys)"],
            ))
            continue
        matches = [(b, sel, compare_selector(label, sel)) for b, sel in selectors]
        exact = [m for m in matches if m[2].kind == "exact"]
        if exact:
            b = exact[0][0]
            out.append(ctx.passed(f"{subject}: {LABEL_KEY}={label} matches {b.label}", location=loc,
                                  subject=subject))
            continue
        near = [m for m in matches if m[2].kind == "near"]
        if near:
            b, sel, m = near[0]
            summary = (f"{subject}: {LABEL_KEY}={label!r} differs from {b.label} selector {sel!r} only by "
                       f"{' and '.join(m.reasons)}; NMI compares exactly")
        else:
            b, sel = selectors[0]
            summary = (f"{subject}: {LABEL_KEY}={label!r} matches no binding selector "
                       f"({', '.join(repr(x) for _, x in selectors)})")
        placeholder = find_placeholder(str(label)) or find_placeholder(sel)
        out.append(ctx.fail(
            "POD_IDENTITY_BINDING_MISMATCH", summary, location=loc, subject=subject,
            evidence={"label": label, "selectors": [x for _, x in selectors],
                      "binding_location": b.loc("spec", "selector"),
                      "near_miss": list(near[0][2].reasons) if near else None},
            explained_by=("PLACEHOLDER_NOT_REPLACED",) if placeholder else (),
            remediation=[_label_snippet(s, sel)],
        ))
    return out


@check(
    id="lint.pod-identity-client-id",
    title="Sidecar AZURE_CLIENT_ID is the bound AzureIdentity's clientID",
    category="lint",
    severity="high",
    codes=["POD_IDENTITY_CLIENT_ID_MISMATCH"],
    needs=["lint.documents"],
    depends_on=["lint.pod-identity-label", "lint.binding-identity-ref"],
    docs_url="https://azure.github.io/aad-pod-identity/docs/concepts/azureidentity/",
    tags=["pod-identity"],
)
def pod_identity_client_id(ctx: CheckContext) -> list[Finding]:
    """The sidecar requests a token for AZURE_CLIENT_ID; it must be the clientID of the identity bound to the pod.

    NMI only serves identities assigned to the pod (label -> binding -> AzureIdentity). A sidecar
    asking for another client id gets "no azure identity found for request clientID".
    """
    docs = _docs(ctx)
    sidecars = _pod_identity_sidecars(docs)
    if not sidecars:
        raise Skip("no sidecar using pod identity")
    identities = {d.name: d for d in docs.of_kind("AzureIdentity") if d.name}
    out: list[Finding] = []
    for s in sidecars:
        subject = f"{s.workload.label} container {s.name}"
        label = s.workload.labels.get(LABEL_KEY)
        binding = next((b for b, sel in _selectors(docs) if compare_selector(label, sel).kind == "exact"), None)
        if binding is None:
            continue
        ident = identities.get(str(binding.get("spec", "azureIdentity")))
        client_id = ident.get("spec", "clientID") if ident else None
        mine = s.env.get("AZURE_CLIENT_ID")
        if ident is None or not is_guid(client_id) or not is_guid(mine):
            continue
        assert isinstance(client_id, str) and mine is not None
        if client_id.strip().lower() == mine.strip().lower():
            out.append(ctx.passed(f"{subject}: AZURE_CLIENT_ID is the clientID of {ident.label}",
                                  location=s.env_loc("AZURE_CLIENT_ID"), subject=subject))
        else:
            out.append(ctx.fail(
                "POD_IDENTITY_CLIENT_ID_MISMATCH",
                f"{subject}: AZURE_CLIENT_ID {mine} is not the clientID {client_id} of {ident.label} "
                f"(bound by {binding.label})",
                location=s.env_loc("AZURE_CLIENT_ID"), subject=subject,
                evidence={"sidecar_client_id": mine, "identity_client_id": client_id,
                          "identity_location": ident.loc("spec", "clientID")},
                remediation=[to_yaml([{"name": "AZURE_CLIENT_ID", "value": client_id}])],
            ))
    if not out:
        raise Skip("no complete label -> binding -> AzureIdentity chain among the files to compare client ids")
    return out


@check(
    id="lint.pod-identity-deprecated",
    title="Pod-managed identity is deprecated",
    category="lint",
    severity="info",
    codes=["POD_IDENTITY_DEPRECATED"],
    needs=["lint.documents"],
    docs_url="https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-remote-write-azure-workload-identity",
    tags=["pod-identity"],
)
def pod_identity_deprecated(ctx: CheckContext) -> Finding:
    """Advice: Microsoft Entra pod-managed identity is deprecated; plan the move to workload identity.

    The remote-write article itself says pod identity should only be used where it is already
    enabled, and recommends Microsoft Entra Workload ID.
    """
    docs = _docs(ctx)
    users = [s.workload.label for s in _pod_identity_sidecars(docs)]
    crds = [d.label for d in docs.of_kind("AzureIdentityBinding", "AzureIdentity")]
    if not users and not crds:
        raise Skip("pod identity is not used in these files")
    first = next((d for d in docs.of_kind("AzureIdentityBinding", "AzureIdentity")), None)
    location = first.loc() if first else None
    sidecar = next(iter(_pod_identity_sidecars(docs)), None)
    if sidecar is not None:
        location = sidecar.workload.doc.loc(*sidecar.workload.labels_path, LABEL_KEY)
    return ctx.note(
        "POD_IDENTITY_DEPRECATED",
        "pod-managed identity (aad-pod-identity) is deprecated; Microsoft recommends workload identity "
        "(IDENTITY_TYPE workloadIdentity)",
        location=location, evidence={"used_by": users + crds},
        remediation=[
            to_yaml({"prometheus": {"prometheusSpec": {"podMetadata": {"labels": {
                "azure.workload.identity/use": "true"}}}}}),
            "kubectl annotate serviceaccount <prometheus service account> -n <namespace> "
            "azure.workload.identity/client-id=<identity client id>",
            "az identity federated-credential create --name prom-rw --identity-name <identity> -g <rg> "
            "--issuer <AKS OIDC issuer> --subject system:serviceaccount:<namespace>:<service account> "
            "--audience api://AzureADTokenExchange",
        ],
    )

