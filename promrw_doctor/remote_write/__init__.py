"""Remote-write 1.0: messages (runtime protobuf descriptors), snappy block codec, validation, builders.

Importing this package loads ``google.protobuf``; the CLI only does so inside the
commands that need it.
"""

from .builders import InvalidSeries, MetadataSpec, SeriesSpec, SyntheticBatch, build_write_request, series
from .canary import Canary, build_canary
from .codec import HEADERS, CodecError, decode, encode
from .messages import Label, MetricMetadata, Sample, TimeSeries, WriteRequest
from .validate import Violation, first_violation, validate

__all__ = [
    "HEADERS",
    "Canary",
    "CodecError",
    "InvalidSeries",
    "Label",
    "MetadataSpec",
    "MetricMetadata",
    "Sample",
    "SeriesSpec",
    "SyntheticBatch",
    "TimeSeries",
    "Violation",
    "WriteRequest",
    "build_canary",
    "build_write_request",
    "decode",
    "encode",
    "first_violation",
    "series",
    "validate",
]
