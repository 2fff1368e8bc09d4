"""The engine: gather facts once, then judge with every selected check, concurrently.

Guarantees:
- a check that raises becomes ``error`` (message kept), one that outlives its timeout
  becomes ``error`` (timeout); the run always completes;
- a check whose dependency failed (or errored) is ``blocked`` naming the root of the chain;
- a check needing a fact the doctor may not read is ``unknown`` naming the permission;
- root causes are the problem findings none of whose ancestors failed, ranked.

Checks run in daemon threads: a hung check can be abandoned without holding up the
run or the interpreter's exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import (
    EXIT_FINDINGS,
    EXIT_INCOMPLETE,
    EXIT_OK,
    AccessDenied,
    InputError,
    NotApplicable,
    Skip,
    Unknown,
    Unreachable,
)
from .facts import FactError, FactStore
from .model import (
    CheckResult,
    Finding,
    Report,
    RootCause,
    Severity,
    Status,
    Target,
    worst_status,
)
from .redact import redact_value
from .registry import CheckSpec, Registry

DEFAULT_CHECK_TIMEOUT_S = 30.0
DEFAULT_MAX_WORKERS = 8
VARIANT_FACT = "target.variant"


class CheckContext:
    """What a check function sees. It reads facts and builds findings; it never does I/O itself."""

    def __init__(self, spec: CheckSpec, store: FactStore, target: Target, variant: str | None) -> None:
        self.spec = spec
        self.store = store
        self.target = target
        self.variant = variant
        self.options = store.options
        self.now = store.now

    # -- data
    def fact(self, name: str) -> Any:
        return self.store.get(name, self.target)

    def try_fact(self, name: str, default: Any = None) -> Any:
        """A fact that is nice to have: its failure yields ``default`` instead of ``unknown``."""
        return self.store.try_get(name, self.target, default)

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    # -- findings
    def finding(self, code: str, status: Status, summary: str, **kw: Any) -> Finding:
        kw.setdefault("severity", self.spec.severity)
        kw.setdefault("docs_url", self.spec.docs_url or None)
        return Finding(code=code, status=status, summary=summary, **kw)

    def fail(self, code: str, summary: str, **kw: Any) -> Finding:
        return self.finding(code, Status.FAIL, summary, **kw)

    def warn(self, code: str, summary: str, **kw: Any) -> Finding:
        return self.finding(code, Status.WARN, summary, **kw)

    def passed(self, summary: str, code: str = "OK", **kw: Any) -> Finding:
        kw.setdefault("severity", Severity.INFO)
        return self.finding(code, Status.PASS, summary, **kw)

    def note(self, code: str, summary: str, **kw: Any) -> Finding:
        """An informational finding on a passing check (advice, not a problem)."""
        kw.setdefault("severity", Severity.INFO)
        return self.finding(code, Status.PASS, summary, **kw)


@dataclass
class EngineOptions:
    check_timeout_s: float = DEFAULT_CHECK_TIMEOUT_S
    gather_timeout_s: float = 120.0
    max_workers: int = DEFAULT_MAX_WORKERS
    on_result: Callable[[CheckResult], None] | None = None


@dataclass
class _Run:
    spec: CheckSpec
    done: threading.Event = field(default_factory=threading.Event)
    result: CheckResult | None = None


def _normalize(out: Any) -> list[Finding]:
    if out is None:
        return []
    if isinstance(out, Finding):
        return [out]
    if isinstance(out, Iterable) and not isinstance(out, str | bytes):
        items = list(out)
        for item in items:
            if not isinstance(item, Finding):
                raise TypeError(f"check returned {type(item).__name__}, expected Finding")
        return items
    raise TypeError(f"check returned {type(out).__name__}, expected Finding(s) or None")


def _summarize(status: Status, findings: list[Finding]) -> str:
    for f in findings:
        if f.status == status:
            return f.summary
    return findings[0].summary if findings else ""


class Engine:
    """Runs a selection of checks against one or more targets."""

    def __init__(self, registry: Registry, options: EngineOptions | None = None) -> None:
        self.registry = registry
        self.options = options or EngineOptions()

    # ------------------------------------------------------------------ gather
    def gather(self, specs: Sequence[CheckSpec], store: FactStore, target: Target) -> None:
        """Fetch every fact the selected checks need, concurrently, before any check judges."""
        names = sorted({n for s in specs for n in s.needs})
        if not names:
            return
        abort: list[BaseException] = []

        def fetch(name: str) -> None:
            try:
                store.get(name, target)
            except InputError as exc:
                abort.append(exc)
            except (FactError, KeyError):
                pass  # remembered by the store; the checks report it
            except BaseException as exc:  # pragma: no cover - defensive
                abort.append(exc)

        threads = [threading.Thread(target=fetch, args=(n,), daemon=True) for n in names]
        sem = threading.Semaphore(self.options.max_workers)

        def guarded(t: threading.Thread) -> None:
            with sem:
                t.run()

        runners = [threading.Thread(target=guarded, args=(t,), daemon=True) for t in threads]
        for r in runners:
            r.start()
        deadline = time.monotonic() + self.options.gather_timeout_s
        for r in runners:
            r.join(max(0.0, deadline - time.monotonic()))
        if abort:
            raise abort[0]

    # ------------------------------------------------------------------ judge
    def run_target(self, specs: Sequence[CheckSpec], store: FactStore, target: Target) -> list[CheckResult]:
        specs = self.registry.topological(specs)
        self.gather(specs, store, target)
        variant = self._variant(specs, store, target)
        runs = {s.id: _Run(s) for s in specs}
        sem = threading.Semaphore(self.options.max_workers)
        abort: list[BaseException] = []

        def worker(run: _Run) -> None:
            try:
                for dep in run.spec.depends_on:
                    if dep in runs:
                        runs[dep].done.wait()
                run.result = self._judge(run.spec, runs, store, target, variant, sem, abort)
            except BaseException as exc:  # pragma: no cover - defensive
                run.result = self._result(run.spec, target, Status.ERROR, f"engine error: {exc}")
            finally:
                run.done.set()
                if self.options.on_result and run.result is not None:
                    self.options.on_result(run.result)

        threads = [threading.Thread(target=worker, args=(r,), daemon=True) for r in runs.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if abort:
            raise abort[0]
        return [runs[s.id].result for s in specs if runs[s.id].result is not None]  # type: ignore[misc]

    def _variant(self, specs: Sequence[CheckSpec], store: FactStore, target: Target) -> str | None:
        if not any(s.variants for s in specs):
            return None
        try:
            value = store.get(VARIANT_FACT, target)
        except (FactError, KeyError):
            return None
        return str(value) if value else None

    def _result(self, spec: CheckSpec, target: Target, status: Status, summary: str, **kw: Any) -> CheckResult:
        return CheckResult(
            check_id=spec.id,
            title=spec.title,
            category=spec.category,
            status=status,
            severity=spec.severity,
            target=target.id,
            summary=summary,
            **kw,
        )

    def _judge(
        self,
        spec: CheckSpec,
        runs: dict[str, _Run],
        store: FactStore,
        target: Target,
        variant: str | None,
        sem: threading.Semaphore,
        abort: list[BaseException],
    ) -> CheckResult:
        # Dependencies first: blocked / skipped / unknown without running.
        for dep in spec.depends_on:
            run = runs.get(dep)
            if run is None or run.result is None:
                continue
            dres = run.result
            if dres.status in (Status.FAIL, Status.ERROR):
                return self._result(spec, target, Status.BLOCKED, f"blocked by {dep} ({dres.status.value})",
                                    blocked_by=dep)
            if dres.status == Status.BLOCKED:
                root = dres.blocked_by or dep
                return self._result(spec, target, Status.BLOCKED, f"blocked by {root}", blocked_by=root)
            if dres.status == Status.SKIPPED:
                return self._result(spec, target, Status.SKIPPED, f"skipped: depends on {dep}, which was skipped")
            if dres.status == Status.UNKNOWN:
                return self._result(spec, target, Status.UNKNOWN,
                                    f"could not verify prerequisite {dep}", needs=dres.needs)
        if spec.variants and variant and variant not in spec.variants:
            return self._result(
                spec, target, Status.SKIPPED,
                f"applies to {', '.join(spec.variants)}; this target uses {variant}",
            )

        ctx = CheckContext(spec, store, target, variant)
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["out"] = _normalize(spec.func(ctx))
            except BaseException as exc:
                box["exc"] = exc

        timeout = spec.timeout_s if spec.timeout_s is not None else self.options.check_timeout_s
        with sem:
            start = time.perf_counter()
            thread = threading.Thread(target=call, daemon=True, name=f"check:{spec.id}")
            thread.start()
            thread.join(timeout)
            duration = time.perf_counter() - start
        if thread.is_alive():
            return self._result(spec, target, Status.ERROR, f"timed out after {timeout:g}s",
                                error=f"timeout after {timeout:g}s", duration_s=duration)
        exc = box.get("exc")
        if exc is not None:
            return self._from_exception(spec, target, exc, duration, abort)
        findings: list[Finding] = box["out"]
        for f in findings:
            f.check_id = spec.id
            if f.severity is None:
                f.severity = spec.severity
            f.evidence = redact_value(f.evidence)
            f.summary = redact_value(f.summary)
            f.remediation = [redact_value(r) for r in f.remediation]
        status = worst_status([f.status for f in findings])
        summary = _summarize(status, findings) or ("ok" if status == Status.PASS else status.value)
        return self._result(spec, target, status, summary, findings=findings, duration_s=duration)

    def _from_exception(
        self, spec: CheckSpec, target: Target, exc: BaseException, duration: float, abort: list[BaseException]
    ) -> CheckResult:
        fact_name = None
        if isinstance(exc, FactError):
            fact_name, exc = exc.name, exc.cause
        if isinstance(exc, InputError):
            abort.append(exc)
            return self._result(spec, target, Status.ERROR, str(exc), error=str(exc), duration_s=duration)
        if isinstance(exc, Skip | NotApplicable):
            return self._result(spec, target, Status.SKIPPED, str(exc) or "not applicable", duration_s=duration)
        if isinstance(exc, AccessDenied):
            return self._result(spec, target, Status.UNKNOWN, f"could not look: missing permission: {exc.needs}",
                                needs=exc.needs, duration_s=duration)
        if isinstance(exc, Unknown):
            return self._result(spec, target, Status.UNKNOWN, redact_value(str(exc)), needs=exc.needs,
                                duration_s=duration)
        if isinstance(exc, Unreachable):
            return self._result(spec, target, Status.UNKNOWN, redact_value(f"could not look: {exc}"),
                                needs=f"reachable {exc.what}", duration_s=duration)
        where = f" while gathering {fact_name}" if fact_name else ""
        message = redact_value(f"{type(exc).__name__}{where}: {exc}")
        return self._result(spec, target, Status.ERROR, message, error=message, duration_s=duration)


# ---------------------------------------------------------------------- root causes


def rank_root_causes(registry: Registry, results: list[CheckResult]) -> list[RootCause]:
    """Problem findings none of whose ancestors failed, ranked fail-first then by severity.

    A finding that declares ``explained_by`` codes becomes a consequence
    (``consequence_of``) when one of those codes is present as a problem in the same
    target and is itself a root cause or a consequence of one, so chains (A explained by B,
    B explained by C) collapse onto C. Findings explained only by each other stay root
    causes: a cycle must never hide every problem.
    """
    by_target: dict[str, list[CheckResult]] = {}
    for r in results:
        by_target.setdefault(r.target, []).append(r)
    causes: list[tuple[tuple[int, int, int], RootCause]] = []
    for target, rs in by_target.items():
        status_of = {r.check_id: r.status for r in rs}
        candidates: list[tuple[int, CheckResult, Finding]] = []
        for order, r in enumerate(rs):
            if r.check_id in registry:
                anc = registry.ancestors(r.check_id)
                if any(status_of.get(a) in (Status.FAIL, Status.ERROR) for a in anc):
                    continue
            candidates.extend((order, r, f) for f in r.findings if f.status.is_problem)
        present = {f.code for _, _, f in candidates}
        # Seeds: problems nothing present explains. Then let explanations flow outward from them.
        settled_codes = {f.code for _, _, f in candidates if not any(c in present for c in f.explained_by)}
        pending = [item for item in candidates if any(c in present for c in item[2].explained_by)]
        changed = True
        while changed and pending:
            changed = False
            for item in list(pending):
                f = item[2]
                cause = next((c for c in f.explained_by if c in settled_codes), None)
                if cause is not None:
                    f.consequence_of = cause
                    settled_codes.add(f.code)
                    pending.remove(item)
                    changed = True
        for order, r, f in candidates:
            if f.consequence_of is not None:
                continue
            consequences = [x.check_id for x in rs if x.blocked_by == r.check_id]
            consequences += [x.check_id for x in rs for g in x.findings if g.consequence_of == f.code]
            sev = f.severity or r.severity
            rank = (0 if f.status == Status.FAIL else 1, -sev.rank, order)
            causes.append((rank, RootCause(
                target=target, check_id=r.check_id, code=f.code, status=f.status, severity=sev,
                summary=f.summary, remediation=list(f.remediation), consequences=sorted(set(consequences)),
            )))
    causes.sort(key=lambda item: item[0])
    return [c for _, c in causes]


# ---------------------------------------------------------------------- exit codes

FAIL_ON_CHOICES = ("fail", "warn", "none", *(s.value for s in Severity))


def exit_code_for(report: Report, fail_on: str = "fail") -> int:
    """0 all clear; 1 a finding at or above ``fail_on``; 3 incomplete (unknown/error, nothing failed)."""
    fail_on = fail_on.lower()
    if fail_on not in FAIL_ON_CHOICES:
        raise InputError(f"--fail-on: unknown value {fail_on!r} (expected one of: {', '.join(FAIL_ON_CHOICES)})")
    problems = report.problem_findings()
    triggered = False
    if fail_on == "fail":
        triggered = any(f.status == Status.FAIL for f in problems)
    elif fail_on == "warn":
        triggered = bool(problems)
    elif fail_on != "none":
        threshold = Severity.parse(fail_on)
        triggered = any((f.severity or Severity.INFO).rank >= threshold.rank for f in problems)
    if triggered:
        return EXIT_FINDINGS
    if any(r.status.is_incomplete for r in report.results):
        return EXIT_INCOMPLETE
    return EXIT_OK


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_checks(
    registry: Registry,
    specs: Sequence[CheckSpec],
    targets: Sequence[Target],
    store: FactStore,
    *,
    command: str,
    options: EngineOptions | None = None,
    context: dict[str, Any] | None = None,
) -> Report:
    """Run ``specs`` against every target and assemble the report with ranked root causes."""
    from .. import __version__

    engine = Engine(registry, options)
    started = now_iso()
    t0 = time.perf_counter()
    results: list[CheckResult] = []
    for target in targets:
        results.extend(engine.run_target(specs, store, target))
    return Report(
        command=command,
        targets=list(targets),
        results=results,
        root_causes=rank_root_causes(registry, results),
        started_at=started,
        duration_s=time.perf_counter() - t0,
        context=dict(context or {}),
        tool_version=__version__,
    )
