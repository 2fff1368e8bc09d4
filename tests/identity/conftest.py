"""Reuse the forwarder tests' world, emulators and CA (see tests/forwarder/harness.py)."""

from forwarder.conftest import certs, clean_env, emu, lab, world  # noqa: F401
