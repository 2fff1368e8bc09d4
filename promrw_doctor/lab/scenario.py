"""Lab scenarios: load ``fixtures/scenarios/<name>/scenario.yaml``, validate, resolve ``extends``.

A scenario describes one emulated world (Kubernetes objects, container logs, the
doctor's RBAC, and the Azure state) plus what the doctor must conclude about it. The
format is documented in ``docs/SCENARIOS.md`` and its shape in ``scenario.schema.json``.

Why a hand-written validator: the shape is fixed and small, the errors must be one line
(``<file>: <json path>: <problem>``), and ``jsonschema`` is only a dev dependency. The
validator implements the subset of JSON Schema the schema file uses (type, properties,
required, additionalProperties, patternProperties, items, enum, pattern, minimum,
minLength, anyOf, $ref), so the schema file stays the single description of the shape
and the tests cross-check it with the real ``jsonschema``.

Resolution order for a file with ``extends``: the parent is resolved first (recursively,
cycles are an error), then this file's ``kubernetes.remove`` drops inherited objects, its
``kubernetes.objects`` replace/append by (kind, namespace, name), its ``kubernetes.patch``
entries are applied, ``logs`` and ``prometheus`` are merged by key, ``deny`` replaces, and
``azure`` is deep-merged (mappings merge, lists are replaced, ``null`` deletes a key).

Placeholders (``{{now-5m}}``, ``{{ingestion_url:<dcr>}}``, ``{{dce_endpoint:<dce>}}``,
``{{lab_dir}}``) are checked at load time and substituted by :func:`materialise` when a
world starts, because only then are the ports and the clock known.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..core.errors import InputError

SCENARIO_FILE = "scenario.yaml"
SCHEMA_FILE = Path(__file__).with_name("scenario.schema.json")
ENV_SCENARIO_DIRS = "PROMRW_DOCTOR_SCENARIO_DIRS"

VARIANTS = ("managedIdentity", "podIdentity", "aadApplication", "workloadIdentity")
PROBE_STAGES = ("ok", "token", "ingestion", "network", "query")
SIDECAR_CONTAINER = "prom-remotewrite"

# Placeholders: {{now}}, {{now-5m}}, {{now+30d}}, {{now-10s|unix}} (formats: rfc3339 (default), unix, klog,
# ms), {{lab_dir}}, {{authority_host}}, {{ingestion_url:<dcr>}}, {{dce_endpoint:<dce>}},
# {{cert_thumbprint:<certificate>}}.
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NOW = re.compile(r"^now(?:([+-])(\d+)([smhd]))?(?:\|(rfc3339|unix|klog|ms))?$")
_SIMPLE_PLACEHOLDERS = ("lab_dir", "authority_host")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


# --------------------------------------------------------------------------------------- locations
def builtin_scenario_dir() -> Path:
    """Where the shipped scenarios live: packaged next to this module, else the repository's fixtures."""
    packaged = Path(__file__).with_name("scenarios")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"


def scenario_dirs(extra: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """Search path, lowest priority first: built-ins, ``$PROMRW_DOCTOR_SCENARIO_DIRS``, then ``extra``.

    A later directory's scenario replaces an earlier one with the same name (users can
    override a built-in world without copying the others).
    """
    dirs = [builtin_scenario_dir()]
    env = os.environ.get(ENV_SCENARIO_DIRS, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    for d in extra:
        p = Path(d)
        if not p.is_dir():
            raise InputError(f"--scenario-dir {p}: not a directory")
        dirs.append(p)
    return dirs


def _index(dirs: Sequence[Path]) -> dict[str, Path]:
    """name -> scenario.yaml, later directories winning."""
    out: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for sub in sorted(d.iterdir()):
            f = sub / SCENARIO_FILE
            if sub.is_dir() and f.is_file():
                out[sub.name] = f
    return out


# --------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class ScenarioInfo:
    """What ``lab scenarios`` lists."""

    name: str
    description: str
    variant: str
    expected_root_causes: tuple[str, ...]
    path: Path
    traffic: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "variant": self.variant,
                "expected_root_causes": list(self.expected_root_causes), "traffic": self.traffic,
                "path": str(self.path)}


@dataclass(frozen=True)
class Scenario:
    """A resolved scenario (``extends`` applied): everything a :class:`~promrw_doctor.lab.world.LabWorld` needs.

    ``kubernetes`` holds ``objects`` (list of manifests), ``logs`` (``"ns/pod/container[/previous]"``
    -> text), ``deny`` (RBAC denials for the doctor's kube identity) and ``prometheus`` (what the
    Prometheus container serves through the pod proxy). ``azure`` is the raw ``azure:`` mapping;
    the world turns it into an :class:`~promrw_doctor.lab.azure_state.AzureState`. Strings may
    still contain placeholders: see :func:`materialise`.
    """

    name: str
    description: str
    variant: str
    expected_root_causes: tuple[str, ...]
    probe_stage: str | None
    traffic: bool
    kubernetes: dict[str, Any]
    azure: dict[str, Any]
    path: Path
    extends_chain: tuple[str, ...] = ()
    notes: str = ""

    # -- convenience lookups (read-only views over the raw data)
    @property
    def objects(self) -> list[dict[str, Any]]:
        return list(self.kubernetes.get("objects") or [])

    def find(self, kind: str, name: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.objects if _obj_matches(o, kind, name, namespace)]

    @property
    def prometheus_pod(self) -> tuple[str, str]:
        """(namespace, name) of the Prometheus pod the lab's traffic and pod proxy stand for."""
        ref = str((self.kubernetes.get("prometheus") or {}).get("pod") or "")
        ns, _, name = ref.partition("/")
        return ns, name

    def pod(self) -> dict[str, Any] | None:
        ns, name = self.prometheus_pod
        found = self.find("Pod", name, ns)
        return found[0] if found else None

    def sidecar_container(self) -> dict[str, Any] | None:
        pod = self.pod()
        if pod is None:
            return None
        for c in (pod.get("spec") or {}).get("containers") or []:
            if c.get("name") == SIDECAR_CONTAINER:
                return dict(c)
        return None

    def sidecar_env(self) -> dict[str, str]:
        """The sidecar's literal env (``valueFrom`` entries are skipped): what the forwarder is configured from."""
        c = self.sidecar_container() or {}
        out: dict[str, str] = {}
        for e in c.get("env") or []:
            if isinstance(e, dict) and "name" in e and "value" in e and e["value"] is not None:
                out[str(e["name"])] = str(e["value"])
        return out

    def with_denials(self, *, azure: Iterable[str] = (), kubernetes: Iterable[dict[str, str]] = ()) -> Scenario:
        """The same world with extra permissions stripped from the doctor's identity (``lab ... --deny``)."""
        az = copy.deepcopy(self.azure)
        denied = list(az.get("doctor_denied") or [])
        denied += [d for d in azure if d not in denied]
        az["doctor_denied"] = denied
        kube = copy.deepcopy(self.kubernetes)
        kube["deny"] = list(kube.get("deny") or []) + [dict(d) for d in kubernetes]
        return replace(self, azure=az, kubernetes=kube)

    def info(self) -> ScenarioInfo:
        return ScenarioInfo(self.name, self.description, self.variant, self.expected_root_causes,
                            self.path, self.traffic)


# --------------------------------------------------------------------------------------- schema subset
@functools.cache
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _is_type(v: Any, t: str) -> bool:
    actual = _type_name(v)
    return actual == t or (t == "number" and actual == "integer")


def _path_join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


class _SchemaError(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _validate(value: Any, sch: dict[str, Any], path: str, root: dict[str, Any]) -> None:
    """Raise :class:`_SchemaError` for the first violation (depth first, document order)."""
    if "$ref" in sch:
        ref = str(sch["$ref"])
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        _validate(value, target, path, root)
        return
    if "anyOf" in sch:
        errors: list[_SchemaError] = []
        for alt in sch["anyOf"]:
            try:
                _validate(value, alt, path, root)
                break
            except _SchemaError as exc:
                errors.append(exc)
        else:
            # Prefer the error of the alternative whose type matched (it is the most specific).
            typed = [e for e, alt in zip(errors, sch["anyOf"], strict=True)
                     if "type" in alt and _matches_type(value, alt["type"])]
            if typed:
                raise typed[0]
            raise _SchemaError(path, sch.get("description_short") or
                               "expected " + " or ".join(_describe(a, root) for a in sch["anyOf"]))
        return
    t = sch.get("type")
    if t is not None and not _matches_type(value, t):
        want = t if isinstance(t, str) else " or ".join(t)
        raise _SchemaError(path, f"expected {_article(want)}, got {_type_name(value)}")
    if "enum" in sch and value not in sch["enum"]:
        choices = ", ".join(json.dumps(c) for c in sch["enum"])
        raise _SchemaError(path, f"{json.dumps(value)} is not one of {choices}")
    if isinstance(value, str):
        if "minLength" in sch and len(value) < sch["minLength"]:
            raise _SchemaError(path, "must not be empty" if sch["minLength"] == 1
                               else f"shorter than {sch['minLength']} characters")
        if "pattern" in sch and not re.search(sch["pattern"], value):
            hint = sch.get("patternHint") or f"does not match {sch['pattern']}"
            raise _SchemaError(path, f"{json.dumps(value)} {hint}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in sch and value < sch["minimum"]:
            raise _SchemaError(path, f"{value} is below the minimum {sch['minimum']}")
        if "maximum" in sch and value > sch["maximum"]:
            raise _SchemaError(path, f"{value} is above the maximum {sch['maximum']}")
    if isinstance(value, dict):
        for req in sch.get("required", []):
            if req not in value:
                raise _SchemaError(_path_join(path, req), "required field is missing")
        props: dict[str, Any] = sch.get("properties", {})
        patterns: dict[str, Any] = sch.get("patternProperties", {})
        additional = sch.get("additionalProperties", True)
        for k, v in value.items():
            if not isinstance(k, str):
                raise _SchemaError(path, f"keys must be strings, got {_type_name(k)} {k!r}")
            sub = _path_join(path, k)
            if k in props:
                _validate(v, props[k], sub, root)
                continue
            matched = False
            for pat, psch in patterns.items():
                if re.search(pat, k):
                    _validate(v, psch, sub, root)
                    matched = True
            if matched:
                continue
            if additional is False:
                known = ", ".join(sorted(props)) or "none"
                raise _SchemaError(sub, f"unknown field (known: {known})")
            if isinstance(additional, dict):
                _validate(v, additional, sub, root)
    if isinstance(value, list) and "items" in sch:
        if "minItems" in sch and len(value) < sch["minItems"]:
            raise _SchemaError(path, f"needs at least {sch['minItems']} item(s)")
        for i, item in enumerate(value):
            _validate(item, sch["items"], _path_join(path, i), root)


def _matches_type(value: Any, t: str | list[str]) -> bool:
    return any(_is_type(value, x) for x in ([t] if isinstance(t, str) else t))


def _article(t: str) -> str:
    return ("an " if t[:1] in "aeiou" else "a ") + t


def _describe(sch: dict[str, Any], root: dict[str, Any]) -> str:
    if "$ref" in sch:
        target: Any = root
        for part in str(sch["$ref"])[2:].split("/"):
            target = target[part]
        return _describe(target, root)
    if "enum" in sch:
        return "/".join(json.dumps(c) for c in sch["enum"])
    t = sch.get("type", "value")
    return _article(t if isinstance(t, str) else " or ".join(t))


def validate_document(data: Any, file: str | Path) -> None:
    """Validate one scenario file's own content (before ``extends`` is applied); one-line :class:`InputError`.

    The ``azure`` section is only checked for being a mapping here: a child scenario may give
    a partial entry (``workspaces: [{name: amw-lab, data: null}]``) that is complete only once
    merged, so :func:`validate_azure` runs on the resolved section.
    """
    root = schema()
    file_schema = dict(root)
    file_schema["properties"] = {**root["properties"], "azure": {"type": "object"}}
    try:
        _validate(data, file_schema, "$", root)
    except _SchemaError as exc:
        raise InputError(f"{file}: {exc.path}: {exc.problem}") from None


def validate_azure(azure: Any, file: str | Path) -> None:
    """Validate a resolved ``azure`` section (``extends`` applied)."""
    root = schema()
    try:
        _validate(azure, root["$defs"]["azure"], "$.azure", root)
    except _SchemaError as exc:
        raise InputError(f"{file}: {exc.path}: {exc.problem}") from None


# --------------------------------------------------------------------------------------- loading
def _read_yaml(path: Path) -> dict[str, Any]:
    """Parse one scenario file (cached per path/mtime/size: bases are shared by every scenario)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    return copy.deepcopy(_parse_yaml(path, st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=256)
def _parse_yaml(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: $: not valid YAML: {where}{problem}") from None
    if data is None:
        raise InputError(f"{path}: $: the file is empty")
    if not isinstance(data, dict):
        raise InputError(f"{path}: $: expected a mapping, got {_type_name(data)}")
    return data


def _obj_key(o: dict[str, Any]) -> tuple[str, str, str]:
    md = o.get("metadata") or {}
    return (str(o.get("kind", "")), str(md.get("namespace") or ""), str(md.get("name", "")))


def _obj_matches(o: dict[str, Any], kind: str | list[str] | None, name: str | None,
                 namespace: str | None) -> bool:
    k, ns, n = _obj_key(o)
    kinds = [kind] if isinstance(kind, str) else kind
    if kinds is not None and k not in kinds:
        return False
    if name is not None and n != name:
        return False
    return namespace is None or ns == namespace


def deep_merge(base: Any, over: Any, *, by_name: bool = False) -> Any:
    """``over`` merged into a copy of ``base``: mappings merge recursively, ``None`` deletes, lists replace.

    With ``by_name`` (the ``azure`` section), a list of mappings that all carry ``name``
    merges item by item on ``name`` (new names are appended), so a child can change one
    workspace without restating the others; lists without names are replaced.
    """
    if isinstance(base, dict) and isinstance(over, dict):
        out = copy.deepcopy(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = deep_merge(out[k], v, by_name=by_name)
            else:
                out[k] = _strip_nulls(copy.deepcopy(v))
        return out
    if by_name and _named_list(base) and _named_list(over):
        merged = copy.deepcopy(base)
        for item in over:
            idx = next((i for i, b in enumerate(merged) if b["name"] == item["name"]), None)
            if idx is None:
                merged.append(_strip_nulls(copy.deepcopy(item)))
            else:
                merged[idx] = deep_merge(merged[idx], item, by_name=True)
        return merged
    return _strip_nulls(copy.deepcopy(over))


def _named_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) and "name" in x for x in v)


def _strip_nulls(v: Any) -> Any:
    """Null-as-delete only makes sense against something; in new content drop such keys."""
    if isinstance(v, dict):
        return {k: _strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_strip_nulls(x) for x in v]
    return v


_CONTAINER_LISTS = (("spec", "containers"), ("spec", "initContainers"),
                    ("spec", "template", "spec", "containers"), ("spec", "template", "spec", "initContainers"))


def _container_lists(o: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Every container list of an object: Pod, workload template, or Prometheus CR ``spec.containers``."""
    for path in _CONTAINER_LISTS:
        cur: Any = o
        for part in path:
            cur = cur.get(part) if isinstance(cur, dict) else None
        if isinstance(cur, list):
            yield cur


def _containers_named(o: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c for lst in _container_lists(o) for c in lst if isinstance(c, dict) and c.get("name") == name]


def _set_env(container: dict[str, Any], name: str, value: str | None) -> None:
    env = [e for e in container.get("env") or [] if isinstance(e, dict)]
    idx = next((i for i, e in enumerate(env) if e.get("name") == name), None)
    if value is None:
        if idx is not None:
            env.pop(idx)
    elif idx is None:
        env.append({"name": name, "value": value})
    else:
        env[idx] = {"name": name, "value": value}
    if env:
        container["env"] = env
    else:
        container.pop("env", None)


def _walk_path(o: dict[str, Any], dotted: str) -> tuple[Any, str]:
    """Resolve ``a.b[name].c`` to (parent, last key); ``[x]`` selects a list item whose ``name`` is x.

    Intermediate steps must exist: a typo should fail loudly, not grow a new branch.
    """
    parts = re.findall(r"[^.\[\]]+|\[[^\]]*\]", dotted)
    if not parts or parts[-1].startswith("["):
        raise KeyError("the path must end with a field name")
    cur: Any = o
    for i, part in enumerate(parts[:-1]):
        where = "".join(p if p.startswith("[") else "." + p for p in parts[: i + 1]).lstrip(".")
        if part.startswith("["):
            want = part[1:-1]
            if not isinstance(cur, list):
                raise KeyError(f"{where}: not a list")
            cur = next((x for x in cur if isinstance(x, dict) and x.get("name") == want), None)
            if cur is None:
                raise KeyError(f"{where}: no item named {want!r}")
        else:
            if not isinstance(cur, dict) or part not in cur:
                raise KeyError(f"{where}: no such field")
            cur = cur[part]
    if not isinstance(cur, dict):
        raise KeyError(f"{dotted}: parent is not a mapping")
    return cur, parts[-1]


def _apply_patch(objects: list[dict[str, Any]], patch: dict[str, Any], where: str) -> None:
    kind = patch.get("kind")
    matched = [o for o in objects if _obj_matches(o, kind, patch.get("name"), patch.get("namespace"))]
    if not matched:
        sel = "/".join(str(patch.get(k)) for k in ("kind", "namespace", "name") if patch.get(k) is not None)
        raise InputError(f"{where}: matches no object ({sel or 'no selector'})")
    wildcard = patch.get("name") is None
    touched_container = False
    for o in matched:
        if "merge" in patch:
            merged = deep_merge(o, patch["merge"])
            o.clear()
            o.update(merged)
        for path, items in (patch.get("append") or {}).items():
            try:
                parent, last = _walk_path(o, path)
            except KeyError as exc:
                raise InputError(f"{where}.append[{json.dumps(path)}]: {exc.args[0]}") from None
            lst = parent.setdefault(last, [])
            if not isinstance(lst, list):
                raise InputError(f"{where}.append[{json.dumps(path)}]: not a list")
            lst.extend(copy.deepcopy(items))
        for cname, merge in (patch.get("containers") or {}).items():
            for c in _containers_named(o, cname):
                merged = deep_merge(c, merge)
                c.clear()
                c.update(merged)
                touched_container = True
        for cname, merge in (patch.get("containerStatuses") or {}).items():
            statuses = (o.get("status") or {}).get("containerStatuses") or []
            for st in statuses:
                if st.get("name") == cname:
                    merged = deep_merge(st, merge)
                    st.clear()
                    st.update(merged)
                    touched_container = True
        for cname in patch.get("removeContainers") or []:
            for lst in _container_lists(o):
                before = len(lst)
                lst[:] = [c for c in lst if not (isinstance(c, dict) and c.get("name") == cname)]
                touched_container = touched_container or len(lst) != before
            statuses = (o.get("status") or {}).get("containerStatuses")
            if isinstance(statuses, list):
                statuses[:] = [st for st in statuses if st.get("name") != cname]
        set_env = patch.get("setEnv")
        if set_env:
            cname = str(set_env["container"])
            for c in _containers_named(o, cname):
                for k, v in set_env.items():
                    if k != "container":
                        _set_env(c, k, v)
                touched_container = True
            if not wildcard and not _containers_named(o, cname):
                raise InputError(f"{where}.setEnv: {_obj_key(o)[0]} {_obj_key(o)[2]} has no container {cname!r}")
    needs_container = any(k in patch for k in ("containers", "containerStatuses", "setEnv", "removeContainers"))
    if needs_container and not touched_container:
        raise InputError(f"{where}: no matched object has the named container")


def _merge_kubernetes(base: dict[str, Any], child: dict[str, Any], file: Path) -> dict[str, Any]:
    objects = copy.deepcopy(list(base.get("objects") or []))
    for i, rm in enumerate(child.get("remove") or []):
        before = len(objects)
        objects = [o for o in objects if not _obj_matches(o, rm.get("kind"), rm.get("name"), rm.get("namespace"))]
        if len(objects) == before:
            sel = "/".join(str(rm.get(k)) for k in ("kind", "namespace", "name") if rm.get(k) is not None)
            raise InputError(f"{file}: $.kubernetes.remove[{i}]: matches no inherited object ({sel})")
    for new in child.get("objects") or []:
        key = _obj_key(new)
        idx = next((j for j, o in enumerate(objects) if _obj_key(o) == key), None)
        if idx is None:
            objects.append(copy.deepcopy(new))
        else:
            objects[idx] = copy.deepcopy(new)
    for i, p in enumerate(child.get("patch") or []):
        _apply_patch(objects, p, f"{file}: $.kubernetes.patch[{i}]")
    logs = dict(base.get("logs") or {})
    for k, v in (child.get("logs") or {}).items():
        if v is None:
            logs.pop(k, None)
        else:
            logs[k] = v
    out: dict[str, Any] = {"objects": objects, "logs": logs}
    out["deny"] = copy.deepcopy(child["deny"] if "deny" in child else base.get("deny") or [])
    prom = deep_merge(base.get("prometheus") or {}, child.get("prometheus") or {})
    if prom:
        out["prometheus"] = prom
    return out


def _resolve(name: str, index: dict[str, Path], stack: tuple[str, ...]) -> tuple[dict[str, Any], Path, tuple[str, ...]]:
    """The merged document for ``name`` and the extends chain (self first)."""
    path = index[name]
    doc = _read_yaml(path)
    validate_document(doc, path)
    if doc["name"] != name:
        raise InputError(f"{path}: $.name: {json.dumps(doc['name'])} must equal the directory name {json.dumps(name)}")
    parent_name = doc.get("extends")
    if parent_name is None:
        base: dict[str, Any] = {}
        chain: tuple[str, ...] = ()
    else:
        if parent_name in stack or parent_name == name:
            cycle = " -> ".join([*stack, name, parent_name])
            raise InputError(f"{path}: $.extends: cycle: {cycle}")
        if parent_name not in index:
            raise InputError(f"{path}: $.extends: unknown scenario {json.dumps(parent_name)}"
                             f"{_suggest(parent_name, index)}")
        base, _, chain = _resolve(parent_name, index, (*stack, name))
    # expected and notes belong to one world: a child that forgot `expected` must not inherit "healthy".
    merged: dict[str, Any] = {k: copy.deepcopy(v) for k, v in base.items()
                              if k not in ("name", "description", "expected", "notes")}
    for k in ("name", "description", "variant", "traffic", "expected", "notes"):
        if k in doc:
            merged[k] = copy.deepcopy(doc[k])
    merged["kubernetes"] = _merge_kubernetes(base.get("kubernetes") or {}, doc.get("kubernetes") or {}, path)
    merged["azure"] = deep_merge(base.get("azure") or {}, doc.get("azure") or {}, by_name=True)
    return merged, path, (name, *chain)


def _suggest(name: str, index: dict[str, Path]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(index), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def is_base(name: str) -> bool:
    """``_base-*`` directories hold shared worlds other scenarios extend; they are not listed or run."""
    return name.startswith("_")


def load_scenario(name: str, dirs: Sequence[str | os.PathLike[str]] = ()) -> Scenario:
    """Load, validate and resolve a scenario by name (or by a path to its directory / ``scenario.yaml``)."""
    name = name.strip()
    p = Path(name)
    search = scenario_dirs(dirs)
    if (p.suffix in (".yaml", ".yml") and p.is_file()) or (p / SCENARIO_FILE).is_file():
        directory = p.parent if p.is_file() else p
        search = [*search, directory.resolve().parent]
        name = directory.resolve().name
    index = _index(search)
    if name not in index:
        runnable = sorted(n for n in index if not is_base(n))
        raise InputError(f"unknown scenario {name!r}{_suggest(name, {n: index[n] for n in runnable})}; "
                         "see: promrw-doctor lab scenarios")
    if is_base(name):
        raise InputError(f"{index[name]}: {name} is a shared base, not a runnable scenario")
    return _finish(name, index)


def _finish(name: str, index: dict[str, Path]) -> Scenario:
    merged, path, chain = _resolve(name, index, ())
    for field_name in ("variant", "expected"):
        if field_name not in merged:
            where = "in this file" if field_name == "expected" else "here or in the extends chain"
            raise InputError(f"{path}: $.{field_name}: required (not set {where})")
    kube = merged["kubernetes"]
    az = merged["azure"]
    validate_azure(az, path)
    _check_resolved(kube, az, path)
    expected = merged["expected"]
    return Scenario(
        name=name,
        description=str(merged["description"]).strip(),
        variant=str(merged["variant"]),
        expected_root_causes=tuple(sorted(set(expected.get("root_causes") or []))),
        probe_stage=expected.get("probe_stage"),
        traffic=bool(merged.get("traffic", False)),
        kubernetes=kube,
        azure=az,
        path=path,
        extends_chain=chain[1:],
        notes=str(merged.get("notes") or ""),
    )


def _check_resolved(kube: dict[str, Any], az: dict[str, Any], path: Path) -> None:
    """Cross-field rules that only make sense on the resolved world."""
    for req in ("tenant_id", "subscription_id"):
        if not az.get(req):
            raise InputError(f"{path}: $.azure.{req}: required (not set here or in the extends chain)")
    seen: set[tuple[str, str, str]] = set()
    for i, o in enumerate(kube.get("objects") or []):
        key = _obj_key(o)
        if key in seen:
            raise InputError(f"{path}: $.kubernetes.objects[{i}]: duplicate object {'/'.join(x for x in key if x)}")
        seen.add(key)
    prom = kube.get("prometheus") or {}
    if prom.get("pod"):
        ns, _, pod = str(prom["pod"]).partition("/")
        if not any(_obj_matches(o, "Pod", pod, ns) for o in kube.get("objects") or []):
            raise InputError(f"{path}: $.kubernetes.prometheus.pod: no Pod {prom['pod']} among the objects")
    names = {
        "dcr": {d.get("name") for d in az.get("dcrs") or []},
        "dce": {d.get("name") for d in az.get("dces") or []},
        "cert": set(az.get("certificates") or {}),
    }
    for i, d in enumerate(az.get("dcrs") or []):
        if d.get("dce") and d["dce"] not in names["dce"]:
            raise InputError(f"{path}: $.azure.dcrs[{i}].dce: unknown DCE {json.dumps(d['dce'])}")
    certs = az.get("certificates") or {}
    for i, app in enumerate(az.get("applications") or []):
        for j, c in enumerate(app.get("certificates") or []):
            if c not in certs:
                raise InputError(f"{path}: $.azure.applications[{i}].certificates[{j}]: "
                                 f"unknown certificate {json.dumps(c)}")
    for where, s in _strings({"kubernetes": kube, "azure": az}, "$"):
        for m in _PLACEHOLDER.finditer(s):
            problem = _placeholder_problem(m.group(1), names)
            if problem:
                raise InputError(f"{path}: {where}: {problem}")


def _strings(v: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(v, str):
        yield path, v
    elif isinstance(v, dict):
        for k, x in v.items():
            yield from _strings(x, _path_join(path, str(k)))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _strings(x, _path_join(path, i))


def _placeholder_problem(expr: str, names: dict[str, set[Any]]) -> str | None:
    if _NOW.match(expr) or expr in _SIMPLE_PLACEHOLDERS:
        return None
    kind, _, arg = expr.partition(":")
    if kind == "ingestion_url":
        return None if arg in names["dcr"] else f"{{{{{expr}}}}}: unknown DCR {json.dumps(arg)}"
    if kind == "dce_endpoint":
        return None if arg in names["dce"] else f"{{{{{expr}}}}}: unknown DCE {json.dumps(arg)}"
    if kind == "cert_thumbprint":
        return None if arg in names["cert"] else f"{{{{{expr}}}}}: unknown certificate {json.dumps(arg)}"
    return (f"unknown placeholder {{{{{expr}}}}} (known: now, now-<N>s|m|h|d, now+<N>…, now…|unix|klog|ms, lab_dir, "
            "authority_host, ingestion_url:<dcr>, dce_endpoint:<dce>, cert_thumbprint:<certificate>)")


def list_scenarios(dirs: Sequence[str | os.PathLike[str]] = (), *, strict: bool = False) -> list[ScenarioInfo]:
    """Every runnable scenario on the search path, sorted by name (bases hidden).

    A broken file is listed with its error as the description unless ``strict`` (then
    the first error is raised), so one bad user file does not hide the others.
    """
    index = _index(scenario_dirs(dirs))
    out: list[ScenarioInfo] = []
    for name in sorted(index):
        if is_base(name):
            continue
        try:
            out.append(_finish(name, index).info())
        except InputError as exc:
            if strict:
                raise
            out.append(ScenarioInfo(name, f"INVALID: {exc}", "", (), index[name]))
    return out


# --------------------------------------------------------------------------------------- placeholders
@dataclass
class PlaceholderValues:
    """What placeholders stand for in one running world."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    lab_dir: str = ""
    authority_host: str = "https://login.microsoftonline.com/"
    ingestion_urls: dict[str, str] = field(default_factory=dict)  # dcr name -> URL
    dce_endpoints: dict[str, str] = field(default_factory=dict)  # dce name -> https://127.0.0.1:port
    cert_thumbprints: dict[str, str] = field(default_factory=dict)  # certificate name -> SHA-1 hex

    def time(self, expr: str) -> datetime | None:
        m = _NOW.match(expr)
        if not m:
            return None
        t = self.now
        if m.group(1):
            delta = timedelta(**{_UNITS[m.group(3)]: int(m.group(2))})
            t = t - delta if m.group(1) == "-" else t + delta
        return t

    def resolve(self, expr: str) -> str:
        t = self.time(expr)
        if t is not None:
            return format_time(t, _NOW.match(expr).group(4) or "rfc3339")  # type: ignore[union-attr]
        if expr == "lab_dir":
            return self.lab_dir
        if expr == "authority_host":
            return self.authority_host
        kind, _, arg = expr.partition(":")
        table = {"ingestion_url": self.ingestion_urls, "dce_endpoint": self.dce_endpoints,
                 "cert_thumbprint": self.cert_thumbprints}.get(kind)
        if table is None or arg not in table:
            raise InputError(f"placeholder {{{{{expr}}}}} cannot be resolved in this world")
        return table[arg]


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_time(t: datetime, fmt: str = "rfc3339") -> str:
    """Timestamps as the logs and APIs that carry them print them.

    ``rfc3339`` (Kubernetes, logrus), ``ms`` (Prometheus' go-kit ``ts=``), ``unix`` (metric
    values), ``klog`` (``I``-prefixed component logs such as NMI: ``0501 10:00:00.000000``).
    """
    u = t.astimezone(UTC)
    if fmt == "unix":
        return str(int(u.timestamp()))
    if fmt == "ms":
        return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"
    if fmt == "klog":
        return u.strftime("%m%d %H:%M:%S.%f")
    return rfc3339(u)


def materialise(value: Any, values: PlaceholderValues) -> Any:
    """A copy of ``value`` with every placeholder in every string substituted."""
    sub: Callable[[re.Match[str]], str] = lambda m: values.resolve(m.group(1))  # noqa: E731
    if isinstance(value, str):
        return _PLACEHOLDER.sub(sub, value) if "{{" in value else value
    if isinstance(value, dict):
        return {k: materialise(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [materialise(v, values) for v in value]
    return value
