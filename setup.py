"""Package mapping only (metadata is in pyproject.toml).

Built-in checks live in the repository's top-level ``checks/`` folder and ship inside
the wheel as ``promrw_doctor.checks``: one place to find every check, and no generic
top-level ``checks`` package in site-packages.
"""

from pathlib import Path

from setuptools import find_packages, setup

packages = find_packages(include=["promrw_doctor", "promrw_doctor.*"])
packages += ["promrw_doctor.checks"] + [f"promrw_doctor.checks.{p}" for p in find_packages("checks")]

# The lab's scenarios are data kept in fixtures/scenarios (beside the lint fixtures); the wheel
# carries them as promrw_doctor/lab/scenarios so `promrw-doctor lab` works from an installed package.
# Each scenario directory is listed too, so setuptools neither warns about nor drops them.
_SCENARIOS = Path(__file__).resolve().parent / "fixtures" / "scenarios"
_scenario_pkgs = [
    "promrw_doctor.lab.scenarios",
    *sorted(f"promrw_doctor.lab.scenarios.{d.name}" for d in _SCENARIOS.iterdir() if d.is_dir()),
]
packages += _scenario_pkgs
# Data-only folders inside the package (diagnosis-code catalog, report schema).
packages += ["promrw_doctor.catalog", "promrw_doctor.schema"]

setup(
    packages=packages,
    package_dir={"promrw_doctor.checks": "checks", "promrw_doctor.lab.scenarios": "fixtures/scenarios"},
    package_data={
        "promrw_doctor": ["lab/*.json", "py.typed"],
        "promrw_doctor.catalog": ["*.yaml"],
        "promrw_doctor.schema": ["*.json"],
        **{name: ["*"] for name in _scenario_pkgs},
    },
)
