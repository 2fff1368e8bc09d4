"""Command-line interface: a thin click layer over :mod:`promrw_doctor.api`.

Subcommands live in their own modules and are imported only when invoked, so
``promrw-doctor --help`` answers without importing kubernetes, azure or aiohttp.
Every :class:`~promrw_doctor.core.errors.DoctorError` becomes one line on stderr and
its exit code (2 for bad input); a traceback is shown only with ``PROMRW_DOCTOR_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from .. import __version__

# name -> (module, attribute, one-line help shown by --help without importing the module)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("promrw_doctor.cli.run", "run", "Diagnose a live cluster (kubeconfig context) and its Azure side."),
    "lint": ("promrw_doctor.cli.lint", "lint", "Validate manifests and Helm values before they are applied."),
    "probe": ("promrw_doctor.cli.probe", "probe", "Send a canary sample and confirm it arrives (writes!)."),
    "list-checks": ("promrw_doctor.cli.catalog", "list_checks", "List every check the doctor knows."),
    "explain": ("promrw_doctor.cli.catalog", "explain", "Explain a check id or a diagnosis code."),
    "forward": ("promrw_doctor.cli.forward", "forward", "Run the Entra-authenticating remote-write forwarder."),
    "send": ("promrw_doctor.cli.forward", "send", "Send one canary through the forwarder stack, no server."),
    "lab": ("promrw_doctor.cli.lab", "lab", "The local lab: emulated Azure + Kubernetes with real Prometheus."),
}

EPILOG = """\b
Exit codes: 0 all clear; 1 a finding at or above --fail-on; 2 usage or input
error; 3 incomplete (some checks unknown/error, nothing failed).
Docs: README.md, docs/REPORTS.md. Try: promrw-doctor lab run"""


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, _ = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("promrw_doctor"):
                return _unavailable(cmd_name, f"not available in this build ({exc.name} missing)")
            raise
        command = getattr(module, attr, None)
        if not isinstance(command, click.Command):
            return _unavailable(cmd_name, "not available in this build")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in _COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            _handle_exception(exc)


def _unavailable(name: str, why: str) -> click.Command:
    @click.command(name=name, help=why, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def stub(args: tuple[str, ...]) -> None:
        raise click.UsageError(f"'{name}' is {why}")

    return stub


def _handle_exception(exc: BaseException) -> None:
    from ..core.errors import DoctorError

    if isinstance(exc, click.exceptions.ClickException | click.exceptions.Exit | click.exceptions.Abort):
        raise exc
    if os.environ.get("PROMRW_DOCTOR_DEBUG"):
        raise exc
    if isinstance(exc, DoctorError):
        click.echo(f"promrw-doctor: error: {_one_line(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    from ..core.redact import redact

    click.echo(
        f"promrw-doctor: internal error: {type(exc).__name__}: {redact(_one_line(str(exc)))} "
        "(set PROMRW_DOCTOR_DEBUG=1 for a traceback)",
        err=True,
    )
    sys.exit(70)


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "unknown error"


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="promrw-doctor")
def cli() -> None:
    """Why are Prometheus metrics not reaching the Azure Monitor workspace?

    promrw-doctor checks the remote-write sidecar, its Entra identity, the role
    assignments, certificates, DCR/DCE and quotas, ranks the root cause first,
    prints the exact command to fix it, and can prove delivery with a canary.
    """


def main() -> None:
    """Console-script entry point (also ``kubectl promrw-doctor`` as a kubectl plugin)."""
    try:
        cli.main(prog_name=_prog_name(), standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        click.echo("promrw-doctor: interrupted", err=True)
        sys.exit(130)


def _prog_name() -> str:
    base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "promrw-doctor"
    return "kubectl promrw-doctor" if base.startswith("kubectl-") else "promrw-doctor"
