"""``list-checks`` and ``explain``: what the doctor knows, from the registry and the code catalog."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("list-checks")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--category", multiple=True, help="Only this category (lint, kubernetes, identity, azure, pipeline).")
@click.option("--checks-dir", multiple=True, type=click.Path(path_type=Path),
              help="Also load checks from *.py files in this directory.")
def list_checks(output: str, category: tuple[str, ...], checks_dir: tuple[Path, ...]) -> None:
    """List every check: id, category, severity, the codes it can emit, and where it comes from."""
    from .. import api

    specs = api.list_checks(checks_dirs=checks_dir, categories=category or None)
    if output == "json":
        click.echo(json.dumps([s.to_dict() for s in specs], indent=2))
        return
    from tabulate import tabulate

    rows = [(s.id, s.category, s.severity.value, ", ".join(s.codes), "" if s.source == "builtin" else s.source)
            for s in specs]
    click.echo(tabulate(rows, headers=["CHECK", "CATEGORY", "SEVERITY", "CODES", "SOURCE"], tablefmt="plain"))
    click.echo(f"\n{len(specs)} checks. Details: promrw-doctor explain <CHECK|CODE>")


@click.command("explain")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--checks-dir", multiple=True, type=click.Path(path_type=Path))
def explain(name: str, output: str, checks_dir: tuple[Path, ...]) -> None:
    """Explain a check id (e.g. lint.binding-keys) or a diagnosis code (e.g. ROLE_ASSIGNMENT_MISSING)."""
    from .. import api

    info = api.explain(name, checks_dirs=checks_dir)
    if output == "json":
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(api.format_explanation(info))
