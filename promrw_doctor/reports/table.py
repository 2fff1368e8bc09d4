"""The terminal report: for a person at 3 a.m., in an 80-column terminal.

Modelled on ``linkerd check``: a glyph per check (√ pass, ‼ warn, × fail, ? unknown,
! error, ~ blocked, - skipped), checks grouped under their category, passing checks one
line each. Two departures, both for the reader in a hurry:

- root causes come first, with the commands that fix them, so the answer is on the
  first screen and the blocked checks further down read as consequences, not more work;
- every problem shows its evidence, location, fix and docs in a fixed label column, so
  the eye finds "fix" in the same place every time. A problem that is a root cause
  points back to it instead of printing the same commands twice.

Long text wraps at ``width``; commands and URLs are never broken (copy-paste must work),
so one that does not fit goes alone on its own line. Colour only when asked: the CLI
decides (TTY, ``--no-color``, ``NO_COLOR``). ``ascii_only`` swaps every decorative glyph
for ASCII when the output encoding cannot carry them. Control characters from the
cluster are shown escaped, so report text can never drive the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from ..core.model import CheckResult, Finding, Report, RootCause, Status
from ._common import (
    count_parts,
    display_width,
    exit_meaning,
    format_value,
    group_results,
    join_fitting,
    notes,
    printable,
    problem_findings,
    reason,
    scrub,
    scrub_text,
    wrap,
)

MIN_WIDTH = 40
INDENT = "    "  # details line up under the check's title
LABEL_WIDTH = 10  # "evidence" plus two spaces
MAX_VALUE_CHARS = 240  # longer evidence values are cut here; the JSON report has them whole
MAX_HEADER_VALUE = 60  # context values longer than this stay out of the header

UNICODE_SYMBOLS: dict[Status, str] = {
    Status.PASS: "√",
    Status.WARN: "‼",
    Status.FAIL: "×",
    Status.UNKNOWN: "?",
    Status.ERROR: "!",
    Status.BLOCKED: "~",
    Status.SKIPPED: "-",
}
ASCII_SYMBOLS: dict[Status, str] = {
    Status.PASS: "+",
    Status.WARN: "!",
    Status.FAIL: "x",
    Status.UNKNOWN: "?",
    Status.ERROR: "E",
    Status.BLOCKED: "~",
    Status.SKIPPED: "-",
}

_UNICODE_GLYPHS = {"dot": "·", "rule": "─", "ellipsis": "…", "bullet": "•"}
_ASCII_GLYPHS = {"dot": "-", "rule": "-", "ellipsis": "...", "bullet": "*"}

_RESET = "\x1b[0m"
_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "magenta": "35", "cyan": "36"}
STATUS_STYLE: dict[Status, tuple[str, ...]] = {
    Status.PASS: ("green",),
    Status.WARN: ("yellow", "bold"),
    Status.FAIL: ("red", "bold"),
    Status.ERROR: ("magenta", "bold"),
    Status.UNKNOWN: ("yellow",),
    Status.BLOCKED: ("dim",),
    Status.SKIPPED: ("dim",),
}


def can_encode_symbols(stream: TextIO) -> bool:
    """Whether ``stream`` can carry the Unicode glyphs (the CLI passes ``ascii_only=not ...``)."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    sample = "".join(UNICODE_SYMBOLS.values()) + "".join(_UNICODE_GLYPHS.values())
    try:
        sample.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class _Style:
    """ANSI styling that vanishes entirely when colour is off (no stray escape codes in pipes)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles or not text:
            return text
        return "".join(f"\x1b[{_SGR[s]}m" for s in styles) + text + _RESET


def _cause_key(target: str, check_id: str, code: str) -> tuple[str, str, str]:
    return (target, check_id, code)


class _Table:
    """Accumulates lines; each method renders one element of the layout."""

    def __init__(self, report: Report, *, color: bool, width: int, verbose: bool, ascii_only: bool) -> None:
        self.s = _Style(color)
        self.width = max(width, MIN_WIDTH)
        self.verbose = verbose
        self.symbols = ASCII_SYMBOLS if ascii_only else UNICODE_SYMBOLS
        self.g = _ASCII_GLYPHS if ascii_only else _UNICODE_GLYPHS
        targets = {r.target for r in report.results} | {t.id for t in report.targets}
        self.multi_target = len(targets) > 1
        self.cause_number = {
            _cause_key(rc.target, rc.check_id, rc.code): n for n, rc in enumerate(report.root_causes, 1)
        }
        self.cause_has_fix = {n: bool(rc.remediation) for n, rc in enumerate(report.root_causes, 1)}
        self.lines: list[str] = []

    # ------------------------------------------------------------------ primitives
    def emit(self, line: str = "") -> None:
        self.lines.append(line.rstrip())

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.emit()

    @property
    def dot(self) -> str:
        return f" {self.g['dot']} "

    def symbol(self, status: Status) -> str:
        return self.s(self.symbols[status], *STATUS_STYLE[status])

    def paragraph(self, text: str, indent: str, *styles: str) -> None:
        """Wrapped prose under ``indent``."""
        for piece in wrap(text, self.width - len(indent)):
            self.emit(indent + self.s(piece, *styles))

    def label(self, name: str, first: bool) -> str:
        return self.s(name.ljust(LABEL_WIDTH), "dim") if first else " " * LABEL_WIDTH

    def field(self, name: str, text: str, indent: str = INDENT, *styles: str) -> None:
        """``name`` in the label column, ``text`` wrapped beside it."""
        for i, piece in enumerate(wrap(text, self.width - len(indent) - LABEL_WIDTH)):
            self.emit(indent + self.label(name, i == 0) + self.s(piece, *styles))

    def verbatim(self, name: str, items: Sequence[str], indent: str = INDENT) -> None:
        """Commands and URLs, never wrapped: beside the label when all fit, else each on its own line."""
        room = self.width - len(indent) - LABEL_WIDTH
        if all(display_width(i) <= room and "\n" not in i for i in items):
            for i, item in enumerate(items):
                self.emit(indent + self.label(name, i == 0) + self.s(item, "cyan"))
            return
        self.emit(indent + self.s(name, "dim"))
        for item in items:
            for line in item.splitlines():
                self.emit(indent + "  " + self.s(line, "cyan"))

    def evidence(self, evidence: dict[str, Any], indent: str = INDENT) -> None:
        """One ``key: value`` per line beside the label; long values wrap with a hanging indent."""
        room = self.width - len(indent) - LABEL_WIDTH
        for n, (key, value) in enumerate(evidence.items()):
            text = format_value(value)
            if len(text) > MAX_VALUE_CHARS:
                text = f"{text[:MAX_VALUE_CHARS]}{self.g['ellipsis']} (cut; whole value in -o json)"
            for i, piece in enumerate(wrap(f"{key}: {text}", room, hanging=2)):
                if i == 0:
                    cut = len(key) + 1 if piece.startswith(f"{key}:") else 0
                    head = self.label("evidence", n == 0)
                    self.emit(indent + head + self.s(piece[:cut], "dim") + piece[cut:])
                else:
                    self.emit(indent + " " * (LABEL_WIDTH + 2) + piece)

    # ------------------------------------------------------------------ sections
    def header(self, report: Report) -> None:
        command = report.command.strip() or "run"
        if not command.startswith("promrw-doctor"):
            command = f"promrw-doctor {command}"
        targets = [t.id for t in report.targets] or ["no target"]
        for line in join_fitting([command, *targets], "  ", self.width):
            self.emit(self.s(line, "bold"))
        facts = [report.started_at, f"{report.duration_s:.1f}s"]
        for key, value in report.context.items():
            text = format_value(value)
            if isinstance(value, str | int | float | bool) and text and "\n" not in text \
                    and len(text) <= MAX_HEADER_VALUE:
                facts.append(f"{key} {text}")
        if report.tool_version:
            facts.append(f"v{report.tool_version}")
        for line in join_fitting([f for f in facts if f], self.dot, self.width):
            self.emit(self.s(line, "dim"))

    def root_causes(self, causes: list[RootCause]) -> None:
        if not causes:
            return
        self.blank()
        self.emit(self.s(f"ROOT CAUSES ({len(causes)}) {self.g['dot']} fix these first", "bold")
                  if len(causes) > 1 else self.s("ROOT CAUSE", "bold"))
        number_width = len(str(len(causes))) + 1
        indent = " " * (number_width + 3)
        for n, rc in enumerate(causes, 1):
            self.blank()
            parts = [rc.code, rc.severity.value, rc.check_id] + ([rc.target] if self.multi_target else [])
            lines = join_fitting(parts, self.dot, self.width - len(indent))
            self.emit(f"{f'{n}.':>{number_width}} {self.symbol(rc.status)} {self.s(lines[0], 'bold')}")
            for line in lines[1:]:
                self.emit(indent + self.s(line, "bold"))
            self.paragraph(rc.summary, indent)
            if rc.remediation:
                self.verbatim("fix", rc.remediation, indent)
            if rc.consequences:
                self.paragraph("consequences: " + ", ".join(rc.consequences), indent, "dim")

    def category(self, name: str, results: list[CheckResult]) -> None:
        self.blank()
        self.emit(self.s(name, "bold"))
        self.emit(self.s(self.g["rule"] * min(display_width(name), self.width), "dim"))
        for r in results:
            self.check(r)

    def check_line(self, r: CheckResult, show_id: bool) -> None:
        """``<glyph> <title>  <id>``; the id moves to its own line when the title is long."""
        title_style: tuple[str, ...] = ("bold",) if r.status in (Status.FAIL, Status.ERROR) else ()
        room = self.width - 2
        pieces = wrap(r.title, room)
        lines = [self.s(p, *title_style) for p in pieces]
        if show_id:
            if display_width(pieces[-1]) + 2 + display_width(r.check_id) <= room:
                lines[-1] += "  " + self.s(r.check_id, "dim")
            else:
                lines.append(self.s(r.check_id, "dim"))
        for i, line in enumerate(lines):
            self.emit((f"{self.symbol(r.status)} " if i == 0 else "  ") + line)

    def check(self, r: CheckResult) -> None:
        if r.status == Status.PASS:
            self.check_line(r, show_id=self.verbose)
            if self.verbose:
                for f in r.findings:
                    self.finding(r, f, show_summary=f.summary not in ("", "ok"), bullet=False)
            return
        self.check_line(r, show_id=True)
        if r.status in (Status.BLOCKED, Status.SKIPPED):
            self.paragraph(reason(r), INDENT, "dim")
        elif r.status == Status.UNKNOWN:
            if not r.needs or r.needs not in r.summary:
                self.paragraph(r.summary or "could not look", INDENT)
            if r.needs:
                self.field("needs", r.needs, INDENT, "yellow")
        elif r.status == Status.ERROR:
            self.paragraph(reason(r), INDENT)
            self.paragraph("the check itself broke; this says nothing about your system", INDENT, "dim")
        else:
            problems = problem_findings(r)
            if not problems:  # a warn/fail result without findings: only its summary is known
                self.paragraph(r.summary, INDENT)
            for f in problems:
                self.finding(r, f, show_summary=True, bullet=len(problems) > 1)
            if self.verbose:
                for f in notes(r):
                    self.finding(r, f, show_summary=True, bullet=False)

    def finding(self, r: CheckResult, f: Finding, *, show_summary: bool, bullet: bool) -> None:
        if show_summary and f.summary:
            if bullet:
                lead = f"{INDENT}{self.g['bullet']} "
                for i, piece in enumerate(wrap(f.summary, self.width - len(lead))):
                    self.emit((lead if i == 0 else " " * len(lead)) + piece)
            else:
                self.paragraph(f.summary, INDENT)
        if f.status.is_problem or (self.verbose and f.code != "OK"):
            sev = f" ({f.severity.value})" if f.severity and f.status.is_problem else ""
            self.field("code", f"{f.code}{sev}" + (f" on {f.subject}" if f.subject else ""))
        if f.evidence:
            self.evidence(f.evidence)
        if f.location:
            self.verbatim("at", [f.location])
        cause = self.cause_number.get(_cause_key(r.target, r.check_id, f.code))
        if f.consequence_of:
            self.field("cause", f"a consequence of {f.consequence_of} (see root causes)")
        elif cause is not None and (f.remediation or self.cause_has_fix[cause]):
            self.field("fix", f"see root cause {cause} above")
        elif f.remediation:
            self.verbatim("fix", f.remediation)
        if f.docs_url:
            self.verbatim("docs", [f.docs_url])

    def totals(self, report: Report, exit_code: int | None) -> None:
        """``12 checks: 9 pass, 1 fail``, wrapped between counts, each count in its status colour."""
        self.blank()
        total = len(report.results)
        parts = count_parts(report)
        units: list[tuple[str, str, tuple[str, ...]]] = [  # (text, trailing punctuation, style)
            (f"{total} {'check' if total == 1 else 'checks'}", ":" if parts else "", ())]
        units += [(text, "," if i < len(parts) - 1 else "", STATUS_STYLE[status])
                  for i, (status, text) in enumerate(parts)]
        lines: list[list[tuple[str, str, tuple[str, ...]]]] = []
        for unit in units:
            width = sum(len(t) + len(p) + 1 for t, p, _ in lines[-1]) + len(unit[0]) + len(unit[1]) \
                if lines else 0
            if lines and width <= self.width:
                lines[-1].append(unit)
            else:
                lines.append([unit])
        for line in lines:
            self.emit(" ".join(self.s(text, *style) + punct for text, punct, style in line))
        if exit_code is not None:
            self.paragraph(f"exit {exit_code}: {exit_meaning(exit_code)}", "", "dim")


def render_table(
    report: Report,
    *,
    color: bool = False,
    exit_code: int | None = None,
    width: int = 80,
    verbose: bool = False,
    ascii_only: bool = False,
) -> str:
    """The human report. Lines stay within ``width`` except a command or URL alone on its line."""
    report = scrub(report, printable)
    t = _Table(report, color=color, width=width, verbose=verbose, ascii_only=ascii_only)
    t.header(report)
    t.root_causes(report.root_causes)
    descriptions = {tg.id: tg.description for tg in report.targets}
    for target, categories in group_results(report):
        if t.multi_target:
            t.blank()
            label = f"TARGET {target}" + (f" ({descriptions[target]})" if descriptions.get(target) else "")
            t.paragraph(label, "", "bold")
        for name, results in categories:
            t.category(name, results)
    if not report.results:
        t.blank()
        t.emit("no checks ran")
    t.totals(report, exit_code)
    return scrub_text("\n".join(t.lines) + "\n")
