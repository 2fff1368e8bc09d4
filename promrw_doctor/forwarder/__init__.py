"""The built-in remote-write forwarder (a drop-in for the ``prom-remotewrite`` sidecar) and ``send``.

* :mod:`.config`: :func:`config_from_env` -> :class:`ForwarderConfig` (sidecar env vars + flags)
* :mod:`.server`: :class:`Forwarder` (aiohttp) and :func:`serve`
* :mod:`.send`: :func:`send_canary` -> :class:`SendResult` (the probe's write path)
* :mod:`.upstream`: the pooled client to ``INGESTION_URL`` (over :mod:`.http1`, a small keep-alive
  HTTP/1.1 client: aiohttp's client cost more CPU than the rest of the forwarder)
* :mod:`.metrics`, :mod:`.logfmt`: ``/metrics`` and the sidecar's log format

Submodules are imported on demand (aiohttp is heavy).
"""
