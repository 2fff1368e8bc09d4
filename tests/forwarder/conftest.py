"""Fixtures: a session CA + client certificates, a fresh world, LabServer and emulators per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from promrw_doctor.lab.server import LabServer

from .harness import IDENTITY_ENV, Certs, Emulators, World, make_certs, make_world, start_emulators


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(Path(tmp_path_factory.mktemp("fwd-pki")))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in IDENTITY_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def world(certs: Certs) -> World:
    return make_world(certs)


@pytest.fixture
def lab() -> Iterator[LabServer]:
    server = LabServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emu(lab: LabServer, world: World, certs: Certs, clean_env: pytest.MonkeyPatch) -> Emulators:
    e = start_emulators(lab, world, certs)
    clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", e.imds.url)
    return e
