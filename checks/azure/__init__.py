"""Live Azure-side checks: ingestion URL, DCR/DCE, the sidecar's identity and roles, audience, quota."""
