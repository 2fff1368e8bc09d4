"""Suite-wide guard: tests never touch an address outside 127.0.0.0/8.

In this process, ``socket.connect`` and ``getaddrinfo`` refuse anything but loopback,
so an accidental call to Azure, IMDS (169.254.169.254) or a public DNS name fails the
test instead of leaving the machine. Subprocesses (the CLI under test) inherit
environment defaults that point every Azure credential and endpoint at a closed
loopback port, unless a test sets its own (the lab's env does).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

CLOSED = "127.0.0.1:9"  # discard port: nothing listens, connections fail fast
_ALLOWED_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_loopback_host(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").lower()
    if name in _ALLOWED_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _check_address(sock: socket.socket, address: object) -> None:
    inet = sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple)
    if inet and not _is_loopback_host(address[0]):  # type: ignore[index]
        raise PermissionError(f"test tried to reach {address[0]!r}: only 127.0.0.0/8 and ::1 are allowed")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check_address(self, address)
    return _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not _is_loopback_host(host):
        raise socket.gaierror(socket.EAI_NONAME, f"test tried to resolve {host!r}: only loopback is allowed")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo

_CLOSED_PROFILE = f"""\
name: tests-closed
authority_host: https://{CLOSED}
arm_endpoint: https://{CLOSED}
arm_audience: https://management.core.windows.net/
graph_endpoint: https://{CLOSED}
keyvault_suffix: .vault.azure.net
keyvault_url_template: https://{CLOSED}/{{vault}}
metrics_endpoint_template: https://{CLOSED}
ingestion_audience: https://monitor.azure.com
query_audience: https://prometheus.monitor.azure.com
ingestion_host_suffixes: [".metrics.ingest.monitor.azure.com", "127.0.0.1"]
"""


def _closed_env(tmp_dir: Path) -> dict[str, str]:
    profile = tmp_dir / "closed-cloud.yaml"
    profile.write_text(_CLOSED_PROFILE)
    return {
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://{CLOSED}",
        "AZURE_AUTHORITY_HOST": f"https://{CLOSED}",
        "PROMRW_DOCTOR_CLOUD_CONFIG": str(profile),
        "HOME": str(tmp_dir / "home"),  # no real ~/.kube, ~/.azure
    }


@pytest.fixture(scope="session", autouse=True)
def _loopback_only_environment(tmp_path_factory: pytest.TempPathFactory):
    """Defaults for every test (and the subprocesses it starts); tests may override them."""
    tmp_dir = tmp_path_factory.mktemp("loopback-env")
    (tmp_dir / "home").mkdir()
    saved = {k: os.environ.get(k) for k in _closed_env(tmp_dir)}
    for key in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
                "KUBECONFIG", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID",
                "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_CERTIFICATE_PATH"):
        saved.setdefault(key, os.environ.get(key))
        os.environ.pop(key, None)
    os.environ.update(_closed_env(tmp_dir))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

