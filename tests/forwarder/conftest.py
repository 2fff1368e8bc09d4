"""Fixtures: a session CA + client certificates, a fresh world, LabServer and emulators per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promrw_doctor.forwarder.server import Forwarder
from promrw_doctor.lab.server import LabServer

from .harness import (
    IDENTITY_ENV,
    Certs,
    Emulators,
    World,
    forwarder_config,
    make_certs,
    make_world,
    start_emulators,
    start_forwarder,
    stop_forwarder,
)


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


@pytest.fixture
def fwd_factory(emu: Emulators) -> Iterator[Any]:
    """Start in-process forwarders (options: ForwarderConfig fields, ``env``); stopped after the test."""
    started: list[Forwarder] = []

    def make(**options: Any) -> Forwarder:
        env = options.pop("env", None) or emu.env()
        fwd = start_forwarder(emu.lab, forwarder_config(env, **options))
        started.append(fwd)
        return fwd

    yield make
    for f in started:
        stop_forwarder(emu.lab, f)


@pytest.fixture
def fwd(fwd_factory: Any) -> Forwarder:
    return fwd_factory(auth_retry_after_s=7)
