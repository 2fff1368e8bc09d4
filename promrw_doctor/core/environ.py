"""Temporarily exported environment variables, serialised because ``os.environ`` is process-global.

azure-identity reads several settings only from the environment (IMDS redirect, authority
host, federated token file), so the lab and the probe hand an identity context over this
way. Short exports made from worker threads (the probe's token fetch) pass
``exclusive=True`` and are serialised by one process-wide lock, so two of them cannot restore
each other's values. A long-lived export that encloses a whole run (``lab run``, tests) must
not take that lock: the run's own worker threads would wait for it forever.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping

_LOCK = threading.RLock()


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str], *, exclusive: bool = False) -> Iterator[None]:
    """Export ``values`` for the duration of the block, then restore exactly what was there."""
    if not values:
        yield
        return
    with _LOCK if exclusive else contextlib.nullcontext():
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
