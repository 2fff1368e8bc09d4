"""Report renderers: one module per format, imported only when that format is asked for.

``render(report, fmt)`` is the single entry point the CLI and the library use, so every
format gets the same last-line redaction and the same exit-code wording.
"""

from __future__ import annotations

from importlib import import_module

from ..core.errors import InputError
from ..core.model import Report

FORMATS: tuple[str, ...] = ("table", "json", "junit", "markdown", "prometheus")

# format -> (module, function); each function takes the report plus keyword options.
_RENDERERS: dict[str, tuple[str, str]] = {
    "table": ("table", "render_table"),
    "json": ("json_report", "render_json"),
    "junit": ("junit", "render_junit"),
    "markdown": ("markdown", "render_markdown"),
    "prometheus": ("prometheus", "render_prometheus"),
}


def render(
    report: Report,
    fmt: str,
    *,
    color: bool = False,
    exit_code: int | None = None,
    width: int = 80,
    verbose: bool = False,
    ascii_only: bool = False,
) -> str:
    """Render ``report`` as ``fmt`` (one of :data:`FORMATS`).

    ``color``, ``width`` and ``ascii_only`` only affect the table; ``verbose`` the table
    (evidence of passing checks) and Markdown (notes on passing checks). ``exit_code`` is
    recorded in JSON/Markdown/table so a reader knows what the run concluded.
    Raises :class:`InputError` (exit 2) for an unknown format.
    """
    if fmt not in _RENDERERS:
        raise InputError(f"unknown report format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    module_name, func_name = _RENDERERS[fmt]
    module = import_module(f"{__name__}.{module_name}")
    func = getattr(module, func_name)
    if fmt == "table":
        out: str = func(report, color=color, exit_code=exit_code, width=width, verbose=verbose,
                        ascii_only=ascii_only)
    elif fmt == "markdown":
        out = func(report, exit_code=exit_code, verbose=verbose)
    else:
        out = func(report, exit_code=exit_code)
    return out


__all__ = ["FORMATS", "render"]
