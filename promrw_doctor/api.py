"""Library API: everything the CLI does, callable from Python.

    from promrw_doctor import api
    report = api.lint(["values.yaml", "binding.yaml"])
    report = api.diagnose(context="aks-prod", namespace="monitoring")
    print(api.exit_code(report), [rc.code for rc in report.root_causes])

Functions raise :class:`~promrw_doctor.core.errors.InputError` for bad input and
return a :class:`~promrw_doctor.core.model.Report` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .core.engine import EngineOptions, exit_code_for, run_checks
from .core.errors import InputError
from .core.facts import FactStore
from .core.model import CheckResult, Report
from .core.registry import CheckSpec, Registry, load_registry

LIVE_CATEGORIES = ("kubernetes", "identity", "azure", "pipeline")
# Imported once in the calling thread before facts are gathered in parallel: some of these
# packages have import cycles that break when two threads import them for the first time at once.
_LIVE_IMPORTS = ("requests", "urllib3", "kubernetes.client", "kubernetes.config", "azure.core.pipeline",
                 "azure.identity", "msal", "jwt", "cryptography.x509", "yaml")


def warm_imports(modules: Sequence[str] = _LIVE_IMPORTS) -> None:
    """Import the live path's heavy libraries now, single-threaded (never on ``--help``)."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional piece missing is reported by the fact that needs it
            pass


def registry(checks_dirs: Sequence[str | Path] = ()) -> Registry:
    """Built-in checks + installed plugins (entry points) + ``checks_dirs``."""
    return load_registry(checks_dirs)


def list_checks(checks_dirs: Sequence[str | Path] = (), categories: Sequence[str] | None = None) -> list[CheckSpec]:
    reg = registry(checks_dirs)
    cats = set(categories) if categories else None
    return [s for s in reg if cats is None or s.category in cats]


def explain(name: str, checks_dirs: Sequence[str | Path] = ()) -> dict[str, Any]:
    """What a check or a diagnosis code means: what it checks, why it matters, how to fix, docs."""
    from .core.codes import catalog, lookup

    reg = registry(checks_dirs)
    spec = reg.get(name.strip())
    if spec is not None:
        codes = [lookup(c) for c in spec.codes]
        return {
            "kind": "check",
            "check": spec.to_dict(),
            "codes": [c.to_dict() for c in codes if c is not None],
        }
    info = lookup(name)
    if info is not None:
        return {
            "kind": "code",
            "code": info.to_dict(),
            "checks": [s.id for s in reg.by_code(info.code)],
        }
    known = sorted(set(catalog()) | {s.id for s in reg})
    close = _close_matches(name, known)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see: promrw-doctor list-checks"
    raise InputError(f"no check or diagnosis code named {name!r}{hint}")


def _close_matches(name: str, known: list[str]) -> list[str]:
    import difflib

    upper = {k.upper(): k for k in known}
    hits = difflib.get_close_matches(name.upper(), list(upper), n=3, cutoff=0.6)
    return [upper[h] for h in hits]


def format_explanation(info: dict[str, Any]) -> str:
    """Plain-text rendering of :func:`explain` for a terminal."""
    lines: list[str] = []
    if info["kind"] == "check":
        c = info["check"]
        lines += [f"{c['id']}  ({c['category']}, {c['severity']})", f"  {c['title']}", ""]
        if c["description"]:
            lines += [_indent(c["description"]), ""]
        if c["depends_on"]:
            lines.append(f"Depends on: {', '.join(c['depends_on'])}")
        if c["variants"]:
            lines.append(f"Applies to: {', '.join(c['variants'])}")
        for code in info["codes"]:
            lines += ["", *_code_lines(code)]
    else:
        lines += _code_lines(info["code"])
        if info["checks"]:
            lines += ["", f"Emitted by: {', '.join(info['checks'])}"]
    return "\n".join(lines).rstrip()


def _code_lines(code: dict[str, Any]) -> list[str]:
    out = [f"{code['code']}  ({code['severity']}): {code['title']}", "", "What:", _indent(code["what"]), "",
           "Why it matters:", _indent(code["why"]), "", "How to fix:", _indent(code["fix"])]
    if code.get("docs"):
        out += ["", f"Docs: {code['docs']}"]
    return out


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else "" for line in text.strip().splitlines())


def exit_code(report: Report, fail_on: str = "fail") -> int:
    return exit_code_for(report, fail_on)


def lint(
    paths: Sequence[str],
    *,
    stdin_text: str | None = None,
    checks_dirs: Sequence[str | Path] = (),
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    check_timeout_s: float = 10.0,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Static validation of Helm values and manifests (no cluster needed)."""
    from .lint import lint as _lint

    return _lint(paths, stdin_text=stdin_text, registry=registry(checks_dirs), only=only, skip=skip,
                 check_timeout_s=check_timeout_s, on_result=on_result)


def diagnose(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    pod: str | None = None,
    cloud: str | None = None,
    cloud_config: str | None = None,
    tenant: str | None = None,
    subscription: str | None = None,
    since: str = "30m",
    client_certificate: str | None = None,
    client_certificate_password: str | None = None,
    probe: bool = False,
    probe_options: dict[str, Any] | None = None,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    checks_dirs: Sequence[str | Path] = (),
    check_timeout_s: float = 30.0,
    options: dict[str, Any] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Live diagnosis of a cluster's Prometheus remote-write path and its Azure side.

    Discovery (fact ``k8s.targets``) finds the Prometheus pod(s) with a remote-write
    sidecar; every live check then runs against each of them. ``probe=True`` also
    runs the opt-in canary probe, the only thing that writes.
    """
    from .core.facts import fact_spec

    reg = registry(checks_dirs)
    specs = reg.select(categories=LIVE_CATEGORIES, only=only, skip=skip, include_opt_in=probe)
    opts: dict[str, Any] = {
        "kubeconfig": kubeconfig,
        "context": context,
        "namespace": namespace,
        "pod": pod,
        "cloud": cloud,
        "cloud_config": cloud_config,
        "tenant": tenant,
        "subscription": subscription,
        "since": since,
        "client_certificate": client_certificate,
        "client_certificate_password": client_certificate_password,
        "probe": probe,
        "probe_options": dict(probe_options or {}),
    }
    opts.update(options or {})
    warm_imports()
    store = FactStore(opts)
    if fact_spec("k8s.targets") is None:
        raise InputError("live diagnosis is not available in this build (no Kubernetes collector installed)")
    targets = store.get("k8s.targets")
    context_info = store.try_get("k8s.context_info", default={}) or {}
    report = run_checks(
        reg, specs, targets, store, command="run",
        options=EngineOptions(check_timeout_s=check_timeout_s, on_result=on_result),
        context=dict(context_info),
    )
    if probe:
        # The canary's verdict is compared with every other check once all have run.
        from .probe.crosscheck import cross_check

        report = cross_check(report, reg)
    return report


def probe(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    pod: str | None = None,
    ingestion_url: str | None = None,
    identity_type: str | None = None,
    client_id: str | None = None,
    tenant_id: str | None = None,
    audience: str | None = None,
    federated_token_file: str | None = None,
    cluster: str | None = None,
    as_me: bool = False,
    query_endpoint: str | None = None,
    timeout_s: float | None = None,
    cloud: str | None = None,
    cloud_config: str | None = None,
    tenant: str | None = None,
    subscription: str | None = None,
    client_certificate: str | None = None,
    client_certificate_password: str | None = None,
    identity_env: dict[str, str] | None = None,
    with_checks: bool = False,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    checks_dirs: Sequence[str | Path] = (),
    check_timeout_s: float = 30.0,
    options: dict[str, Any] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Report:
    """End-to-end synthetic probe: a canary through the forwarder's path, confirmed in the workspace.

    Writes exactly one sample of ``promrw_doctor_canary{cluster, source="promrw-doctor"}``
    per target. Discovery (``context``/``namespace``/``pod``, like :func:`diagnose`) probes
    with each found sidecar's settings; ``ingestion_url`` (+ ``identity_type``, ``client_id``,
    ...) probes explicit settings without a cluster. ``as_me`` sends with the doctor's own
    credential. ``query_endpoint`` overrides the workspace's; ``timeout_s`` is the deadline
    (default 10 min against Azure). ``identity_env`` hands over the pod's identity context
    (the lab: :func:`promrw_doctor.probe.lab.lab_probe_options`). ``with_checks`` also runs
    every live check, so failed stages rank under the check that explains them.
    Bad input (a timeout <= 0, an unusable ``query_endpoint``) raises ``InputError``.
    """
    from .probe.command import probe_report

    warm_imports()
    settings = {"ingestion_url": ingestion_url, "identity_type": identity_type, "client_id": client_id,
                "tenant_id": tenant_id, "audience": audience, "federated_token_file": federated_token_file}
    return probe_report(
        registry=registry(checks_dirs), kubeconfig=kubeconfig, context=context, namespace=namespace, pod=pod,
        settings=settings, as_me=as_me, query_endpoint=query_endpoint, timeout_s=timeout_s, cluster=cluster,
        cloud=cloud, cloud_config=cloud_config, tenant=tenant, subscription=subscription,
        client_certificate=client_certificate, client_certificate_password=client_certificate_password,
        identity_env=identity_env, with_checks=with_checks, only=only, skip=skip, check_timeout_s=check_timeout_s,
        options=options, on_result=on_result,
    )
