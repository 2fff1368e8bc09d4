"""Log and self-metrics parsing (pure): durations, timestamps, summary lines, signatures, metrics."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from promrw_doctor.domain.logs import (
    SIGNATURE_SOURCES,
    LogLine,
    MetricsSnapshot,
    QueueRates,
    QueueStats,
    default_signatures,
    judge_publishing,
    last_lines,
    line_timestamp,
    match_signatures,
    parse_duration,
    parse_logfmt,
    parse_metrics,
    parse_signatures,
    parse_summary,
    queue_problems,
    quote,
    remote_write_queues,
    split_lines,
    within_window,
)

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC).timestamp()
CURRENT = ('time="2026-11-21T11:59:00Z" level=info msg="Metric packets published in last 1 minute" '
           "avgBytesPerRequest=19713 avgRequestDurationInSec=0.023 failedPublishing={f} successfullyPublished={s}")
LEGACY = ('time="2022-10-19T22:11:58Z" level=info msg="Metric packets published in last 1 minute" '
          "avgBytesPerRequest=19809 avgRequestDuration=0.17153638698214294 failedPublishingToAll=3 "
          "successfullyPublishedToAll=112 successfullyPublishedToSome=4")


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("90s", 90), ("1d", 86400), ("45", 45), ("500ms", 0.5),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m30", "-5m", "0s", "1h 30m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("line", "iso"), [
    ('time="2022-11-02T21:32:59Z" level=info msg="x"', "2022-11-02T21:32:59+00:00"),
    ("ts=2024-05-01T12:00:00.123456789Z caller=x level=error", "2024-05-01T12:00:00.123456+00:00"),
    ("time=2025-01-02T03:04:05.000+01:00 level=ERROR source=queue_manager.go msg=x", "2025-01-02T02:04:05+00:00"),
    ("level=info ts=2026-11-20T10:00:00Z caller=main.go:115 msg=x", "2026-11-20T10:00:00+00:00"),
    ("2026-11-21T10:00:00Z some text", "2026-11-21T10:00:00+00:00"),
    ("E1121 11:32:59.123456       1 server.go:1] boom", "2026-11-21T11:32:59.123456+00:00"),
])
def test_line_timestamp_formats(line: str, iso: str) -> None:
    assert line_timestamp(line, NOW) == pytest.approx(datetime.fromisoformat(iso).timestamp())


def test_klog_without_year_never_lands_in_the_future() -> None:
    # 31 December read on 1 January is last year's.
    jan1 = datetime(2027, 1, 1, 0, 5, tzinfo=UTC).timestamp()
    ts = line_timestamp("I1231 23:59:00.000000 1 main.go:1] x", jan1)
    assert ts is not None and datetime.fromtimestamp(ts, UTC).year == 2026


def test_line_without_timestamp_and_window_keeps_it() -> None:
    lines = split_lines("no stamp here\n" + CURRENT.format(f=0, s=1) + '\ntime="2020-01-01T00:00:00Z" old', NOW)
    assert lines[0].ts is None
    kept = within_window(lines, NOW - 1800)
    assert [ln.text for ln in kept] == [lines[0].text, lines[1].text]


def test_summary_current_and_legacy_field_sets() -> None:
    cur = parse_summary(CURRENT.format(f=2, s=120))
    assert cur is not None and (cur.failed, cur.succeeded, cur.partial, cur.field_set) == (2, 120, 0, "current")
    assert cur.avg_bytes == 19713 and cur.avg_duration_s == pytest.approx(0.023)
    old = parse_summary(LEGACY)
    assert old is not None and (old.failed, old.succeeded, old.partial, old.field_set) == (3, 116, 4, "legacy")
    assert parse_summary('time="2022-11-02T21:32:59Z" level=info msg="Starting remote write sidecar"') is None
    assert parse_summary('msg="Metric packets published in last 1 minute" nothing=here') is None


def test_summary_as_a_json_object_from_log_analytics() -> None:
    """ContainerLogV2 keeps a JSON LogMessage as an object; the collector hands it on as compact JSON."""
    text = ('{"avgBytesPerRequest":19713,"failedPublishing":120,"level":"info",'
            '"msg":"Metric packets published in last 1 minute","successfullyPublished":0}')
    s = parse_summary(text)
    assert s is not None and (s.failed, s.succeeded, s.field_set) == (120, 0, "current") and s.avg_bytes == 19713
    legacy = parse_summary('{"msg":"Metric packets published in last 1 minute","failedPublishingToAll":1,'
                           '"successfullyPublishedToAll":9,"successfullyPublishedToSome":1}')
    assert legacy is not None and (legacy.failed, legacy.succeeded, legacy.partial) == (1, 10, 1)
    assert parse_summary('{"msg":"Metric packets published in last 1 minute","nested":{"failedPublishing":1}}') is None
    assert parse_summary('{not json, msg="Metric packets published in last 1 minute" failedPublishing=1 '
                         'successfullyPublished=2') is not None  # falls back to logfmt


def _summaries(*pairs: tuple[int, int], start: float = NOW - 600) -> list:
    out = []
    for i, (f, s) in enumerate(pairs):
        stamp = datetime.fromtimestamp(start + 60 * i, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(parse_summary(LogLine(CURRENT.replace("2026-11-21T11:59:00Z", stamp).format(f=f, s=s),
                                         start + 60 * i)))
    return out


def test_judge_publishing_statuses() -> None:
    assert judge_publishing([], NOW).status == "none"
    assert judge_publishing(_summaries((0, 10), (0, 12)), NOW).status == "ok"
    assert judge_publishing(_summaries((0, 0), (0, 0)), NOW).status == "nothing"
    failing = judge_publishing(_summaries((0, 10), (5, 10)), NOW)
    assert failing.status == "failing" and failing.failed == 5 and failing.recent_failed == 5
    # Failures 10 minutes ago, six clean minutes since.
    recovered = judge_publishing(_summaries((7, 1), (0, 9), (0, 9), (0, 9), (0, 9), (0, 9), (0, 9), (0, 9)), NOW)
    assert recovered.status == "recovered" and recovered.recent_failed == 0
    assert recovered.evidence()["failedPublishing_total"] == 7


def test_logfmt_quotes_and_escapes() -> None:
    fields = parse_logfmt('level=error msg="non-recoverable error" err="server said \\"no\\"" count=5 a.b=c')
    assert fields == {"level": "error", "msg": "non-recoverable error", "err": 'server said "no"', "count": "5",
                      "a.b": "c"}


def test_quote_redacts_and_shortens() -> None:
    q = quote('level=error msg="x" header="Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789" ' + "z" * 400)
    assert "abcdefghijklmnopqrstuvwxyz0123456789" not in q and "[REDACTED]" in q
    assert len(q) == 300 and q.endswith("…")
    assert last_lines(split_lines("a\nb\nc"), 2) == ["b", "c"]


def test_shipped_signature_table_is_valid_and_mapped_per_source() -> None:
    table = default_signatures()
    assert {s.source for s in table} == set(SIGNATURE_SOURCES)
    codes = {s.source: {x.code for x in table if x.source == s.source} for s in table}
    assert codes == {"sidecar": {"PUBLISH_FAILING"}, "prometheus": {"PROMETHEUS_REMOTE_WRITE_FAILING"},
                     "nmi": {"NMI_UNHEALTHY"}}
    from promrw_doctor.core.codes import catalog

    assert all(s.code in catalog() for s in table)


@pytest.mark.parametrize(("line", "meaning_part", "status"), [
    ('level=error msg="Failed to publish metrics" statusCode=403 error="AuthorizationFailed"', "403", "403"),
    ('level=error msg="Failed to publish metrics" statusCode=401 error="InvalidAudience"', "401", "401"),
    ('level=error msg="Failed to publish metrics" statusCode=429 error="TooManyRequests"', "429", "429"),
    ('level=error msg="x" error="ClientCertificateCredential: AADSTS700027: expired"', "Entra ID", "AADSTS700027"),
    ('level=error msg="x" error="dial tcp: lookup foo.metrics.ingest.monitor.azure.com on 10.0.0.10:53: no such host"',
     "DNS", None),
    ('level=error msg="x" error="x509: certificate signed by unknown authority"', "TLS", None),
    ('level=error msg="Failed to get access token" error="ManagedIdentityCredential: IMDS responded 404"', "token",
     None),
    ('level=fatal msg="Invalid IDENTITY_TYPE"', "logged an error", None),
])
def test_sidecar_signatures(line: str, meaning_part: str, status: str | None) -> None:
    hits = match_signatures([LogLine(line, NOW)], default_signatures(), "sidecar")
    assert len(hits) == 1 and meaning_part in hits[0].signature.meaning
    assert hits[0].statuses == ([status] if status else [])


def test_prometheus_and_nmi_signatures_group_and_count() -> None:
    lines = [
        LogLine('ts=x level=error msg="non-recoverable error" count=2000 err="server returned HTTP status 403 '
                'Forbidden: {}"', NOW - 60),
        LogLine('ts=x level=error msg="non-recoverable error" count=2000 err="server returned HTTP status 403 '
                'Forbidden: {}"', NOW - 30),
        LogLine('ts=x level=warn msg="Failed to send batch, retrying" err="Post \\"http://localhost:8081/api/v1/'
                'write\\": dial tcp [::1]:8081: connect: connection refused"', NOW),
        LogLine('ts=x level=info msg="Done replaying WAL"', NOW),
    ]
    hits = match_signatures(lines, default_signatures(), "prometheus")
    assert [(h.count, h.statuses) for h in hits] == [(2, ["403 Forbidden"]), (1, [])]
    assert "sidecar is down" in hits[1].signature.meaning
    assert hits[0].first_ts == NOW - 60 and hits[0].last_ts == NOW - 30
    nmi = match_signatures([LogLine("E1121 11:00:00.000000 1 server.go:1] failed to get matching identities for pod: "
                                    "ns/p, error: no azure identity found for request clientID x", NOW)],
                           default_signatures(), "nmi")
    assert len(nmi) == 1 and "do not match" in nmi[0].signature.meaning


def test_parse_signatures_reports_the_bad_row() -> None:
    with pytest.raises(ValueError, match="#2: missing meaning"):
        parse_signatures([{"source": "sidecar", "pattern": "x", "code": "A", "meaning": "m"},
                          {"source": "sidecar", "pattern": "y", "code": "B"}])
    with pytest.raises(ValueError, match="source 'kubelet'"):
        parse_signatures([{"source": "kubelet", "pattern": "x", "code": "A", "meaning": "m"}])
    with pytest.raises(ValueError, match="bad pattern"):
        parse_signatures([{"source": "nmi", "pattern": "(", "code": "A", "meaning": "m"}])
    # Adding a row is one line: a new table with it matches.
    extra = parse_signatures([{"source": "sidecar", "pattern": "quota exceeded", "code": "PUBLISH_FAILING",
                               "meaning": "quota"}])
    assert match_signatures([LogLine("level=error quota exceeded")], extra, "sidecar")[0].signature.meaning == "quota"


METRICS = """
# HELP prometheus_remote_storage_samples_total Total number of samples sent to remote storage.
# TYPE prometheus_remote_storage_samples_total counter
prometheus_remote_storage_samples_total{remote_name="a",url="URL_A"} 1000
prometheus_remote_storage_samples_failed_total{remote_name="a",url="URL_A"} 50
prometheus_remote_storage_samples_dropped_total{remote_name="a",url="URL_A"} 0
prometheus_remote_storage_samples_pending{remote_name="a",url="URL_A"} 12
prometheus_remote_storage_queue_highest_sent_timestamp_seconds{remote_name="a",url="URL_A"} 1.7e9
prometheus_remote_storage_highest_timestamp_in_seconds 1.7000003e9
prometheus_remote_storage_failed_samples_total{remote_name="b",url="http://x/y\\"z"} 7 1712345678000
prometheus_remote_storage_samples_failed_total{remote_name="b",url="http://x/y\\"z"} 3
prometheus_build_info{version="2.51.2",branch="HEAD"} 1
go_gc_duration_seconds{quantile="0.5"} NaN
weird line without value
""".replace("URL_A", "http://localhost:8081/api/v1/write")


def test_parse_metrics_values_labels_and_escapes() -> None:
    samples = parse_metrics(METRICS)
    by = {(s.name, s.labels.get("remote_name")): s for s in samples}
    assert by[("prometheus_remote_storage_samples_total", "a")].value == 1000
    assert by[("prometheus_remote_storage_failed_samples_total", "b")].labels["url"] == 'http://x/y"z'
    assert math.isnan(by[("go_gc_duration_seconds", None)].value)
    assert parse_metrics("x +Inf\ny -Inf")[0].value == math.inf
    assert all(s.name.startswith("prometheus_build") for s in parse_metrics(METRICS, ("prometheus_build",)))


def test_remote_write_queues_and_problems() -> None:
    snap = MetricsSnapshot.from_text(METRICS, NOW)
    assert snap.version == "2.51.2"
    a, b = sorted(snap.queues, key=lambda q: q.remote_name)
    assert (a.samples_total, a.failed, a.pending) == (1000, 50, 12)
    assert a.lag_s == pytest.approx(300, abs=1)  # global highest_timestamp_in_seconds fills the queue's
    assert b.failed == 3  # the current metric name wins over the pre-2.26 one
    problems = queue_problems(a)
    assert any("300s behind" in p for p in problems) and any("50 samples failed" in p for p in problems)
    # A small share since start is not a failure without a window...
    assert queue_problems(QueueStats("c", "u", samples_total=1e6, failed=10)) == []
    # ... but any failure rate over a real window is.
    rates = QueueRates("u", "5m", failed=0.5, dropped=0.0, pending_deriv=2.0)
    got = queue_problems(QueueStats("c", "u", samples_total=1e6, failed=10, pending=100), rates)
    assert len(got) == 2 and "failed" in got[0] and "growing" in got[1]
    never = QueueStats("c", "u", samples_total=10, highest_sent=0, highest_in=NOW)
    assert queue_problems(never) == ["no sample has been sent successfully since the queue started"]


def test_remote_write_queues_without_remote_write_is_empty() -> None:
    assert remote_write_queues(parse_metrics("up 1\nprometheus_build_info{version=\"2.42.0\"} 1")) == []
