"""Pieces every renderer shares: redaction of the whole report, ordering, status words, value formatting.

Kept free of any output syntax so that the table, Markdown and JUnit renderers agree on
what is shown and in which order, and differ only in how it looks.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..core.errors import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from ..core.model import STATUS_RANK, Category, CheckResult, Finding, Report, RootCause, Status
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


def scrub(value: T, text: Callable[[str], str] | None = None) -> T:
    """A deep copy of ``value`` with every string redacted (then passed through ``text``, if given).

    The engine already redacts findings; renderers call this again on the whole report
    (targets, context, titles, errors included) because a report is the last place a
    secret can still be stopped. The input is never mutated. Text renderers pass
    :func:`printable` as ``text`` so that dict keys and values alike lose control characters.
    """
    if value is None or isinstance(value, enum.Enum | bool | int | float):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: scrub(getattr(value, f.name), text) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)  # type: ignore[return-value]
    if isinstance(value, str):
        out = redact(value)
        return (text(out) if text else out)  # type: ignore[return-value]
    if isinstance(value, dict):
        # redact_value applies the secret-key rule (e.g. "client_secret": anything) before
        # keys are made printable, so the rule still sees the original key.
        redacted = redact_value({k: scrub(v, text) for k, v in value.items()})
        if text is None:
            return redacted  # type: ignore[return-value]
        return {(text(k) if isinstance(k, str) else k): v for k, v in redacted.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [scrub(v, text) for v in value]  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(scrub(v, text) for v in value)  # type: ignore[return-value]
    return value


# C0/C1 controls (not newline/tab) and the bidi overrides that can disguise text ("Trojan Source").
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Control characters made visible (``\\x1b``), tabs as spaces, CRLF as LF.

    Report text comes from the cluster (annotations, logs, env values): an escape
    sequence in it must not be able to rewrite the on-call engineer's terminal, and XML
    1.0 cannot carry most control characters at all.
    """
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    return _CONTROL.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# Starts with ';', a character every value-style redaction pattern stops at, so text that
# is already redacted is not redacted a second time (which would eat the following
# backtick, pipe or colour code).
_SENTINEL = ";\x00R\x00;"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def scrub_text(text: str) -> str:
    """Redact a finished text rendering, without damaging what is already redacted.

    Runs on the text with colour codes removed (an escape code after ``secret:`` would
    otherwise look like a value). If nothing needs redacting the rendering is returned
    untouched; if something does, which means a secret got past every earlier pass, the
    redacted plain text is returned: losing colour is the right price.
    """
    plain = _ANSI.sub("", text)
    protected = plain.replace(REDACTED, _SENTINEL)
    redacted = redact(protected)
    if redacted == protected:
        return text
    return redacted.replace(_SENTINEL, REDACTED)


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


# The engine's reason for a check skipped only because a prerequisite was.
_SKIPPED_WITH = re.compile(r"^skipped: depends on (\S+), which was skipped$")


def skipped_roots(results: Iterable[CheckResult]) -> list[tuple[CheckResult, int]]:
    """The skipped checks among ``results`` that were not skipped only because a prerequisite
    was, each with how many others (transitively) were skipped because of it.

    A check whose skipped prerequisite is not among ``results`` counts as a root itself.
    """
    skipped = [r for r in results if r.status == Status.SKIPPED]
    by_id = {r.check_id: r for r in skipped}

    def root(r: CheckResult) -> CheckResult:
        seen = {r.check_id}
        while (m := _SKIPPED_WITH.match(r.summary or "")) and m.group(1) in by_id and m.group(1) not in seen:
            r = by_id[m.group(1)]
            seen.add(r.check_id)
        return r

    followers: dict[str, int] = {}
    roots: list[CheckResult] = []
    for r in skipped:
        top = root(r)
        if top is r:
            roots.append(r)
        else:
            followers[top.check_id] = followers.get(top.check_id, 0) + 1
    return [(r, followers.get(r.check_id, 0)) for r in roots]


def count_parts(report: Report) -> list[tuple[Status, str]]:
    """``[(fail, "1 fail"), ...]`` for the non-zero statuses, in a fixed order."""
    counts = report.counts()
    return [(s, f"{counts[s.value]} {s.value}") for s in STATUS_ORDER if counts[s.value]]


def counts_line(report: Report) -> str:
    """``12 checks: 9 pass, 1 fail, 1 blocked`` (only non-zero statuses, in a fixed order)."""
    total = len(report.results)
    parts = [text for _, text in count_parts(report)]
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


def join_fitting(parts: Iterable[str], sep: str, width: int) -> list[str]:
    """Join ``parts`` with ``sep`` into lines of at most ``width``, breaking only between parts."""
    lines: list[str] = []
    for part in parts:
        if lines and display_width(lines[-1] + sep + part) <= width:
            lines[-1] += sep + part
        else:
            lines.append(part)
    return lines


def wrap(text: str, width: int, hanging: int = 0) -> list[str]:
    """Greedy word wrap by display width; a word wider than the line stays whole on its own line.

    Unlike :mod:`textwrap`, this never splits URLs, ids or commands at hyphens and counts
    wide characters correctly, so copy-paste survives and CJK text fits the terminal.
    ``hanging`` narrows every line after the first of a paragraph (for hanging indents).
    """
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        limit = width
        for word in paragraph.split():
            if not current:
                current = word
            elif display_width(current) + 1 + display_width(word) <= limit:
                current = f"{current} {word}"
            else:
                lines.append(current)
                current = word
                limit = width - hanging
        lines.append(current)
    return lines


# ---------------------------------------------------------------------- root causes


def _fix_key(remediation: Iterable[str]) -> tuple[str, ...]:
    return tuple(remediation)


class CausePlan:
    """How the human reports number, group and cross-reference the root causes.

    - Each root cause is tied to the one finding it came from (same target, check, code,
      status and summary; the engine copies them from the finding), so a finding points
      at *its* root cause, not at the first one its check produced, and a root cause can
      show the finding's location.
    - Root causes of one check (and target) with the same remediation form one group:
      shown together, numbered consecutively, their shared fix printed once.
    - A later group whose remediation equals one already printed says so instead of
      printing it again (:meth:`fix_shown_at`).

    Keyed by object identity: a plan is only valid for the report object it was built from.
    """

    def __init__(self, report: Report) -> None:
        causes = report.root_causes
        self._finding_of = _match_causes(report)
        # Groups in order of their first member; numbers follow the displayed order.
        groups: list[list[RootCause]] = []
        by_key: dict[tuple[str, str, tuple[str, ...]], list[RootCause]] = {}
        for rc in causes:
            key = (rc.target, rc.check_id, _fix_key(rc.remediation))
            if rc.remediation and key in by_key:
                by_key[key].append(rc)
                continue
            group = [rc]
            groups.append(group)
            if rc.remediation:
                by_key[key] = group
        self.groups: list[list[tuple[int, RootCause]]] = []
        n = 0
        for group in groups:
            numbered = []
            for rc in group:
                n += 1
                numbered.append((n, rc))
            self.groups.append(numbered)
        self._number = {id(rc): n for group in self.groups for n, rc in group}
        self._cause_of_finding = {id(f): self._number[rc_id] for rc_id, f in self._finding_of.items()}
        self._fix_shown: dict[int, str] = {}
        first_label: dict[tuple[str, ...], str] = {}
        for numbered in self.groups:
            lead = numbered[0][1]
            if not lead.remediation:
                continue
            fix = _fix_key(lead.remediation)
            if fix in first_label:
                self._fix_shown[id(lead)] = first_label[fix]
            else:
                first_label[fix] = self.label(numbered)
        self.count = len(causes)

    @staticmethod
    def label(group: list[tuple[int, RootCause]]) -> str:
        """``3`` for a single root cause, ``1-3`` for a group."""
        first, last = group[0][0], group[-1][0]
        return str(first) if first == last else f"{first}-{last}"

    def number(self, rc: RootCause) -> int:
        return self._number[id(rc)]

    def finding(self, rc: RootCause) -> Finding | None:
        """The finding this root cause came from, if the report holds it."""
        return self._finding_of.get(id(rc))

    def cause_of(self, f: Finding) -> int | None:
        """The number of the root cause this finding is, if it is one."""
        return self._cause_of_finding.get(id(f))

    def fix_shown_at(self, group: list[tuple[int, RootCause]]) -> str | None:
        """The label of an earlier group that already printed this group's exact remediation."""
        return self._fix_shown.get(id(group[0][1]))

    def consequences(self, group: list[tuple[int, RootCause]]) -> list[str]:
        out: list[str] = []
        for _, rc in group:
            out += [c for c in rc.consequences if c not in out]
        return out


def _match_causes(report: Report) -> dict[int, Finding]:
    """``id(root cause) -> finding``.

    Exact first (same target, check, code, status and summary, preferring the same
    remediation), in order, each finding used once, so two root causes with the same
    code get two different findings. Then, for hand-built reports whose texts differ,
    the first unused finding of the same check and code.
    """
    pool: dict[tuple[str, str, str], list[Finding]] = {}
    for r in report.results:
        for f in r.findings:
            if f.status.is_problem and not f.consequence_of:
                pool.setdefault((r.target, r.check_id, f.code), []).append(f)
    claimed: set[int] = set()
    out: dict[int, Finding] = {}

    def claim(rc: RootCause, candidates: Iterable[Finding]) -> None:
        f = next((f for f in candidates if id(f) not in claimed), None)
        if f is not None:
            claimed.add(id(f))
            out[id(rc)] = f

    for rc in report.root_causes:
        same = [f for f in pool.get((rc.target, rc.check_id, rc.code), [])
                if f.summary == rc.summary and f.status == rc.status]
        claim(rc, [f for f in same if f.remediation == rc.remediation]
              + [f for f in same if f.remediation != rc.remediation])
    for rc in report.root_causes:
        if id(rc) not in out:
            claim(rc, pool.get((rc.target, rc.check_id, rc.code), []))
    return out
