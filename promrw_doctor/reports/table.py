"""The terminal report: for a person at 3 a.m., in an 80-column terminal.

Modelled on ``linkerd check``: a glyph per check (√ pass, ‼ warn, × fail, ? unknown,
! error, ~ blocked, - skipped), checks grouped under their category, passing checks one
line each. Two departures, both for the reader in a hurry:

- root causes come first, with the commands that fix them, so the answer is on the
  first screen and the blocked checks further down read as consequences, not more work;
- every problem shows its evidence, location, fix and docs in a fixed label column, so
  the eye finds "fix" in the same place every time. A problem that is a root cause
  points back to *its* root cause instead of printing the same commands twice.

Noise is cut where it repeats: root causes of one check that share a fix are shown
together with the fix printed once (``fix 1-3``), a later root cause with a fix already
printed says ``fix  same as 1``, and skipped checks fold into one line per category
(the checks skipped only because a prerequisite was are counted, not named);
``verbose`` lists each skipped check with its reason. Blocked, unknown and error checks
are always listed one by one: they are what the doctor could not clear.

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
    CausePlan,
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
    skipped_roots,
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


class _Table:
    """Accumulates lines; each method renders one element of the layout."""

    def __init__(self, report: Report, *, color: bool, width: int, verbose: bool, ascii_only: bool) -> None:
        self.s = _Style(color)
        self.width = max(width, MIN_WIDTH)
        self.verbose = verbose
        self.symbols = ASCII_SYMBOLS if ascii_only else UNICODE_SYMBOLS
        self.g = _ASCII_GLYPHS if ascii_only else _UNICODE_GLYPHS
        targets = {r.target for r in report.results} | {t.id for t in report.targets}
        self.target_count = len(targets)
        self.multi_target = len(targets) > 1
        self.plan = CausePlan(report)
        self.cause_has_fix = {self.plan.number(rc): bool(rc.remediation) for rc in report.root_causes}
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
        """``name`` in the label column, ``text`` wrapped beside it.

        A label too long for the column, or a word too long to sit beside it, puts the
        label on a line of its own, so that the long word is alone on its line.
        """
        room = self.width - len(indent) - LABEL_WIDTH
        pieces = wrap(text, room)
        if len(name) >= LABEL_WIDTH or display_width(pieces[0]) > room:
            self.emit(indent + self.s(name, "dim"))
            name = ""
        for i, piece in enumerate(pieces):
            self.emit(indent + self.label(name, i == 0) + self.s(piece, *styles))

    def verbatim(self, name: str, items: Sequence[str], indent: str = INDENT) -> None:
        """Commands and URLs, never wrapped: beside the label when all fit, else each on its own line."""
        room = self.width - len(indent) - LABEL_WIDTH
        if len(name) < LABEL_WIDTH and all(display_width(i) <= room and "\n" not in i for i in items):
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
        if len(targets) > 1:  # one target per line: ids are long and each heads a section below
            self.emit(self.s(f"{command}  {len(targets)} targets", "bold"))
            for target in targets:
                self.emit(self.s(f"  {target}", "bold"))
        else:
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

    def root_causes(self) -> None:
        """Numbered root causes; a group (same check, same fix) is one block ending in its fix."""
        plan = self.plan
        if not plan.count:
            return
        self.blank()
        self.emit(self.s(f"ROOT CAUSES ({plan.count}) {self.g['dot']} fix these first", "bold")
                  if plan.count > 1 else self.s("ROOT CAUSE", "bold"))
        number_width = len(str(plan.count)) + 1
        indent = " " * (number_width + 3)
        for group in plan.groups:
            self.blank()
            for n, rc in group:
                self.cause_head(n, rc, number_width, indent)
                self.paragraph(rc.summary, indent)
                found = plan.finding(rc)
                if found is not None and found.location:
                    self.verbatim("at", [found.location], indent)
            first = group[0][1]
            if first.remediation:
                name = "fix" if len(group) == 1 else f"fix {plan.label(group)}"
                earlier = plan.fix_shown_at(group)
                if earlier is not None:
                    self.field(name, f"same as {earlier}", indent)
                else:
                    self.verbatim(name, first.remediation, indent)
            consequences = plan.consequences(group)
            if consequences:
                self.paragraph("consequences: " + ", ".join(consequences), indent, "dim")

    def cause_head(self, n: int, rc: RootCause, number_width: int, indent: str) -> None:
        parts = [rc.code, rc.severity.value, rc.check_id] + ([rc.target] if self.multi_target else [])
        lines = join_fitting(parts, self.dot, self.width - len(indent))
        self.emit(f"{f'{n}.':>{number_width}} {self.symbol(rc.status)} {self.s(lines[0], 'bold')}")
        for line in lines[1:]:
            self.emit(indent + self.s(line, "bold"))

    def category(self, name: str, results: list[CheckResult]) -> None:
        self.blank()
        self.emit(self.s(name, "bold"))
        self.emit(self.s(self.g["rule"] * min(display_width(name), self.width), "dim"))
        for r in results:
            if r.status != Status.SKIPPED or self.verbose:
                self.check(r)
        if not self.verbose:
            self.skipped(results)

    def skipped(self, results: list[CheckResult]) -> None:
        """The category's skipped checks on one dim line: those skipped in their own right by
        id, the ones skipped only because of them as a count. ``verbose`` lists each."""
        roots = skipped_roots(results)
        if not roots:
            return
        total = sum(1 + followers for _, followers in roots)
        names = [r.check_id + (f" (+{k} depending on it)" if k else "") for r, k in roots]
        text = f"{total} skipped (-v says why): " + ", ".join(names)
        for i, piece in enumerate(wrap(text, self.width - 2, hanging=2)):
            lead = f"{self.symbol(Status.SKIPPED)} " if i == 0 else "    "
            self.emit(lead + self.s(piece, "dim"))

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
            # Several problems with one docs page: the link once, after the last of them.
            shared_docs = problems[0].docs_url if len(problems) > 1 and len(
                {f.docs_url for f in problems}) == 1 else None
            for f in problems:
                self.finding(r, f, show_summary=True, bullet=len(problems) > 1, docs=not shared_docs)
            if shared_docs:
                self.verbatim("docs", [shared_docs])
            if self.verbose:
                for f in notes(r):
                    self.finding(r, f, show_summary=True, bullet=False)

    def finding(self, r: CheckResult, f: Finding, *, show_summary: bool, bullet: bool, docs: bool = True) -> None:
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
        cause = self.plan.cause_of(f)
        if f.consequence_of:
            self.field("cause", f"a consequence of {f.consequence_of} (see root causes)")
        elif cause is not None and (f.remediation or self.cause_has_fix[cause]):
            self.field("fix", f"see root cause {cause} above")
        elif f.remediation:
            self.verbatim("fix", f.remediation)
        if f.docs_url and docs:
            self.verbatim("docs", [f.docs_url])

    def totals(self, report: Report, exit_code: int | None) -> None:
        """``12 checks: 9 pass, 1 fail``, wrapped between counts, each count in its status colour."""
        self.blank()
        total = len(report.results)
        parts = count_parts(report)
        head = f"{total} {'check' if total == 1 else 'checks'}"
        if self.multi_target:  # the same check counts once per target
            head += f" on {self.target_count} targets"
        units: list[tuple[str, str, tuple[str, ...]]] = [  # (text, trailing punctuation, style)
            (head, ":" if parts else "", ())]
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
    t.root_causes()
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
