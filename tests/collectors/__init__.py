"""Collector tests against the lab emulators with the real client libraries."""
