"""``promrw-doctor forward`` (as a real process) and ``promrw-doctor send``: env, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import requests
from click.testing import CliRunner

import promrw_doctor.remote_write as rw
from promrw_doctor.cli import cli

from .harness import Emulators


def _env(emu: Emulators, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_"))}
    env.update(emu.env(**extra))
    env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = emu.imds.url
    env.pop("PROMRW_DOCTOR_DEBUG", None)
    return env


def _forward(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "promrw_doctor", "forward", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_forward_config_error_exits_2_with_one_line(emu: Emulators) -> None:
    env = _env(emu)
    del env["INGESTION_URL"]
    p = subprocess.run([sys.executable, "-m", "promrw_doctor", "forward"], env=env, text=True,
                       capture_output=True, timeout=30)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == "promrw-doctor: error: INGESTION_URL is not set"
    assert "Traceback" not in p.stderr


def test_forward_without_token_exits_4_naming_identity_and_cause(emu: Emulators) -> None:
    env = _env(emu)
    env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = "http://127.0.0.1:9"
    started = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "promrw_doctor", "forward", "--imds-retries", "0", "--port", "0"],
                       env=env, text=True, capture_output=True, timeout=60)
    assert p.returncode == 4, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("promrw-doctor: error: no token at startup for userAssigned (client id "
                           f"{emu.world.uami.client_id})")
    assert "http://127.0.0.1:9" in last and "Traceback" not in p.stderr
    assert time.monotonic() - started < 20


def test_forward_serves_then_stops_cleanly_on_sigterm(emu: Emulators) -> None:
    proc = _forward(_env(emu), "--port", "0", "--summary-interval", "0.5", "--imds-retries", "0")
    try:
        assert proc.stderr is not None
        port = None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r'msg=ready port=(\d+)', line)
            port = int(m.group(1)) if m else None
        assert port, "".join(lines)
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/ready", timeout=5).status_code == 200
        r = requests.post(f"{base}/api/v1/write", data=rw.build_canary("cli").body, headers=rw.HEADERS, timeout=10)
        assert r.status_code == 204
        time.sleep(0.7)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    text = "".join(lines) + err
    assert 'msg="Metric packets published in last 1 minute"' in text
    assert "successfullyPublished=1" in text
    assert 'level=info msg="forwarding remote write"' in text
    assert "eyJ" not in text  # no token, ever
    assert "shutting down" in text


def test_send_cli_exit_codes(emu: Emulators) -> None:
    runner = CliRunner()
    env = _env(emu)
    ok = runner.invoke(cli, ["send"], env=env)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("accepted: HTTP 204")
    assert f"oid={emu.world.uami.principal_id}" in ok.output and "eyJ" not in ok.output

    as_json = runner.invoke(cli, ["send", "-o", "json", "--cluster", "from-flag"], env=env)
    doc = json.loads(as_json.output)
    assert as_json.exit_code == 0 and doc["canary"]["cluster"] == "from-flag" and doc["claims"]["aud"]

    emu.faults.push(403)
    rejected = runner.invoke(cli, ["send"], env=env)
    assert rejected.exit_code == 1 and "rejected: HTTP 403" in rejected.output

    no_token = runner.invoke(cli, ["send", "--imds-retries", "0"],
                             env={**env, "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9"})
    assert no_token.exit_code == 4 and "token error" in no_token.output

    bad = runner.invoke(cli, ["send", "--identity-type", "magic"], env=env)
    assert bad.exit_code == 2 and "IDENTITY_TYPE 'magic' is not one of" in bad.output


def test_forward_port_in_use_exits_2(emu: Emulators) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = subprocess.run([sys.executable, "-m", "promrw_doctor", "forward", "--port", str(port),
                            "--imds-retries", "0"], env=_env(emu), text=True, capture_output=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(f"promrw-doctor: error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in p.stderr
