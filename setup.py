"""Package mapping only (metadata is in pyproject.toml).

Built-in checks live in the repository's top-level ``checks/`` folder and ship inside
the wheel as ``promrw_doctor.checks``: one place to find every check, and no generic
top-level ``checks`` package in site-packages.
"""

from setuptools import find_packages, setup

packages = find_packages(include=["promrw_doctor", "promrw_doctor.*"])
packages += ["promrw_doctor.checks"] + [f"promrw_doctor.checks.{p}" for p in find_packages("checks")]

# The lab's scenarios are data kept in fixtures/scenarios (beside the lint fixtures); the wheel
# carries them as promrw_doctor/lab/scenarios so `promrw-doctor lab` works from an installed package.
packages += ["promrw_doctor.lab.scenarios"]

setup(
    packages=packages,
    package_dir={"promrw_doctor.checks": "checks", "promrw_doctor.lab.scenarios": "fixtures/scenarios"},
)
