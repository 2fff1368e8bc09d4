"""Engine semantics: errors, timeouts, blocked dependents, unknown/skipped, root causes, exit codes."""

from __future__ import annotations

import time

import pytest

from promrw_doctor.core import AccessDenied, FactStore, Skip, Status, Target, Unknown, check, fact
from promrw_doctor.core.engine import EngineOptions, exit_code_for, run_checks
from promrw_doctor.core.registry import Registry, spec_of

TARGET = Target(id="t1", kind="test")


@check(id="pipeline.root", title="root fails", category="pipeline", severity="high", codes=["ROOT_BROKEN"])
def root(ctx):
    return ctx.fail("ROOT_BROKEN", "root is broken", evidence={"why": "test"}, remediation=["fix root"])


@check(id="pipeline.child", title="child", category="pipeline", severity="critical", codes=["CHILD"],
       depends_on=["pipeline.root"])
def child(ctx):  # pragma: no cover - must never run
    raise AssertionError("a blocked check must not run")


@check(id="pipeline.grandchild", title="grandchild", category="pipeline", severity="low", codes=["GC"],
       depends_on=["pipeline.child"])
def grandchild(ctx):  # pragma: no cover - must never run
    raise AssertionError("a blocked check must not run")


@check(id="pipeline.raises", title="raises", category="pipeline", severity="medium", codes=["X"])
def raises(ctx):
    raise RuntimeError("boom with Bearer abcdefghijklmnopqrstuvwxyz012345")


@check(id="pipeline.hangs", title="hangs", category="pipeline", severity="medium", codes=["Y"], timeout_s=0.3)
def hangs(ctx):
    time.sleep(30)


@check(id="pipeline.passes", title="passes", category="pipeline", severity="low", codes=["Z"])
def passes(ctx):
    return ctx.passed("all good")


@check(id="pipeline.warns", title="warns", category="pipeline", severity="medium", codes=["SOON"])
def warns(ctx):
    return ctx.warn("SOON", "expires soon")


def _registry(*funcs):
    return Registry([spec_of(f) for f in funcs])


def _run(reg, store=None, **kw):
    return run_checks(reg, list(reg), [TARGET], store or FactStore(), command="test",
                      options=EngineOptions(check_timeout_s=5, **kw))


def test_raise_hang_and_blocked_are_reported_and_run_completes():
    reg = _registry(root, child, grandchild, raises, hangs, passes)
    t0 = time.perf_counter()
    report = _run(reg)
    elapsed = time.perf_counter() - t0
    by_id = {r.check_id: r for r in report.results}
    assert by_id["pipeline.raises"].status == Status.ERROR
    assert "boom" in by_id["pipeline.raises"].error
    assert "abcdefghijklmnopqrstuvwxyz012345" not in by_id["pipeline.raises"].error  # redacted
    assert by_id["pipeline.hangs"].status == Status.ERROR
    assert "timed out" in by_id["pipeline.hangs"].summary
    assert by_id["pipeline.child"].status == Status.BLOCKED
    assert by_id["pipeline.child"].blocked_by == "pipeline.root"
    assert by_id["pipeline.grandchild"].status == Status.BLOCKED
    assert by_id["pipeline.grandchild"].blocked_by == "pipeline.root"  # names the root of the chain
    assert by_id["pipeline.passes"].status == Status.PASS
    assert [rc.code for rc in report.root_causes] == ["ROOT_BROKEN"]
    assert report.root_causes[0].consequences == ["pipeline.child", "pipeline.grandchild"]
    assert elapsed < 3, "a hung check must not hold up the run"
    assert exit_code_for(report) == 1


def test_root_causes_ranked_fail_first_then_severity():
    @check(id="pipeline.low-fail", title="t", category="pipeline", severity="low", codes=["LOWF"])
    def low_fail(ctx):
        return ctx.fail("LOWF", "low")

    @check(id="pipeline.crit-fail", title="t", category="pipeline", severity="critical", codes=["CRITF"])
    def crit_fail(ctx):
        return ctx.fail("CRITF", "crit")

    report = _run(_registry(warns, low_fail, crit_fail))
    assert [rc.code for rc in report.root_causes] == ["CRITF", "LOWF", "SOON"]


def test_exit_codes_and_fail_on():
    report = _run(_registry(warns, passes))
    assert exit_code_for(report, "fail") == 0
    assert exit_code_for(report, "warn") == 1
    assert exit_code_for(report, "medium") == 1
    assert exit_code_for(report, "high") == 0
    assert exit_code_for(report, "none") == 0
    incomplete = _run(_registry(raises, passes))
    assert exit_code_for(incomplete) == 3


@fact("test.denied")
def _denied_fact(ctx):
    raise AccessDenied("list secrets in namespace monitoring")


@fact("test.counted")
def _counted_fact(ctx):
    _counted_fact.calls += 1  # type: ignore[attr-defined]
    return 42


_counted_fact.calls = 0  # type: ignore[attr-defined]


def test_facts_gathered_once_and_denied_becomes_unknown_naming_permission():
    @check(id="pipeline.needs-denied", title="t", category="pipeline", severity="high", codes=["A"],
           needs=["test.denied"])
    def needs_denied(ctx):
        ctx.fact("test.denied")

    made = []
    for i in range(5):
        @check(id=f"pipeline.reader-{i}", title="t", category="pipeline", severity="low", codes=["B"],
               needs=["test.counted"])
        def reader(ctx):
            assert ctx.fact("test.counted") == 42

        made.append(reader)
    report = _run(_registry(needs_denied, *made))
    by_id = {r.check_id: r for r in report.results}
    assert by_id["pipeline.needs-denied"].status == Status.UNKNOWN
    assert by_id["pipeline.needs-denied"].needs == "list secrets in namespace monitoring"
    assert all(by_id[f"pipeline.reader-{i}"].status == Status.PASS for i in range(5))
    assert _counted_fact.calls == 1  # type: ignore[attr-defined]
    assert exit_code_for(report) == 3


def test_skip_unknown_and_variants():
    @check(id="pipeline.skips", title="t", category="pipeline", severity="low", codes=["S"])
    def skips(ctx):
        raise Skip("needs --client-certificate")

    @check(id="pipeline.unknown", title="t", category="pipeline", severity="low", codes=["U"])
    def unknown(ctx):
        raise Unknown("cannot read logs", needs="get pods/log")

    @check(id="pipeline.podid-only", title="t", category="pipeline", severity="low", codes=["P"],
           variants=["podIdentity"])
    def podid_only(ctx):  # pragma: no cover - skipped by variant
        raise AssertionError("must be skipped")

    @check(id="pipeline.after-skip", title="t", category="pipeline", severity="low", codes=["AS"],
           depends_on=["pipeline.skips"])
    def after_skip(ctx):  # pragma: no cover
        raise AssertionError("must be skipped")

    store = FactStore()
    store.preset("target.variant", "aadApplication", TARGET)
    report = _run(_registry(skips, unknown, podid_only, after_skip), store)
    by_id = {r.check_id: r for r in report.results}
    assert by_id["pipeline.skips"].status == Status.SKIPPED
    assert "client-certificate" in by_id["pipeline.skips"].summary
    assert by_id["pipeline.unknown"].status == Status.UNKNOWN
    assert by_id["pipeline.unknown"].needs == "get pods/log"
    assert by_id["pipeline.podid-only"].status == Status.SKIPPED
    assert "aadApplication" in by_id["pipeline.podid-only"].summary
    assert by_id["pipeline.after-skip"].status == Status.SKIPPED


def test_explained_by_makes_a_consequence_not_a_second_root_cause():
    @check(id="pipeline.role", title="t", category="pipeline", severity="high", codes=["ROLE_ASSIGNMENT_MISSING"])
    def role(ctx):
        return ctx.fail("ROLE_ASSIGNMENT_MISSING", "no role")

    @check(id="pipeline.probe", title="t", category="pipeline", severity="high", codes=["CANARY_REJECTED"])
    def probe(ctx):
        return ctx.fail("CANARY_REJECTED", "403", explained_by=("ROLE_ASSIGNMENT_MISSING",))

    report = _run(_registry(role, probe))
    assert [rc.code for rc in report.root_causes] == ["ROLE_ASSIGNMENT_MISSING"]
    assert report.root_causes[0].consequences == ["pipeline.probe"]
    probe_finding = next(r for r in report.results if r.check_id == "pipeline.probe").findings[0]
    assert probe_finding.consequence_of == "ROLE_ASSIGNMENT_MISSING"


def test_check_returning_wrong_type_is_an_error():
    @check(id="pipeline.bad-return", title="t", category="pipeline", severity="low", codes=["BR"])
    def bad_return(ctx):
        return "not a finding"

    report = _run(_registry(bad_return))
    assert report.results[0].status == Status.ERROR
    assert "expected Finding" in report.results[0].error


def test_secrets_in_findings_are_redacted():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL21vbml0b3IuYXp1cmUuY29tIn0.c2lnbmF0dXJlc2lnbmF0dXJl"

    @check(id="pipeline.leaky", title="t", category="pipeline", severity="low", codes=["L"])
    def leaky(ctx):
        return ctx.fail("L", f"token {jwt}", evidence={"access_token": "supersecretvalue", "line": f"auth {jwt}"},
                        remediation=[f"curl -H 'Authorization: Bearer {jwt}'"])

    report = _run(_registry(leaky))
    import json

    text = json.dumps(report.to_dict())
    assert jwt not in text
    assert "supersecretvalue" not in text


def test_unknown_fail_on_is_input_error():
    from promrw_doctor.core import InputError

    report = _run(_registry(passes))
    with pytest.raises(InputError):
        exit_code_for(report, "sometimes")


def test_consequence_chains_collapse_onto_the_root_and_cycles_stay_visible():
    @check(id="pipeline.c", title="t", category="pipeline", severity="high", codes=["C_ROOT"])
    def c(ctx):
        return ctx.fail("C_ROOT", "root")

    @check(id="pipeline.b", title="t", category="pipeline", severity="high", codes=["B_MID"])
    def b(ctx):
        return ctx.fail("B_MID", "middle", explained_by=("C_ROOT",))

    @check(id="pipeline.a", title="t", category="pipeline", severity="critical", codes=["A_LEAF"])
    def a(ctx):
        return ctx.fail("A_LEAF", "leaf", explained_by=("B_MID",))

    report = _run(_registry(a, b, c))
    assert [rc.code for rc in report.root_causes] == ["C_ROOT"]
    findings = {f.code: f for r in report.results for f in r.findings}
    assert findings["B_MID"].consequence_of == "C_ROOT"
    assert findings["A_LEAF"].consequence_of == "B_MID"

    @check(id="pipeline.x", title="t", category="pipeline", severity="high", codes=["X"])
    def x(ctx):
        return ctx.fail("X", "x", explained_by=("Y",))

    @check(id="pipeline.y", title="t", category="pipeline", severity="high", codes=["Y"])
    def y(ctx):
        return ctx.fail("Y", "y", explained_by=("X",))

    cyc = _run(_registry(x, y))
    assert sorted(rc.code for rc in cyc.root_causes) == ["X", "Y"]
