"""``promrw-doctor probe``: send one canary sample the sidecar's way and confirm it in the workspace (writes!).

Exit codes: 0 delivered (and nothing else failed), 1 a finding at or above --fail-on
(the stage that failed, with its code), 2 bad input (a timeout <= 0, an unreachable or
non-Prometheus --query-endpoint, bad sidecar settings: nothing is written then),
3 incomplete (the canary was accepted but its arrival could not be checked, or the doctor
could not act as the sidecar's identity).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .options import check_output_file, emit, progress_for, report_options


@click.command("probe")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), envvar="KUBECONFIG",
              help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
@click.option("--context", help="Kubeconfig context (default: current context).")
@click.option("-n", "--namespace", help="Namespace of the Prometheus pod (default: search all you may list).")
@click.option("--pod", help="Probe only this Prometheus pod's sidecar.")
@click.option("--ingestion-url", help="Explicit sidecar settings instead of discovery: the INGESTION_URL.")
@click.option("--identity-type", help="With --ingestion-url: userAssigned | aadApplication | workloadIdentity.")
@click.option("--client-id", help="With --ingestion-url: AZURE_CLIENT_ID.")
@click.option("--tenant-id", help="With --ingestion-url: AZURE_TENANT_ID.")
@click.option("--audience", help="With --ingestion-url: INGESTION_AAD_AUDIENCE (default: the cloud's).")
@click.option("--client-certificate", type=click.Path(dir_okay=False),
              help="Entra app certificate (PEM/PFX): probe as the sidecar's application.")
@click.option("--client-certificate-password", envvar="PROMRW_DOCTOR_CERT_PASSWORD",
              help="Password for a PFX certificate (or PROMRW_DOCTOR_CERT_PASSWORD).")
@click.option("--federated-token-file", type=click.Path(dir_okay=False),
              help="Workload identity: a service account token file to probe as the sidecar's identity.")
@click.option("--cluster", help="The canary's cluster label (default: the sidecar's CLUSTER or externalLabels).")
@click.option("--as-me", is_flag=True,
              help="Send the canary with your own Azure credential (proves the path, not the sidecar's identity).")
@click.option("--query-endpoint",
              help="Workspace query endpoint (default: the workspace's, found from the DCR).")
@click.option("--timeout", "timeout", metavar="SECONDS",
              help="Deadline for the canary to become queryable (default 600 against Azure; > 0, at most 3600).")
@click.option("--with-checks", is_flag=True,
              help="Also run every live check, so a failed stage ranks under the check that explains it.")
@click.option("--cloud", type=click.Choice(["public", "usgov", "china"]), help="Azure cloud (default: public).")
@click.option("--cloud-config", type=click.Path(dir_okay=False), envvar="PROMRW_DOCTOR_CLOUD_CONFIG",
              help="Custom cloud profile file (air-gapped clouds, the lab).")
@click.option("--tenant", help="Tenant for the doctor's own Azure credential.")
@click.option("--subscription", help="Subscription to search for the DCR and workspace.")
@report_options
def probe(**kw: Any) -> None:
    """Send one canary sample through the forwarder's code path and confirm it in the workspace (writes!).

    The canary is promrw_doctor_canary{cluster=...,source="promrw-doctor"} with a fresh random
    nonce as its value: repeated probes reuse one series. The report names the stage that
    failed (token, network, ingestion, query) with its timings and code.
    """
    from .. import api
    from ..probe.runner import check_timeout

    output_file: Path | None = kw["output_file"]
    check_output_file(output_file)
    timeout = check_timeout(kw["timeout"]) if kw["timeout"] is not None else None
    progress = progress_for(0)
    try:
        report = api.probe(
            kubeconfig=kw["kubeconfig"], context=kw["context"], namespace=kw["namespace"], pod=kw["pod"],
            ingestion_url=kw["ingestion_url"], identity_type=kw["identity_type"], client_id=kw["client_id"],
            tenant_id=kw["tenant_id"], audience=kw["audience"], federated_token_file=kw["federated_token_file"],
            cluster=kw["cluster"], as_me=kw["as_me"], query_endpoint=kw["query_endpoint"], timeout_s=timeout,
            cloud=kw["cloud"], cloud_config=kw["cloud_config"], tenant=kw["tenant"], subscription=kw["subscription"],
            client_certificate=kw["client_certificate"],
            client_certificate_password=kw["client_certificate_password"], with_checks=kw["with_checks"],
            only=kw["only"], skip=kw["skip"], checks_dirs=kw["checks_dir"], check_timeout_s=kw["check_timeout"],
            on_result=progress,
            options={"subscriptions": [kw["subscription"]] if kw["subscription"] else []},
        )
    finally:
        if progress is not None:
            progress.close()
    sys.exit(emit(report, output=kw["output"], output_file=output_file, no_color=kw["no_color"],
                  fail_on=kw["fail_on"], verbose=kw["verbose"]))
