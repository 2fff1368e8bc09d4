"""The lab: an emulated Azure + Kubernetes world on loopback, with real Prometheus behind it.

Emulators live in :mod:`promrw_doctor.lab.emulators`; each is an aiohttp application
served by :class:`promrw_doctor.lab.server.LabServer`. The forwarder's tests and the
doctor's end-to-end tests share these same token and ingestion endpoints.
"""
