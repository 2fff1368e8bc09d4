"""Prometheus text exposition (format 0.0.4) for scheduled runs.

A CronJob that runs ``promrw-doctor run`` every few minutes is only useful if something
alerts on it. This renderer turns one report into gauges that node-exporter's textfile
collector or a Pushgateway can serve, so ordinary alerting rules (``deploy/alerts.yaml``)
can key on diagnosis codes and on the age of the last verdict. See docs/SCHEDULED.md.

Design choices, each for a reason:

- **One-hot check status.** ``promrw_doctor_check_status`` has a series for *every*
  status of every check, 0 or 1, so ``...{status="fail"} == 1`` is a plain comparison
  that works from the very first run and a status change never makes a series appear
  out of nowhere (the lesson of Mimir's continuous test: initialise what you alert on).
- **No sample timestamps.** The textfile collector rejects files that carry them and the
  Pushgateway refuses them; the run's time is a value instead
  (``promrw_doctor_run_timestamp_seconds``), which is what a staleness alert needs.
- **Aggregated duplicates.** Two findings with the same labels (one check, one code, two
  subjects) are one series whose value is their number: a repeated series would make
  node-exporter drop the whole file.
- **Bounded labels.** Only ids, codes, statuses, severities and targets become labels,
  never summaries or evidence: cardinality stays at one series per check/code, and free
  text (where a secret could hide) never reaches the output. Label values are still
  redacted, made printable and escaped as the format requires.
- **Redaction on the data.** As for JSON, redaction runs before serialising, never on the
  finished text: rewriting the exposition with regular expressions could eat a closing
  quote and break it.
- **Deterministic order.** Families in a fixed order, samples sorted by their labels, so
  two runs diff cleanly and a file that did not change is byte-identical.

The renderer works from the JSON document (:func:`render_document`), so a CronJob can
keep the full JSON report for its logs and still produce the metrics from the same run:
``python -m promrw_doctor.reports.prometheus report.json out.prom``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.errors import EXIT_OK, EXIT_USAGE, InputError
from ..core.model import STATUS_RANK, Report, Status
from ..core.redact import redact
from ._common import printable

PREFIX = "promrw_doctor"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Every status, in the model's declaration order: the one-hot series of a check.
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)

_SURROGATE = re.compile("[\ud800-\udfff]")

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Family:
    """One metric family: HELP, TYPE gauge, samples in insertion order (already sorted)."""

    name: str
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((tuple(labels.items()), value))


# ---------------------------------------------------------------------- escaping


def label_value(value: Any) -> str:
    """A label value as the exposition format wants it, after redaction.

    Redacted first (a report read back from a file may never have been scrubbed), control
    characters made visible as ``\\xNN`` like every other renderer does, lone surrogates
    (not encodable as UTF-8) escaped, then ``\\``, ``"`` and newline escaped per the format.
    """
    text = printable(redact("" if value is None else str(value)))
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help_text(text: str) -> str:
    """HELP lines escape only backslash and newline."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    """Integers without a decimal point, floats to the microsecond, non-finite as the format spells it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(round(value, 6))


def _sample_line(name: str, labels: Labels, value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    inner = ",".join(f'{key}="{label_value(val)}"' for key, val in labels)
    return f"{name}{{{inner}}} {_number(value)}"


# ---------------------------------------------------------------------- reading the document


def _run_end(document: Mapping[str, Any], duration_s: float) -> float:
    """Unix time the run finished: ``started_at`` plus its duration.

    Falls back to the current time when ``started_at`` is missing or unreadable: a
    staleness alert on a missing timestamp would fire for a run that just happened.
    """
    started = document.get("started_at")
    if isinstance(started, str) and started:
        try:
            parsed = datetime.fromisoformat(started.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp() + duration_s
    return time.time()


def _status(value: Any, where: str) -> str:
    if value not in STATUSES:
        raise InputError(f"{where}: unknown status {value!r} (expected one of: {', '.join(STATUSES)})")
    return str(value)


def _seconds(ms: Any) -> float:
    return max(float(ms or 0.0), 0.0) / 1000.0


def _families(document: Mapping[str, Any]) -> list[_Family]:
    exit_code = document.get("exit_code")
    if not isinstance(exit_code, int) or isinstance(exit_code, bool):
        raise InputError("the report has no exit_code; render it through the CLI or pass exit_code")
    duration_s = _seconds(document.get("duration_ms"))
    finished = _run_end(document, duration_s)
    version = (document.get("tool") or {}).get("version", "")

    info = _Family(f"{PREFIX}_info", "promrw-doctor build information (always 1).")
    info.add(1, version=version)
    stamp = _Family(f"{PREFIX}_run_timestamp_seconds",
                    "Unix time the last run finished; alert when time() minus this exceeds 3 run intervals.")
    stamp.add(finished)
    run_duration = _Family(f"{PREFIX}_run_duration_seconds", "Wall time of the last run.")
    run_duration.add(duration_s)
    code = _Family(f"{PREFIX}_run_exit_code",
                   "Exit code of the last run: 0 clear, 1 findings at or above --fail-on, 3 incomplete.")
    code.add(exit_code)
    success = _Family(f"{PREFIX}_run_success", "1 if the last run exited 0 (all clear), else 0.")
    success.add(1 if exit_code == EXIT_OK else 0)
    last_success = _Family(f"{PREFIX}_last_success_timestamp_seconds",
                           "Unix time of the last run that exited 0; only present in the output of such a run.")
    if exit_code == EXIT_OK:
        last_success.add(finished)

    # (target, check) -> [category, status, duration]; a repeated pair keeps the worst status.
    checks: dict[tuple[str, str], list[Any]] = {}
    findings: Counter[tuple[str, str, str, str, str]] = Counter()
    for i, result in enumerate(document.get("results") or []):
        where = f"results[{i}]"
        key = (str(result.get("target") or ""), str(result["check_id"]))
        result_status = _status(result.get("status"), where)
        seconds = _seconds(result.get("duration_ms"))
        if key in checks:
            known = checks[key]
            if STATUS_RANK[Status(result_status)] < STATUS_RANK[Status(known[1])]:
                known[1] = result_status
            known[2] += seconds
        else:
            checks[key] = [str(result.get("category") or ""), result_status, seconds]
        for j, finding in enumerate(result.get("findings") or []):
            f_status = _status(finding.get("status"), f"{where}.findings[{j}]")
            if Status(f_status).is_problem:
                findings[(key[0], key[1], str(finding["code"]), str(finding.get("severity") or ""), f_status)] += 1

    check_status = _Family(f"{PREFIX}_check_status",
                     "One series per check and status, 1 for the check's status in the last run and 0 otherwise.")
    check_duration = _Family(f"{PREFIX}_check_duration_seconds", "Time the check took in the last run.")
    for (target, check), (category, current, seconds) in sorted(checks.items()):
        for value in STATUSES:
            check_status.add(1 if value == current else 0, check=check, category=category, target=target, status=value)
        check_duration.add(seconds, check=check, target=target)

    finding = _Family(f"{PREFIX}_finding",
                      "Problem findings (fail or warn) of the last run with these labels, usually 1; "
                      "absent when none.")
    for (target, check, f_code, severity, f_status), count in sorted(findings.items()):
        finding.add(count, check=check, code=f_code, severity=severity, status=f_status, target=target)

    causes: Counter[tuple[str, str]] = Counter(
        (str(rc.get("target") or ""), str(rc["code"])) for rc in document.get("root_causes") or [])
    root = _Family(f"{PREFIX}_root_causes",
                   "Root causes of the last run by diagnosis code (promrw-doctor explain CODE); absent when none.")
    for (target, rc_code), count in sorted(causes.items()):
        root.add(count, code=rc_code, target=target)

    return [info, stamp, run_duration, code, success, last_success, check_status, check_duration, finding, root]


# ---------------------------------------------------------------------- rendering


def render_document(document: Mapping[str, Any]) -> str:
    """The exposition for a JSON report document (``Report.to_dict`` shape, ``exit_code`` set).

    Families without samples are left out entirely (the textfile collector drops them
    anyway). Raises :class:`InputError` when the document is not a promrw-doctor report.
    """
    if not isinstance(document, Mapping):
        raise InputError("not a promrw-doctor JSON report: expected a JSON object")
    try:
        families = _families(document)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"not a promrw-doctor JSON report: {type(exc).__name__}: {exc}") from None
    lines: list[str] = []
    for fam in families:
        if not fam.samples:
            continue
        lines.append(f"# HELP {fam.name} {_help_text(fam.help)}")
        lines.append(f"# TYPE {fam.name} gauge")
        lines += [_sample_line(fam.name, labels, value) for labels, value in fam.samples]
    return "\n".join(lines) + "\n"


def render_prometheus(report: Report, *, exit_code: int | None = None) -> str:
    """Prometheus text exposition of ``report``.

    ``exit_code`` is the one the CLI computed with the user's ``--fail-on``; without it,
    the default policy (``exit_code_for(report)``, fail on ``fail``) is used, so the
    gauges always say what the run concluded.
    """
    from ..core.engine import exit_code_for
    from .json_report import report_document

    if exit_code is None:
        exit_code = exit_code_for(report)
    return render_document(report_document(report, exit_code))


# ---------------------------------------------------------------------- JSON -> exposition


def _write_atomically(path: Path, text: str) -> None:
    """Write next to ``path`` and rename: a collector never reads half a file.

    The temporary name ends in ``.tmp``, which the textfile collector ignores (it reads ``*.prom``).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m promrw_doctor.reports.prometheus REPORT.json [OUT.prom]``.

    Turns a JSON report (``-o json``) into the exposition, so one scheduled run can log its
    full JSON and feed the textfile collector or a Pushgateway. Returns 0, or 2 with one
    line on stderr for unreadable input.
    """
    parser = argparse.ArgumentParser(
        prog="python -m promrw_doctor.reports.prometheus",
        description="Render a promrw-doctor JSON report as Prometheus text exposition.")
    parser.add_argument("report", help="JSON report written by -o json ('-' for standard input)")
    parser.add_argument("output", nargs="?", type=Path,
                        help="write here atomically (e.g. /textfile/promrw_doctor.prom); default: standard output")
    args = parser.parse_args(argv)
    try:
        raw = sys.stdin.read() if args.report == "-" else Path(args.report).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"promrw-doctor: cannot read {args.report}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        text = render_document(json.loads(raw))
    except json.JSONDecodeError as exc:
        print(f"promrw-doctor: {args.report} is not JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InputError as exc:
        print(f"promrw-doctor: {args.report}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return EXIT_OK
    try:
        _write_atomically(args.output, text)
    except OSError as exc:
        print(f"promrw-doctor: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    sys.exit(main())
