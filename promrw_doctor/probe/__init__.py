"""The end-to-end synthetic probe: one canary sample through the forwarder's path, read back from the workspace.

The checks say what *looks* wrong; the probe proves whether data actually arrives and,
when it does not, names the stage where it stopped:

=========  ====================================  =====================================
stage      measured                              failure code
=========  ====================================  =====================================
token      ms to get an ingestion token          ``TOKEN_ACQUISITION_FAILED``
network    an HTTP answer came back (DNS/TLS/    ``INGESTION_UNREACHABLE``
           connect/timeout/reset otherwise)
ingestion  HTTP status and latency               ``CANARY_REJECTED``
query      time until the nonce is queryable     ``CANARY_NOT_ARRIVED``,
                                                 ``QUERY_ACCESS_MISSING``
=========  ====================================  =====================================

Modules: :mod:`.stages` (result model, stage classification, which checks explain which
failure), :mod:`.poll` (the adaptive polling schedule, pure), :mod:`.query` (the PromQL
client), :mod:`.runner` (:func:`~.runner.run_probe`), :mod:`.facts` (the ``probe.*``
facts the ``pipeline.canary-probe`` check reads), :mod:`.crosscheck` (probe versus the
other checks' verdicts) and :mod:`.lab` (the lab's "pod identity context").

The probe is the only part of the doctor that writes, and it writes exactly one sample
of one series per run, only when asked (``promrw-doctor probe`` or ``run --probe``).
Importing this package is cheap: requests, azure-identity and aiohttp load on first use.
"""

from __future__ import annotations

from .stages import (
    CANARY_NOT_ARRIVED,
    CANARY_REJECTED,
    INGESTION_UNREACHABLE,
    PROBE_CODES,
    QUERY_ACCESS_MISSING,
    TOKEN_ACQUISITION_FAILED,
    ProbeResult,
    StageResult,
)

__all__ = [
    "CANARY_NOT_ARRIVED",
    "CANARY_REJECTED",
    "INGESTION_UNREACHABLE",
    "PROBE_CODES",
    "QUERY_ACCESS_MISSING",
    "TOKEN_ACQUISITION_FAILED",
    "ProbeResult",
    "StageResult",
]
