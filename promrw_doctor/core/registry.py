"""Check specs, the ``@check`` decorator, and discovery of built-in and third-party checks.

A check is a plain function decorated with :func:`check`. The decorator only attaches
a frozen :class:`CheckSpec` to the function; nothing is registered at import time, so
loading the same module twice cannot create phantom duplicates. :func:`load_registry`
collects specs from three sources, in order:

1. built-in checks: every module under ``promrw_doctor.checks`` (the repo's ``checks/``);
2. installed distributions exposing the entry-point group ``promrw_doctor.checks``
   (the entry point may name a module, a package, a check function or a list of them);
3. ``--checks-dir DIR``: every ``*.py`` file in DIR (never the current directory implicitly).

A duplicate id, a dependency on an unknown check, or a dependency cycle is a
:class:`RegistryError` at start-up.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import RegistryError
from .model import Category, Severity, Variant

ENTRY_POINT_GROUP = "promrw_doctor.checks"
_SPEC_ATTR = "__promrw_check__"

CheckFunc = Callable[..., Any]


@dataclass(frozen=True)
class CheckSpec:
    """Metadata a check declares about itself. Read by the engine, ``list-checks`` and ``explain``."""

    id: str
    title: str
    category: str
    severity: Severity
    codes: tuple[str, ...]
    func: CheckFunc = field(compare=False, repr=False)
    depends_on: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # fact names, gathered before the check runs
    variants: tuple[str, ...] = ()  # empty: applies to every identity variant
    tags: tuple[str, ...] = ()
    description: str = ""
    docs_url: str = ""
    timeout_s: float | None = None
    opt_in: bool = False  # writes something (the probe): runs only when asked
    source: str = "builtin"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "category": self.category,
            "severity": self.severity.value,
            "codes": list(self.codes),
            "depends_on": list(self.depends_on),
            "needs": list(self.needs),
            "variants": list(self.variants),
            "tags": list(self.tags),
            "description": self.description,
            "docs_url": self.docs_url,
            "opt_in": self.opt_in,
            "source": self.source,
        }


def check(
    *,
    id: str,
    title: str,
    category: str | Category,
    severity: str | Severity,
    codes: Sequence[str],
    depends_on: Sequence[str] = (),
    needs: Sequence[str] = (),
    variants: Sequence[str | Variant] = (),
    tags: Sequence[str] = (),
    docs_url: str = "",
    timeout_s: float | None = None,
    opt_in: bool = False,
) -> Callable[[CheckFunc], CheckFunc]:
    """Declare a check. The function's docstring is its ``explain`` text (what and why).

    The function receives a :class:`promrw_doctor.core.engine.CheckContext` and returns
    ``None`` (pass), a :class:`~promrw_doctor.core.model.Finding`, or an iterable of them.
    """

    cat = category.value if isinstance(category, Category) else str(category)
    if cat not in {c.value for c in Category}:
        raise RegistryError(f"check {id!r}: unknown category {cat!r}")
    try:
        sev = Severity.parse(severity)
    except ValueError as exc:
        raise RegistryError(f"check {id!r}: {exc}") from None
    variant_values = tuple(v.value if isinstance(v, Variant) else str(v) for v in variants)
    known_variants = {v.value for v in Variant}
    for v in variant_values:
        if v not in known_variants:
            raise RegistryError(f"check {id!r}: unknown identity variant {v!r}")

    def decorate(func: CheckFunc) -> CheckFunc:
        doc = (func.__doc__ or "").strip()
        spec = CheckSpec(
            id=id,
            title=title,
            category=cat,
            severity=sev,
            codes=tuple(codes),
            func=func,
            depends_on=tuple(depends_on),
            needs=tuple(needs),
            variants=variant_values,
            tags=tuple(tags),
            description=_dedent(doc),
            docs_url=docs_url,
            timeout_s=timeout_s,
            opt_in=opt_in,
        )
        setattr(func, _SPEC_ATTR, spec)
        return func

    return decorate


def _dedent(doc: str) -> str:
    import textwrap

    lines = doc.splitlines()
    if len(lines) <= 1:
        return doc
    return (lines[0] + "\n" + textwrap.dedent("\n".join(lines[1:]))).strip()


def spec_of(obj: Any) -> CheckSpec | None:
    spec = getattr(obj, _SPEC_ATTR, None)
    return spec if isinstance(spec, CheckSpec) else None


def specs_in_module(module: ModuleType, source: str) -> list[CheckSpec]:
    found = []
    for value in vars(module).values():
        spec = spec_of(value)
        if spec is not None and getattr(value, "__module__", None) == module.__name__:
            found.append(replace(spec, source=source))
    return found


class Registry:
    """An ordered, validated set of checks."""

    def __init__(self, specs: Iterable[CheckSpec]) -> None:
        self._specs: dict[str, CheckSpec] = {}
        for spec in specs:
            other = self._specs.get(spec.id)
            if other is not None:
                raise RegistryError(
                    f"duplicate check id {spec.id!r}: defined by {other.source} and by {spec.source}"
                )
            self._specs[spec.id] = spec
        self._validate()

    def _validate(self) -> None:
        for spec in self._specs.values():
            for dep in spec.depends_on:
                if dep not in self._specs:
                    raise RegistryError(f"check {spec.id!r} depends on unknown check {dep!r}")
        # Cycle detection (iterative DFS, reports the cycle path).
        state: dict[str, int] = {}
        for start in self._specs:
            if state.get(start):
                continue
            stack: list[tuple[str, Iterator[str]]] = [(start, iter(self._specs[start].depends_on))]
            path = [start]
            state[start] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                    path.pop()
                    continue
                if state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt) :], nxt]
                    raise RegistryError("dependency cycle between checks: " + " -> ".join(cycle))
                if not state.get(nxt):
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(self._specs[nxt].depends_on)))

    def __iter__(self) -> Iterator[CheckSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._specs

    def get(self, check_id: str) -> CheckSpec | None:
        return self._specs.get(check_id)

    def by_code(self, code: str) -> list[CheckSpec]:
        return [s for s in self._specs.values() if code in s.codes]

    def ancestors(self, check_id: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self._specs[check_id].depends_on)
        while todo:
            dep = todo.pop()
            if dep in seen or dep not in self._specs:
                continue
            seen.add(dep)
            todo.extend(self._specs[dep].depends_on)
        return seen

    def topological(self, specs: Iterable[CheckSpec]) -> list[CheckSpec]:
        """Order ``specs`` so that each comes after the selected checks it depends on."""
        chosen = {s.id: s for s in specs}
        out: list[CheckSpec] = []
        done: set[str] = set()

        def visit(spec: CheckSpec) -> None:
            if spec.id in done:
                return
            done.add(spec.id)
            for dep in spec.depends_on:
                if dep in chosen:
                    visit(chosen[dep])
            out.append(spec)

        for spec in chosen.values():
            visit(spec)
        return out

    def select(
        self,
        *,
        categories: Iterable[str] | None = None,
        only: Sequence[str] = (),
        skip: Sequence[str] = (),
        include_opt_in: bool = False,
    ) -> list[CheckSpec]:
        """Filter checks. ``only``/``skip`` match ids, diagnosis codes or tags (shell globs allowed)."""
        cats = set(categories) if categories is not None else None
        out = []
        for spec in self._specs.values():
            if cats is not None and spec.category not in cats:
                continue
            if spec.opt_in and not include_opt_in:
                continue
            if only and not any(_matches(spec, pat) for pat in only):
                continue
            if skip and any(_matches(spec, pat) for pat in skip):
                continue
            out.append(spec)
        return self.topological(out)


def _matches(spec: CheckSpec, pattern: str) -> bool:
    from fnmatch import fnmatchcase

    pattern = pattern.strip()
    keys = [spec.id, *spec.codes, *spec.tags, spec.category]
    return any(fnmatchcase(k, pattern) or fnmatchcase(k.lower(), pattern.lower()) for k in keys)


# --------------------------------------------------------------------------- discovery


def _builtin_specs() -> list[CheckSpec]:
    try:
        package = importlib.import_module("promrw_doctor.checks")
    except ModuleNotFoundError:  # pragma: no cover - broken install
        return []
    specs: list[CheckSpec] = []
    for info in sorted(pkgutil.walk_packages(package.__path__, package.__name__ + "."), key=lambda i: i.name):
        module = importlib.import_module(info.name)
        specs.extend(specs_in_module(module, "builtin"))
    return specs


def _entry_point_specs() -> list[CheckSpec]:
    from importlib.metadata import entry_points

    specs: list[CheckSpec] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "?"
        source = f"entry-point:{dist}:{ep.name}"
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not take the doctor down silently
            raise RegistryError(f"cannot load check plugin {ep.name!r} from {dist}: {exc}") from None
        specs.extend(_specs_from_object(obj, source))
    return specs


def _specs_from_object(obj: Any, source: str) -> list[CheckSpec]:
    if isinstance(obj, ModuleType):
        found = specs_in_module(obj, source)
        if hasattr(obj, "__path__"):  # a package: walk it
            for info in pkgutil.walk_packages(obj.__path__, obj.__name__ + "."):
                found.extend(specs_in_module(importlib.import_module(info.name), source))
        return found
    spec = spec_of(obj)
    if spec is not None:
        return [replace(spec, source=source)]
    if isinstance(obj, list | tuple):
        return [s for item in obj for s in _specs_from_object(item, source)]
    raise RegistryError(f"check plugin {source} exposes {type(obj).__name__}, not a check or module")


def _dir_specs(directory: Path) -> list[CheckSpec]:
    if not directory.exists():
        raise RegistryError(f"--checks-dir {directory}: no such directory")
    if not directory.is_dir():
        raise RegistryError(f"--checks-dir {directory}: not a directory")
    specs: list[CheckSpec] = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        mod_name = f"promrw_doctor_local_checks.{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise RegistryError(f"cannot load check file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except RegistryError:
            raise
        except Exception as exc:
            raise RegistryError(f"cannot load check file {path}: {type(exc).__name__}: {exc}") from None
        specs.extend(specs_in_module(module, f"file:{path}"))
    return specs


def load_registry(
    checks_dirs: Sequence[str | Path] = (),
    *,
    builtin: bool = True,
    entry_points: bool = True,
    extra: Iterable[CheckSpec] = (),
) -> Registry:
    """Discover checks from every source and validate them as one set."""
    specs: list[CheckSpec] = []
    if builtin:
        specs.extend(_builtin_specs())
    if entry_points:
        specs.extend(_entry_point_specs())
    for d in checks_dirs:
        specs.extend(_dir_specs(Path(d)))
    specs.extend(extra)
    return Registry(specs)
