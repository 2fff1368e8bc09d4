"""Probe inputs: the deadline, the query endpoint, the options dict, and how the checks are selected."""

from __future__ import annotations

import pytest

from promrw_doctor.core.errors import InputError
from promrw_doctor.core.registry import load_registry
from promrw_doctor.domain import clouds
from promrw_doctor.probe.command import select
from promrw_doctor.probe.facts import ProbeOptions, custom_authority, default_timeout, validate_query_endpoint
from promrw_doctor.probe.runner import DEFAULT_TIMEOUT_S, LAB_TIMEOUT_S, check_timeout


@pytest.mark.parametrize("value", [0, -1, "0", "-0.5", "abc", "nan", "inf", 3601, None])
def test_bad_deadlines_are_one_line_input_errors(value: object) -> None:
    with pytest.raises(InputError) as info:
        check_timeout(value)
    assert "\n" not in str(info.value) and "--timeout" in str(info.value)


def test_good_deadlines() -> None:
    assert check_timeout("2.5") == 2.5 and check_timeout(3600) == 3600.0


def test_default_deadline_is_ten_minutes_against_azure_and_short_in_the_lab() -> None:
    assert default_timeout(clouds.PUBLIC) == DEFAULT_TIMEOUT_S == 600.0
    lab = clouds.with_overrides(clouds.PUBLIC, name="lab-public", extra={"lab": True})
    assert default_timeout(lab) == LAB_TIMEOUT_S
    assert custom_authority(clouds.PUBLIC) is None and custom_authority(lab) == lab.authority_host


def test_query_endpoint_validation() -> None:
    base = "https://amw-x.eastus.prometheus.monitor.azure.com"
    assert validate_query_endpoint(base + "/") == base
    assert validate_query_endpoint(base + "/api/v1/query") == base
    for bad in ("amw.example", "ftp://x", "https://", "not a url"):
        with pytest.raises(InputError, match="--query-endpoint"):
            validate_query_endpoint(bad)


def test_probe_options_are_checked() -> None:
    opts = ProbeOptions.from_options({"probe_options": {"as_me": True, "timeout_s": 5, "cluster": "c1",
                                                        "identity_env": {"A": "1", "B": None}}})
    assert (opts.as_me, opts.timeout_s, opts.cluster, opts.identity_env) == (True, 5.0, "c1", {"A": "1"})
    assert ProbeOptions.from_options({}) == ProbeOptions()
    with pytest.raises(InputError, match="unknown setting"):
        ProbeOptions.from_options({"probe_options": {"timout": 5}})
    with pytest.raises(InputError, match="--timeout"):
        ProbeOptions.from_options({"probe_options": {"timeout_s": 0}})


def test_probe_checks_are_opt_in_and_selected_by_the_probe_command() -> None:
    reg = load_registry(entry_points=False)
    ids = {"pipeline.canary-probe", "pipeline.probe-vs-production", "pipeline.probe-vs-checks"}
    assert not ids & {s.id for s in reg.select()}  # never without asking: it writes
    assert all(reg.get(i) is not None and reg.get(i).opt_in for i in ids)  # type: ignore[union-attr]
    chosen = {s.id for s in select(reg, with_checks=False, only=(), skip=())}
    assert ids <= chosen and "azure.role-assignment" not in chosen
    everything = {s.id for s in select(reg, with_checks=True, only=(), skip=())}
    assert ids <= everything and "azure.role-assignment" in everything
    with pytest.raises(InputError, match="canary-probe"):
        select(reg, with_checks=False, only=(), skip=("pipeline.canary-probe",))
