"""aad-pod-identity CRDs (``aadpodidentity.k8s.io/v1``): spec rules and near-miss matching. Pure logic.

Why: since aad-pod-identity v1.6.0 the CRD fields are case-sensitive, and the published
remote-write article still shows ``AzureIdentity:``/``Selector:`` with typographic quotes.
Such a binding is accepted by the API server but matches nothing, so NMI answers 404
and the sidecar gets no token; nothing in the cluster says why. NMI matches the pod
label ``aadpodidbinding`` to ``AzureIdentityBinding.spec.selector`` by exact string
equality, so a near miss (case, whitespace, quotes) is as bad as a total miss.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .sidecar import GUID_RE, find_placeholder, is_guid

API_GROUP = "aadpodidentity.k8s.io"
API_VERSION = "aadpodidentity.k8s.io/v1"
LABEL_KEY = "aadpodidbinding"

BINDING_SPEC_KEYS: tuple[str, ...] = ("azureIdentity", "selector", "weight")
IDENTITY_SPEC_KEYS: tuple[str, ...] = (
    "type", "resourceID", "clientID", "clientPassword", "tenantID", "auxiliaryTenantIDs",
    "adResourceID", "adEndpoint", "replicas",
)
EXCEPTION_SPEC_KEYS: tuple[str, ...] = ("podLabels",)
# The pre-1.6.0 spellings that are silently ignored since 1.6.0.
CAPITALISED_KEYS: dict[str, str] = {
    "AzureIdentity": "azureIdentity",
    "Selector": "selector",
    "ClientID": "clientID",
    "ResourceID": "resourceID",
    "TenantID": "tenantID",
    "ClientPassword": "clientPassword",
    "PodLabels": "podLabels",
}
IDENTITY_TYPE_USER_ASSIGNED = 0
IDENTITY_TYPE_SERVICE_PRINCIPAL = 1
IDENTITY_TYPE_SERVICE_PRINCIPAL_CERT = 2
IDENTITY_TYPE_NAMES = {0: "user-assigned managed identity", 1: "service principal",
                       2: "service principal with certificate"}

RESOURCE_ID_RE = re.compile(
    r"(?i)^/subscriptions/(?P<subscription>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"/resourcegroups/(?P<resource_group>[^/]+)"
    r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/(?P<name>[^/]+)$"
)
RESOURCE_ID_TEMPLATE = (
    "/subscriptions/<subid>/resourcegroups/<resourcegroup>/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/<name>"
)

# “ ” ‘ ’ and their low/reversed cousins: what word processors and CMSs put into copied YAML.
TYPOGRAPHIC_QUOTES = "\u201c\u201d\u2018\u2019\u201e\u201a\u201f\u201b"
_TYPO_TO_ASCII = str.maketrans({
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
})

Kind = Literal["miscased-key", "typographic-quotes", "missing", "format", "unknown-type"]

__all__ = [
    "API_VERSION", "BINDING_SPEC_KEYS", "CAPITALISED_KEYS", "GUID_RE", "IDENTITY_SPEC_KEYS", "LABEL_KEY",
    "RESOURCE_ID_RE", "TYPOGRAPHIC_QUOTES", "PodIdentityProblem", "SelectorMatch", "binding_spec_problems",
    "compare_selector", "has_typographic_quotes", "identity_spec_problems", "identity_type",
    "is_guid", "is_resource_id", "miscased_keys", "strip_typographic_quotes", "to_ascii_quotes",
]


@dataclass(frozen=True)
class PodIdentityProblem:
    field: str  # spec key as it should be spelled (``selector``) or as found (``Selector``)
    message: str
    kind: Kind
    found_key: str | None = None  # the key as written, when it differs from ``field``


@dataclass(frozen=True)
class SelectorMatch:
    """How a pod label value relates to a binding selector.

    ``kind``: ``exact`` (NMI matches), ``near`` (differs only by ``reasons``: ``case``,
    ``whitespace``, ``typographic quotes``, ``quotes``), ``none``.
    """

    kind: Literal["exact", "near", "none"]
    reasons: tuple[str, ...] = ()


def has_typographic_quotes(value: object) -> bool:
    return isinstance(value, str) and any(ch in value for ch in TYPOGRAPHIC_QUOTES)


def to_ascii_quotes(value: str) -> str:
    """Replace typographic quotes by their ASCII counterparts (what the author meant)."""
    return value.translate(_TYPO_TO_ASCII)


def strip_typographic_quotes(value: str) -> str:
    """Drop surrounding typographic/ASCII quotes: ``“<x>”`` -> ``<x>`` (what YAML would have parsed)."""
    v = to_ascii_quotes(value.strip())
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


def miscased_keys(mapping: Mapping[str, Any] | None, known: tuple[str, ...]) -> list[tuple[str, str]]:
    """Keys of ``mapping`` that equal a ``known`` key only case-insensitively: ``[(found, expected)]``."""
    if not isinstance(mapping, Mapping):
        return []
    lower = {k.lower(): k for k in known}
    out = []
    for key in mapping:
        if not isinstance(key, str) or key in known:
            continue
        expected = lower.get(key.lower())
        if expected is not None:
            out.append((key, expected))
    return out


def is_resource_id(value: object) -> bool:
    return isinstance(value, str) and bool(RESOURCE_ID_RE.match(value.strip()))


def identity_type(spec: Mapping[str, Any] | None) -> int | None:
    """``spec.type`` as an int (0/1/2) if it is one (an int or a digit string), else None."""
    if not isinstance(spec, Mapping):
        return None
    value = spec.get("type")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def compare_selector(label_value: object, selector: object) -> SelectorMatch:
    """Compare a pod's ``aadpodidbinding`` value with a binding's ``selector`` (NMI: exact equality)."""
    if not isinstance(label_value, str) or not isinstance(selector, str):
        if label_value is not None and selector is not None and str(label_value) == str(selector):
            return SelectorMatch("exact")
        return SelectorMatch("none")
    if label_value == selector:
        return SelectorMatch("exact")
    reasons: list[str] = []
    a, b = label_value, selector
    if has_typographic_quotes(a) or has_typographic_quotes(b):
        reasons.append("typographic quotes")
        a, b = strip_typographic_quotes(a), strip_typographic_quotes(b)
    if a != b and (a.strip() != a or b.strip() != b):
        reasons.append("whitespace")
        a, b = a.strip(), b.strip()
    if a != b and (a.strip("\"'") == b.strip("\"'")):
        reasons.append("quotes")
        a, b = a.strip("\"'"), b.strip("\"'")
    if a != b and a.casefold() == b.casefold():
        reasons.append("case")
        a, b = a.casefold(), b.casefold()
    if a == b and reasons:
        return SelectorMatch("near", tuple(reasons))
    return SelectorMatch("none")


def _quote_problems(spec: Mapping[str, Any], keys: tuple[str, ...]) -> list[PodIdentityProblem]:
    out = []
    for key, value in spec.items():
        if has_typographic_quotes(value):
            field = key if isinstance(key, str) else str(key)
            out.append(PodIdentityProblem(
                field, f"{field} value {value!r} contains typographic quotes; YAML keeps them as part of the "
                       f"value; write {strip_typographic_quotes(str(value))!r}", "typographic-quotes"))
    return out


def _unjudgeable(value: object) -> bool:
    """Placeholders and typographic quotes are reported on their own; don't pile a format error on them."""
    return has_typographic_quotes(value) or find_placeholder(value) is not None


def binding_spec_problems(spec: Mapping[str, Any] | None) -> list[PodIdentityProblem]:
    """Problems with an ``AzureIdentityBinding.spec``: mis-cased keys, typographic quotes, missing fields."""
    if not isinstance(spec, Mapping):
        return [
            PodIdentityProblem("azureIdentity", "spec.azureIdentity is missing (spec is empty)", "missing"),
            PodIdentityProblem("selector", "spec.selector is missing (spec is empty)", "missing"),
        ]
    out: list[PodIdentityProblem] = []
    for found, expected in miscased_keys(spec, BINDING_SPEC_KEYS):
        out.append(PodIdentityProblem(
            expected, f"spec.{found} is ignored: keys are case-sensitive since aad-pod-identity 1.6.0; "
                      f"write {expected}", "miscased-key", found))
    out.extend(_quote_problems(spec, BINDING_SPEC_KEYS))
    miscased = {e for _, e in miscased_keys(spec, BINDING_SPEC_KEYS)}
    for key in ("azureIdentity", "selector"):
        if key not in spec and key not in miscased:
            out.append(PodIdentityProblem(key, f"spec.{key} is missing", "missing"))
        elif key in spec and (spec.get(key) is None or not str(spec.get(key)).strip()):
            out.append(PodIdentityProblem(key, f"spec.{key} is empty", "missing"))
    return out


def identity_spec_problems(spec: Mapping[str, Any] | None) -> list[PodIdentityProblem]:
    """Problems with an ``AzureIdentity.spec``: keys, type, for type 0 ``resourceID``/``clientID`` format."""
    if not isinstance(spec, Mapping):
        return [PodIdentityProblem("type", "spec is empty (type, resourceID and clientID are required)",
                                   "missing")]
    out: list[PodIdentityProblem] = []
    for found, expected in miscased_keys(spec, IDENTITY_SPEC_KEYS):
        out.append(PodIdentityProblem(
            expected, f"spec.{found} is ignored: keys are case-sensitive since aad-pod-identity 1.6.0; "
                      f"write {expected}", "miscased-key", found))
    out.extend(_quote_problems(spec, IDENTITY_SPEC_KEYS))
    miscased = {e for _, e in miscased_keys(spec, IDENTITY_SPEC_KEYS)}
    if "type" not in spec:
        out.append(PodIdentityProblem("type", "spec.type is missing (0 = user-assigned managed identity)",
                                      "missing"))
        kind: int | None = None
    else:
        kind = identity_type(spec)
        if kind not in IDENTITY_TYPE_NAMES:
            out.append(PodIdentityProblem("type", f"spec.type {spec.get('type')!r} is not 0, 1 or 2",
                                          "unknown-type"))
    if kind == IDENTITY_TYPE_USER_ASSIGNED:
        resource_id = spec.get("resourceID")
        if "resourceID" not in spec:
            if "resourceID" not in miscased:
                out.append(PodIdentityProblem("resourceID", "spec.resourceID is required for type 0",
                                              "missing"))
        elif not is_resource_id(resource_id) and not _unjudgeable(resource_id):
            out.append(PodIdentityProblem(
                "resourceID", f"spec.resourceID {resource_id!r} does not match {RESOURCE_ID_TEMPLATE}",
                "format"))
    if kind in IDENTITY_TYPE_NAMES:
        client_id = spec.get("clientID")
        if "clientID" not in spec:
            if "clientID" not in miscased:
                out.append(PodIdentityProblem("clientID", "spec.clientID is missing", "missing"))
        elif not is_guid(client_id) and not _unjudgeable(client_id):
            out.append(PodIdentityProblem("clientID", f"spec.clientID {client_id!r} is not a GUID", "format"))
    tenant = spec.get("tenantID")
    if kind in (IDENTITY_TYPE_SERVICE_PRINCIPAL, IDENTITY_TYPE_SERVICE_PRINCIPAL_CERT) and not tenant \
            and "tenantID" not in miscased:
        out.append(PodIdentityProblem("tenantID", "spec.tenantID is required for service principal types",
                                      "missing"))
    return out
