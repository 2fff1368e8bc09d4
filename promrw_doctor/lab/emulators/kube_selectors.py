"""Label and field selectors with the API server's grammar and semantics.

Collectors build selectors from user input (``-l app=prometheus``) and from workload specs
(a DaemonSet's ``matchExpressions``); the lab must accept exactly what a real API server
accepts, reject what it rejects (400), and match the same objects, including the subtle
cases (``!=``/``notin`` match objects that lack the label).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class SelectorError(ValueError):
    """A selector the API server would reject with 400 BadRequest; the message is the Status message."""


# --------------------------------------------------------------------------------------------- labels

@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists, !, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, Any]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return has and str(value) in self.values
        if self.op in ("!=", "notin"):
            return not has or str(value) not in self.values
        if not has:
            return False
        try:
            number = int(str(value))
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


LabelSelector = tuple[Requirement, ...]

_OPS = frozenset({"==", "!=", "=", "(", ")", ",", "!", "<", ">"})
_TOKEN = re.compile(r"\s*(?:(?P<op>==|!=|=|\(|\)|,|!|>|<)|(?P<ident>[^\s!=(),<>]+))")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:  # pragma: no cover - the pattern consumes any non-space char
            raise SelectorError(f"unable to parse requirement: unexpected character at {pos} in {text!r}")
        out.append(m.group("op") or m.group("ident"))
        pos = m.end()
    return out


def _validate_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        raise SelectorError(f'unable to parse requirement: key: Invalid value: "{key}": prefix part must be '
                            "a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not _NAME.match(name):
        raise SelectorError(
            f'unable to parse requirement: key: Invalid value: "{key}": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")


def _validate_value(key: str, value: str) -> None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        raise SelectorError(
            f'unable to parse requirement: values[0][{key}]: Invalid value: "{value}": a valid label '
            "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``, ``>``, ``<``)."""
    if not text or not text.strip():
        return ()
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def expect_ident(what: str) -> str:
        nonlocal i
        if i >= len(toks) or toks[i] in _OPS:
            found = toks[i] if i < len(toks) else "end of string"
            raise SelectorError(f"unable to parse requirement: found '{found}', expected: {what}")
        tok = toks[i]
        i += 1
        return tok

    while True:
        if i < len(toks) and toks[i] == "!":
            i += 1
            key = expect_ident("identifier after '!'")
            _validate_key(key)
            reqs.append(Requirement(key, "!"))
        else:
            key = expect_ident("identifier")
            _validate_key(key)
            op = toks[i] if i < len(toks) else ","
            if op == ",":
                reqs.append(Requirement(key, "exists"))
            elif op in ("=", "==", "!="):
                i += 1
                value = ""
                if i < len(toks) and toks[i] not in _OPS:
                    value = toks[i]
                    i += 1
                _validate_value(key, value)
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            elif op in ("in", "notin"):
                i += 1
                if i >= len(toks) or toks[i] != "(":
                    found = toks[i] if i < len(toks) else "end of string"
                    raise SelectorError(f"unable to parse requirement: found '{found}', expected: '('")
                i += 1
                values: list[str] = []
                while True:
                    if i < len(toks) and toks[i] == ")" and not values:
                        i += 1
                        break
                    values.append(expect_ident("',', ')' or identifier"))
                    if i < len(toks) and toks[i] == ")":
                        i += 1
                        break
                    if i >= len(toks) or toks[i] != ",":
                        found = toks[i] if i < len(toks) else "end of string"
                        raise SelectorError(
                            f"unable to parse requirement: found '{found}', expected: ',' or ')'")
                    i += 1
                if not values:
                    raise SelectorError("unable to parse requirement: values: Invalid value: []: "
                                        "for 'in', 'notin' operators, values set can't be empty")
                for v in values:
                    _validate_value(key, v)
                reqs.append(Requirement(key, op, tuple(values)))
            elif op in (">", "<"):
                i += 1
                value = expect_ident("integer value")
                if not re.fullmatch(r"-?\d+", value):
                    raise SelectorError(f'unable to parse requirement: values[0]: Invalid value: "{value}": '
                                        "for 'Gt', 'Lt' operators, the value must be an integer")
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
            else:
                raise SelectorError(f"unable to parse requirement: found '{op}', expected: "
                                    "'=', '!=', '==', 'in', 'notin'")
        if i >= len(toks):
            return tuple(reqs)
        if toks[i] != ",":
            raise SelectorError(f"found '{toks[i]}', expected: ',' or 'end of string'")
        i += 1


def labels_match(selector: LabelSelector, labels: Mapping[str, Any] | None) -> bool:
    if not selector:
        return True
    labels = labels or {}
    return all(r.matches(labels) for r in selector)


# --------------------------------------------------------------------------------------------- fields

FieldGetter = Callable[[Mapping[str, Any]], Any]


def _path(*keys: str) -> FieldGetter:
    def get(obj: Mapping[str, Any]) -> Any:
        cur: Any = obj
        for k in keys:
            if not isinstance(cur, Mapping):
                return None
            cur = cur.get(k)
        return cur
    return get


_COMMON: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

#: Field labels each resource supports (what the real registry strategies register); others are 400.
FIELDS: dict[str, dict[str, FieldGetter]] = {
    "pods": {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": lambda o: bool(_path("spec", "hostNetwork")(o)),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    "events": {
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    "secrets": {"type": _path("type")},
    "nodes": {"spec.unschedulable": lambda o: bool(_path("spec", "unschedulable")(o))},
    "namespaces": {"status.phase": _path("status", "phase")},
    "replicasets": {"status.replicas": _path("status", "replicas")},
}


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negate: bool
    getter: FieldGetter

    def matches(self, obj: Mapping[str, Any]) -> bool:
        raw = self.getter(obj)
        actual = ("true" if raw else "false") if isinstance(raw, bool) else ("" if raw is None else str(raw))
        return (actual != self.value) if self.negate else (actual == self.value)


FieldSelector = tuple[FieldTerm, ...]


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, escaped = [], [], False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            cur.append(ch)
            escaped = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(text: str | None, plural: str) -> FieldSelector:
    """Parse ``fieldSelector`` for ``plural``; unknown field labels are the API server's 400."""
    if not text or not text.strip():
        return ()
    supported = {**_COMMON, **FIELDS.get(plural, {})}
    terms: list[FieldTerm] = []
    for part in _split_unescaped(text, ","):
        m = re.fullmatch(r"\s*([^=!\s]+)\s*(==|!=|=)(.*)", part)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.group(1), m.group(2), _unescape(m.group(3).strip())
        getter = supported.get(field)
        if getter is None:
            raise SelectorError(f'field label not supported: {field}')
        terms.append(FieldTerm(field, value, op == "!=", getter))
    return tuple(terms)


def fields_match(selector: FieldSelector, obj: Mapping[str, Any]) -> bool:
    return all(t.matches(obj) for t in selector)
