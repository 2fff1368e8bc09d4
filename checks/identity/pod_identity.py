"""aad-pod-identity wiring for the Prometheus pod: label -> binding -> identity -> assignment.

NMI hands the sidecar a token only when all of these hold, in this order: the pod carries
``aadpodidbinding: <value>``; an AzureIdentityBinding (in the pod's namespace when NMI runs
namespaced, as the AKS add-on always does) has exactly that ``selector``; the binding names
an AzureIdentity that exists, with lower-case keys (aad-pod-identity >= 1.6); that identity's
``clientID`` is the sidecar's ``AZURE_CLIENT_ID``; and MIC reports the assignment
``Assigned``. Each link is one check depending on the previous, so the first broken link is
the root cause.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from promrw_doctor.core import Skip, check
from promrw_doctor.domain.podidentity import (
    BINDING_SPEC_KEYS,
    IDENTITY_SPEC_KEYS,
    LABEL_KEY,
    binding_spec_problems,
    compare_selector,
    identity_type,
    is_guid,
    miscased_keys,
)

from ..kubernetes._common import helm_release, helm_set, pod_of

VARIANT = ["podIdentity"]


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    m = obj.get("metadata") or {}
    return str(m.get("namespace") or ""), str(m.get("name") or "")


def selector_of(binding: Mapping[str, Any]) -> tuple[Any, str | None]:
    """(selector value, the key it was found under); a mis-cased ``Selector`` counts, so it can be reported."""
    spec = binding.get("spec") or {}
    if "selector" in spec:
        return spec.get("selector"), "selector"
    for found, expected in miscased_keys(spec, BINDING_SPEC_KEYS):
        if expected == "selector":
            return spec.get(found), found
    return None, None


def identity_ref(binding: Mapping[str, Any]) -> tuple[Any, str | None]:
    spec = binding.get("spec") or {}
    if "azureIdentity" in spec:
        return spec.get("azureIdentity"), "azureIdentity"
    for found, expected in miscased_keys(spec, BINDING_SPEC_KEYS):
        if expected == "azureIdentity":
            return spec.get(found), found
    return None, None


def related_bindings(label: str, bindings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Bindings meant for this label: selector (under any key casing) equal or a near miss."""
    out = []
    for b in bindings:
        value, _ = selector_of(b)
        if value is not None and compare_selector(label, value).kind in ("exact", "near"):
            out.append(b)
    return out


def exact_bindings(label: str, bindings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """What NMI matches: ``spec.selector`` (exact key) equal to the label value."""
    return [b for b in bindings if (b.get("spec") or {}).get("selector") == label]


def _ref(b: Mapping[str, Any]) -> str:
    ns, name = _meta(b)
    return f"{ns}/{name}"


def _label_or_skip(view: Any) -> str:
    if not view.label:
        raise Skip("the pod has no aadpodidbinding label (reported by identity.pod-identity-label)")
    return str(view.label)


@check(id="identity.pod-identity-label", title="Prometheus pod carries the aadpodidbinding label",
       category="identity", severity="critical", codes=["POD_IDENTITY_LABEL_MISSING"], variants=VARIANT,
       depends_on=["kubernetes.sidecar-present"], needs=["k8s.pod"], tags=["pod-identity"])
def pod_identity_label(ctx: Any) -> Any:
    """The Prometheus pod has ``aadpodidbinding: <selector>``, and the Prometheus CR keeps it.

    "The aadpodidbinding label must be added to the Prometheus pod for the pod-managed identity
    to take effect." A label set by hand on the pod is lost at the next rollout unless
    ``prometheus.prometheusSpec.podMetadata.labels`` carries it too.
    """
    pod = ctx.fact("k8s.pod")
    view = ctx.try_fact("k8s.pod_identity")
    cr = ctx.try_fact("k8s.prometheus_cr")
    ns, name = pod_of(ctx.target)
    labels = (pod.get("metadata") or {}).get("labels") or {}
    release = helm_release(cr)
    selectors = sorted({str(selector_of(b)[0]) for b in (view.bindings if view else ()) if selector_of(b)[0]})
    wanted = selectors[0] if len(selectors) == 1 else "<binding-selector>"
    fix = [f"kubectl -n {ns} label pod {name} {LABEL_KEY}={wanted} --overwrite",
           f"Helm values (kube-prometheus-stack), so the label survives the next rollout: "
           f"prometheus: {{prometheusSpec: {{podMetadata: {{labels: {{{LABEL_KEY}: {wanted}}}}}}}}}",
           helm_set(ns, release, {f"prometheus.prometheusSpec.podMetadata.labels.{LABEL_KEY}": wanted})]
    value = labels.get(LABEL_KEY)
    if value is None or not str(value).strip():
        near = [k for k, _ in miscased_keys(labels, (LABEL_KEY,))]
        evidence: dict[str, Any] = {"pod_labels": dict(labels), "binding_selectors": selectors}
        why = f" (found {near[0]!r}: label keys are case-sensitive)" if near else ""
        if value is not None:
            why = " (its value is empty)"
        return ctx.fail("POD_IDENTITY_LABEL_MISSING",
                        f"pod {ns}/{name} has no {LABEL_KEY} label{why}; NMI matches no binding to it",
                        evidence=evidence, remediation=fix)
    cr_labels = (((cr or {}).get("spec") or {}).get("podMetadata") or {}).get("labels") or {}
    if cr and cr_labels.get(LABEL_KEY) != value:
        return ctx.warn("POD_IDENTITY_LABEL_MISSING",
                        f"pod {ns}/{name} has {LABEL_KEY}={value} but Prometheus {_meta(cr)[1]} "
                        "spec.podMetadata.labels does not: the next rollout drops it",
                        evidence={"pod_label": value, "cr_labels": dict(cr_labels)},
                        remediation=[helm_set(ns, release, {
                            f"prometheus.prometheusSpec.podMetadata.labels.{LABEL_KEY}": str(value)})])
    return ctx.passed(f"pod {ns}/{name} has {LABEL_KEY}={value}", evidence={"label": value})


@check(id="identity.pod-identity-binding-valid", title="AzureIdentityBinding for the pod is well formed",
       category="identity", severity="critical", codes=["POD_IDENTITY_BINDING_INVALID"], variants=VARIANT,
       depends_on=["identity.pod-identity-label"], needs=["k8s.pod_identity"], tags=["pod-identity"])
def pod_identity_binding_valid(ctx: Any) -> Any:
    """The binding meant for the pod uses ``azureIdentity``/``selector`` (lower case) and names an
    AzureIdentity that exists in its namespace.

    Since aad-pod-identity 1.6.0 the keys are case-sensitive; the published article still
    shows ``AzureIdentity:``/``Selector:``. Such a binding is stored by the API server but binds
    nothing, so the pod silently gets no identity.
    """
    view = ctx.fact("k8s.pod_identity")
    label = _label_or_skip(view)
    related = related_bindings(label, view.bindings)
    if not related:
        return ctx.passed(f"no AzureIdentityBinding is meant for {LABEL_KEY}={label} (matching is checked next)")
    problems: list[str] = []
    remediation: list[str] = []
    for b in related:
        bns, bname = _meta(b)
        for p in binding_spec_problems(b.get("spec")):
            if p.kind == "miscased-key":
                problems.append(f"AzureIdentityBinding {bns}/{bname}: {p.message}")
        ref, key = identity_ref(b)
        if key == "azureIdentity" and ref and view.identity(bns, str(ref)) is None:
            existing = sorted(_meta(i)[1] for i in view.identities if _meta(i)[0] == bns)
            problems.append(f"AzureIdentityBinding {bns}/{bname} names AzureIdentity {ref} which does not exist in "
                            f"namespace {bns} (existing: {', '.join(existing) or 'none'})")
        remediation.append(f"kubectl -n {bns} get azureidentitybinding {bname} -o yaml")
    if not problems:
        return ctx.passed(f"binding(s) {', '.join(_ref(b) for b in related)} are well formed")
    first = related[0]
    bns, bname = _meta(first)
    sel, _ = selector_of(first)
    ident, _ = identity_ref(first)
    remediation.append(
        f"kubectl -n {bns} patch azureidentitybinding {bname} --type merge -p "
        f"'{{\"spec\":{{\"azureIdentity\":\"{ident or '<identity>'}\",\"selector\":\"{sel or label}\"}}}}'"
        "   # then remove the capitalised keys: kubectl -n "
        f"{bns} edit azureidentitybinding {bname}")
    return ctx.fail("POD_IDENTITY_BINDING_INVALID", "; ".join(problems),
                    evidence={"label": label, "bindings": [{"name": _ref(b), "spec": b.get("spec")} for b in related]},
                    remediation=remediation)


@check(id="identity.pod-identity-binding", title="An AzureIdentityBinding selector equals the pod label",
       category="identity", severity="critical", codes=["POD_IDENTITY_BINDING_MISMATCH"], variants=VARIANT,
       depends_on=["identity.pod-identity-binding-valid"], needs=["k8s.pod_identity"], tags=["pod-identity"])
def pod_identity_binding(ctx: Any) -> Any:
    """Some AzureIdentityBinding's ``selector`` equals the pod's ``aadpodidbinding`` value exactly.

    NMI compares the strings exactly: case, surrounding whitespace, typographic quotes copied
    from a web page, or ``-`` vs ``_`` all miss. In namespaced mode (the AKS add-on) only
    bindings in the pod's namespace count. Near misses are shown.
    """
    view = ctx.fact("k8s.pod_identity")
    label = _label_or_skip(view)
    ns, name = pod_of(ctx.target)
    exact = exact_bindings(label, view.bindings)
    if exact:
        return ctx.passed(f"{LABEL_KEY}={label} matches binding {', '.join(_ref(b) for b in exact)}")
    near, similar = [], []
    for b in view.bindings:
        sel, _ = selector_of(b)
        if sel is None:
            continue
        cmp = compare_selector(label, sel)
        if cmp.kind == "near":
            near.append(f"{_ref(b)} selector {sel!r} ({', '.join(cmp.reasons)})")
        elif difflib.SequenceMatcher(None, label, str(sel)).ratio() >= 0.75:
            similar.append(f"{_ref(b)} selector {sel!r}")
    elsewhere = [f"{_ref(b)} selector {selector_of(b)[0]!r}" for b in exact_bindings(label, view.other_bindings)]
    selectors = [f"{_ref(b)}={selector_of(b)[0]!r}" for b in view.bindings][:20]
    evidence: dict[str, Any] = {"label": label, "namespaced_mode": view.namespaced, "bindings_in_scope": selectors}
    if near:
        evidence["near_misses"] = near
    if similar:
        evidence["similar"] = similar
    if elsewhere:
        evidence["other_namespaces"] = elsewhere
    if view.scope_note:
        evidence["note"] = view.scope_note
    if not view.installed:
        summary = "aad-pod-identity is not installed (no AzureIdentityBinding CRD), so nothing binds the pod"
    elif not view.bindings:
        scope = f"namespace {ns}" if view.namespaced else "the cluster"
        summary = f"no AzureIdentityBinding in {scope}; {LABEL_KEY}={label} binds nothing"
    else:
        summary = f"no AzureIdentityBinding selector equals {LABEL_KEY}={label!r}"
        hints = near or similar
        if hints:
            summary += f"; closest: {hints[0]}"
        if elsewhere:
            summary += f"; {elsewhere[0]} matches but NMI runs namespaced (binding, identity and pod must share " \
                       "a namespace)"
    candidates = [b for b in view.bindings if selector_of(b)[0] is not None]
    remediation = [f"kubectl -n {ns} get azureidentitybinding -o custom-columns=NAME:.metadata.name,"
                   "SELECTOR:.spec.selector,IDENTITY:.spec.azureIdentity"]
    if len(candidates) == 1 or near or similar:
        b = candidates[0] if len(candidates) == 1 else next(
            x for x in view.bindings if _ref(x) == (near or similar)[0].split(" ", 1)[0])
        bns, bname = _meta(b)
        remediation.append(f"kubectl -n {bns} patch azureidentitybinding {bname} --type merge -p "
                           f"'{{\"spec\":{{\"selector\":\"{label}\"}}}}'")
        remediation.append(f"kubectl -n {ns} label pod {name} {LABEL_KEY}={selector_of(b)[0]} --overwrite   "
                           "# or relabel the pod instead (and set prometheusSpec.podMetadata.labels)")
    return ctx.fail("POD_IDENTITY_BINDING_MISMATCH", summary, evidence=evidence, remediation=remediation)


def _matched(view: Any) -> list[Mapping[str, Any]]:
    return exact_bindings(str(view.label), view.bindings) if view.label else []


@check(id="identity.pod-identity-client-id", title="The bound AzureIdentity is the sidecar's AZURE_CLIENT_ID",
       category="identity", severity="critical", codes=["POD_IDENTITY_CLIENT_ID_MISMATCH"], variants=VARIANT,
       depends_on=["identity.pod-identity-binding"], needs=["k8s.pod_identity", "sidecar.settings"],
       tags=["pod-identity"])
def pod_identity_client_id(ctx: Any) -> Any:
    """The AzureIdentity the binding names is a user-assigned identity (``type: 0``) whose
    ``clientID`` equals the sidecar's ``AZURE_CLIENT_ID``.

    The sidecar asks IMDS for a token for ``AZURE_CLIENT_ID``; NMI only serves client ids of
    identities assigned to the pod ("no azure identity found for request clientID"). Pasting
    the identity's object (principal) id instead of its client id is the usual slip.
    """
    view = ctx.fact("k8s.pod_identity")
    settings = ctx.fact("sidecar.settings")
    client_id = (settings.client_id or "").strip()
    if not is_guid(client_id):
        raise Skip("AZURE_CLIENT_ID is missing or not a GUID (reported by kubernetes.sidecar-config)")
    problems: list[str] = []
    found: list[str] = []
    for b in _matched(view):
        bns = _meta(b)[0]
        ref = (b.get("spec") or {}).get("azureIdentity")
        ident = view.identity(bns, str(ref))
        if ident is None:
            continue
        spec = ident.get("spec") or {}
        ins, iname = _meta(ident)
        for found_key, expected in miscased_keys(spec, IDENTITY_SPEC_KEYS):
            problems.append(f"AzureIdentity {ins}/{iname} uses {found_key}: (ignored since aad-pod-identity 1.6.0; "
                            f"write {expected})")
        kind = identity_type(spec)
        if kind not in (0, None):
            problems.append(f"AzureIdentity {ins}/{iname} has type {kind}; the sidecar's userAssigned flow needs "
                            "type 0 (user-assigned managed identity)")
        cid = str(spec.get("clientID") or "")
        found.append(f"{ins}/{iname} clientID={cid or '(none)'}")
        if cid.lower() == client_id.lower() and kind in (0, None) and not problems:
            return ctx.passed(f"AzureIdentity {ins}/{iname} has clientID {cid} = AZURE_CLIENT_ID")
        if cid and cid.lower() != client_id.lower():
            problems.append(f"AzureIdentity {ins}/{iname} has clientID {cid} but the sidecar's AZURE_CLIENT_ID is "
                            f"{client_id}")
    if not found:
        raise Skip("no bound AzureIdentity to compare (reported by identity.pod-identity-binding-valid)")
    ns, _ = pod_of(ctx.target)
    first = _matched(view)[0]
    ident = view.identity(_meta(first)[0], str((first.get("spec") or {}).get("azureIdentity")))
    rid = str(((ident or {}).get("spec") or {}).get("resourceID") or "<identity-resource-id>")
    return ctx.fail(
        "POD_IDENTITY_CLIENT_ID_MISMATCH", "; ".join(problems),
        evidence={"sidecar_client_id": client_id, "identities": found},
        remediation=[f"az identity show --ids {rid} --query clientId -o tsv",
                     "set AZURE_CLIENT_ID of prom-remotewrite to that client id (Helm values "
                     "prometheus.prometheusSpec.containers[name=prom-remotewrite].env) and helm upgrade",
                     f"kubectl -n {ns} get azureidentity -o custom-columns=NAME:.metadata.name,TYPE:.spec.type,"
                     "CLIENTID:.spec.clientID"],
    )


@check(id="identity.pod-identity-assigned", title="MIC assigned the identity to the pod", category="identity",
       severity="critical", codes=["POD_IDENTITY_NOT_ASSIGNED"], variants=VARIANT,
       depends_on=["identity.pod-identity-binding"], needs=["k8s.pod_identity", "k8s.pod_identity_assigned"],
       tags=["pod-identity"])
def pod_identity_assigned(ctx: Any) -> Any:
    """An AzureAssignedIdentity for the pod and the bound identity is in state ``Assigned``.

    MIC creates it once the identity is attached to the node's VM scale set; until then NMI
    answers the sidecar with 404 ("... in CREATED state failed ... Check MIC pod logs"). In
    managed mode (the AKS add-on) there is no MIC: the identity must be on the node pool.
    """
    view = ctx.fact("k8s.pod_identity")
    assigned = ctx.fact("k8s.pod_identity_assigned")
    ns, name = pod_of(ctx.target)
    wanted = {str((b.get("spec") or {}).get("azureIdentity")) for b in _matched(view)}
    states = []
    for a in assigned:
        spec = a.get("spec") or {}
        ref = ((spec.get("azureIdentityRef") or {}).get("metadata") or {}).get("name")
        state = str((a.get("status") or {}).get("status") or "")
        states.append(f"{_meta(a)[1]}: identity {ref}, status {state or '(none)'}")
        if state == "Assigned" and (not wanted or ref in wanted):
            return ctx.passed(f"AzureAssignedIdentity {_meta(a)[1]} is Assigned")
    info = ctx.try_fact("k8s.nmi")
    mic = "kubectl logs -n <mic-namespace> -l component=mic --since=1h | grep -iE 'error|^E'"
    if not assigned and info is not None and info.mode == "managed":
        return ctx.passed("NMI runs in managed mode (no MIC): the identity must be assigned to the node pool VMSS",
                          evidence={"mode": "managed"})
    summary = (f"no AzureAssignedIdentity for pod {ns}/{name} is Assigned ({'; '.join(states)})" if states else
               f"MIC created no AzureAssignedIdentity for pod {ns}/{name} (identity {', '.join(sorted(wanted))})")
    return ctx.fail("POD_IDENTITY_NOT_ASSIGNED", summary, evidence={"assigned_identities": states},
                    remediation=[f"kubectl -n {ns} get azureassignedidentity -o wide", mic,
                                 "az role assignment create --role \"Managed Identity Operator\" --assignee "
                                 "<kubelet-identity-client-id> --scope <identity-resource-id>",
                                 f"kubectl -n {ns} delete pod {name}   # MIC retries the assignment"])
