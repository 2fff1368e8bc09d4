"""The probe's facts (``probe.plan``, ``probe.result``), registered with every other collector.

They live in :mod:`promrw_doctor.probe.facts` next to the probe they drive; importing them
here keeps "every fact is declared under collectors/" true for the fact registry.
"""

from ..probe import facts as _probe_facts  # noqa: F401
