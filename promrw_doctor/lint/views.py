"""Views over lint documents: where the pod spec, the sidecar, its env and labels live.

Helm values, a Prometheus CR, a Pod and a StatefulSet/Deployment keep the same things
(containers, volumes, pod labels, ``remoteWrite``) under different paths. A
:class:`Workload` hides that, and a :class:`Sidecar` is the ``prom-remotewrite`` container
of a workload with its env read into :class:`~promrw_doctor.domain.sidecar.SidecarSettings`.
Checks use these so each stays a few lines of judgement. Pure functions over data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.model import Variant
from ..domain.images import is_sidecar_image
from ..domain.sidecar import (
    POD_IDENTITY_LABEL,
    SIDECAR_CONTAINER_NAME,
    SidecarSettings,
    canonical_identity_type,
    settings_from_env,
)
from .loader import KIND_HELM_VALUES, DocumentSet, LintDocument, Path

HELM_SPEC: Path = ("prometheus", "prometheusSpec")


@dataclass(frozen=True)
class Workload:
    """Where a pod spec lives in a document, whatever its kind."""

    doc: LintDocument
    source: str  # "Helm values" | "Prometheus" | "Pod" | "StatefulSet" | "Deployment"
    spec_path: Path  # mapping holding containers and volumes
    labels_path: Path  # pod labels mapping
    remote_write_path: Path | None = None  # Prometheus remoteWrite list (Helm values, Prometheus CR)
    external_labels_path: Path | None = None

    @property
    def spec(self) -> Mapping[str, Any]:
        value = self.doc.get(*self.spec_path)
        return value if isinstance(value, Mapping) else {}

    @property
    def containers(self) -> list[Any]:
        value = self.spec.get("containers")
        return value if isinstance(value, list) else []

    @property
    def volumes(self) -> list[Any]:
        value = self.spec.get("volumes")
        return value if isinstance(value, list) else []

    @property
    def labels(self) -> Mapping[str, Any]:
        value = self.doc.get(*self.labels_path)
        return value if isinstance(value, Mapping) else {}

    @property
    def spec_name(self) -> str:
        """The dotted path users know: ``prometheus.prometheusSpec`` or ``spec``."""
        return ".".join(str(p) for p in self.spec_path)

    def dotted(self, *sub: str | int) -> str:
        return _dotted((*self.spec_path, *sub))

    def loc(self, *sub: str | int) -> str:
        return self.doc.loc(*self.spec_path, *sub)

    @property
    def label(self) -> str:
        return self.doc.label if self.source == "Helm values" else f"{self.source} {self.doc.name or '(unnamed)'}"


def _dotted(path: Path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out


def workloads(docs: DocumentSet) -> list[Workload]:
    """Every document that holds (or should hold) the sidecar."""
    out: list[Workload] = []
    for d in docs:
        if d.kind == KIND_HELM_VALUES:
            out.append(Workload(d, "Helm values", HELM_SPEC, (*HELM_SPEC, "podMetadata", "labels"),
                                (*HELM_SPEC, "remoteWrite"), (*HELM_SPEC, "externalLabels")))
        elif d.kind == "Prometheus":
            out.append(Workload(d, "Prometheus", ("spec",), ("spec", "podMetadata", "labels"),
                                ("spec", "remoteWrite"), ("spec", "externalLabels")))
        elif d.kind == "Pod":
            out.append(Workload(d, "Pod", ("spec",), ("metadata", "labels")))
        elif d.kind in ("StatefulSet", "Deployment"):
            out.append(Workload(d, d.kind, ("spec", "template", "spec"), ("spec", "template", "metadata", "labels")))
    return out


@dataclass(frozen=True)
class EnvShapeProblem:
    message: str
    path: Path  # relative to the container


@dataclass(frozen=True)
class Sidecar:
    """The remote-write container of a workload, with its env read leniently."""

    workload: Workload
    index: int
    container: Mapping[str, Any]
    env: dict[str, str | None]  # None: valueFrom (present, value unknown)
    env_index: dict[str, int]  # env name -> index in the env list
    env_raw: dict[str, Any] = field(default_factory=dict)  # values as written (int, bool, str)
    shape_problems: tuple[EnvShapeProblem, ...] = ()

    @property
    def path(self) -> Path:
        return (*self.workload.spec_path, "containers", self.index)

    @property
    def doc(self) -> LintDocument:
        return self.workload.doc

    @property
    def name(self) -> str:
        value = self.container.get("name")
        return str(value) if value else SIDECAR_CONTAINER_NAME

    @property
    def image(self) -> str | None:
        value = self.container.get("image")
        return str(value) if isinstance(value, str) and value.strip() else None

    @property
    def settings(self) -> SidecarSettings:
        return settings_from_env(self.env)

    @property
    def identity_type(self) -> str | None:
        return canonical_identity_type(self.env.get("IDENTITY_TYPE"))

    def loc(self, *sub: str | int) -> str:
        return self.doc.loc(*self.path, *sub)

    def env_loc(self, name: str) -> str:
        """``file:line`` of ``value:`` of env ``name`` (or of the env list / container)."""
        if name in self.env_index:
            i = self.env_index[name]
            if self.doc.has(*self.path, "env", i, "value"):
                return self.doc.loc(*self.path, "env", i, "value")
            return self.doc.loc(*self.path, "env", i)
        if self.doc.has(*self.path, "env"):
            return self.doc.loc(*self.path, "env")
        return self.loc()

    def dotted(self, *sub: str | int) -> str:
        return _dotted((*self.path, *sub))

    def variant(self, bindings_given: bool = False) -> str | None:
        """The identity variant this sidecar is configured for (see :class:`~promrw_doctor.core.model.Variant`)."""
        t = self.identity_type
        if t == "userAssigned":
            if POD_IDENTITY_LABEL in self.workload.labels or bindings_given:
                return Variant.POD_IDENTITY.value
            return Variant.MANAGED_IDENTITY.value
        if t == "aadApplication":
            return Variant.AAD_APPLICATION.value
        if t == "workloadIdentity":
            return Variant.WORKLOAD_IDENTITY.value
        return None


def _read_env(container: Mapping[str, Any]) -> tuple[dict[str, str | None], dict[str, int], dict[str, Any],
                                                     tuple[EnvShapeProblem, ...]]:
    env: dict[str, str | None] = {}
    index: dict[str, int] = {}
    raw: dict[str, Any] = {}
    problems: list[EnvShapeProblem] = []
    items = container.get("env")
    if items is None:
        return env, index, raw, ()
    if isinstance(items, Mapping):
        problems.append(EnvShapeProblem("env is a mapping; Kubernetes expects a list of {name, value} items",
                                        ("env",)))
        for k, v in items.items():
            env[str(k)] = None if v is None else str(v)
            raw[str(k)] = v
        return env, index, raw, tuple(problems)
    if not isinstance(items, list):
        return env, index, raw, (EnvShapeProblem(f"env is a {type(items).__name__}, not a list", ("env",)),)
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item.get("name"):
            problems.append(EnvShapeProblem(f"env[{i}] has no name", ("env", i)))
            continue
        name = str(item["name"]).strip()
        if name in index:
            problems.append(EnvShapeProblem(f"env {name} is set twice (env[{index[name]}] and env[{i}]); "
                                            "the last one wins", ("env", i)))
        index[name] = i
        if "valueFrom" in item and "value" not in item:
            env[name] = None
            raw[name] = None
            continue
        value = item.get("value")
        raw[name] = value
        if value is not None and not isinstance(value, str):
            problems.append(EnvShapeProblem(
                f"env {name} value {value!r} is a YAML {type(value).__name__}; Kubernetes requires a string "
                f"(quote it: '{_scalar_text(value)}')", ("env", i, "value")))
        env[name] = "" if value is None else _scalar_text(value)
    return env, index, raw, tuple(problems)


def _scalar_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def is_sidecar_container(container: Any) -> bool:
    if not isinstance(container, Mapping):
        return False
    if container.get("name") == SIDECAR_CONTAINER_NAME:
        return True
    image = container.get("image")
    if isinstance(image, str) and is_sidecar_image(image):
        return True
    env = container.get("env")
    if isinstance(env, list):
        return any(isinstance(e, Mapping) and e.get("name") == "INGESTION_URL" for e in env)
    return False


def sidecars_of(workload: Workload) -> list[Sidecar]:
    out = []
    for i, c in enumerate(workload.containers):
        if is_sidecar_container(c):
            env, index, raw, problems = _read_env(c)
            out.append(Sidecar(workload, i, c, env, index, raw, problems))
    return out


def all_sidecars(docs: DocumentSet) -> list[Sidecar]:
    return [s for w in workloads(docs) for s in sidecars_of(w)]


def run_variant(docs: DocumentSet) -> str | None:
    """The run's identity variant (first sidecar that has one), or a guess from the CRDs given."""
    bindings = bool(docs.of_kind("AzureIdentityBinding"))
    for sidecar in all_sidecars(docs):
        v = sidecar.variant(bindings)
        if v:
            return v
    if bindings or docs.of_kind("AzureIdentity"):
        return Variant.POD_IDENTITY.value
    if docs.of_kind("SecretProviderClass"):
        return Variant.AAD_APPLICATION.value
    return None


# --------------------------------------------------------------------------- walking


def iter_strings(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every string value (not keys) under ``value`` with its path. Iterative; shared objects visited once."""
    seen: set[int] = set()
    stack: list[tuple[Any, Path]] = [(value, path)]
    while stack:
        cur, p = stack.pop()
        if isinstance(cur, str):
            yield p, cur
            continue
        if isinstance(cur, Mapping | list):
            if id(cur) in seen:
                continue
            seen.add(id(cur))
            items = list(cur.items()) if isinstance(cur, Mapping) else list(enumerate(cur))
            for k, v in reversed(items):
                stack.append((v, (*p, k)))


def iter_keys(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every string mapping key under ``value`` (path includes the key)."""
    seen: set[int] = set()
    stack: list[tuple[Any, Path]] = [(value, path)]
    while stack:
        cur, p = stack.pop()
        if not isinstance(cur, Mapping | list) or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, Mapping):
            for k, v in reversed(list(cur.items())):
                if isinstance(k, str):
                    yield (*p, k), k
                stack.append((v, (*p, k)))
        else:
            for i, v in reversed(list(enumerate(cur))):
                stack.append((v, (*p, i)))


_HTML_TAGS = {"a", "b", "i", "p", "br", "em", "code", "pre", "strong", "li", "ul", "ol", "hr", "tt", "u", "s",
              "span", "div", "table", "tr", "td", "th", "sub", "sup", "small", "kbd", "details", "summary"}
_PLACEHOLDER = re.compile(r"<([A-Za-z][A-Za-z0-9 _.:/\-]{0,80})>")


def find_placeholders(text: str) -> list[str]:
    """Doc placeholders (``<INGESTION-URL>``, ``<client-id>``) in ``text``; HTML-ish tags are ignored."""
    out = []
    for m in _PLACEHOLDER.finditer(text):
        inner = m.group(1).strip()
        if inner.lower() in _HTML_TAGS or inner.lower().startswith(("/", "!")):
            continue
        out.append(m.group(0))
    return out


# --------------------------------------------------------------------------- Prometheus version


def prometheus_version_source(workload: Workload) -> tuple[str, Path] | None:
    """Where the Prometheus version is written: ``(value, path)``; None when the chart default applies.

    Helm values: ``prometheusSpec.image.tag`` (or ``.version``); Prometheus CR: ``spec.version``,
    ``spec.image``, ``spec.tag``; Pod/StatefulSet: the image of the ``prometheus`` container.
    """
    spec = workload.spec
    sp = workload.spec_path
    if workload.source in ("Helm values", "Prometheus"):
        image = spec.get("image")
        if isinstance(image, Mapping):
            tag = image.get("tag")
            if isinstance(tag, str | int | float) and str(tag).strip():
                return str(tag), (*sp, "image", "tag")
        elif isinstance(image, str) and image.strip():
            return image, (*sp, "image")
        for key in ("version", "tag"):
            value = spec.get(key)
            if isinstance(value, str | int | float) and str(value).strip():
                return str(value), (*sp, key)
        return None
    for i, c in enumerate(workload.containers):
        if isinstance(c, Mapping) and c.get("name") == "prometheus" and isinstance(c.get("image"), str):
            return str(c["image"]), (*sp, "containers", i, "image")
    return None


def to_yaml(value: Any) -> str:
    """A YAML snippet for remediation text (block style, key order kept)."""
    import yaml

    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True, width=200).rstrip()


_SECRET_NAME = re.compile(r"(?i)(secret|password|passwd|token|private[_-]?key|api[_-]?key|access[_-]?key|"
                          r"connection[_-]?string|sas|credential)")


def is_secret_path(doc: LintDocument, path: Path) -> bool:
    """Does the value at ``path`` hold a secret (a secret-named key, or the value of a secret-named env)?

    Lint evidence quotes values; these must never be quoted.
    """
    if not path:
        return False
    last = path[-1]
    if isinstance(last, str) and last != "value" and _SECRET_NAME.search(last):
        return True
    if last == "value" and len(path) >= 3 and isinstance(path[-2], int):
        item = doc.get(*path[:-1])
        name = item.get("name") if isinstance(item, Mapping) else None
        return isinstance(name, str) and bool(_SECRET_NAME.search(name))
    return False
