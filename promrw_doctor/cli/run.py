"""``promrw-doctor run``: live diagnosis from a kubeconfig context, root cause first."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import check_output_file, emit, progress_for, report_options


@click.command("run")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), envvar="KUBECONFIG",
              help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
@click.option("--context", help="Kubeconfig context (default: current context).")
@click.option("-n", "--namespace", help="Namespace of the Prometheus pod (default: search all you may list).")
@click.option("--pod", help="Check only this Prometheus pod.")
@click.option("--since", default="30m", show_default=True, help="Log window to read (e.g. 30m, 2h).")
@click.option("--cloud", type=click.Choice(["public", "usgov", "china"]), help="Azure cloud (default: public).")
@click.option("--cloud-config", type=click.Path(dir_okay=False), envvar="PROMRW_DOCTOR_CLOUD_CONFIG",
              help="Custom cloud profile file (air-gapped clouds, the lab).")
@click.option("--tenant", help="Tenant for the doctor's own Azure credential.")
@click.option("--subscription", multiple=True, help="Subscription(s) to search for the DCR (repeatable).")
@click.option("--client-certificate", type=click.Path(dir_okay=False),
              help="Entra app certificate (PEM/PFX) to test token acquisition as the sidecar.")
@click.option("--client-certificate-password", envvar="PROMRW_DOCTOR_CERT_PASSWORD",
              help="Password for a PFX certificate (or PROMRW_DOCTOR_CERT_PASSWORD).")
@click.option("--cert-warn-days", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Warn when the client certificate expires within this many days.")
@click.option("--cert-critical-days", type=click.FloatRange(min=0), default=7.0, show_default=True,
              help="Make that warning high severity within this many days.")
@click.option("--log-analytics-workspace", metavar="ID",
              help="Log Analytics workspace (customer id or ARM id) holding ContainerLogV2 (default: the AKS "
                   "cluster's monitoring add-on).")
@click.option("--probe", is_flag=True, help="Also send a canary sample and confirm it arrives (writes!).")
@click.option("--as-me", is_flag=True, help="With --probe: send the canary with the doctor's own credential.")
@click.option("--query-endpoint", help="With --probe: the workspace's PromQL endpoint (default: from the workspace).")
@click.option("--probe-timeout", type=float, help="With --probe: seconds to wait for the canary (default 600).")
@click.option("--cluster", help="With --probe: the canary's cluster label (default: CLUSTER / externalLabels).")
@report_options
def run(kubeconfig: str | None, context: str | None, namespace: str | None, pod: str | None, since: str,
        cloud: str | None, cloud_config: str | None, tenant: str | None, subscription: tuple[str, ...],
        client_certificate: str | None, client_certificate_password: str | None, cert_warn_days: float,
        cert_critical_days: float, log_analytics_workspace: str | None, probe: bool, as_me: bool,
        query_endpoint: str | None, probe_timeout: float | None, cluster: str | None, output: str,
        output_file: Path | None, no_color: bool, fail_on: str, only: tuple[str, ...], skip: tuple[str, ...],
        checks_dir: tuple[Path, ...], check_timeout: float, verbose: bool) -> None:
    """Find the Prometheus pod with its remote-write sidecar, then check the pod, its
    identity, Prometheus's own view, and the Azure side; print root causes first."""
    from .. import api

    check_output_file(output_file)
    given = {"--as-me": as_me or None, "--query-endpoint": query_endpoint, "--probe-timeout": probe_timeout,
             "--cluster": cluster}
    needs_probe = [flag for flag, value in given.items() if value is not None]
    if needs_probe and not probe:
        from ..core.errors import InputError

        raise InputError(f"{', '.join(needs_probe)} can only be used with --probe")
    probe_options = {"as_me": as_me, "query_endpoint": query_endpoint, "timeout_s": probe_timeout,
                     "cluster": cluster}
    probe_options = {k: v for k, v in probe_options.items() if v is not None and v is not False}
    progress = progress_for(0)
    try:
        report = api.diagnose(
            kubeconfig=kubeconfig, context=context, namespace=namespace, pod=pod, cloud=cloud,
            cloud_config=cloud_config, tenant=tenant, subscription=subscription[0] if subscription else None,
            since=since, client_certificate=client_certificate,
            client_certificate_password=client_certificate_password, probe=probe, probe_options=probe_options,
            only=only, skip=skip,
            checks_dirs=checks_dir, check_timeout_s=check_timeout, on_result=progress,
            options={"subscriptions": list(subscription), "cert_warn_days": cert_warn_days,
                     "cert_critical_days": cert_critical_days,
                     "log_analytics_workspace": log_analytics_workspace},
        )
    finally:
        if progress is not None:
            progress.close()
    sys.exit(emit(report, output=output, output_file=output_file, no_color=no_color, fail_on=fail_on,
                  verbose=verbose))
