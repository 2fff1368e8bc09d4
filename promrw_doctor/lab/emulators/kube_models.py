"""Make scenario manifests look like what a real API server serialises, and prove the client reads them.

A real API server writes every Go field without ``omitempty`` even when it is zero
(``"numberMisscheduled": 0``, ``"imageID": ""``), and the ``kubernetes`` Python client
(pydantic, strict) marks exactly those fields required: an object missing one makes
``list_namespaced_pod`` raise inside a collector. Scenario authors write only what matters
to the story, so :func:`zero_fill` adds the zero values the Go serializer would have
emitted, using the client's own models as the schema, and :func:`validate` then rejects
what no real server could return (a string where an int belongs) with a one-line error.
"""

from __future__ import annotations

import datetime
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

#: kind -> the ``kubernetes`` client model that deserialises it (custom resources stay plain dicts).
CLIENT_MODELS = {
    "Pod": "V1Pod", "Event": "CoreV1Event", "ServiceAccount": "V1ServiceAccount", "Secret": "V1Secret",
    "ConfigMap": "V1ConfigMap", "Namespace": "V1Namespace", "Node": "V1Node", "Service": "V1Service",
    "DaemonSet": "V1DaemonSet", "StatefulSet": "V1StatefulSet", "Deployment": "V1Deployment",
    "ReplicaSet": "V1ReplicaSet", "CustomResourceDefinition": "V1CustomResourceDefinition",
}

_SKIP = object()


class _Field(typing.NamedTuple):
    key: str  # the JSON name
    required: bool
    model: type | None  # nested model class, if any
    container: str  # "" | "list" | "dict"
    zero: Any  # zero value for a missing required scalar, or _SKIP


def _unwrap(annotation: Any) -> tuple[Any, str]:
    """Strip Optional/Annotated; report List[...] / Dict[str, ...] wrapping."""
    container = ""
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Union:
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                return annotation, container
            annotation = rest[0]
        elif origin is typing.Annotated:
            annotation = args[0]
        elif origin in (list, typing.List) and not container:  # noqa: UP006 - runtime check
            container, annotation = "list", args[0]
        elif origin in (dict, typing.Dict) and not container:  # noqa: UP006 - runtime check
            container, annotation = "dict", args[1]
        else:
            return annotation, container


def _zero(inner: Any, container: str) -> Any:
    if container == "list":
        return []
    if container == "dict":
        return {}
    if inner is bool:
        return False
    if inner is int:
        return 0
    if inner is float:
        return 0.0
    if inner is str:
        return ""
    return _SKIP  # datetimes, unions, models: handled by the caller or left alone


@cache
def _fields(model: type) -> tuple[_Field, ...]:
    from pydantic import BaseModel

    attribute_map: Mapping[str, str] = getattr(model, "attribute_map", {})
    out = []
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        inner, container = _unwrap(info.annotation)
        nested = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None
        zero = _SKIP if nested is not None or inner is datetime.datetime else _zero(inner, container)
        out.append(_Field(attribute_map.get(name, name), info.is_required(), nested, container, zero))
    return tuple(out)


def _fill(model: type, data: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for f in _fields(model):
        if f.key in out:
            value = out[f.key]
            if f.model is None or value is None:
                continue
            if f.container == "list" and isinstance(value, list):
                out[f.key] = [_fill(f.model, v) if isinstance(v, Mapping) else v for v in value]
            elif f.container == "dict" and isinstance(value, Mapping):
                out[f.key] = {k: _fill(f.model, v) if isinstance(v, Mapping) else v for k, v in value.items()}
            elif not f.container and isinstance(value, Mapping):
                out[f.key] = _fill(f.model, value)
        elif f.required:
            if f.container:
                out[f.key] = [] if f.container == "list" else {}
            elif f.model is not None:
                out[f.key] = _fill(f.model, {})
            elif f.zero is not _SKIP:
                out[f.key] = f.zero
    return out


@cache
def _model(kind: str) -> type | None:
    name = CLIENT_MODELS.get(kind)
    if name is None:
        return None
    from kubernetes.client import models

    return getattr(models, name)  # type: ignore[no-any-return]


def zero_fill(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` with the zero values a Go API server always serialises; CRs are copied as-is."""
    model = _model(kind)
    return _fill(model, obj) if model is not None else dict(obj)


def validate(kind: str, obj: Mapping[str, Any]) -> str | None:
    """None when the client can read ``obj``; else ``"<field>: <problem> (N errors)"``."""
    model = _model(kind)
    if model is None:
        return None
    from pydantic import ValidationError

    try:
        model.from_dict(dict(obj))  # type: ignore[attr-defined]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or exc.title
        return f"{where}: {first.get('msg')} ({exc.error_count()} error(s) in {exc.title})"
    return None
