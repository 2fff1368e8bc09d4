"""Pieces every renderer shares: redaction of the whole report, ordering, status words, value formatting.

Kept free of any output syntax so that the table, Markdown and JUnit renderers agree on
what is shown and in which order, and differ only in how it looks.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import unicodedata
from collections.abc import Iterable
from typing import Any, TypeVar

from ..core.errors import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from ..core.model import STATUS_RANK, Category, CheckResult, Finding, Report, Status
from ..core.redact import REDACTED, redact, redact_value

T = TypeVar("T")

# Display order of the statuses in totals: the model's declaration order (pass first),
# which reads naturally in "9 pass, 1 fail, 1 blocked".
STATUS_ORDER: tuple[Status, ...] = tuple(Status)

EXIT_MEANINGS: dict[int, str] = {
    EXIT_OK: "all clear",
    EXIT_FINDINGS: "findings at or above --fail-on",
    EXIT_USAGE: "usage or input error",
    EXIT_INCOMPLETE: "incomplete: some checks could not reach a verdict (unknown or error)",
}

# A passing finding with this code is the engine's plain "ok"; anything else is a note.
PLAIN_PASS_CODE = "OK"


def exit_meaning(code: int) -> str:
    return EXIT_MEANINGS.get(code, "unexpected exit code")


# ---------------------------------------------------------------------- redaction


def scrub(value: T) -> T:
    """A deep copy of ``value`` with every string redacted.

    The engine already redacts findings; renderers call this again on the whole report
    (targets, context, titles, errors included) because a report is the last place a
    secret can still be stopped. The input is never mutated.
    """
    if value is None or isinstance(value, enum.Enum | bool | int | float):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: scrub(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)  # type: ignore[return-value]
    if isinstance(value, str):
        return redact(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        # redact_value applies the secret-key rule (e.g. "client_secret": anything).
        return redact_value({k: scrub(v) for k, v in value.items()})  # type: ignore[return-value]
    if isinstance(value, list):
        return [scrub(v) for v in value]  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(scrub(v) for v in value)  # type: ignore[return-value]
    return value


# Starts with ';', a character every value-style redaction pattern stops at, so text that
# is already redacted is not redacted a second time (which would eat the following
# backtick, pipe or colour code).
_SENTINEL = ";\x00R\x00;"


def scrub_text(text: str) -> str:
    """Redact a finished text rendering, without damaging markers that are already there."""
    protected = text.replace(REDACTED, _SENTINEL)
    return redact(protected).replace(_SENTINEL, REDACTED)


# ---------------------------------------------------------------------- ordering


def category_order(results: Iterable[CheckResult]) -> list[str]:
    """Known categories in pipeline order (lint → pipeline), then any others as they appear."""
    seen: list[str] = []
    for r in results:
        if r.category not in seen:
            seen.append(r.category)
    known = [c.value for c in Category]
    return [c for c in known if c in seen] + [c for c in seen if c not in known]


def group_results(report: Report) -> list[tuple[str, list[tuple[str, list[CheckResult]]]]]:
    """Results as [(target, [(category, results)])], keeping the engine's order within a category."""
    targets: list[str] = []
    for r in report.results:
        if r.target not in targets:
            targets.append(r.target)
    out = []
    for target in targets:
        rs = [r for r in report.results if r.target == target]
        out.append((target, [(c, [r for r in rs if r.category == c]) for c in category_order(rs)]))
    return out


def worst_first(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Stable sort by status rank: fail, error, blocked, warn, unknown, pass, skipped."""
    return sorted(results, key=lambda r: STATUS_RANK[r.status])


def problem_findings(result: CheckResult) -> list[Finding]:
    return [f for f in result.findings if f.status.is_problem]


def notes(result: CheckResult) -> list[Finding]:
    """Informational findings: passing findings that say more than "ok"."""
    return [f for f in result.findings if f.status == Status.PASS and f.code != PLAIN_PASS_CODE]


def reason(result: CheckResult) -> str:
    """Why a check that did not run to a verdict ended where it did (blocked, skipped, unknown, error)."""
    if result.status == Status.BLOCKED:
        return f"blocked by {result.blocked_by}" if result.blocked_by else (result.summary or "blocked")
    if result.status == Status.ERROR:
        return result.error or result.summary or "the check itself failed"
    return result.summary


def counts_line(report: Report) -> str:
    """``12 checks: 9 pass, 1 fail, 1 blocked`` (only non-zero statuses, in a fixed order)."""
    counts = report.counts()
    total = sum(counts.values())
    parts = [f"{counts[s.value]} {s.value}" for s in STATUS_ORDER if counts[s.value]]
    noun = "check" if total == 1 else "checks"
    return f"{total} {noun}: {', '.join(parts)}" if parts else f"{total} {noun}"


# ---------------------------------------------------------------------- values


def format_value(value: Any) -> str:
    """Evidence values in their most compact readable form: scalars plain, containers as JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, str | int | float):
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        return str(value)


def display_width(text: str) -> int:
    """Terminal columns ``text`` occupies: wide (CJK) characters count two, combining marks zero."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap by display width; a word wider than ``width`` stays whole on its own line.

    Unlike :mod:`textwrap`, this never splits URLs, ids or commands at hyphens and counts
    wide characters correctly, so copy-paste survives and CJK text fits the terminal.
    """
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            if not current:
                current = word
            elif display_width(current) + 1 + display_width(word) <= width:
                current = f"{current} {word}"
            else:
                lines.append(current)
                current = word
        lines.append(current)
    return lines
