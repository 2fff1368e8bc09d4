"""Live checks of the Kubernetes side: discovery, the sidecar container, Prometheus and its remote-write URL."""
