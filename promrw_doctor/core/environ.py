"""Temporarily exported environment variables, serialised because ``os.environ`` is process-global.

azure-identity reads several settings only from the environment (IMDS redirect, authority
host, federated token file), so the lab and the probe hand an identity context over this
way. One lock for the whole process: two overlapping exports would otherwise restore each
other's values.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping

_LOCK = threading.RLock()


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Export ``values`` for the duration of the block, then restore exactly what was there."""
    if not values:
        yield
        return
    with _LOCK:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
