"""Package mapping only (metadata is in pyproject.toml).

Built-in checks live in the repository's top-level ``checks/`` folder and ship inside
the wheel as ``promrw_doctor.checks``: one place to find every check, and no generic
top-level ``checks`` package in site-packages.
"""

from setuptools import find_packages, setup

packages = find_packages(include=["promrw_doctor", "promrw_doctor.*"])
packages += ["promrw_doctor.checks"] + [f"promrw_doctor.checks.{p}" for p in find_packages("checks")]

setup(packages=packages, package_dir={"promrw_doctor.checks": "checks"})
