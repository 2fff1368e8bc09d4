"""One aiohttp application per emulated service.

Entra, IMDS/NMI, ingestion, query, ARM, Graph, Key Vault, Kubernetes.
"""
