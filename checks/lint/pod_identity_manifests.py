"""aad-pod-identity manifests: AzureIdentityBinding keys, the identity it names, AzureIdentity fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promrw_doctor.core import Finding, Severity, Skip, check
from promrw_doctor.core.engine import CheckContext
from promrw_doctor.domain.podidentity import (
    API_VERSION,
    BINDING_SPEC_KEYS,
    compare_selector,
    identity_spec_problems,
    miscased_keys,
    strip_typographic_quotes,
)
from promrw_doctor.lint.loader import DocumentSet, LintDocument
from promrw_doctor.lint.views import to_yaml

BINDING_DOCS = "https://azure.github.io/aad-pod-identity/docs/concepts/azureidentitybinding/"
IDENTITY_DOCS = "https://azure.github.io/aad-pod-identity/docs/concepts/azureidentity/"
_LOWER = {k.lower(): k for k in BINDING_SPEC_KEYS}


def _clean(value: Any) -> Any:
    return strip_typographic_quotes(value) if isinstance(value, str) else value


def binding_fields(doc: LintDocument) -> dict[str, tuple[str, Any, tuple[str, ...]]]:
    """Binding spec fields wherever the author put them: ``field -> (key as written, value, path)``.

    Looks in ``spec`` (exact or mis-cased keys) and at the top level (mis-indented keys), so a
    corrected binding can be printed with the author's own values.
    """
    found: dict[str, tuple[str, Any, tuple[str, ...]]] = {}
    spec = doc.get("spec")
    if isinstance(spec, Mapping):
        for key, value in spec.items():
            if isinstance(key, str) and key.lower() in _LOWER:
                expected = _LOWER[key.lower()]
                if expected not in found or key == expected:
                    found[expected] = (key, value, ("spec", key))
    if isinstance(doc.data, Mapping):
        for key, value in doc.data.items():
            if isinstance(key, str) and key.lower() in _LOWER:
                found.setdefault(_LOWER[key.lower()], (key, value, (key,)))
    return found


def corrected_binding(doc: LintDocument) -> str:
    fields = binding_fields(doc)
    name = doc.name or (doc.get("name") if isinstance(doc.get("name"), str) else None) or "<binding-name>"
    metadata: dict[str, Any] = {"name": name}
    if doc.namespace:
        metadata["namespace"] = doc.namespace
    spec: dict[str, Any] = {}
    for key in BINDING_SPEC_KEYS:
        if key in fields:
            spec[key] = _clean(fields[key][1])
        elif key != "weight":
            spec[key] = "<AzureIdentity name>" if key == "azureIdentity" else "<aadpodidbinding label value>"
    return to_yaml({"apiVersion": API_VERSION, "kind": "AzureIdentityBinding", "metadata": metadata, "spec": spec})


def _docs(ctx: CheckContext) -> DocumentSet:
    docs: DocumentSet = ctx.fact("lint.documents")
    return docs


@check(
    id="lint.binding-keys",
    title="AzureIdentityBinding spec keys are spelled and placed correctly",
    category="lint",
    severity="critical",
    codes=["POD_IDENTITY_BINDING_INVALID", "MANIFEST_MISINDENTED"],
    needs=["lint.documents"],
    docs_url=BINDING_DOCS,
    tags=["pod-identity"],
)
def binding_keys(ctx: CheckContext) -> list[Finding]:
    """AzureIdentityBinding uses `spec.azureIdentity` and `spec.selector`, lower camel case, under `spec:`.

    Since aad-pod-identity 1.6.0 the CRD fields are case-sensitive: `AzureIdentity:`/`Selector:`
    (as printed in the pod-identity remote-write article) are ignored, and keys written at the top
    level instead of under `spec:` are ignored too. The binding is accepted by the API server but
    matches no pod, so NMI returns 404 and the sidecar never gets a token.
    """
    docs = _docs(ctx)
    bindings = docs.of_kind("AzureIdentityBinding")
    if not bindings:
        raise Skip("no AzureIdentityBinding among the files")
    out: list[Finding] = []
    for doc in bindings:
        fix = [corrected_binding(doc), f"kubectl apply -f {doc.file}"]
        problems: list[Finding] = []
        spec = doc.get("spec")
        for found, expected in miscased_keys(spec if isinstance(spec, Mapping) else None, BINDING_SPEC_KEYS):
            problems.append(ctx.fail(
                "POD_IDENTITY_BINDING_INVALID",
                f"{doc.label}: spec.{found} is ignored (keys are case-sensitive since aad-pod-identity 1.6.0); "
                f"write {expected}",
                location=doc.loc("spec", found), subject=doc.label,
                evidence={"key": found, "expected": expected, "defect": "capitalized-key"}, remediation=fix,
            ))
        stray = [k for k in (doc.data if isinstance(doc.data, Mapping) else {})
                 if isinstance(k, str) and k.lower() in _LOWER]
        for key in stray:
            expected = _LOWER[key.lower()]
            if key != expected:
                problems.append(ctx.fail(
                    "POD_IDENTITY_BINDING_INVALID",
                    f"{doc.label}: {key} is capitalised (aad-pod-identity >= 1.6.0 expects {expected}) "
                    "and not indented under spec:",
                    location=doc.loc(key), subject=doc.label,
                    evidence={"key": key, "expected": f"spec.{expected}", "defect": "capitalized-key"},
                    remediation=fix,
                ))
        if stray:
            problems.append(ctx.fail(
                "MANIFEST_MISINDENTED",
                f"{doc.label}: {', '.join(stray)} at the top level, not under spec: (spec is "
                f"{'empty' if not spec else 'incomplete'}), so the binding selects nothing",
                location=doc.loc(stray[0]), subject=doc.label,
                evidence={"top_level_keys": stray, "lines": [doc.line(k) for k in stray]}, remediation=fix,
            ))
        fields = binding_fields(doc)
        for key in ("azureIdentity", "selector"):
            if key not in fields:
                problems.append(ctx.fail(
                    "POD_IDENTITY_BINDING_INVALID", f"{doc.label}: spec.{key} is missing",
                    location=doc.loc("spec"), subject=doc.label,
                    evidence={"missing": f"spec.{key}"}, remediation=fix,
                ))
            else:
                written, value, path = fields[key]
                if value is None or (isinstance(value, str) and not _clean(value).strip()):
                    problems.append(ctx.fail(
                        "POD_IDENTITY_BINDING_INVALID", f"{doc.label}: {'.'.join(path)} is empty",
                        location=doc.loc(*path), subject=doc.label,
                        evidence={"key": written}, remediation=fix,
                    ))
        if problems:
            out.extend(problems)
        else:
            out.append(ctx.passed(f"{doc.label}: spec.azureIdentity and spec.selector are set",
                                  location=doc.loc("spec"), subject=doc.label))
    return out


@check(
    id="lint.binding-identity-ref",
    title="AzureIdentityBinding names an AzureIdentity that exists",
    category="lint",
    severity="critical",
    codes=["POD_IDENTITY_BINDING_INVALID", "AZURE_IDENTITY_NOT_GIVEN"],
    needs=["lint.documents"],
    depends_on=["lint.binding-keys"],
    docs_url=BINDING_DOCS,
    tags=["pod-identity"],
)
def binding_identity_ref(ctx: CheckContext) -> list[Finding]:
    """`AzureIdentityBinding.spec.azureIdentity` must equal the `metadata.name` of an AzureIdentity.

    MIC assigns the identity the binding names; a name that matches no AzureIdentity (a typo, a
    different case, the placeholder `<AzureIdentityName>`) binds nothing. When no AzureIdentity
    is among the files the reference cannot be verified (a warning, lint them together).
    """
    docs = _docs(ctx)
    bindings = docs.of_kind("AzureIdentityBinding")
    if not bindings:
        raise Skip("no AzureIdentityBinding among the files")
    identities = docs.of_kind("AzureIdentity")
    names = {d.name: d for d in identities if d.name}
    out: list[Finding] = []
    for doc in bindings:
        ref = doc.get("spec", "azureIdentity")
        loc = doc.loc("spec", "azureIdentity")
        if not identities:
            out.append(ctx.warn(
                "AZURE_IDENTITY_NOT_GIVEN",
                f"{doc.label}: names AzureIdentity {ref!r}, but no AzureIdentity manifest was given to verify it",
                location=loc, subject=doc.label, severity=Severity.LOW, evidence={"azureIdentity": ref},
                remediation=[f"promrw-doctor lint {doc.file} <azureidentity.yaml>",
                             f"kubectl get azureidentity {ref} -n {doc.namespace or '<namespace>'}"],
            ))
            continue
        if ref in names:
            ident = names[ref]
            if doc.namespace and ident.namespace and doc.namespace != ident.namespace:
                out.append(ctx.warn(
                    "POD_IDENTITY_BINDING_INVALID",
                    f"{doc.label} (namespace {doc.namespace}) names AzureIdentity {ref} in namespace "
                    f"{ident.namespace}; in namespaced mode (AKS add-on) they must share a namespace",
                    location=loc, subject=doc.label,
                    evidence={"binding_namespace": doc.namespace, "identity_namespace": ident.namespace},
                ))
            else:
                out.append(ctx.passed(f"{doc.label}: AzureIdentity {ref} is defined in {ident.file}",
                                      location=loc, subject=doc.label))
            continue
        near = [n for n in names if compare_selector(str(ref), n).kind == "near"]
        hint = f" (near miss: {near[0]!r})" if near else ""
        target = near[0] if near else (sorted(names)[0] if len(names) == 1 else "<AzureIdentity name>")
        out.append(ctx.fail(
            "POD_IDENTITY_BINDING_INVALID",
            f"{doc.label}: spec.azureIdentity {ref!r} matches no AzureIdentity{hint}; given: "
            + ", ".join(sorted(names)),
            location=loc, subject=doc.label,
            evidence={"azureIdentity": ref, "identities_given": sorted(names)},
            remediation=[to_yaml({"spec": {"azureIdentity": target}}), f"kubectl apply -f {doc.file}"],
        ))
    return out


@check(
    id="lint.azure-identity",
    title="AzureIdentity has a valid type, resourceID and clientID",
    category="lint",
    severity="high",
    codes=["AZURE_IDENTITY_INVALID"],
    needs=["lint.documents"],
    docs_url=IDENTITY_DOCS,
    tags=["pod-identity"],
)
def azure_identity(ctx: CheckContext) -> list[Finding]:
    """An AzureIdentity of type 0 needs `resourceID` (a user-assigned identity resource id) and a GUID `clientID`.

    Keys are case-sensitive since aad-pod-identity 1.6.0 (`ClientID`/`ResourceID` are ignored).
    MIC skips an identity it cannot parse ("Invalid resource id"), so nothing is assigned to the
    node and NMI never serves a token for it.
    """
    docs = _docs(ctx)
    identities = docs.of_kind("AzureIdentity")
    if not identities:
        raise Skip("no AzureIdentity among the files")
    out: list[Finding] = []
    for doc in identities:
        spec = doc.get("spec")
        problems = identity_spec_problems(spec if isinstance(spec, Mapping) else None)
        problems = [p for p in problems if p.kind != "typographic-quotes"]  # lint.typographic-quotes
        if not problems:
            out.append(ctx.passed(f"{doc.label}: type, resourceID and clientID are valid",
                                  location=doc.loc("spec"), subject=doc.label))
            continue
        fixed = _corrected_identity(doc)
        for p in problems:
            key = p.found_key or p.field
            path = ("spec", key) if doc.has("spec", key) else ("spec",)
            out.append(ctx.fail(
                "AZURE_IDENTITY_INVALID", f"{doc.label}: {p.message}",
                location=doc.loc(*path), subject=doc.label,
                evidence={"field": p.field, "problem": p.kind, "value": doc.get(*path) if p.kind == "format" else None},
                remediation=[fixed, "az identity show -g <resource-group> -n <identity-name> --query "
                                    "'{resourceID:id, clientID:clientId}' -o yaml", f"kubectl apply -f {doc.file}"],
            ))
    return out


def _corrected_identity(doc: LintDocument) -> str:
    spec = doc.get("spec") if isinstance(doc.get("spec"), Mapping) else {}
    lower = {k.lower(): v for k, v in spec.items() if isinstance(k, str)}
    fixed: dict[str, Any] = {
        "type": lower.get("type", 0),
        "resourceID": _clean(lower.get("resourceid"))
        or "/subscriptions/<subid>/resourcegroups/<resourcegroup>/providers/"
           "Microsoft.ManagedIdentity/userAssignedIdentities/<name>",
        "clientID": _clean(lower.get("clientid")) or "<client id GUID>",
    }
    metadata: dict[str, Any] = {"name": doc.name or "<identity-name>"}
    if doc.namespace:
        metadata["namespace"] = doc.namespace
    return to_yaml({"apiVersion": API_VERSION, "kind": "AzureIdentity", "metadata": metadata, "spec": fixed})
