"""Static lint of Helm values and manifests (pre-upgrade validation; needs no cluster).

:func:`lint` is what ``promrw-doctor lint FILE...|-`` calls: it reads and parses the
input first (bad input raises :class:`~promrw_doctor.core.errors.InputError` before any
check runs, exit code 2), then runs the ``lint`` category of checks and returns the
:class:`~promrw_doctor.core.model.Report`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core.engine import EngineOptions, run_checks
from ..core.facts import FactStore
from ..core.model import Category, CheckResult, Report, Target
from ..core.registry import Registry
from .loader import DEFAULT_MAX_BYTES, DocumentSet, LintDocument, LoadLimits, load_documents
from .views import run_variant

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DocumentSet",
    "LintDocument",
    "LoadLimits",
    "lint",
    "lint_target",
    "load_documents",
]


def lint_target(docs: DocumentSet) -> Target:
    """The target of a lint run: the files, by name."""
    names = list(docs.files)
    return Target(
        id="files:" + ",".join(names),
        kind="files",
        description=", ".join(names),
        attributes={"files": names, "documents": len(docs)},
    )


def lint(
    paths: Sequence[str],
    *,
    stdin_text: str | None = None,
    registry: Registry | None = None,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    check_timeout_s: float = 10.0,
    on_result: Callable[[CheckResult], None] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    options: dict[str, Any] | None = None,
) -> Report:
    """Lint ``paths`` (``-`` = ``stdin_text``) with the ``lint`` checks of ``registry``.

    Raises :class:`~promrw_doctor.core.errors.InputError` for unusable input (missing
    file, binary, not YAML, YAML bomb, over ``max_bytes``, nothing understood) before
    any check runs. ``on_result`` is called as each check finishes (progress display).
    ``options`` are extra run options (e.g. ``extra_clouds``).
    """
    from ..core.registry import load_registry

    docs = load_documents(list(paths), stdin_text=stdin_text, limits=LoadLimits(max_bytes=max_bytes))
    reg = registry if registry is not None else load_registry()
    specs = reg.select(categories=[Category.LINT.value], only=only, skip=skip)
    store = FactStore({**(options or {}), "lint_paths": list(paths), "lint_stdin": stdin_text,
                       "lint_max_bytes": max_bytes})
    store.preset("lint.documents", docs)
    variant = run_variant(docs)
    if variant is not None:
        store.preset("target.variant", variant)
        store.preset("lint.variant", variant)
    target = lint_target(docs)
    return run_checks(
        reg, specs, [target], store,
        command="lint",
        options=EngineOptions(check_timeout_s=check_timeout_s, on_result=on_result),
        context={"files": list(docs.files), "variant": variant},
    )
