"""Our encoder against a real Prometheus remote-write receiver (Debian prometheus 2.42)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import snappy

import promrw_doctor.remote_write as rw
from promrw_doctor.lab.prometheus import PrometheusProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    proc = PrometheusProcess.receiver(Path(tmp_path_factory.mktemp("recv")))
    try:
        yield proc
    finally:
        proc.stop()


def test_canary_is_accepted_and_queryable_with_its_exact_nonce(receiver: PrometheusProcess) -> None:
    c = rw.build_canary("recv-test")
    r = requests.post(receiver.write_url, data=c.body, headers=rw.HEADERS, timeout=5)
    assert r.status_code == 204, r.text
    result = receiver.wait_for(c.promql(), timeout=10)
    assert c.matches(result[0]["value"][1])
    assert result[0]["metric"] == {"__name__": "promrw_doctor_canary", "cluster": "recv-test",
                                   "source": "promrw-doctor"}


def test_a_2000_sample_batch_is_accepted(receiver: PrometheusProcess) -> None:
    body = rw.encode(rw.SyntheticBatch(samples=2000, cluster="batch-test").request())
    r = requests.post(receiver.write_url, data=body, headers=rw.HEADERS, timeout=5)
    assert r.status_code == 204, r.text
    res = receiver.wait_for('count({cluster="batch-test"})', timeout=10)
    assert res[0]["value"][1] == "2000"


def test_receiver_refuses_framed_snappy_like_our_decoder(receiver: PrometheusProcess) -> None:
    raw = rw.build_write_request([rw.series("framed_test")]).SerializeToString()
    framed = snappy.StreamCompressor().add_chunk(raw)
    r = requests.post(receiver.write_url, data=framed, headers=rw.HEADERS, timeout=5)
    assert r.status_code == 400 and "snappy" in r.text
    with pytest.raises(rw.CodecError):
        rw.decode(framed)
