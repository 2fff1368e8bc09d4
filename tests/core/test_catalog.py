"""The diagnosis-code catalog is a public contract: complete, explained, and append-only."""

from __future__ import annotations

import re
from pathlib import Path

from promrw_doctor.core.codes import catalog
from promrw_doctor.core.registry import load_registry

RELEASED = Path(__file__).resolve().parents[1] / "data" / "released_codes.txt"
NON_CODES = {"OK"}


def test_every_code_a_check_declares_is_in_the_catalog():
    cat = catalog()
    missing = {(s.id, c) for s in load_registry(entry_points=False) for c in s.codes
               if c not in cat and c not in NON_CODES}
    assert not missing, f"codes without a catalog entry: {sorted(missing)}"


def test_every_catalog_entry_is_explained():
    for code, info in catalog().items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", code), code
        for field in ("title", "what", "why", "fix"):
            assert len(getattr(info, field)) >= 10, f"{code}.{field} is too thin to help anyone"
        if info.docs:
            assert info.docs.startswith("https://"), f"{code}: docs must be an https URL"


def test_released_codes_are_never_removed_or_renamed():
    released = [line.strip() for line in RELEASED.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    gone = sorted(set(released) - set(catalog()))
    assert not gone, f"released diagnosis codes disappeared (never rename; add new ones): {gone}"


def test_every_check_has_explain_text_and_known_dependencies():
    reg = load_registry(entry_points=False)
    for spec in reg:
        assert spec.description, f"{spec.id}: a check's docstring is its explain text"
        assert spec.codes, f"{spec.id}: declares no diagnosis codes"
