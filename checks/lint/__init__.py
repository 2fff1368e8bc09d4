"""Static checks over manifests and Helm values (pre-upgrade validation)."""
