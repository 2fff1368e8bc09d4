"""Renderers against a report the real engine produced (not only hand-built ones)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

from promrw_doctor.core import AccessDenied, Skip, check
from promrw_doctor.core.engine import EngineOptions, exit_code_for, run_checks
from promrw_doctor.core.facts import FactStore
from promrw_doctor.core.model import Target
from promrw_doctor.core.registry import Registry, spec_of
from promrw_doctor.reports import FORMATS, render
from promrw_doctor.reports.json_report import validate_document
from promrw_doctor.reports.progress import Progress

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJlbmdpbmUtdGVzdCJ9.RW5naW5lUGxhbnRlZFNpZ25hdHVyZQ"


@check(id="identity.token", title="A token can be acquired", category="identity", severity="critical",
       codes=["TOKEN_DENIED"])
def token(ctx: Any) -> Any:
    return ctx.fail("TOKEN_DENIED", "token request rejected: AADSTS700016",
                    evidence={"response": f"Authorization: Bearer {TOKEN}"},
                    remediation=["az identity show -g rg -n prom-mi"])


@check(id="pipeline.write", title="A sample is accepted", category="pipeline", severity="high",
       codes=["WRITE_REJECTED"], depends_on=["identity.token"])
def write(ctx: Any) -> Any:  # pragma: no cover - blocked by identity.token
    return None


@check(id="kubernetes.pods", title="Pods can be listed", category="kubernetes", severity="medium", codes=[])
def pods(ctx: Any) -> Any:
    raise AccessDenied("list pods in namespace monitoring")


@check(id="kubernetes.wi", title="Workload identity is federated", category="kubernetes", severity="low",
       codes=[])
def wi(ctx: Any) -> Any:
    raise Skip("applies to workloadIdentity only")


@check(id="lint.ok", title="Config parses", category="lint", severity="low", codes=[])
def ok(ctx: Any) -> Any:
    return ctx.passed("parsed 2 files", evidence={"files": 2})


def test_engine_report_renders_in_every_format() -> None:
    specs = [s for s in (spec_of(f) for f in (token, write, pods, wi, ok)) if s is not None]
    registry = Registry(specs)
    stderr = io.StringIO()
    progress = Progress(stderr, True, len(specs))
    report = run_checks(registry, specs, [Target(id="monitoring/prom-0", kind="pod")], FactStore(),
                        command="check", options=EngineOptions(on_result=progress))
    progress.close()
    assert stderr.getvalue() == ""  # not a TTY
    code = exit_code_for(report)
    assert code == 1

    outputs = {fmt: render(report, fmt, exit_code=code) for fmt in FORMATS}
    for out in outputs.values():
        assert "RW5naW5lUGxhbnRlZFNpZ25hdHVyZQ" not in out

    assert validate_document(json.loads(outputs["json"])) == []
    table = outputs["table"]
    assert "ROOT CAUSE\n\n1. × TOKEN_DENIED · critical · identity.token" in table
    assert "consequences: pipeline.write" in table
    assert "~ A sample is accepted  pipeline.write\n    blocked by identity.token" in table
    assert "needs     list pods in namespace monitoring" in table
    assert "5 checks: 1 pass, 1 fail, 1 blocked, 1 unknown, 1 skipped" in table
    root = ET.fromstring(outputs["junit"])
    assert [root.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["5", "1", "1", "2"]
    assert "```sh\n   az identity show -g rg -n prom-mi\n   ```" in outputs["markdown"]
