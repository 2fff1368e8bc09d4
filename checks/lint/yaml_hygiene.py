"""Copy-paste defects in any document: typographic quotes, placeholders, missing names, duplicate keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from promrw_doctor.core import Finding, Severity, Skip, check
from promrw_doctor.core.engine import CheckContext
from promrw_doctor.core.redact import REDACTED
from promrw_doctor.domain.podidentity import TYPOGRAPHIC_QUOTES, has_typographic_quotes, to_ascii_quotes
from promrw_doctor.lint.loader import KIND_HELM_VALUES, KIND_UNKNOWN, DocumentSet, LintDocument, Path
from promrw_doctor.lint.views import HELM_SPEC, find_placeholders, is_secret_path, iter_keys, iter_strings, to_yaml

_MAX_PER_DOC = 50  # a whole file of curly quotes is one story, not 500 findings


def _docs(ctx: CheckContext) -> DocumentSet:
    docs: DocumentSet = ctx.fact("lint.documents")
    return docs


def _dotted(path: Path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out


def _line_text(key: Any, value: str) -> str:
    fixed = to_ascii_quotes(value).strip()
    if not (fixed.startswith('"') and fixed.endswith('"')) and not (fixed.startswith("'") and fixed.endswith("'")):
        fixed = f'"{fixed}"'
    return f"{key}: {fixed}" if isinstance(key, str) else f"- {fixed}"


@check(
    id="lint.typographic-quotes",
    title="No typographic quotes in YAML",
    category="lint",
    severity="high",
    codes=["YAML_TYPOGRAPHIC_QUOTES"],
    needs=["lint.documents"],
)
def typographic_quotes(ctx: CheckContext) -> list[Finding]:
    """Values must use ASCII quotes; “ ” ‘ ’ become part of the value.

    Web pages and word processors turn `"` into “ ”. YAML does not treat them as quotes, so
    `Selector: “prom-rw”` is the eleven-character string with curly quotes, which never equals
    the pod label `prom-rw`. The pod-identity remote-write article's binding example has them.
    """
    out: list[Finding] = []
    for doc in _docs(ctx):
        if doc.kind == KIND_UNKNOWN or not doc.mentions(*TYPOGRAPHIC_QUOTES):
            continue
        count = 0
        for path, key in iter_keys(doc.data):
            if has_typographic_quotes(key) and count < _MAX_PER_DOC:
                count += 1
                out.append(ctx.fail(
                    "YAML_TYPOGRAPHIC_QUOTES", f"{doc.label}: key {key!r} contains typographic quotes",
                    location=doc.loc(*path), subject=doc.label, evidence={"path": _dotted(path), "key": key},
                    remediation=[f"rename the key to {to_ascii_quotes(key)!r}"],
                ))
        for path, value in iter_strings(doc.data):
            if not has_typographic_quotes(value) or count >= _MAX_PER_DOC:
                continue
            count += 1
            chars = "".join(sorted({c for c in value if c in TYPOGRAPHIC_QUOTES}))
            last = path[-1] if path else None
            secret = is_secret_path(doc, path)
            shown = REDACTED if secret else value
            out.append(ctx.fail(
                "YAML_TYPOGRAPHIC_QUOTES",
                f"{doc.label}: {_dotted(path)} value {shown!r} contains typographic quotes ({chars}); "
                "YAML keeps them as part of the value",
                location=f"{doc.file}:{doc.line_of_text(*path, needle=chars[0])}", subject=doc.label,
                evidence={"path": _dotted(path), "value": shown, "characters": chars},
                remediation=[f"replace {chars} in {_dotted(path)} with ASCII quotes" if secret
                             else _line_text(last, value)],
            ))
    if not out:
        return [ctx.passed("no typographic quotes")]
    return out


# --------------------------------------------------------------------------- placeholders

_HINTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"INGESTION.?URL|METRICS.?INGESTION"),
     "the Metrics ingestion endpoint from the Azure Monitor workspace Overview page "
     "(https://<dce>.<region>-1.metrics.ingest.monitor.azure.com/dataCollectionRules/<dcr immutable id>/"
     "streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24)"),
    (re.compile(r"DCR.?IMMUTABLE"), "az monitor data-collection rule show -g <rg> -n <dcr> --query immutableId -o tsv"),
    (re.compile(r"MANAGED.?IDENTITY.?CLIENT.?ID|^<CLIENT.?ID>$"),
     "az identity show -g <resource-group> -n <identity-name> --query clientId -o tsv"),
    (re.compile(r"APP.?REGISTRATION.*CLIENT.?ID"),
     "az ad app list --display-name <app-name> --query '[].appId' -o tsv"),
    (re.compile(r"TENANT.?ID"), "az account show --query tenantId -o tsv"),
    (re.compile(r"CLUSTER.?NAME"), "the cluster's name (az aks list --query '[].name' -o tsv)"),
    (re.compile(r"CONTAINER.?IMAGE"),
     "mcr.microsoft.com/azuremonitor/containerinsights/ciprod/prometheus-remote-write/images:"
     "prom-remotewrite-20260226.1"),
    (re.compile(r"AZUREIDENTITYBINDINGSELECTOR|SELECTOR"), "the value of the pod label aadpodidbinding"),
    (re.compile(r"AZUREIDENTITYNAME"), "the metadata.name of your AzureIdentity"),
    (re.compile(r"CERT.?NAME|NAME.?OF.?CERT"),
     "the certificate's objectName (or objectAlias) in the SecretProviderClass"),
    (re.compile(r"KEY.?VAULT"), "the Key Vault name"),
]


def _hint(placeholder: str) -> str:
    norm = placeholder.upper().replace(" ", "")
    for pattern, hint in _HINTS:
        if pattern.search(norm):
            return f"replace {placeholder} with {hint}"
    return f"replace {placeholder} with the real value"


def _placeholder_scope(doc: LintDocument) -> tuple[Any, Path] | None:
    if doc.kind == KIND_HELM_VALUES:
        return doc.get(*HELM_SPEC), HELM_SPEC
    if doc.kind == KIND_UNKNOWN:
        return None
    return doc.data, ()


@check(
    id="lint.placeholders",
    title="No documentation placeholders left in",
    category="lint",
    severity="high",
    codes=["PLACEHOLDER_NOT_REPLACED"],
    needs=["lint.documents"],
)
def placeholders(ctx: CheckContext) -> list[Finding]:
    """Values like `<INGESTION-URL>`, `<CLUSTER-NAME>` or `<AzureIdentityBindingSelector>` must be replaced.

    The remote-write articles are templates; a placeholder left in is taken literally by the
    sidecar (a URL it cannot call, a client id Entra does not know) or by NMI (a selector no
    pod carries). Helm values are searched under `prometheus.prometheusSpec` only.
    """
    out: list[Finding] = []
    for doc in _docs(ctx):
        scope = _placeholder_scope(doc)
        if scope is None or not doc.mentions("<"):
            continue
        data, prefix = scope
        count = 0
        for path, value in iter_strings(data, prefix):
            found = find_placeholders(value)
            if not found or count >= _MAX_PER_DOC:
                continue
            count += 1
            out.append(ctx.fail(
                "PLACEHOLDER_NOT_REPLACED",
                f"{doc.label}: {_dotted(path)} still holds the placeholder {', '.join(found)}",
                location=f"{doc.file}:{doc.line_of_text(*path, needle=found[0])}", subject=doc.label,
                evidence={"path": _dotted(path), "value": REDACTED if is_secret_path(doc, path) else value,
                          "placeholders": found},
                remediation=[_hint(p) for p in found],
            ))
    if not out:
        return [ctx.passed("no documentation placeholders left")]
    return out


# --------------------------------------------------------------------------- names


@check(
    id="lint.manifest-name",
    title="Manifests have metadata.name",
    category="lint",
    severity="high",
    codes=["MANIFEST_NAME_MISSING"],
    needs=["lint.documents"],
)
def manifest_name(ctx: CheckContext) -> list[Finding]:
    """Every Kubernetes manifest needs `metadata.name` (or `generateName`).

    A `name:` written at the top level instead of under `metadata:` (as in the pod-identity
    article's binding example) leaves `metadata` empty, and kubectl refuses the object.
    """
    manifests = [d for d in _docs(ctx) if d.kind not in (KIND_HELM_VALUES, KIND_UNKNOWN)]
    if not manifests:
        raise Skip("no Kubernetes manifests among the files (only Helm values)")
    out: list[Finding] = []
    for doc in manifests:
        meta = doc.get("metadata")
        if isinstance(meta, Mapping) and (doc.name or meta.get("generateName")):
            out.append(ctx.passed(f"{doc.label}: metadata.name is set", location=doc.loc("metadata", "name"),
                                  subject=doc.label))
            continue
        stray = doc.get("name")
        evidence: dict[str, Any] = {"kind": doc.kind, "metadata": meta if isinstance(meta, Mapping) else None}
        location = doc.loc("metadata") if doc.has("metadata") else f"{doc.file}:{doc.start_line}"
        if isinstance(stray, str):
            summary = (f"{doc.kind}: metadata.name is missing: name: {stray} (line {doc.line('name')}) is not "
                       "indented under metadata:")
            evidence["top_level_name"] = stray
            evidence["top_level_name_line"] = doc.line("name")
        else:
            summary = f"{doc.kind}: metadata.name is missing"
        name = stray if isinstance(stray, str) else "<name>"
        out.append(ctx.fail(
            "MANIFEST_NAME_MISSING", summary, location=location, subject=doc.label, evidence=evidence,
            remediation=[to_yaml({"metadata": {"name": name}})],
        ))
    return out


@check(
    id="lint.duplicate-keys",
    title="No duplicate keys",
    category="lint",
    severity="medium",
    codes=["MANIFEST_DUPLICATE_KEY"],
    needs=["lint.documents"],
)
def duplicate_keys(ctx: CheckContext) -> list[Finding]:
    """A key written twice in one mapping: Helm and kubectl silently keep only the last one.

    Typical after pasting a second `env:` or `containers:` block into values: the first block's
    settings vanish without an error.
    """
    out: list[Finding] = []
    for doc in _docs(ctx):
        if doc.kind == KIND_UNKNOWN:
            continue
        for path, first, second in doc.duplicates:
            rel = path
            out.append(ctx.fail(
                "MANIFEST_DUPLICATE_KEY",
                f"{doc.label}: {_dotted(rel)} is defined twice (lines {first} and {second}); "
                f"the block at line {first} is ignored",
                location=f"{doc.file}:{second}", subject=doc.label, severity=Severity.MEDIUM,
                evidence={"path": _dotted(rel), "lines": [first, second]},
                remediation=[f"merge the two {rel[-1]}: blocks (lines {first} and {second}) into one"],
            ))
    if not out:
        return [ctx.passed("no duplicate keys")]
    return out
