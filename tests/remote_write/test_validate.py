"""Spec validation rules and the builders that refuse invalid series."""

from __future__ import annotations

import pytest

import promrw_doctor.remote_write as rw
from promrw_doctor.remote_write.validate import check_labels


def _req(labels: list[tuple[str, str]], timestamps: tuple[int, ...] = (1,)) -> object:
    req = rw.WriteRequest()
    ts = req.timeseries.add()
    for n, v in labels:
        ts.labels.add(name=n, value=v)
    for t in timestamps:
        ts.samples.add(value=1.0, timestamp=t)
    return req


@pytest.mark.parametrize(("labels", "rule"), [
    ([("job", "a")], "missing-name"),
    ([("__name__", "1up")], "bad-metric-name"),
    ([("__name__", "up-time")], "bad-metric-name"),
    ([("__name__", "up"), ("job-name", "a")], "bad-label-name"),
    ([("__name__", "up"), ("job", "")], "empty-label-value"),
    ([("__name__", "up"), ("job", "a"), ("instance", "b")], "unsorted"),
    ([("__name__", "up"), ("job", "a"), ("job", "b")], "duplicate"),
])
def test_each_rule(labels: list[tuple[str, str]], rule: str) -> None:
    found = rw.validate(_req(labels))
    assert [v.rule for v in found] == [rule]
    assert "\n" not in str(found[0])


def test_valid_series_and_colons_in_metric_names() -> None:
    assert rw.validate(_req([("__name__", "job:up:sum"), ("a", "1"), ("b", "x y")])) == []


def test_samples_out_of_order() -> None:
    v = rw.first_violation(_req([("__name__", "up")], (3, 2)))
    assert v is not None and v.rule == "samples-out-of-order"


def test_first_violation_names_the_series() -> None:
    req = rw.WriteRequest()
    ok = req.timeseries.add()
    ok.labels.add(name="__name__", value="fine")
    bad = req.timeseries.add()
    bad.labels.add(name="__name__", value="broken")
    bad.labels.add(name="z", value="1")
    bad.labels.add(name="a", value="2")
    v = rw.first_violation(req)
    assert v is not None and v.series_index == 1
    assert str(v).startswith("series 1: broken{")


def test_builder_sorts_labels_and_refuses_invalid() -> None:
    req = rw.build_write_request([rw.SeriesSpec({"zone": "b", "__name__": "m", "app": "x"}, [(2, 1.0), (1, 2.0)])])
    assert [lb.name for lb in req.timeseries[0].labels] == ["__name__", "app", "zone"]
    assert [s.timestamp for s in req.timeseries[0].samples] == [1, 2]
    with pytest.raises(rw.InvalidSeries) as exc:
        rw.build_write_request([rw.SeriesSpec({"__name__": "m", "bad-name": "x"}, [(1, 1.0)])])
    assert exc.value.violations[0].rule == "bad-label-name"


def test_check_labels_generator_reports_all() -> None:
    found = list(check_labels([("b", ""), ("a", "1")]))
    assert {v.rule for v in found} == {"missing-name", "empty-label-value", "unsorted"}


def test_synthetic_batch_is_valid_and_sized() -> None:
    req = rw.SyntheticBatch(samples=2000).request()
    assert len(req.timeseries) == 2000
    assert rw.validate(req) == []
