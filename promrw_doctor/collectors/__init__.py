"""Collectors: the only code that reads the outside world. Each declares facts (``@fact``).

Every module in this package is imported when a fact is first needed; modules must
import heavy libraries inside their fact functions so ``--help`` stays instant.
"""
