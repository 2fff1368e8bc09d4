"""Runtime protobuf descriptors and the snappy block codec."""

from __future__ import annotations

import re
from pathlib import Path

import cramjam
import pytest
import snappy
from google.protobuf import descriptor_pb2

import promrw_doctor.remote_write as rw
from promrw_doctor.remote_write import codec, messages

PROTO = Path(messages.__file__).with_name("remote_write.proto")
_TYPES = {
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
}


def _proto_fields() -> dict[str, dict[str, tuple[int, str, bool]]]:
    """Message -> field -> (number, type name, repeated), read from the shipped .proto."""
    text = re.sub(r"//[^\n]*", "", PROTO.read_text())
    out: dict[str, dict[str, tuple[int, str, bool]]] = {}
    for m in re.finditer(r"message (\w+) \{(.*?)\n\}", text, re.S):
        body = re.sub(r"enum \w+ \{.*?\}", "", m.group(2), flags=re.S)
        fields = {}
        for f in re.finditer(r"(repeated )?(\w+) (\w+) = (\d+);", body):
            fields[f.group(3)] = (int(f.group(4)), f.group(2), bool(f.group(1)))
        out[m.group(1)] = fields
    return out


def test_runtime_descriptors_match_the_shipped_proto() -> None:
    declared = _proto_fields()
    fdp = messages.file_descriptor_proto()
    built = {m.name: m for m in fdp.message_type}
    assert set(declared) == set(built) == {"WriteRequest", "TimeSeries", "Label", "Sample", "Exemplar",
                                           "MetricMetadata"}
    for name, fields in declared.items():
        got = {f.name: f for f in built[name].field}
        assert set(got) == set(fields), name
        for fname, (number, type_name, repeated) in fields.items():
            f = got[fname]
            assert f.number == number, (name, fname)
            assert (f.label == f.LABEL_REPEATED) == repeated, (name, fname)
            if type_name in _TYPES:
                assert f.type == _TYPES[type_name], (name, fname)
            elif type_name == "MetricType":
                assert f.type_name == ".prometheus.MetricMetadata.MetricType"
            else:
                assert f.type_name == f".prometheus.{type_name}", (name, fname)
    enum = built["MetricMetadata"].enum_type[0]
    assert {v.name: v.number for v in enum.value} == messages.METRIC_TYPES
    assert [(r.start, r.end) for r in built["WriteRequest"].reserved_range] == [(2, 3)]


def test_wire_bytes_are_the_spec_encoding() -> None:
    # Hand-derived from the spec: WriteRequest{timeseries{labels{__name__=up} samples{1.5 @ 17}}}.
    req = rw.WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="up")
    ts.samples.add(value=1.5, timestamp=17)
    expected = bytes.fromhex(
        "0a1d"  # field 1 (timeseries), LEN 29
        "0a0e" "0a085f5f6e616d655f5f" "12027570"  # Label{name="__name__", value="up"}
        "120b" "09000000000000f83f" "1011")  # Sample{value=1.5 (fixed64), timestamp=17}
    assert req.SerializeToString() == expected


def test_encode_is_snappy_block_format_not_framed() -> None:
    canary = rw.build_canary("c1")
    assert not canary.body.startswith(b"\xff\x06\x00\x00sNaPpY")
    # An independent decoder (cramjam's raw block API) reads it.
    raw = bytes(cramjam.snappy.decompress_raw(canary.body))
    assert rw.WriteRequest.FromString(raw).timeseries[0].samples[0].value == canary.value


def test_decode_roundtrip_with_metadata() -> None:
    req = rw.build_write_request([rw.series("up", {"job": "a"}, [(1000, 1.0), (2000, 0.0)])],
                                 metadata=[rw.MetadataSpec("up", "GAUGE", "scrape health", "")])
    back = rw.decode(rw.encode(req))
    assert back == req
    assert back.metadata[0].type == messages.METRIC_TYPES["GAUGE"]


def test_framed_snappy_is_refused() -> None:
    req = rw.build_write_request([rw.series("up")])
    framed = snappy.StreamCompressor().add_chunk(req.SerializeToString())
    with pytest.raises(rw.CodecError) as exc:
        rw.decode(framed)
    assert exc.value.layer == "snappy"


@pytest.mark.parametrize("body", [b"", b"\x00garbage", b"\xff\xff\xff\xff\xff\xff", b"not snappy at all"])
def test_corrupt_snappy(body: bytes) -> None:
    with pytest.raises(rw.CodecError) as exc:
        rw.decode(body)
    assert exc.value.layer == "snappy"
    assert "\n" not in str(exc.value)


def test_corrupt_protobuf_inside_valid_snappy() -> None:
    with pytest.raises(rw.CodecError) as exc:
        rw.decode(snappy.compress(b"\x0a\xff\xff\xff\x0f\x01"))
    assert exc.value.layer == "protobuf"


def test_decompression_bomb_is_refused_before_allocation() -> None:
    bomb = snappy.compress(b"\x00" * (8 * 1024 * 1024))
    assert len(bomb) < 500_000
    with pytest.raises(rw.CodecError, match="announces 8388608 uncompressed bytes"):
        codec.decompress(bomb, max_decompressed=1024 * 1024)


def test_headers_are_the_spec_headers() -> None:
    assert rw.HEADERS["Content-Encoding"] == "snappy"
    assert rw.HEADERS["Content-Type"] == "application/x-protobuf"
    assert rw.HEADERS["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert rw.HEADERS["User-Agent"].startswith("promrw-doctor/")
