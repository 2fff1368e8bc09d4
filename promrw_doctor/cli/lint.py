"""``promrw-doctor lint FILE… | -``: pre-upgrade validation of Helm values and manifests."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import check_output_file, emit, progress_for, report_options


@click.command("lint")
@click.argument("files", nargs=-1, required=True, metavar="FILE…|-")
@report_options
def lint(files: tuple[str, ...], output: str, output_file: Path | None, no_color: bool, fail_on: str,
         only: tuple[str, ...], skip: tuple[str, ...], checks_dir: tuple[Path, ...], check_timeout: float,
         verbose: bool) -> None:
    """Lint kube-prometheus-stack Helm values, AzureIdentity/AzureIdentityBinding and
    SecretProviderClass manifests (multi-document YAML; '-' reads standard input).
    Files are cross-checked: binding vs identity vs pod label, certificate path vs CSI mount."""
    from .. import api

    check_output_file(output_file)
    stdin_text = None
    if "-" in files:
        data = sys.stdin.buffer.read(10 * 1024 * 1024 + 1)
        from ..core.errors import InputError

        if len(data) > 10 * 1024 * 1024:
            raise InputError("standard input: larger than 10 MB; refusing to lint it")
        try:
            stdin_text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("standard input: not UTF-8 text (binary input?)") from None
    progress = progress_for(0)
    try:
        report = api.lint(list(files), stdin_text=stdin_text, checks_dirs=checks_dir, only=only, skip=skip,
                          check_timeout_s=check_timeout, on_result=progress)
    finally:
        if progress is not None:
            progress.close()
    sys.exit(emit(report, output=output, output_file=output_file, no_color=no_color, fail_on=fail_on,
                  verbose=verbose))
