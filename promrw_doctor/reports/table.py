"""The terminal report: for a person at 3 a.m., in an 80-column terminal.

Modelled on ``linkerd check``: a glyph per check (√ pass, ‼ warn, × fail, ? unknown,
! error, ~ blocked, - skipped), checks grouped under their category, passing checks one
line each. Two departures, both for the reader in a hurry:

- root causes come first, with the commands that fix them, so the answer is on the
  first screen and the blocked checks below read as consequences, not as more work;
- every problem shows its evidence, location, fix and docs in a fixed label column, so
  the eye finds "fix" at the same place every time.

Long text wraps at ``width``; commands and URLs are never broken (copy-paste must work),
so one that does not fit goes alone on its own line. Colour only when asked: the CLI
decides (TTY, ``--no-color``, ``NO_COLOR``). ``ascii_only`` swaps every decorative glyph
for ASCII when the output encoding cannot carry them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from ..core.model import CheckResult, Finding, Report, RootCause, Status
from ._common import (
    counts_line,
    display_width,
    exit_meaning,
    format_value,
    group_results,
    notes,
    problem_findings,
    reason,
    scrub,
    scrub_text,
    wrap,
)

MIN_WIDTH = 40
INDENT = "    "  # details under a check line up under its title
LABEL_WIDTH = 10  # "evidence" plus two spaces
MAX_VALUE_CHARS = 240  # evidence values longer than this are cut; the JSON report has them whole

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
_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "magenta": "35", "cyan": "36"}
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
    """Whether ``stream`` can carry the Unicode glyphs; the CLI passes ``ascii_only=not …``."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    sample = "".join(UNICODE_SYMBOLS.values()) + "".join(_UNICODE_GLYPHS.values())
    try:
        sample.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class _Style:
    """ANSI styling that disappears entirely when colour is off (no stray escape codes)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles or not text:
            return text
        return "".join(f"\x1b[{_CODES[s]}m" for s in styles) + text + _RESET


class _Table:
    def __init__(self, *, color: bool, width: int, verbose: bool, ascii_only: bool, multi_target: bool) -> None:
        self.s = _Style(color)
        self.width = max(width, MIN_WIDTH)
        self.verbose = verbose
        self.symbols = ASCII_SYMBOLS if ascii_only else UNICODE_SYMBOLS
        self.g = _ASCII_GLYPHS if ascii_only else _UNICODE_GLYPHS
        self.multi_target = multi_target
        self.lines: list[str] = []

    # ------------------------------------------------------------------ primitives
    def emit(self, line: str = "") -> None:
        self.lines.append(line.rstrip())

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.emit()

    def symbol(self, status: Status) -> str:
        return self.s(self.symbols[status], *STATUS_STYLE[status])

    def paragraph(self, text: str, indent: str, *styles: str) -> None:
        """Wrapped prose with a hanging indent."""
        for piece in wrap(text, self.width - len(indent)):
            self.emit(indent + self.s(piece, *styles))

    def field(self, label: str, text: str, indent: str = INDENT, *styles: str) -> None:
        """``label`` in a fixed column, ``text`` wrapped beside it."""
        pad = " " * LABEL_WIDTH
        for i, piece in enumerate(wrap(text, self.width - len(indent) - LABEL_WIDTH)):
            head = self.s(label.ljust(LABEL_WIDTH), "dim") if i == 0 else pad
            self.emit(indent + head + self.s(piece, *styles))

    def verbatim(self, label: str, items: Sequence[str], indent: str = INDENT) -> None:
        """Commands and URLs: never wrapped. In the label column when they all fit, else one per line."""
        room = self.width - len(indent) - LABEL_WIDTH
        if all(display_width(i) <= room and "\n" not in i for i in items):
            for i, item in enumerate(items):
                head = self.s(label.ljust(LABEL_WIDTH), "dim") if i == 0 else " " * LABEL_WIDTH
                self.emit(indent + head + self.s(item, "cyan"))
            return
        self.emit(indent + self.s(label, "dim"))
        for item in items:
            for line in item.splitlines():
                self.emit(indent + "  " + self.s(line, "cyan"))

    def evidence(self, evidence: dict[str, object], indent: str = INDENT) -> None:
        pad = indent + " " * LABEL_WIDTH
        room = self.width - len(pad)
        first = True
        for key, value in evidence.items():
            text = format_value(value)
            if len(text) > MAX_VALUE_CHARS:
                text = f"{text[:MAX_VALUE_CHARS]}{self.g['ellipsis']} (cut; full value in -o json)"
            pieces = wrap(f"{key}: {text}", room)
            for i, piece in enumerate(pieces):
                if i == 0:
                    head = self.s("evidence".ljust(LABEL_WIDTH), "dim") if first else " " * LABEL_WIDTH
                    k, _, rest = piece.partition(": ")
                    body = self.s(k + ":", "dim") + (" " + rest if rest else "") if rest or piece.endswith(":") \
                        else piece
                    self.emit(indent + head + body)
                else:
                    self.emit(pad + "  " + piece if display_width(piece) + 2 <= room else pad + piece)
            first = False

    # ------------------------------------------------------------------ sections
    def header(self, report: Report) -> None:
        command = report.command.strip() or "run"
        if not command.startswith("promrw-doctor"):
            command = f"promrw-doctor {command}"
        dot = f" {self.g['dot']} "
        targets = ", ".join(t.id for t in report.targets) or "no target"
        first = dot.join([command, targets, report.started_at, f"{report.duration_s:.1f}s"])
        for piece in wrap(first, self.width):
            self.emit(self.s(piece, "bold"))
        extras = [f"{k}: {format_value(v)}" for k, v in report.context.items()
                  if isinstance(v, str | int | float | bool) and v != ""]
        if report.tool_version:
            extras.append(f"version: {report.tool_version}")
        if extras:
            self.paragraph(dot.join(extras), "", "dim")

    def root_causes(self, causes: list[RootCause]) -> None:
        if not causes:
            return
        self.blank()
        self.emit(self.s(f"ROOT CAUSES ({len(causes)})" if len(causes) > 1 else "ROOT CAUSE", "bold"))
        number_width = len(str(len(causes)))
        for n, rc in enumerate(causes, 1):
            num = f"{n}.".rjust(number_width + 1)
            dot = f" {self.g['dot']} "
            title = dot.join([rc.code, rc.severity.value, rc.check_id]
                             + ([f"target {rc.target}"] if self.multi_target else []))
            indent = " " * (len(num) + 3)
            pieces = wrap(title, self.width - len(indent))
            self.emit(f"{num} {self.symbol(rc.status)} {self.s(pieces[0], 'bold')}")
            for piece in pieces[1:]:
                self.emit(indent + self.s(piece, "bold"))
            self.paragraph(rc.summary, indent)
            if rc.remediation:
                self.verbatim("fix", rc.remediation, indent)
            if rc.consequences:
                self.paragraph("consequences: " + ", ".join(rc.consequences), indent, "dim")
            if n < len(causes):
                self.blank()

    def category(self, name: str, results: list[CheckResult]) -> None:
        self.blank()
        self.emit(self.s(name, "bold"))
        self.emit(self.s(self.g["rule"] * min(max(len(name), 8), self.width), "dim"))
        for r in results:
            self.check(r)

    def check_line(self, r: CheckResult, suffix: str = "") -> None:
        """``<glyph> <title>  <id>``; ids are shown for anything that is not a plain pass."""
        words = r.title if r.status == Status.PASS and not self.verbose else f"{r.title}  {r.check_id}"
        pieces = wrap(words + (f"  {suffix}" if suffix else ""), self.width - 2)
        title_style: tuple[str, ...] = ("bold",) if r.status in (Status.FAIL, Status.ERROR) else ()
        for i, piece in enumerate(pieces):
            lead = f"{self.symbol(r.status)} " if i == 0 else "  "
            if i == 0 and piece.startswith(r.title):
                rest = piece[len(r.title):]
                self.emit(lead + self.s(r.title, *title_style) + self.s(rest, "dim"))
            else:
                self.emit(lead + self.s(piece, "dim"))

    def check(self, r: CheckResult) -> None:
        if r.status == Status.PASS:
            self.check_line(r)
            if self.verbose:
                for f in r.findings:
                    self.finding(f, show_summary=f.summary != "ok", bullet=False)
            return
        if r.status in (Status.BLOCKED, Status.SKIPPED):
            text = reason(r)
            one_line = f"{r.title}  {r.check_id}  {self.g['dot']} {text}"
            if display_width(one_line) + 2 <= self.width:
                self.check_line(r, f"{self.g['dot']} {text}")
            else:
                self.check_line(r)
                self.paragraph(text, INDENT, "dim")
            return
        self.check_line(r)
        if r.status == Status.UNKNOWN:
            self.paragraph(r.summary or "could not look", INDENT)
            if r.needs:
                self.field("needs", r.needs, INDENT, "yellow")
            return
        if r.status == Status.ERROR:
            self.paragraph(reason(r), INDENT)
            self.paragraph("this is a problem in the doctor, not in your system; "
                           "--debug shows the traceback", INDENT, "dim")
            return
        problems = problem_findings(r)
        if not problems:  # a warn/fail check without findings: only its summary is known
            self.paragraph(r.summary, INDENT)
        for f in problems:
            self.finding(f, show_summary=True, bullet=len(problems) > 1)
        if self.verbose:
            for f in notes(r):
                self.finding(f, show_summary=True, bullet=False)

    def finding(self, f: Finding, *, show_summary: bool, bullet: bool) -> None:
        if show_summary and f.summary:
            if bullet:
                lead = f"{INDENT}{self.g['bullet']} "
                pieces = wrap(f.summary, self.width - len(lead))
                self.emit(lead + pieces[0])
                for piece in pieces[1:]:
                    self.emit(" " * len(lead) + piece)
            else:
                self.paragraph(f.summary, INDENT)
        sev = f" ({f.severity.value})" if f.severity and f.status.is_problem else ""
        if f.code and (f.status.is_problem or self.verbose):
            self.field("code", f"{f.code}{sev}" + (f" on {f.subject}" if f.subject else ""))
        if f.evidence:
            self.evidence(f.evidence)
        if f.location:
            self.verbatim("at", [f.location])
        if f.consequence_of:
            self.field("cause", f"explained by {f.consequence_of} (see root causes)")
        if f.remediation:
            self.verbatim("fix", f.remediation)
        if f.docs_url:
            self.verbatim("docs", [f.docs_url])

    def totals(self, report: Report, exit_code: int | None) -> None:
        self.blank()
        counts = report.counts()
        line = counts_line(report)
        if self.s.enabled:
            for status in Status:
                if counts[status.value]:
                    token = f"{counts[status.value]} {status.value}"
                    line = line.replace(token, self.s(token, *STATUS_STYLE[status]), 1)
        self.emit(line)
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
    report = scrub(report)
    targets = {r.target for r in report.results} | {t.id for t in report.targets}
    multi = len(targets) > 1
    t = _Table(color=color, width=width, verbose=verbose, ascii_only=ascii_only, multi_target=multi)
    t.header(report)
    t.root_causes(report.root_causes)
    descriptions = {tg.id: tg.description for tg in report.targets}
    for target, categories in group_results(report):
        if multi:
            t.blank()
            label = f"TARGET {target}" + (f" ({descriptions[target]})" if descriptions.get(target) else "")
            t.paragraph(label, "", "bold")
        for name, results in categories:
            t.category(name, results)
    if not report.results:
        t.blank()
        t.emit("no checks ran (check the selection: --checks, --category, --profile)")
    t.totals(report, exit_code)
    return scrub_text("\n".join(t.lines) + "\n")
