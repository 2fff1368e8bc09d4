"""Container log selection as the kubelet does it: tail first, then drop lines older than ``since``.

Scenario logs are plain text (what ``kubectl logs`` shows), so the timestamp the kubelet would
know from the CRI log file is recovered from the line itself: logrus ``time="..."`` (the
sidecar), Prometheus logfmt ``ts=...``, or a leading ISO timestamp. Lines without one are
kept: dropping them would hide a stack trace's continuation lines.
"""

from __future__ import annotations

import re

from .kube_tables import parse_time

_TS_PATTERNS = (
    re.compile(r'(?:^|\s)time="?(\d{4}-\d{2}-\d{2}[T ][^"\s]+)'),
    re.compile(r'(?:^|\s)ts="?(\d{4}-\d{2}-\d{2}[T ][^"\s]+)'),
    re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"),
)


def line_time(line: str) -> float | None:
    """Epoch seconds of the line's own timestamp, or None when it carries none."""
    for pattern in _TS_PATTERNS:
        m = pattern.search(line)
        if m:
            text = m.group(1).replace(" ", "T", 1).replace(",", ".")
            if re.search(r"[+-]\d{4}$", text):  # +0000 -> +00:00
                text = f"{text[:-2]}:{text[-2:]}"
            parsed = parse_time(text)
            if parsed is not None:
                return parsed
    return None


def select_lines(text: str, *, tail: int | None = None, since: float | None = None,
                 limit_bytes: int | None = None) -> str:
    """Apply ``tailLines``, then ``sinceSeconds``/``sinceTime`` (as an epoch cut-off), then ``limitBytes``."""
    lines = text.splitlines(keepends=True)
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    if since is not None:
        kept = []
        for line in lines:
            ts = line_time(line)
            if ts is None or ts >= since:
                kept.append(line)
        lines = kept
    out = "".join(lines)
    if limit_bytes is not None and limit_bytes >= 0:
        out = out.encode()[:limit_bytes].decode(errors="ignore")
    return out
