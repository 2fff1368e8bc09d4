"""Live checks of the write path as the sidecar and Prometheus report it (logs, self-metrics)."""
