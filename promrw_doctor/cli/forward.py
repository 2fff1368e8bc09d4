"""``promrw-doctor forward`` (the sidecar replacement) and ``promrw-doctor send`` (one canary, no server).

Both read the sidecar's env vars (``INGESTION_URL``, ``LISTENING_PORT``,
``IDENTITY_TYPE``, ``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID``,
``AZURE_CLIENT_CERTIFICATE_PATH``, ``INGESTION_AAD_AUDIENCE``, ``CLOUD``, ``CLUSTER``,
plus ``AAD_HOST_ENDPOINT``/``AZURE_AUTHORITY_HOST``, ``AZURE_FEDERATED_TOKEN_FILE``,
``AZURE_CLIENT_CERTIFICATE_PASSWORD``, ``REQUESTS_CA_BUNDLE``); flags override them.

Exit codes of ``forward``:
  0  stopped cleanly (SIGTERM/SIGINT, in-flight requests drained)
  2  configuration error (bad flag/env, cannot listen on the port)
  4  no token could be acquired at startup (the message names the identity and cause)

Exit codes of ``send``:
  0  upstream accepted the write (2xx)
  1  upstream rejected it (HTTP status) or was unreachable (dns/tls/connect/timeout/reset)
  2  configuration error
  4  no token could be acquired
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..core.errors import DoctorError, InputError

F = TypeVar("F", bound=Callable[..., Any])
EXIT_NO_TOKEN = 4


class NoTokenError(DoctorError):
    """Startup could not get a token; exit code 4."""

    exit_code = EXIT_NO_TOKEN


def _identity_options(func: F) -> F:
    opts = [
        click.option("--ingestion-url", envvar=None, help="Metrics ingestion URL (env INGESTION_URL)."),
        click.option("--identity-type", help="userAssigned | aadApplication | workloadIdentity | "
                     "clientSecret (dev only) (env IDENTITY_TYPE)."),
        click.option("--client-id", help="Client id of the managed identity or app (env AZURE_CLIENT_ID)."),
        click.option("--tenant-id", help="Tenant id (env AZURE_TENANT_ID)."),
        click.option("--certificate-path", help="PEM or PKCS#12 certificate with private key "
                     "(env AZURE_CLIENT_CERTIFICATE_PATH; password: AZURE_CLIENT_CERTIFICATE_PASSWORD)."),
        click.option("--federated-token-file",
                     help="Workload identity token file (env AZURE_FEDERATED_TOKEN_FILE)."),
        click.option("--audience",
                     help="Token audience, with or without /.default (env INGESTION_AAD_AUDIENCE)."),
        click.option("--cloud", help="AZUREPUBLIC | AZUREGOVERNMENT | AZURECHINA | AZURECUSTOM (env CLOUD)."),
        click.option("--cloud-config", type=click.Path(dir_okay=False),
                     help="Custom cloud profile file (env PROMRW_DOCTOR_CLOUD_CONFIG)."),
        click.option("--authority-host",
                     help="Entra authority override (env AAD_HOST_ENDPOINT / AZURE_AUTHORITY_HOST)."),
        click.option("--ca-bundle", type=click.Path(dir_okay=False),
                     help="PEM CA bundle trusted for Entra and ingestion TLS (env REQUESTS_CA_BUNDLE)."),
        click.option("--cluster", help="Cluster name (env CLUSTER); the canary's cluster label."),
        click.option("--imds-retries", type=click.IntRange(min=0), default=None,
                     help="IMDS/NMI retries for userAssigned (default: azure-identity's 5)."),
    ]
    for dec in reversed(opts):
        func = dec(func)
    return func


def _flags(kw: dict[str, Any]) -> dict[str, Any]:
    keys = ("ingestion_url", "identity_type", "client_id", "tenant_id", "certificate_path",
            "federated_token_file", "audience", "cloud", "cluster")
    return {k: kw.get(k) for k in keys if kw.get(k) not in (None, "")}


@click.command("forward")
@_identity_options
@click.option("--listening-port", "--port", "listening_port", type=click.IntRange(0, 65535),
              help="Port to listen on (env LISTENING_PORT, default 8081; 0 = any free port).")
@click.option("--listen-host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything else than loopback is warned about.")
@click.option("--validate", is_flag=True, help="Decode and validate every body (400 with the reason if bad).")
@click.option("--pass-through-4xx", is_flag=True,
              help="Pass upstream 401/403 through (Prometheus drops the batch) instead of 503 + Retry-After.")
@click.option("--max-body-bytes", type=click.IntRange(min=1024), default=10 * 1024 * 1024, show_default=True)
@click.option("--max-in-flight", type=click.IntRange(min=1), default=64, show_default=True,
              help="Upstream requests at once; more get 503 + Retry-After.")
@click.option("--max-connections", type=click.IntRange(min=1), default=256, show_default=True,
              help="Open sender connections; more get a canned 503 and are closed.")
@click.option("--max-buffered-bytes", type=click.IntRange(min=1024), default=64 * 1024 * 1024,
              show_default=True)
@click.option("--upstream-timeout", type=click.FloatRange(min=0.1), default=25.0, show_default=True)
@click.option("--read-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to receive a whole request body (408 after).")
@click.option("--idle-timeout", type=click.FloatRange(min=0.1), default=75.0, show_default=True,
              help="Idle/half-sent connections are closed after this.")
@click.option("--auth-retry-after", type=click.IntRange(min=1), default=30, show_default=True,
              help="Retry-After seconds on the 503 sent for a persistent upstream 401/403.")
@click.option("--shutdown-grace", type=click.FloatRange(min=0.1), default=25.0, show_default=True)
@click.option("--summary-interval", type=click.FloatRange(min=0.1), default=60.0, hidden=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
def forward(**kw: Any) -> None:
    """Run the Entra-authenticating remote-write forwarder (drop-in for the prom-remotewrite sidecar).

    Point Prometheus at http://127.0.0.1:<port>/api/v1/write. Set
    queue_config.retry_on_http_429: true so throttled batches are retried. Exit codes:
    0 clean stop, 2 configuration error, 4 no token at startup.
    """
    import asyncio
    import logging

    from ..forwarder.config import config_from_env
    from ..forwarder.logfmt import get_logger, install_handler
    from ..forwarder.server import serve
    from ..identity.credentials import TokenSource
    from ..identity.errors import TokenError
    from ..identity.manager import TokenManager

    install_handler(sys.stderr, getattr(logging, kw["log_level"].upper()))
    log = get_logger()
    flags = _flags(kw)
    if kw.get("listening_port") is not None:
        flags["listening_port"] = kw["listening_port"] or None
    cfg = config_from_env(
        flags=flags, cloud_config=kw.get("cloud_config"), authority_host=kw.get("authority_host"),
        ca_bundle=kw.get("ca_bundle"), imds_retry_total=kw.get("imds_retries"),
        listen_host=kw["listen_host"], validate=kw["validate"], pass_through_4xx=kw["pass_through_4xx"],
        max_body_bytes=kw["max_body_bytes"], max_in_flight=kw["max_in_flight"],
        max_connections=kw["max_connections"],
        max_buffered_bytes=kw["max_buffered_bytes"], upstream_timeout=kw["upstream_timeout"],
        read_timeout=kw["read_timeout"], idle_timeout=kw["idle_timeout"],
        auth_retry_after_s=kw["auth_retry_after"], shutdown_grace_s=kw["shutdown_grace"],
        summary_interval_s=kw["summary_interval"])
    if kw.get("listening_port") == 0:
        cfg = cfg.with_changes(listen_port=0)
    for w in cfg.warnings:
        log.warning(w)
    tokens = TokenManager(TokenSource(cfg.identity))

    def on_ready(fwd: Any) -> None:
        # A machine-readable line for wrappers (tests, the lab) that asked for port 0.
        log.info("ready", extra={"fields": {"port": fwd.port}})

    try:
        asyncio.run(serve(cfg, tokens, ready=on_ready))
    except TokenError as exc:
        raise NoTokenError(f"no token at startup for {exc.identity}: {exc.cause}") from None
    except OSError as exc:
        raise InputError(f"cannot listen on {cfg.listen_host}:{cfg.listen_port}: "
                         f"{exc.strerror or exc}") from None


@click.command("send")
@_identity_options
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds for the HTTP request.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def send(**kw: Any) -> None:
    """Send one canary sample through the forwarder's stack (token + upstream), without a server.

    Prints the verdict and, with -o json, the token's claims (never the token). Exit
    codes: 0 accepted, 1 rejected or unreachable, 2 configuration error, 4 no token.
    """
    import json

    from ..forwarder.config import config_from_env
    from ..forwarder.send import send_canary

    cfg = config_from_env(flags=_flags(kw), cloud_config=kw.get("cloud_config"),
                          authority_host=kw.get("authority_host"), ca_bundle=kw.get("ca_bundle"),
                          imds_retry_total=kw.get("imds_retries"))
    if not (kw.get("cluster") or cfg.cluster):
        raise InputError("send needs a cluster label for the canary: set CLUSTER or --cluster")
    result = send_canary(cfg, cluster=kw.get("cluster"), timeout=kw["timeout"])
    if kw["output"] == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        click.echo(result.summary())
        if result.claims is not None:
            c = result.claims
            click.echo(f"token: aud={c.aud} tid={c.tid} oid={c.oid} appid={c.appid} exp={c.exp}")
        if result.canary is not None and result.ok:
            click.echo(f"query: {result.canary.promql()}  (expect value {result.canary.nonce})")
    if result.ok:
        return
    if result.error is not None and result.error.kind == "token":
        sys.exit(EXIT_NO_TOKEN)
    if result.error is not None and result.error.kind == "config":
        raise InputError(result.error.detail)
    sys.exit(1)
