"""Lint input as facts: the YAML documents of the files given, and the identity variant they use.

Thin on purpose: reading and safety live in :mod:`promrw_doctor.lint.loader`, the views
in :mod:`promrw_doctor.lint.views`. Options read: ``lint_paths`` (list of paths, ``-`` =
stdin), ``lint_stdin`` (the stdin text), ``lint_max_bytes`` (size cap, default 10 MB).
"""

from __future__ import annotations

from ..core.errors import InputError, NotApplicable
from ..core.facts import FactContext, fact
from ..lint.loader import DEFAULT_MAX_BYTES, DocumentSet, LoadLimits, load_documents
from ..lint.views import run_variant


@fact("lint.documents", scope="run")
def lint_documents(ctx: FactContext) -> DocumentSet:
    """The parsed YAML documents of the lint inputs, each with its file and a line for every key."""
    paths = ctx.option("lint_paths")
    if not paths:
        raise InputError("lint: no files given (pass YAML files, or - for stdin)")
    if isinstance(paths, str):
        paths = [paths]
    max_bytes = ctx.option("lint_max_bytes") or DEFAULT_MAX_BYTES
    return load_documents(list(paths), stdin_text=ctx.option("lint_stdin"),
                          limits=LoadLimits(max_bytes=int(max_bytes)))


@fact("lint.variant", scope="run")
def lint_variant(ctx: FactContext) -> str:
    """The identity variant the linted files configure (sidecar IDENTITY_TYPE + aadpodidbinding label)."""
    variant = run_variant(ctx.fact("lint.documents"))
    if variant is None:
        raise NotApplicable("no sidecar IDENTITY_TYPE or identity manifests in the files")
    return variant
