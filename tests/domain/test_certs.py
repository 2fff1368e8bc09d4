"""Certificate parsing, thumbprint spellings and validity windows (promrw_doctor.domain.certs)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promrw_doctor.domain import aadsts
from promrw_doctor.domain.certs import (
    CertificateError,
    load_certificate_file,
    normalize_thumbprint,
    parse_certificate,
    parse_time,
    thumbprint_from_b64_der,
    thumbprint_from_key_identifier,
    thumbprint_from_x5t,
    validity,
    x5t_from_thumbprint,
)
from promrw_doctor.lab.pki import ClientCertificate, make_client_certificate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cert() -> ClientCertificate:
    return make_client_certificate("prom-rw", NOW - timedelta(days=30), NOW + timedelta(days=335), key_size=2048)


@pytest.fixture(scope="module")
def other() -> ClientCertificate:
    return make_client_certificate("issuer-chain", NOW - timedelta(days=300), NOW + timedelta(days=300))


def test_pem_key_and_certificate(cert: ClientCertificate) -> None:
    info = parse_certificate(cert.pem_bundle())
    assert info.format == "pem"
    assert info.has_private_key
    assert info.thumbprint == cert.thumbprint == hashlib.sha1(cert.der).hexdigest().upper()
    assert info.subject == "CN=prom-rw"
    assert info.not_after == cert.not_after.replace(microsecond=0)
    assert info.key_type == "RSA 2048"
    assert info.x5t == cert.x5t


def test_pem_picks_the_leaf_matching_the_key_in_a_chain(cert: ClientCertificate, other: ClientCertificate) -> None:
    # A chain PEM lists another certificate first; the leaf is the one the key belongs to.
    info = parse_certificate(other.cert_pem + cert.key_pem + cert.cert_pem)
    assert info.thumbprint == cert.thumbprint


def test_pem_certificate_only_has_no_private_key(cert: ClientCertificate) -> None:
    info = parse_certificate(cert.cert_pem)
    assert not info.has_private_key
    assert info.thumbprint == cert.thumbprint


def test_pfx_without_and_with_password(cert: ClientCertificate) -> None:
    assert parse_certificate(cert.pfx()).format == "pfx"
    locked = cert.pfx(b"s3cret-pw")
    info = parse_certificate(locked, "s3cret-pw")
    assert info.has_private_key and info.thumbprint == cert.thumbprint


def test_pfx_wrong_or_missing_password_is_one_line(cert: ClientCertificate) -> None:
    locked = cert.pfx(b"s3cret-pw")
    with pytest.raises(CertificateError) as wrong:
        parse_certificate(locked, "nope", origin="f.pfx")
    assert wrong.value.kind == "password"
    assert "wrong password" in str(wrong.value) and "\n" not in str(wrong.value)
    assert "nope" not in str(wrong.value)
    with pytest.raises(CertificateError, match="needs a password"):
        parse_certificate(locked, None)


def test_base64_text_pfx_as_the_csi_driver_mounts_it(cert: ClientCertificate) -> None:
    text = base64.encodebytes(cert.pfx())
    assert parse_certificate(text).thumbprint == cert.thumbprint


def test_der_certificate(cert: ClientCertificate) -> None:
    info = parse_certificate(cert.der)
    assert info.format == "der" and not info.has_private_key


@pytest.mark.parametrize("data", [b"", b"   ", b"hello world, not a certificate", b"\x30\x03\x02\x01\x05",
                                  b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
                                  b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"])
def test_not_a_certificate(data: bytes) -> None:
    with pytest.raises(CertificateError) as err:
        parse_certificate(data, origin="x")
    assert err.value.kind in ("not-a-certificate", "password")
    assert str(err.value).startswith("x: ") and "\n" not in str(err.value)


def test_file_errors(tmp_path: Path, cert: ClientCertificate) -> None:
    with pytest.raises(CertificateError, match="no such file"):
        load_certificate_file(tmp_path / "missing.pem")
    with pytest.raises(CertificateError, match="is a directory"):
        load_certificate_file(tmp_path)
    f = tmp_path / "c.pem"
    f.write_bytes(cert.pem_bundle())
    assert load_certificate_file(f).thumbprint == cert.thumbprint


def test_thumbprint_spellings(cert: ClientCertificate) -> None:
    t = cert.thumbprint
    assert thumbprint_from_x5t(cert.x5t) == t
    assert x5t_from_thumbprint(t) == cert.x5t
    graph_kid = base64.b64encode(bytes.fromhex(t)).decode()
    assert thumbprint_from_key_identifier(graph_kid) == t
    assert thumbprint_from_key_identifier(t.lower()) == t  # hex text as some tools store it
    assert thumbprint_from_key_identifier(base64.b64encode(t.encode()).decode()) == t  # base64 of hex text
    assert thumbprint_from_b64_der(base64.b64encode(cert.der).decode()) == t
    assert normalize_thumbprint(":".join(t[i:i + 2] for i in range(0, 40, 2)).lower()) == t
    assert normalize_thumbprint("xyz") is None
    assert thumbprint_from_x5t("not-a-thumbprint") is None
    assert thumbprint_from_key_identifier(None) is None


@pytest.mark.parametrize(("days_left", "status"), [
    (-35, "expired"), (0, "expired"), (3, "expiring-high"), (6.9, "expiring-high"), (7, "expiring-warn"),
    (29, "expiring-warn"), (30, "valid"), (300, "valid"),
])
def test_validity_windows(days_left: float, status: str) -> None:
    v = validity(NOW - timedelta(days=10), NOW + timedelta(days=days_left), NOW)
    assert v.status == status
    assert v.problem == (status != "valid")


def test_not_yet_valid_and_custom_thresholds() -> None:
    assert validity(NOW + timedelta(days=1), NOW + timedelta(days=400), NOW).status == "not-yet-valid"
    v = validity(NOW - timedelta(days=1), NOW + timedelta(days=50), NOW, warn_days=60, high_days=55)
    assert v.status == "expiring-high"
    assert "expires in 50.0 day(s)" in v.describe()


def test_parse_time_shapes() -> None:
    assert parse_time(1767225600) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_time("2026-01-15T10:11:12Z") == datetime(2026, 1, 15, 10, 11, 12, tzinfo=UTC)
    assert parse_time("2026-01-15T10:11:12.1234567Z") == datetime(2026, 1, 15, 10, 11, 12, 123456, tzinfo=UTC)
    assert parse_time("garbage") is None and parse_time(None) is None


def test_aadsts_lookup() -> None:
    text = ("AADSTS700027: Client assertion failed signature validation. [Reason - The key used is expired., "
            "Thumbprint of key used by client: 'ABC']")
    code, entry = aadsts.find(text)  # type: ignore[misc]
    assert code == 700027 and entry is not None and entry.hint_code == "CERT_NOT_REGISTERED"
    assert aadsts.certificate_reason(text) == "expired"
    assert aadsts.certificate_reason("[Reason - The key was not found.]") == "not-registered"
    assert aadsts.find("no code here") is None
    assert aadsts.find("AADSTS9999999 something")[1] is None  # type: ignore[index]
    assert aadsts.lookup("AADSTS70021") is not None
