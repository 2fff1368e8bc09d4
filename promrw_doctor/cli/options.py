"""Options shared by the commands that produce a report, and the code that emits it."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "json", "junit", "markdown", "prometheus")
FAIL_ON = ("fail", "warn", "none", "info", "low", "medium", "high", "critical")


def report_options(func: F) -> F:
    """-o/--output, --output-file, --no-color, --fail-on, --only/--skip, --checks-dir, timeouts."""
    decorators = [
        click.option("-o", "--output", "output", type=click.Choice(FORMATS), default="table", show_default=True,
                     help="Report format."),
        click.option("--output-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the report to this file instead of standard output."),
        click.option("--no-color", is_flag=True, help="No ANSI colour (also: NO_COLOR env)."),
        click.option("--fail-on", type=click.Choice(FAIL_ON), default="fail", show_default=True,
                     help="Exit 1 when a finding is at/above this: fail, warn, a severity, or none."),
        click.option("--only", multiple=True, metavar="ID|CODE|TAG",
                     help="Run only checks matching (repeatable; globs allowed)."),
        click.option("--skip", multiple=True, metavar="ID|CODE|TAG", help="Skip checks matching (repeatable)."),
        click.option("--checks-dir", multiple=True, type=click.Path(path_type=Path),
                     help="Also load checks from *.py files in this directory."),
        click.option("--check-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
                     help="Seconds before a single check is abandoned (reported as error)."),
        click.option("-v", "--verbose", is_flag=True,
                     help="Show evidence for passing checks too, and list each skipped check with its reason."),
    ]
    for dec in reversed(decorators):
        func = dec(func)
    return func


def check_output_file(path: Path | None) -> None:
    """Fail before doing any work if the report could not be written (nothing is lost later)."""
    from ..core.errors import InputError

    if path is None:
        return
    if path.exists() and path.is_dir():
        raise InputError(f"--output-file {path}: is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise InputError(f"--output-file {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"--output-file {path}: directory {parent} is not writable")


def use_color(no_color: bool, output_file: Path | None) -> bool:
    if no_color or os.environ.get("NO_COLOR") or output_file is not None:
        return False
    return sys.stdout.isatty()


def progress_for(total: int) -> Any:
    """Progress on stderr for runs over a second (TTY only); None when the renderer lacks it."""
    try:
        from ..reports.progress import Progress
    except ImportError:
        return None
    return Progress(sys.stderr, enabled=sys.stderr.isatty(), total=total)


def _can_encode_symbols() -> bool:
    try:
        from ..reports.table import can_encode_symbols
    except ImportError:
        return True
    return can_encode_symbols(sys.stdout)


def emit(report: Any, *, output: str, output_file: Path | None, no_color: bool, fail_on: str,
         verbose: bool = False) -> int:
    """Render the report, write it, and return the exit code."""
    from ..core.engine import exit_code_for
    from ..reports import render

    code = exit_code_for(report, fail_on)
    to_terminal = output_file is None and sys.stdout.isatty()
    width = shutil.get_terminal_size((80, 24)).columns if to_terminal else 80
    ascii_only = output == "table" and output_file is None and not _can_encode_symbols()
    text = render(report, output, color=use_color(no_color, output_file), exit_code=code, verbose=verbose,
                  width=max(60, min(width, 120)), ascii_only=ascii_only)
    if output_file is not None:
        tmp = output_file.with_name(output_file.name + ".tmp")
        tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        tmp.replace(output_file)
        click.echo(f"report written to {output_file} (exit code {code})", err=True)
    else:
        _write_stdout(text.rstrip("\n") + "\n")
    return code


def _write_stdout(text: str) -> None:
    """Write even on an ASCII-only stdout: unencodable characters are escaped, never fatal."""
    stream = sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        stream.write(text)
    except UnicodeEncodeError:
        stream.write(text.encode(encoding, errors="backslashreplace").decode(encoding))
    stream.flush()
