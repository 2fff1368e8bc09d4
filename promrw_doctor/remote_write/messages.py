"""Remote-write 1.0 protobuf messages, built from descriptors at run time.

No protoc and no generated ``*_pb2.py``: the descriptors below mirror
``remote_write.proto`` (shipped next to this file and checked against it in the
tests), and the ``protobuf`` runtime (upb) does all the wire-format work. That keeps
the encoder honest: nothing here knows what a varint is.

Usage::

    from promrw_doctor.remote_write.messages import WriteRequest
    req = WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="up")
    ts.samples.add(value=1.0, timestamp=1700000000000)
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "prometheus"
FILE_NAME = "promrw_doctor/remote_write/remote_write.proto"

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL = _F.LABEL_OPTIONAL
_REPEATED = _F.LABEL_REPEATED

# name -> [(field name, number, type, label, type_name or None)]
_MESSAGES: dict[str, list[tuple[str, int, int, int, str | None]]] = {
    "WriteRequest": [
        ("timeseries", 1, _F.TYPE_MESSAGE, _REPEATED, "TimeSeries"),
        ("metadata", 3, _F.TYPE_MESSAGE, _REPEATED, "MetricMetadata"),
    ],
    "MetricMetadata": [
        ("type", 1, _F.TYPE_ENUM, _OPTIONAL, "MetricMetadata.MetricType"),
        ("metric_family_name", 2, _F.TYPE_STRING, _OPTIONAL, None),
        ("help", 4, _F.TYPE_STRING, _OPTIONAL, None),
        ("unit", 5, _F.TYPE_STRING, _OPTIONAL, None),
    ],
    "Sample": [
        ("value", 1, _F.TYPE_DOUBLE, _OPTIONAL, None),
        ("timestamp", 2, _F.TYPE_INT64, _OPTIONAL, None),
    ],
    "Exemplar": [
        ("labels", 1, _F.TYPE_MESSAGE, _REPEATED, "Label"),
        ("value", 2, _F.TYPE_DOUBLE, _OPTIONAL, None),
        ("timestamp", 3, _F.TYPE_INT64, _OPTIONAL, None),
    ],
    "TimeSeries": [
        ("labels", 1, _F.TYPE_MESSAGE, _REPEATED, "Label"),
        ("samples", 2, _F.TYPE_MESSAGE, _REPEATED, "Sample"),
        ("exemplars", 3, _F.TYPE_MESSAGE, _REPEATED, "Exemplar"),
    ],
    "Label": [
        ("name", 1, _F.TYPE_STRING, _OPTIONAL, None),
        ("value", 2, _F.TYPE_STRING, _OPTIONAL, None),
    ],
}

METRIC_TYPES: dict[str, int] = {
    "UNKNOWN": 0, "COUNTER": 1, "GAUGE": 2, "HISTOGRAM": 3,
    "GAUGEHISTOGRAM": 4, "SUMMARY": 5, "INFO": 6, "STATESET": 7,
}


def file_descriptor_proto() -> descriptor_pb2.FileDescriptorProto:
    """The ``FileDescriptorProto`` equivalent of ``remote_write.proto``."""
    fdp = descriptor_pb2.FileDescriptorProto(name=FILE_NAME, package=PACKAGE, syntax="proto3")
    for msg_name, fields in _MESSAGES.items():
        msg = fdp.message_type.add(name=msg_name)
        for fname, number, ftype, label, type_name in fields:
            f = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = f".{PACKAGE}.{type_name}"
        if msg_name == "WriteRequest":
            msg.reserved_range.add(start=2, end=3)  # field 2 is reserved in the spec
        if msg_name == "MetricMetadata":
            enum = msg.enum_type.add(name="MetricType")
            for vname, vnum in METRIC_TYPES.items():
                enum.value.add(name=vname, number=vnum)
    return fdp


def _build() -> dict[str, Any]:
    # A private pool: never collides with another copy of prompb in the default pool.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor_proto())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in _MESSAGES}


_CLASSES = _build()

# The message classes. Typed as Any: they are generated at run time, so static
# checkers cannot see their fields.
WriteRequest: Any = _CLASSES["WriteRequest"]
TimeSeries: Any = _CLASSES["TimeSeries"]
Label: Any = _CLASSES["Label"]
Sample: Any = _CLASSES["Sample"]
Exemplar: Any = _CLASSES["Exemplar"]
MetricMetadata: Any = _CLASSES["MetricMetadata"]
