"""promrw-doctor: why Prometheus metrics are not reaching an Azure Monitor workspace, and proof when they are.

Library entry points live in :mod:`promrw_doctor.api`; the CLI (:mod:`promrw_doctor.cli`)
is a thin layer over it. Heavy libraries are imported lazily.
"""

__version__ = "0.1.0"
