"""Container logs and Prometheus self-metrics, read as evidence. Pure logic, no I/O.

Why a module of its own: the live checks judge the write path from three texts the
cluster already has — the sidecar's once-a-minute summary line, Prometheus's remote-write
log lines, and Prometheus's ``/metrics`` — and each has quirks worth testing in isolation:

* the sidecar summary line exists in two documented field sets (current:
  ``avgBytesPerRequest avgRequestDurationInSec failedPublishing successfullyPublished``;
  2022: ``avgRequestDuration failedPublishingToAll successfullyPublishedToAll
  successfullyPublishedToSome``);
* timestamps come as logrus ``time="..."``, Prometheus logfmt ``ts=...``/``time=...``,
  klog ``E1121 21:32:59.123456`` (NMI, no year) or a leading RFC 3339 stamp;
* error lines are matched against a signature table kept as data
  (``promrw_doctor/catalog/log_signatures.yaml``), so adding a known error is one line;
* every quoted line is redacted and shortened before it can become evidence.

The self-metrics parser is a deliberately small reader of the Prometheus text format
(no new dependency) that keeps only what the remote-write judgement needs.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..core.redact import redact

MAX_QUOTED_CHARS = 300
DEFAULT_EXAMPLES = 3
SIGNATURE_SOURCES = ("sidecar", "prometheus", "nmi")

# --------------------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``30m``, ``2h``, ``1h30m``, ``90s``, ``1d`` or plain seconds -> seconds. ``ValueError`` otherwise.

    Same grammar as ``kubectl logs --since`` (Go durations) plus ``d`` for convenience.
    """
    value = (text or "").strip().lower()
    if not value:
        raise ValueError("empty duration")
    if value.isdigit():
        seconds = float(value)
    else:
        pos, seconds = 0, 0.0
        for m in _DURATION_PART.finditer(value):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
            pos = m.end()
        if pos != len(value):
            raise ValueError(f"invalid duration {text!r} (use e.g. 30m, 2h, 1h30m, 90s)")
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


# --------------------------------------------------------------------------- timestamps

_TS_FIELD = re.compile(r'(?:^|\s)(?:time|ts)="?(\d{4}-\d{2}-\d{2}[T ][^"\s]+)')
_TS_LEADING = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)")
_KLOG = re.compile(r"^[IWEF](\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?\s")


def parse_rfc3339(text: str) -> float | None:
    """RFC 3339 / ISO 8601 (``Z``, offsets, up to nanoseconds) -> epoch seconds, else None."""
    value = text.strip().replace(" ", "T", 1).replace(",", ".")
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    if re.search(r"[+-]\d{4}$", value):
        value = f"{value[:-2]}:{value[-2:]}"
    if "." in value:  # Python 3.11 accepts at most 6 fractional digits
        head, _, rest = value.partition(".")
        digits = re.match(r"\d*", rest).group(0)  # type: ignore[union-attr]
        value = f"{head}.{digits[:6]}{rest[len(digits):]}" if digits else head + rest
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def line_timestamp(line: str, now: float | None = None) -> float | None:
    """Epoch seconds of a log line's own timestamp, or None when it has none.

    klog lines carry no year: the year of ``now`` is assumed, and last year's when that
    would put the line in the future (a log read on 1 January).
    """
    m = _TS_FIELD.search(line)
    if m:
        parsed = parse_rfc3339(m.group(1))
        if parsed is not None:
            return parsed
    m = _TS_LEADING.match(line)
    if m:
        parsed = parse_rfc3339(m.group(1))
        if parsed is not None:
            return parsed
    m = _KLOG.match(line)
    if m:
        ref = datetime.fromtimestamp(now if now is not None else datetime.now(UTC).timestamp(), UTC)
        month, day, hh, mm, ss = (int(g) for g in m.groups()[:5])
        micro = int((m.group(6) or "0").ljust(6, "0"))
        for year in (ref.year, ref.year - 1):
            try:
                stamp = datetime(year, month, day, hh, mm, ss, micro, tzinfo=UTC).timestamp()
            except ValueError:
                return None
            if stamp <= ref.timestamp() + 86400:
                return stamp
    return None


@dataclass(frozen=True)
class LogLine:
    """One log line with its timestamp (None when the line carries none)."""

    text: str
    ts: float | None = None


def split_lines(text: str | None, now: float | None = None) -> list[LogLine]:
    """Non-empty lines of ``text`` with their timestamps."""
    if not text:
        return []
    return [LogLine(line, line_timestamp(line, now)) for line in text.splitlines() if line.strip()]


def within_window(lines: Iterable[LogLine], since: float | None) -> list[LogLine]:
    """Lines at or after ``since``; lines without a timestamp are kept (continuations of the previous one)."""
    if since is None:
        return list(lines)
    return [ln for ln in lines if ln.ts is None or ln.ts >= since]


def quote(line: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """A log line as it may appear in evidence: redacted, one line, at most ``limit`` characters."""
    text = redact(line.replace("\r", " ").replace("\n", " ").strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def last_lines(lines: Sequence[LogLine], count: int = 10) -> list[str]:
    """The last ``count`` lines, quoted (redacted, shortened)."""
    return [quote(ln.text) for ln in lines[-count:]] if count > 0 else []


# --------------------------------------------------------------------------- logfmt

_LOGFMT = re.compile(r'([A-Za-z_][A-Za-z0-9_.\-/]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line: str) -> dict[str, str]:
    """``key=value`` and ``key="quoted \\" value"`` pairs (logrus text and Prometheus go-kit logfmt)."""
    out: dict[str, str] = {}
    for m in _LOGFMT.finditer(line):
        key, raw = m.group(1), m.group(2)
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        out.setdefault(key, raw)
    return out


# --------------------------------------------------------------------------- sidecar summary

SUMMARY_MESSAGE = "Metric packets published in last 1 minute"


@dataclass(frozen=True)
class PublishSummary:
    """One sidecar summary line (``msg="Metric packets published in last 1 minute"``).

    ``failed``/``succeeded`` are packet counts for that minute; ``partial`` is the 2022
    field ``successfullyPublishedToSome`` (published to some endpoints only; 0 in the current
    format). ``field_set`` says which documented format the line used.
    """

    ts: float | None
    failed: int
    succeeded: int
    partial: int
    avg_bytes: float | None
    avg_duration_s: float | None
    field_set: str  # "current" | "legacy"
    line: str


def _num(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    number = _num(value)
    if number is None or math.isnan(number):
        return None
    return int(number)


def _summary_fields(text: str) -> dict[str, str]:
    """logfmt pairs; or the members of a JSON object (Log Analytics keeps a JSON ``LogMessage`` as an object)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            return {str(k): str(v) for k, v in obj.items() if not isinstance(v, dict | list)}
    return parse_logfmt(text)


def parse_summary(line: LogLine | str) -> PublishSummary | None:
    """The summary line's counters in either documented field set; None for any other line."""
    ll = line if isinstance(line, LogLine) else LogLine(line, line_timestamp(line))
    if SUMMARY_MESSAGE not in ll.text:
        return None
    fields = _summary_fields(ll.text)
    if "failedPublishing" in fields or "successfullyPublished" in fields:
        failed, succeeded = _int(fields.get("failedPublishing")), _int(fields.get("successfullyPublished"))
        if failed is None and succeeded is None:
            return None
        return PublishSummary(ll.ts, failed or 0, succeeded or 0, 0, _num(fields.get("avgBytesPerRequest")),
                              _num(fields.get("avgRequestDurationInSec")), "current", ll.text)
    if "failedPublishingToAll" in fields or "successfullyPublishedToAll" in fields:
        failed = _int(fields.get("failedPublishingToAll"))
        to_all = _int(fields.get("successfullyPublishedToAll"))
        to_some = _int(fields.get("successfullyPublishedToSome")) or 0
        if failed is None and to_all is None:
            return None
        return PublishSummary(ll.ts, failed or 0, (to_all or 0) + to_some, to_some,
                              _num(fields.get("avgBytesPerRequest")), _num(fields.get("avgRequestDuration")),
                              "legacy", ll.text)
    return None


@dataclass(frozen=True)
class PublishingVerdict:
    """What the summary lines in a window say. ``status``: ok | failing | recovered | nothing | none."""

    status: str
    lines: int
    failed: int
    succeeded: int
    partial: int
    recent_failed: int
    examples: tuple[str, ...] = ()
    field_sets: tuple[str, ...] = ()

    def evidence(self) -> dict[str, Any]:
        return {
            "summary_lines": self.lines,
            "failedPublishing_total": self.failed,
            "successfullyPublished_total": self.succeeded,
            "publishedToSome_total": self.partial,
            "failed_in_last_5m": self.recent_failed,
            "field_sets": list(self.field_sets),
            "lines": list(self.examples),
        }


RECENT_S = 300.0


def judge_publishing(summaries: Sequence[PublishSummary], now: float, recent_s: float = RECENT_S) -> PublishingVerdict:
    """Judge the window: failures recently (``failing``), nothing ever published (``nothing``),
    failures only earlier with clean recent minutes (``recovered``), all clean (``ok``), no lines (``none``).
    """
    if not summaries:
        return PublishingVerdict("none", 0, 0, 0, 0, 0)
    failed = sum(s.failed for s in summaries)
    succeeded = sum(s.succeeded for s in summaries)
    partial = sum(s.partial for s in summaries)
    dated = [s for s in summaries if s.ts is not None]
    if dated:
        latest = max(s.ts for s in dated if s.ts is not None)
        cutoff = min(now, latest) - recent_s
        recent = [s for s in summaries if s.ts is None or s.ts >= cutoff]
    else:
        recent = list(summaries[-5:])
    recent_failed = sum(s.failed for s in recent)
    bad = [s for s in summaries if s.failed or not s.succeeded]
    shown = (bad or list(summaries))[-DEFAULT_EXAMPLES:]
    examples = tuple(quote(s.line) for s in shown)
    sets = tuple(sorted({s.field_set for s in summaries}))
    if succeeded == 0:
        status = "nothing"
    elif recent_failed > 0 or (failed > 0 and not recent):
        status = "failing"
    elif failed > 0:
        status = "recovered"
    else:
        status = "ok"
    return PublishingVerdict(status, len(summaries), failed, succeeded, partial, recent_failed, examples, sets)


# --------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class Signature:
    """One row of the error-signature table: a regex on one source's lines -> a code and its meaning."""

    source: str
    pattern: re.Pattern[str]
    code: str
    meaning: str

    @property
    def key(self) -> str:
        return f"{self.source}:{self.pattern.pattern}"


def parse_signatures(rows: Iterable[Mapping[str, Any]]) -> list[Signature]:
    """Validate and compile table rows (``source``, ``pattern``, ``code``, ``meaning``).

    ``ValueError`` names the offending row.
    """
    out: list[Signature] = []
    for i, row in enumerate(rows):
        where = f"log signature #{i + 1}"
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}: expected a mapping")
        missing = [k for k in ("source", "pattern", "code", "meaning") if not row.get(k)]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        source = str(row["source"])
        if source not in SIGNATURE_SOURCES:
            raise ValueError(f"{where}: source {source!r} is not one of {', '.join(SIGNATURE_SOURCES)}")
        try:
            pattern = re.compile(str(row["pattern"]))
        except re.error as exc:
            raise ValueError(f"{where}: bad pattern {row['pattern']!r}: {exc}") from None
        out.append(Signature(source, pattern, str(row["code"]).strip(), str(row["meaning"]).strip()))
    return out


# ``.yml``, not ``.yaml``: the code-catalog loader reads every ``catalog/*.yaml`` as a code mapping.
SIGNATURE_FILES = ("log_signatures.yaml",)


@functools.cache
def default_signatures() -> tuple[Signature, ...]:
    """The shipped table (``promrw_doctor/catalog/log_signatures.yaml``), read once (package data, not the cluster)."""
    from importlib import resources

    import yaml

    folder = resources.files("promrw_doctor") / "catalog"
    for name in SIGNATURE_FILES:
        entry = folder / name
        if entry.is_file():
            return tuple(parse_signatures(yaml.safe_load(entry.read_text(encoding="utf-8")) or []))
    raise FileNotFoundError("promrw_doctor/catalog/log_signatures.yaml is missing from this installation")


@dataclass
class SignatureHit:
    """All lines one signature matched: how often, when, a few quoted examples, captured statuses."""

    signature: Signature
    count: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    examples: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"meaning": self.signature.meaning, "count": self.count, "lines": list(self.examples)}
        if self.statuses:
            out["statuses"] = list(self.statuses)
        if self.last_ts is not None:
            out["last_seen"] = datetime.fromtimestamp(self.last_ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return out


def match_signatures(lines: Iterable[LogLine], signatures: Iterable[Signature], source: str,
                     examples: int = DEFAULT_EXAMPLES) -> list[SignatureHit]:
    """Group the lines of ``source`` by the first signature each matches (table order), in table order.

    Named groups ``status``/``status2``... in a pattern are collected (``401 Unauthorized``) so the
    finding can say which HTTP status the write path got.
    """
    table = [s for s in signatures if s.source == source]
    hits: dict[str, SignatureHit] = {}
    for ln in lines:
        for sig in table:
            m = sig.pattern.search(ln.text)
            if m is None:
                continue
            hit = hits.setdefault(sig.key, SignatureHit(sig))
            hit.count += 1
            if ln.ts is not None:
                hit.first_ts = ln.ts if hit.first_ts is None else min(hit.first_ts, ln.ts)
                hit.last_ts = ln.ts if hit.last_ts is None else max(hit.last_ts, ln.ts)
            for group, status in m.groupdict().items():
                if group.startswith("status") and status and status.strip() not in hit.statuses:
                    hit.statuses.append(status.strip())
            if len(hit.examples) < examples:
                hit.examples.append(quote(ln.text))
            break
    order = {s.key: i for i, s in enumerate(table)}
    return sorted(hits.values(), key=lambda h: order[h.signature.key])


# --------------------------------------------------------------------------- Prometheus text format


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{.*\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"n": "\n", "\\": "\\", '"': '"'}


def _labels(text: str) -> dict[str, str]:
    body = text.strip()[1:-1]
    out: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        m = _LABEL.match(body, pos)
        if m is None:
            break
        out[m.group(1)] = re.sub(r"\\(.)", lambda e: _UNESCAPE.get(e.group(1), e.group(1)), m.group(2))
        pos = m.end()
    return out


def _value(text: str) -> float | None:
    t = text.strip()
    lowered = t.lower()
    if lowered in ("nan",):
        return math.nan
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    try:
        return float(t)
    except ValueError:
        return None


def parse_metrics(text: str, prefixes: Sequence[str] = ()) -> list[Sample]:
    """Samples of a Prometheus text exposition; only names starting with one of ``prefixes`` if given.

    Lenient: comment lines and lines it cannot read are skipped (a partial answer is still evidence).
    """
    out: list[Sample] = []
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if prefixes and not line.startswith(tuple(prefixes)):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        value = _value(m.group(3))
        if value is None:
            continue
        out.append(Sample(m.group(1), _labels(m.group(2)) if m.group(2) else {}, value))
    return out


RW_PREFIX = "prometheus_remote_storage_"
# Current name first, then names used by older Prometheus releases.
_RW_FIELDS: dict[str, tuple[str, ...]] = {
    "samples_total": ("prometheus_remote_storage_samples_total",
                      "prometheus_remote_storage_succeeded_samples_total"),
    "failed": ("prometheus_remote_storage_samples_failed_total", "prometheus_remote_storage_failed_samples_total"),
    "dropped": ("prometheus_remote_storage_samples_dropped_total",
                "prometheus_remote_storage_dropped_samples_total"),
    "retried": ("prometheus_remote_storage_samples_retried_total",
                "prometheus_remote_storage_retried_samples_total"),
    "pending": ("prometheus_remote_storage_samples_pending", "prometheus_remote_storage_pending_samples"),
    "histograms_failed": ("prometheus_remote_storage_histograms_failed_total",),
    "highest_sent": ("prometheus_remote_storage_queue_highest_sent_timestamp_seconds",),
    "highest_in": ("prometheus_remote_storage_queue_highest_timestamp_seconds",),
}
_GLOBAL_HIGHEST = "prometheus_remote_storage_highest_timestamp_in_seconds"
LAG_LIMIT_S = 120.0


@dataclass
class QueueStats:
    """One remote-write queue (``remote_name``, ``url``) as its counters stand right now."""

    remote_name: str
    url: str
    samples_total: float | None = None
    failed: float | None = None
    dropped: float | None = None
    retried: float | None = None
    pending: float | None = None
    histograms_failed: float | None = None
    highest_sent: float | None = None
    highest_in: float | None = None

    @property
    def lag_s(self) -> float | None:
        """Newest sample appended minus newest sample sent: how far remote write is behind."""
        if not self.highest_in or not self.highest_sent:
            return None
        return max(0.0, self.highest_in - self.highest_sent)

    @property
    def failed_total(self) -> float:
        return (self.failed or 0.0) + (self.histograms_failed or 0.0)

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"remote_name": self.remote_name, "url": self.url}
        for key in ("samples_total", "failed", "dropped", "retried", "pending"):
            value = getattr(self, key)
            if value is not None:
                out[key] = _compact(value)
        if self.lag_s is not None:
            out["lag_seconds"] = round(self.lag_s, 1)
        return out


def _compact(value: float) -> float | int:
    return int(value) if value == int(value) else round(value, 3)


def remote_write_queues(samples: Iterable[Sample]) -> list[QueueStats]:
    """Per-queue remote-write counters. The global ``highest_timestamp_in_seconds`` (older
    releases have no per-queue one) fills ``highest_in`` for every queue."""
    by_name = {name: (key, rank) for key, names in _RW_FIELDS.items() for rank, name in enumerate(names)}
    queues: dict[tuple[str, str], QueueStats] = {}
    best: dict[tuple[str, str, str], tuple[int, float]] = {}
    global_highest: float | None = None
    for s in samples:
        if s.name == _GLOBAL_HIGHEST:
            global_highest = s.value if global_highest is None else max(global_highest, s.value)
            continue
        found = by_name.get(s.name)
        if found is None:
            continue
        key, rank = found
        qkey = (s.labels.get("remote_name", ""), s.labels.get("url", ""))
        queues.setdefault(qkey, QueueStats(*qkey))
        # The current metric name wins over an older one; series of the same name add up.
        prev = best.get((*qkey, key))
        if prev is None or rank < prev[0]:
            best[(*qkey, key)] = (rank, s.value)
        elif rank == prev[0]:
            best[(*qkey, key)] = (rank, prev[1] + s.value)
    for (remote_name, url, key), (_, value) in best.items():
        setattr(queues[(remote_name, url)], key, value)
    for q in queues.values():
        if q.highest_in is None and global_highest is not None:
            q.highest_in = global_highest
    return sorted(queues.values(), key=lambda q: (q.url, q.remote_name))


@dataclass(frozen=True)
class MetricsSnapshot:
    """Prometheus's remote-write self-metrics at one instant (``fetched_at``, epoch seconds)."""

    fetched_at: float
    queues: tuple[QueueStats, ...]
    source: str = ""
    version: str | None = None  # from prometheus_build_info{version=...}

    @classmethod
    def from_text(cls, text: str, fetched_at: float, source: str = "") -> MetricsSnapshot:
        samples = parse_metrics(text, (RW_PREFIX, "prometheus_build_info"))
        version = next((s.labels.get("version") for s in samples if s.name == "prometheus_build_info"), None)
        return cls(fetched_at, tuple(remote_write_queues(samples)), source, version)


@dataclass(frozen=True)
class QueueRates:
    """Per-second rates over a window, from Prometheus's own TSDB (PromQL ``rate``/``deriv``)."""

    url: str
    window: str
    failed: float | None = None
    dropped: float | None = None
    retried: float | None = None
    pending_deriv: float | None = None


def queue_problems(q: QueueStats, rates: QueueRates | None = None, lag_limit_s: float = LAG_LIMIT_S) -> list[str]:
    """Reasons this queue is not delivering, most telling first; empty when it looks healthy.

    With ``rates`` (a real window) a failed/dropped rate above zero is a failure. Without,
    the snapshot's cumulative counters only tell what happened since Prometheus started,
    so they count as a failure only when they are a visible share of everything sent (≥ 1 %).
    The lag between the newest appended and newest sent sample needs no window at all.
    """
    out: list[str] = []
    lag = q.lag_s
    if q.highest_in and q.highest_sent == 0:
        out.append("no sample has been sent successfully since the queue started")
    elif lag is not None and lag > lag_limit_s:
        out.append(f"remote write is {lag:.0f}s behind (newest sample sent vs newest appended; limit "
                   f"{lag_limit_s:.0f}s)")
    if rates is not None:
        if rates.failed and rates.failed > 0:
            out.append(f"{rates.failed:.3g} samples/s failed (non-recoverable) over {rates.window}")
        if rates.dropped and rates.dropped > 0:
            out.append(f"{rates.dropped:.3g} samples/s dropped over {rates.window}")
        if rates.pending_deriv and rates.pending_deriv > 0 and (q.pending or 0) > 0:
            out.append(f"pending samples growing ({rates.pending_deriv:.3g}/s over {rates.window}, now "
                       f"{_compact(q.pending or 0)})")
        return out
    sent = q.samples_total or 0.0
    for label, value in (("failed", q.failed_total), ("dropped", q.dropped or 0.0)):
        if value > 0 and value >= 0.01 * max(sent + value, 1.0):
            share = 100.0 * value / max(sent + value, 1.0)
            out.append(f"{_compact(value)} samples {label} since Prometheus started ({share:.1f}% of all)")
    return out
