"""JSON output and its schema: the output validates, the schema rejects what it should."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from promrw_doctor.core.model import Report, Status
from promrw_doctor.reports import render
from promrw_doctor.reports.json_report import load_schema, report_document, validate_document


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def doc(report: Report, exit_code: int | None = 1) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(render(report, "json", exit_code=exit_code))
    return out


def test_schema_is_package_data() -> None:
    text = (resources.files("promrw_doctor") / "schema/report.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"]["const"] == "1.0"


@pytest.mark.parametrize("exit_code", [None, 0, 1, 3])
def test_output_validates(
    validator: Draft202012Validator, full_report: Report, exit_code: int | None
) -> None:
    errors = list(validator.iter_errors(doc(full_report, exit_code)))
    assert errors == []


def test_clean_report_validates(clean_report: Report) -> None:
    assert validate_document(doc(clean_report, 0)) == []


def test_output_shape_and_order(full_report: Report) -> None:
    text = render(full_report, "json", exit_code=1)
    assert text.startswith('{\n  "schema_version": "1.0",\n  "tool": {')
    data = json.loads(text)
    assert list(data) == ["schema_version", "tool", "command", "started_at", "duration_ms", "context",
                          "targets", "summary", "exit_code", "root_causes", "results"]
    assert data["summary"] == {"pass": 3, "warn": 1, "fail": 2, "error": 1, "blocked": 2, "unknown": 1,
                               "skipped": 1}
    assert data["duration_ms"] == 3210.0
    assert data["root_causes"][0]["consequences"] == ["pipeline.read-back", "pipeline.write-probe"]
    assert data["results"][2]["findings"][0]["location"] == "deploy/prometheus-values.yaml:42"
    assert data["targets"][0]["namespace"] == "monitoring"
    # Redacted on the data, so the JSON stays valid and keeps everything else.
    assert data["results"][5]["findings"][0]["evidence"]["token"] == "[REDACTED]"
    assert data["context"]["password"] == "[REDACTED]"
    assert text.isascii()
    assert "日本語" in json.dumps(data, ensure_ascii=False)


def test_schema_documents_every_field_the_model_emits(full_report: Report) -> None:
    """A new field in Report.to_dict must be added to the schema (additionalProperties: false)."""
    schema = load_schema()
    data = report_document(full_report, 1)
    defs = schema["$defs"]
    assert set(data) == set(schema["properties"])
    assert set(data["root_causes"][0]) == set(defs["root_cause"]["properties"])
    assert set(data["results"][0]) == set(defs["result"]["properties"])
    assert set(data["results"][2]["findings"][0]) == set(defs["finding"]["properties"])
    assert set(defs["status"]["enum"]) == {s.value for s in Status}


def _mutations() -> list[tuple[str, Any]]:
    def status(d: dict[str, Any]) -> None:
        d["results"][0]["status"] = "exploded"

    def severity(d: dict[str, Any]) -> None:
        d["results"][2]["findings"][0]["severity"] = "urgent"

    def extra(d: dict[str, Any]) -> None:
        d["results"][0]["colour"] = "red"

    def missing(d: dict[str, Any]) -> None:
        del d["summary"]["blocked"]

    def version(d: dict[str, Any]) -> None:
        d["schema_version"] = "2.0"

    def exit_code(d: dict[str, Any]) -> None:
        d["exit_code"] = 7

    def evidence(d: dict[str, Any]) -> None:
        d["results"][2]["findings"][0]["evidence"] = ["not", "an", "object"]

    def code(d: dict[str, Any]) -> None:
        d["root_causes"][0]["code"] = "lower-case"

    def cause_status(d: dict[str, Any]) -> None:
        d["root_causes"][0]["status"] = "pass"

    return [(f.__name__, f) for f in (status, severity, extra, missing, version, exit_code, evidence, code,
                                      cause_status)]


@pytest.mark.parametrize(("name", "mutate"), _mutations())
def test_invalid_documents_fail_validation(
    validator: Draft202012Validator, full_report: Report, name: str, mutate: Any
) -> None:
    data = copy.deepcopy(doc(full_report))
    mutate(data)
    assert list(validator.iter_errors(data)), f"schema accepted a document with a bad {name}"
    assert validate_document(data)


def test_non_json_evidence_values_are_stringified(full_report: Report) -> None:
    import datetime

    full_report.results[2].findings[0].evidence["seen_at"] = datetime.datetime(2024, 5, 1, 3, 0)
    data = doc(full_report)
    assert data["results"][2]["findings"][0]["evidence"]["seen_at"] == "2024-05-01 03:00:00"
