"""Fixtures for the renderer tests; the reports themselves are built in report_samples.py."""

from __future__ import annotations

import pytest
from report_samples import build_clean_report, build_full_report

from promrw_doctor.core.model import Report


@pytest.fixture
def full_report() -> Report:
    return build_full_report()


@pytest.fixture
def clean_report() -> Report:
    return build_clean_report()
