"""The machine-readable report: ``Report.to_dict`` as JSON, plus its JSON Schema.

The shape is a public interface (pipelines and alerting key on it): it is described by
``promrw_doctor/schema/report.schema.json`` and versioned by ``schema_version``. Field
order is the model's, so diffs between two runs stay readable.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from ..core.model import Report
from ._common import scrub

SCHEMA_RESOURCE = "schema/report.schema.json"


def report_document(report: Report, exit_code: int | None = None) -> dict[str, Any]:
    """The JSON document as Python data, redacted (the structural last line of defence)."""
    return scrub(report).to_dict(exit_code)


def render_json(report: Report, *, exit_code: int | None = None) -> str:
    """JSON, ``indent=2``, ASCII-escaped so it survives any output encoding or pipe.

    Redaction runs on the data, not on the finished text: rewriting serialized JSON
    with regular expressions could break its syntax.
    """
    return json.dumps(report_document(report, exit_code), indent=2, ensure_ascii=True, default=str) + "\n"


@functools.cache
def _schema_text() -> str:
    return (resources.files("promrw_doctor") / SCHEMA_RESOURCE).read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """The report's JSON Schema (draft 2020-12), shipped as package data."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


def validate_document(document: dict[str, Any]) -> list[str]:
    """Schema violations of ``document`` as ``path: message`` lines (empty when valid).

    Needs the ``jsonschema`` package (a dev/test dependency), imported only here.
    """
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors]
