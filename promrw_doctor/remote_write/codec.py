"""Wire codec for remote write 1.0: protobuf serialized, then snappy **block** compressed.

The framed snappy stream format (``snappy.StreamCompressor``) must never be used:
Prometheus receivers and Azure ingestion answer ``400 snappy: corrupt input``.

Decoding is bounded: the snappy block header announces the uncompressed length, and
a body announcing more than ``max_decompressed`` bytes is refused before any
allocation, so a 10 KB "zip bomb" cannot make the forwarder allocate gigabytes.
"""

from __future__ import annotations

from typing import Any

import cramjam
import snappy
from google.protobuf.message import DecodeError

from .. import __version__ as _version
from .messages import WriteRequest

CONTENT_TYPE = "application/x-protobuf"
CONTENT_ENCODING = "snappy"
PROTOCOL_VERSION = "0.1.0"
USER_AGENT = f"promrw-doctor/{_version}"
# What every remote-write 1.0 request carries (spec "Protocol" section).
HEADERS: dict[str, str] = {
    "Content-Encoding": CONTENT_ENCODING,
    "Content-Type": CONTENT_TYPE,
    "X-Prometheus-Remote-Write-Version": PROTOCOL_VERSION,
    "User-Agent": USER_AGENT,
}
DEFAULT_MAX_DECOMPRESSED = 64 * 1024 * 1024


class CodecError(ValueError):
    """A body that is not a valid remote-write payload; ``str()`` is a one-line reason."""

    def __init__(self, layer: str, reason: str) -> None:
        super().__init__(f"{layer}: {reason}")
        self.layer = layer  # "snappy" or "protobuf"
        self.reason = reason


def compress(raw: bytes) -> bytes:
    """Snappy block format (what remote write requires)."""
    return bytes(snappy.compress(raw))


def decompressed_length(body: bytes) -> int:
    """The uncompressed length a snappy block announces in its header (no decompression)."""
    try:
        return int(cramjam.snappy.decompress_raw_len(body))
    except cramjam.DecompressionError as exc:
        raise CodecError("snappy", _first_line(exc) or "corrupt input") from None


def decompress(body: bytes, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> bytes:
    """Snappy block decompression, refusing bodies that announce more than ``max_decompressed`` bytes."""
    if not body:
        raise CodecError("snappy", "empty body")
    size = decompressed_length(body)
    if size > max_decompressed:
        raise CodecError("snappy", f"announces {size} uncompressed bytes, limit is {max_decompressed}")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise CodecError("snappy", _first_line(exc) or "corrupt input") from None


def encode(request: Any) -> bytes:
    """Serialize and compress a ``WriteRequest``: the exact bytes of an HTTP body."""
    return compress(request.SerializeToString())


def decode(body: bytes, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> Any:
    """Parse an HTTP body into a ``WriteRequest``; raises :class:`CodecError` with a one-line reason."""
    raw = decompress(body, max_decompressed=max_decompressed)
    try:
        return WriteRequest.FromString(raw)
    except DecodeError as exc:
        raise CodecError("protobuf", _first_line(exc) or "wire format was corrupt") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
