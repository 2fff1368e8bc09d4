"""The diagnosis-code catalog: one stable, documented list, loaded from ``promrw_doctor/catalog/*.yaml``.

Codes are a public interface (runbooks and alerts key on them): never rename or
remove one, only add. ``tests/test_catalog.py`` enforces that every code a check can
emit is here, that every entry has its explain text, and that no released code
(``tests/data/released_codes.txt``) has disappeared.

Each YAML file that holds a mapping maps CODE -> {title, category, severity, what, why, fix, docs};
files holding a list (the log-signature table) are other catalog data and are skipped here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .model import Severity

_FIELDS = ("title", "what", "why", "fix")


@dataclass(frozen=True)
class CodeInfo:
    code: str
    title: str
    category: str
    severity: Severity
    what: str
    why: str
    fix: str
    docs: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "title": self.title,
            "category": self.category,
            "severity": self.severity.value,
            "what": self.what,
            "why": self.why,
            "fix": self.fix,
            "docs": self.docs,
        }


@functools.cache
def catalog() -> dict[str, CodeInfo]:
    import yaml

    out: dict[str, CodeInfo] = {}
    folder = resources.files("promrw_doctor") / "catalog"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            continue
        for code, info in data.items():
            if code in out:
                raise ValueError(f"diagnosis code {code} defined twice (second time in {entry.name})")
            missing = [f for f in _FIELDS if not info.get(f)]
            if missing:
                raise ValueError(f"diagnosis code {code} in {entry.name} lacks {', '.join(missing)}")
            out[code] = CodeInfo(
                code=code,
                title=str(info["title"]).strip(),
                category=str(info.get("category", entry.name.removesuffix(".yaml"))),
                severity=Severity.parse(str(info.get("severity", "medium"))),
                what=str(info["what"]).strip(),
                why=str(info["why"]).strip(),
                fix=str(info["fix"]).strip(),
                docs=str(info.get("docs", "")).strip(),
            )
    return out


def lookup(code: str) -> CodeInfo | None:
    return catalog().get(code.strip().upper())
