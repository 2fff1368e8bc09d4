"""The ``render`` entry point: dispatch, unknown formats, and redaction in every format."""

from __future__ import annotations

import copy

import pytest
from report_samples import BEARER_VALUE, JWT, SECRET_FRAGMENTS, build_full_report

from promrw_doctor.core.errors import EXIT_USAGE, InputError
from promrw_doctor.core.model import Report
from promrw_doctor.reports import FORMATS, render
from promrw_doctor.reports._common import scrub_text, wrap


def test_formats_are_the_documented_five() -> None:
    assert FORMATS == ("table", "json", "junit", "markdown", "prometheus")


@pytest.mark.parametrize("fmt", ["html", "", "JSON ", "sarif"])
def test_unknown_format_is_an_input_error(full_report: Report, fmt: str) -> None:
    with pytest.raises(InputError) as info:
        render(full_report, fmt)
    assert info.value.exit_code == EXIT_USAGE
    assert "table, json, junit, markdown" in str(info.value)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("verbose", [False, True])
def test_planted_secrets_never_appear(full_report: Report, fmt: str, verbose: bool) -> None:
    out = render(full_report, fmt, exit_code=1, verbose=verbose, color=True)
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in out, f"{fmt} leaked {fragment[:12]}..."
    if fmt != "prometheus":  # ids/codes/targets only; its redaction is tested in test_prometheus_format.py
        assert "[REDACTED]" in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_rendering_does_not_mutate_the_report(full_report: Report, fmt: str) -> None:
    before = copy.deepcopy(full_report)
    render(full_report, fmt, exit_code=1, verbose=True)
    assert full_report == before
    # The caller's objects keep the raw values: redaction works on copies.
    assert full_report.results[5].findings[0].evidence["token"] == JWT


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_characters_never_reach_the_output(full_report: Report, fmt: str) -> None:
    out = render(full_report, fmt, exit_code=1, verbose=True)
    assert "\x1b" not in out and "\x07" not in out
    # Shown escaped, not dropped (JSON keeps the value and escapes it its own way).
    if fmt != "prometheus":  # no free text in labels
        assert ("\\u001b" if fmt == "json" else "\\x1b") in out


def test_final_pass_catches_a_secret_the_model_missed() -> None:
    leaked = f"curl -H 'Authorization: Bearer {BEARER_VALUE}'"
    assert BEARER_VALUE not in scrub_text(leaked)


def test_final_pass_leaves_existing_markers_and_their_neighbours_alone() -> None:
    text = "| token: `[REDACTED]` | password=[REDACTED]| Bearer [REDACTED]`"
    assert scrub_text(text) == text


def test_wrap_keeps_long_words_whole_and_counts_wide_characters() -> None:
    url = "https://example.invalid/" + "a" * 80
    assert wrap(f"see {url} now", 40) == ["see", url, "now"]
    assert wrap("日本語 日本語 日本語", 14) == ["日本語 日本語", "日本語"]
    assert wrap("", 10) == [""]


def test_full_report_fixture_covers_every_status() -> None:
    statuses = {r.status for r in build_full_report().results}
    from promrw_doctor.core.model import Status

    assert statuses == set(Status)
