"""Facts: named pieces of gathered data, computed once per run and shared by every check.

Collectors (``promrw_doctor.collectors.*``) declare facts with :func:`fact`. A fact
function receives a :class:`FactContext` and may ask for other facts through it.
:class:`FactStore` computes each fact at most once per run (per target for
``scope="target"`` facts), also under concurrency, and remembers failures so that
every check needing a broken fact learns the same reason.

Checks never talk to an API; they read facts. That is what makes them small, pure and
testable with a hand-filled :class:`FactStore` (see :meth:`FactStore.preset`).
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .model import Target

FactFunc = Callable[["FactContext"], Any]


@dataclass(frozen=True)
class FactSpec:
    name: str
    func: FactFunc
    scope: str = "target"  # "target": per target; "run": shared by all targets of a run
    description: str = ""


_FACTS: dict[str, FactSpec] = {}
_LOADED = False
_LOAD_LOCK = threading.Lock()


def fact(name: str, *, scope: str = "target") -> Callable[[FactFunc], FactFunc]:
    """Declare a fact provider. Names are dotted and unique (``k8s.pods``, ``azure.dcr``)."""
    if scope not in ("target", "run"):
        raise ValueError(f"fact {name!r}: scope must be 'target' or 'run'")

    def decorate(func: FactFunc) -> FactFunc:
        existing = _FACTS.get(name)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"fact {name!r} declared twice ({existing.func.__module__}, {func.__module__})")
        _FACTS[name] = FactSpec(name, func, scope, (func.__doc__ or "").strip())
        return func

    return decorate


def _load_builtin_collectors() -> None:
    global _LOADED
    if _LOADED:
        return
    with _LOAD_LOCK:
        if _LOADED:
            return
        package = importlib.import_module("promrw_doctor.collectors")
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(info.name)
        _LOADED = True


def fact_spec(name: str) -> FactSpec | None:
    if name not in _FACTS:
        _load_builtin_collectors()
    return _FACTS.get(name)


class FactError(Exception):
    """Wraps the exception a fact raised, so the engine can tell which fact failed."""

    def __init__(self, name: str, cause: BaseException) -> None:
        super().__init__(f"{name}: {cause}")
        self.name = name
        self.cause = cause


@dataclass
class _Slot:
    event: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None
    duration_s: float = 0.0


class FactStore:
    """Per-run cache of facts. Thread-safe; each fact is computed once."""

    def __init__(self, options: dict[str, Any] | None = None, now: float | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})
        self.now = now if now is not None else time.time()
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._lock = threading.Lock()
        self._presets: dict[tuple[str, str], Any] = {}
        self.timings: dict[str, float] = {}

    def preset(self, name: str, value: Any, target: Target | None = None) -> None:
        """Provide a fact's value directly (tests, the lab, data given on the command line)."""
        key = (name, target.id if target else "")
        slot = _Slot(value=value)
        slot.event.set()
        with self._lock:
            self._slots[key] = slot
            self._presets[key] = value

    def _key(self, name: str, target: Target | None) -> tuple[str, str]:
        with self._lock:
            if (name, "") in self._slots:
                return (name, "")
        spec = fact_spec(name)
        if spec is None:
            if target is not None and (name, target.id) in self._slots:
                return (name, target.id)
            raise KeyError(f"no such fact: {name}")
        if spec.scope == "run" or target is None:
            return (name, "")
        return (name, target.id)

    def get(self, name: str, target: Target | None = None) -> Any:
        """Return the fact's value, computing it once; re-raise its failure as :class:`FactError`."""
        key = self._key(name, target)
        with self._lock:
            slot = self._slots.get(key)
            owner = slot is None
            if owner:
                slot = _Slot()
                self._slots[key] = slot
        assert slot is not None
        if owner:
            spec = fact_spec(name)
            assert spec is not None
            start = time.perf_counter()
            try:
                slot.value = spec.func(FactContext(self, target))
            except BaseException as exc:
                slot.error = exc
            finally:
                slot.duration_s = time.perf_counter() - start
                self.timings[name if not key[1] else f"{name}@{key[1]}"] = slot.duration_s
                slot.event.set()
        else:
            slot.event.wait()
        if slot.error is not None:
            if isinstance(slot.error, FactError | InputError):
                raise slot.error
            raise FactError(name, slot.error)
        return slot.value

    def try_get(self, name: str, target: Target | None = None, default: Any = None) -> Any:
        try:
            return self.get(name, target)
        except FactError:
            return default


class FactContext:
    """What a fact function sees: the store (for other facts), options and the target."""

    def __init__(self, store: FactStore, target: Target | None) -> None:
        self.store = store
        self.target = target
        self.options = store.options
        self.now = store.now

    def fact(self, name: str) -> Any:
        try:
            return self.store.get(name, self.target)
        except FactError as exc:
            # Re-raise the root cause, so the outermost fact reports what really failed.
            raise exc.cause from None

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)
