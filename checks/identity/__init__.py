"""Live identity checks: pod identity (labels, bindings, NMI), workload identity, certificate mounts."""
