"""``promrw-doctor lab``: the embedded lab (emulated Azure + Kubernetes, real Prometheus) on loopback.

* ``lab scenarios``: the worlds you can start, with what the doctor must conclude about each.
* ``lab up``: start one world and keep it running (Ctrl-C stops it); prints how to point
  kubectl and the doctor at it.
* ``lab run``: start each world, run the doctor against it, print its report and whether
  its root causes equal the scenario's expected codes (exit 0 only if all do).

Everything heavy (aiohttp, cryptography, the emulators, the doctor) is imported inside
the commands so ``promrw-doctor --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..core.errors import DoctorError, InputError

DEFAULT_RUN_SCENARIOS = ("healthy-pod-identity", "selector-mismatch", "role-missing")
RUN_FORMATS = ("table", "json", "junit", "markdown", "prometheus")
#: Formats whose stdout is machine documents only (one per scenario); headers and verdicts go to stderr.
DOCUMENT_FORMATS = ("junit", "prometheus")


class DiagnosisUnavailable(DoctorError):
    """The doctor's live diagnosis is not part of this build yet (exit 2, one line)."""


def _scenario_dir_option(func: Any) -> Any:
    return click.option("--scenario-dir", "scenario_dirs", multiple=True,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Extra directory of scenarios (repeatable); same names override built-ins.")(func)


def _deny_options(func: Any) -> Any:
    func = click.option("--deny-kube", multiple=True, metavar="VERB:RESOURCE[:NAMESPACE]",
                        help="Strip an RBAC permission from the doctor's kube identity, e.g. "
                             "get:pods/log:monitoring (repeatable).")(func)
    func = click.option("--deny-azure", multiple=True, metavar="SWITCH",
                        help="Strip an Azure permission from the doctor's identity, e.g. "
                             "arm:roleAssignments/read, graph:Application.Read.All (repeatable).")(func)
    return func


def _parse_kube_denials(values: tuple[str, ...]) -> list[dict[str, str]]:
    out = []
    for v in values:
        parts = v.split(":")
        if len(parts) not in (2, 3) or not all(parts[:2]) or parts[0] not in ("get", "list", "watch", "*"):
            raise InputError(f"--deny-kube {v!r}: expected VERB:RESOURCE[:NAMESPACE] with VERB get|list|watch|*")
        rule = {"verb": parts[0], "resource": parts[1]}
        if len(parts) == 3 and parts[2]:
            rule["namespace"] = parts[2]
        out.append(rule)
    return out


def _load(name: str, scenario_dirs: tuple[Path, ...], deny_azure: tuple[str, ...] = (),
          deny_kube: tuple[str, ...] = ()) -> Any:
    from ..lab.scenario import load_scenario

    scenario = load_scenario(name, scenario_dirs)
    if deny_azure or deny_kube:
        scenario = scenario.with_denials(azure=deny_azure, kubernetes=_parse_kube_denials(deny_kube))
    return scenario


@click.group("lab")
def lab() -> None:
    """The local lab: emulated Azure + Kubernetes on 127.0.0.1 with real Prometheus behind it.

    Each scenario is one world (healthy or broken in one documented way) that the doctor
    cannot tell from the real thing through kubectl, the kubernetes client, azure-identity
    and plain HTTPS. Start with: promrw-doctor lab run
    """


@lab.command("scenarios")
@_scenario_dir_option
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def scenarios(scenario_dirs: tuple[Path, ...], output: str) -> None:
    """List the scenarios (name, identity variant, expected root causes, description)."""
    import json

    from ..lab.scenario import list_scenarios

    infos = list_scenarios(scenario_dirs)
    if output == "json":
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2))
        return
    width = max([len(i.name) for i in infos] + [8])
    click.echo(f"{'SCENARIO':{width}}  {'VARIANT':16}  {'EXPECTED ROOT CAUSES':32}  DESCRIPTION")
    for i in infos:
        codes = ", ".join(i.expected_root_causes) or "-"
        click.echo(f"{i.name:{width}}  {i.variant:16}  {codes:32}  {i.description}")


@lab.command("up")
@click.option("--scenario", "-s", "name", default="healthy-pod-identity", show_default=True,
              help="Scenario name (see: promrw-doctor lab scenarios), or a path to a scenario directory.")
@_scenario_dir_option
@click.option("--keep", is_flag=True, help="Keep the run directory after stopping.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory (default: a new temporary directory).")
@click.option("--traffic/--no-traffic", default=None,
              help="Force live traffic (real Prometheus -> forwarder -> ingestion) on or off "
                   "(default: as the scenario says).")
@_deny_options
def up(name: str, scenario_dirs: tuple[Path, ...], keep: bool, workdir: Path | None, traffic: bool | None,
       deny_azure: tuple[str, ...], deny_kube: tuple[str, ...]) -> None:
    """Start one world and keep it running until Ctrl-C (or SIGTERM)."""
    import time

    from ..lab.world import LabWorld

    scenario = _load(name, scenario_dirs, deny_azure, deny_kube)
    with _sigterm_as_interrupt():
        world = LabWorld(scenario, workdir, traffic=traffic, keep=keep)
        try:
            with world:
                click.echo(world.describe())
                click.echo(f"\nStarted in {world.timings.total:.2f}s. Press Ctrl-C to stop.")
                sys.stdout.flush()
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
    kept = f"; kept {world.workdir}" if keep or workdir is not None else ""
    click.echo(f"Lab stopped in {world.timings.teardown:.2f}s{kept}.", err=True)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so ``with LabWorld`` tears down (Python's default SIGTERM skips atexit)."""
    import signal

    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _diagnose(world: Any, probe: bool, check_timeout: float) -> Any:
    """Run the doctor against ``world`` exactly as a user would after ``. env``."""
    import inspect

    from .. import api
    from ..core.environ import patched_environ

    env = world.env_vars()
    kwargs: dict[str, Any] = {
        "kubeconfig": str(world.kubeconfig), "context": world.context, "cloud_config": str(world.cloud_config),
        "tenant": world.tenant_id, "subscription": world.subscription_id, "probe": probe,
        "check_timeout_s": check_timeout, "options": {"subscriptions": [world.subscription_id]},
    }
    if probe:
        # In the lab the doctor may stand where the sidecar stands: same env, files and IMDS.
        kwargs["probe_options"] = {"identity_env": world.forwarder_env(),
                                   "identity_context": f"the lab pod's identity context ({world.scenario.name})"}
    params = inspect.signature(api.diagnose).parameters
    if "env" in params:
        kwargs["env"] = env
    kwargs = {k: v for k, v in kwargs.items() if k in params or "kwargs" in params}
    with patched_environ(env):
        try:
            return api.diagnose(**kwargs)
        except InputError as exc:
            if "not available" in str(exc):
                raise DiagnosisUnavailable(f"lab run: the doctor's live diagnosis is not available yet ({exc}); "
                                           "start a world with 'promrw-doctor lab up' meanwhile") from None
            raise


@lab.command("run")
@click.option("--scenario", "-s", "names", multiple=True,
              help="Scenario to run (repeatable; default: " + ", ".join(DEFAULT_RUN_SCENARIOS) + ").")
@_scenario_dir_option
@click.option("-o", "--output", type=click.Choice(RUN_FORMATS), default="table", show_default=True,
              help="Format of each doctor report (json: one document with every scenario; junit, prometheus: "
                   "one document per scenario on stdout, prometheus ones separated by a blank line, verdicts on "
                   "stderr).")
@click.option("--probe", is_flag=True, help="Also run the doctor's canary probe (writes into the lab workspace).")
@click.option("--traffic/--no-traffic", default=None, help="Force live traffic on or off in every world.")
@click.option("--check-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True)
@_deny_options
def run(names: tuple[str, ...], scenario_dirs: tuple[Path, ...], output: str, probe: bool,
        traffic: bool | None, check_timeout: float, deny_azure: tuple[str, ...], deny_kube: tuple[str, ...]) -> None:
    """Start each scenario's world, run the doctor against it, compare root causes with the expected codes.

    Exit 0 when every scenario's diagnosis matched its expected root causes, 1 otherwise,
    2 for bad input (unknown scenario, invalid scenario file).
    """
    import json

    from ..lab.world import LabWorld
    from ..reports import render

    chosen = names or DEFAULT_RUN_SCENARIOS
    loaded = [_load(n, scenario_dirs, deny_azure, deny_kube) for n in chosen]  # bad input fails before any start
    results: list[dict[str, Any]] = []
    for scenario in loaded:
        with _sigterm_as_interrupt(), LabWorld(scenario, traffic=traffic) as world:
            report = _diagnose(world, probe, check_timeout)
            startup = world.timings.total
        got = sorted({rc.code for rc in report.root_causes})
        expected = sorted(scenario.expected_root_causes)
        match = got == expected
        entry: dict[str, Any] = {"scenario": scenario.name, "variant": scenario.variant,
                                 "expected_root_causes": expected, "root_causes": got,
                                 "startup_s": round(startup, 3)}
        if probe and scenario.probe_stage:
            stage = probe_stage(report)
            entry.update(expected_probe_stage=scenario.probe_stage, probe_stage=stage)
            match = match and stage == scenario.probe_stage
        entry["match"] = match
        results.append(entry)
        if output == "json":
            results[-1]["report"] = report.to_dict()
            continue
        # JUnit and Prometheus go to stdout alone (one document per scenario); the verdicts to stderr.
        to_err = output in DOCUMENT_FORMATS
        click.echo(f"=== lab scenario {scenario.name} ({scenario.variant}): {scenario.description}", err=to_err)
        if output == "prometheus":
            # Exactly the renderer's exposition per scenario (a valid textfile on its own: with one
            # scenario stdout is that file); documents never contain an empty line, so one separates them.
            if len(results) > 1:
                click.echo("")
            click.echo(render(report, output), nl=False)  # exit code: what `run` would exit with
        else:
            click.echo(render(report, output, color=False))
        click.echo(_verdict_line(scenario.name, got, expected, entry), err=to_err)
        click.echo("", err=to_err)
    if output == "json":
        click.echo(json.dumps({"scenarios": results, "matched": sum(r["match"] for r in results),
                               "total": len(results)}, indent=2, default=str))
    else:
        ok = sum(r["match"] for r in results)
        to_err = output in DOCUMENT_FORMATS
        click.echo(f"{ok}/{len(results)} scenario(s) diagnosed as expected.", err=to_err)
        for r in results:
            if not r["match"]:
                click.echo(_verdict_line(r["scenario"], r["root_causes"], r["expected_root_causes"], r), err=to_err)
    sys.exit(0 if all(r["match"] for r in results) else 1)


def probe_stage(report: Any) -> str | None:
    """Where the canary probe stopped: the first failed stage, ``ok`` when all passed, None if it did not run."""
    for result in report.results:
        for finding in result.findings:
            stages = finding.evidence.get("stages") if isinstance(finding.evidence, dict) else None
            if not isinstance(stages, list) or not stages:
                continue
            failed = next((s for s in stages if isinstance(s, dict) and s.get("result") == "failed"), None)
            if failed is not None:
                return str(failed.get("stage"))
            if all(isinstance(s, dict) and s.get("result") == "ok" for s in stages):
                return "ok"
    return None


def _verdict_line(name: str, got: list[str], expected: list[str], entry: dict[str, Any]) -> str:
    g = ", ".join(got) or "none"
    e = ", ".join(expected) or "none"
    probe = ""
    if "expected_probe_stage" in entry:
        probe = f"; probe stage {entry.get('probe_stage') or 'not run'} (expected {entry['expected_probe_stage']})"
    if entry.get("match"):
        return f"MATCH    {name}: root causes [{g}] as expected{probe}"
    return f"MISMATCH {name}: root causes [{g}], expected [{e}]{probe}"
