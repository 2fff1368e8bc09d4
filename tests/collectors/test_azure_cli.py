"""Bad input on the Azure side through the real CLI: one line on stderr, exit code 2, no traceback.

A malformed cloud profile, an unknown cloud name (``--cloud`` and a profile's ``base``), a
certificate file that is not a certificate, a wrong PFX password, and an ARM answer the doctor
did not expect. The cluster side is a running lab world, so only the Azure input is wrong.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from promrw_doctor.lab.pki import CertificateAuthority, make_client_certificate
from promrw_doctor.lab.scenario import load_scenario
from promrw_doctor.lab.server import LabServer
from promrw_doctor.lab.world import LabWorld

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabWorld]:
    with LabWorld(load_scenario("healthy-entra-cert"), tmp_path_factory.mktemp("cli"), traffic=False,
                  store=False) as w:
        yield w


def run_doctor(world: LabWorld, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "PROMRW_DOCTOR_"))}
    full.update(world.env_vars())
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "promrw_doctor", "run", "--context", world.context,
                           "--no-color", *args], env=full, text=True, capture_output=True, timeout=120)


def assert_one_line_exit_2(p: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_the_world_itself_runs(world: LabWorld) -> None:
    p = run_doctor(world, "-o", "json")
    assert p.returncode == 0, p.stderr[-2000:]


def test_malformed_cloud_profile(world: LabWorld, tmp_path: Path) -> None:
    bad = tmp_path / "cloud.yaml"
    bad.write_text("authority_host: http://login.example\narm_endpoint: [not, a, url]\n")
    line = assert_one_line_exit_2(run_doctor(world, "--cloud-config", str(bad)), "cloud profile")
    assert str(bad) in line
    bad.write_text("{not yaml: [")
    assert_one_line_exit_2(run_doctor(world, "--cloud-config", str(bad)), "not valid YAML/JSON")
    profile = yaml.safe_load(world.cloud_config.read_text())
    profile["arm_endpointt"] = profile.pop("arm_endpoint")
    bad.write_text(yaml.safe_dump(profile))
    assert_one_line_exit_2(run_doctor(world, "--cloud-config", str(bad)), "unknown setting(s): arm_endpointt")


def test_unknown_cloud_name(world: LabWorld, tmp_path: Path) -> None:
    p = run_doctor(world, "--cloud", "mars")
    assert p.returncode == 2 and "mars" in p.stderr and "Traceback" not in p.stderr  # click rejects it
    mars = tmp_path / "mars.yaml"
    mars.write_text("base: mars\n")
    assert_one_line_exit_2(run_doctor(world, env={"PROMRW_DOCTOR_CLOUD_CONFIG": str(mars)}),
                           f"cloud profile {mars}: unknown cloud 'mars'")


def test_certificate_file_that_is_not_a_certificate(world: LabWorld, tmp_path: Path) -> None:
    junk = tmp_path / "cert.pem"
    junk.write_text("this is the certificate, promise\n")
    assert_one_line_exit_2(run_doctor(world, "--client-certificate", str(junk)),
                           "--client-certificate", "not a certificate")


def test_wrong_pfx_password(world: LabWorld, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    cert = make_client_certificate("prom-rw", now - timedelta(days=1), now + timedelta(days=30))
    pfx = tmp_path / "cert.pfx"
    pfx.write_bytes(cert.pfx(b"right-password"))
    line = assert_one_line_exit_2(run_doctor(world, "--client-certificate", str(pfx),
                                             "--client-certificate-password", "wrong-password"),
                                  "--client-certificate", "wrong password")
    assert "wrong-password" not in line and "right-password" not in line


def test_unexpected_arm_answer(world: LabWorld, tmp_path: Path) -> None:
    ca = CertificateAuthority.create()

    async def login_page(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Please sign in to the proxy</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", login_page)
    bundle = tmp_path / "both.pem"
    bundle.write_bytes(world.ca_bundle.read_bytes() + ca.write_bundle(tmp_path / "ca.pem").read_bytes())
    with LabServer() as srv:
        ep = srv.add("proxy", app, ssl_context=ca.issue_server().ssl_context())
        profile = yaml.safe_load(world.cloud_config.read_text())
        profile["arm_endpoint"] = ep.url
        cloud = tmp_path / "cloud.yaml"
        cloud.write_text(yaml.safe_dump(profile))
        p = run_doctor(world, "--cloud-config", str(cloud), env={"REQUESTS_CA_BUNDLE": str(bundle)})
    assert_one_line_exit_2(p, "unexpected answer from ARM", "not JSON")
