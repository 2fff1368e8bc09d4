"""PKI and token issuer: the properties other components rely on (thumbprints, PKCS#12, claim checks)."""

from __future__ import annotations

import base64
import hashlib
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key, pkcs12

from promrw_doctor.lab.pki import CertificateAuthority, make_client_certificate
from promrw_doctor.lab.server import LabServer
from promrw_doctor.lab.tokens import OidcIssuer, TokenInvalid, TokenIssuer, audience_matches

from .conftest import ClientCerts, LabPki


def test_client_certificate_identifiers(client_certs: ClientCerts) -> None:
    cert = client_certs.valid
    assert cert.thumbprint == hashlib.sha1(cert.der).hexdigest().upper()
    assert cert.x5t == base64.urlsafe_b64encode(hashlib.sha1(cert.der).digest()).decode().rstrip("=")
    assert "=" not in cert.x5t
    parsed = x509.load_pem_x509_certificate(cert.cert_pem)
    assert parsed.public_bytes(Encoding.DER) == cert.der
    bundle = cert.pem_bundle()
    assert bundle.startswith(b"-----BEGIN PRIVATE KEY-----") and b"-----BEGIN CERTIFICATE-----" in bundle
    load_pem_private_key(cert.key_pem, password=None)


def test_expired_and_future_certificates_are_allowed() -> None:
    now = datetime.now(UTC)
    future = make_client_certificate("future", now + timedelta(days=2), now + timedelta(days=30))
    parsed = x509.load_der_x509_certificate(future.der)
    assert parsed.not_valid_before_utc > now
    old = make_client_certificate("old", now - timedelta(days=60), now - timedelta(days=1))
    assert x509.load_der_x509_certificate(old.der).not_valid_after_utc < now


def test_pfx_roundtrip_with_and_without_password(client_certs: ClientCerts) -> None:
    cert = client_certs.valid
    key, leaf, _ = pkcs12.load_key_and_certificates(cert.pfx(b"s3cret"), b"s3cret")
    assert leaf is not None and key is not None
    assert leaf.fingerprint(hashes.SHA1()).hex().upper() == cert.thumbprint
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(cert.pfx(b"s3cret"), b"wrong")
    _, leaf2, _ = pkcs12.load_key_and_certificates(cert.pfx(None), None)
    assert leaf2 is not None


def test_server_certificate_is_trusted_via_ca_bundle(lab_pki: LabPki, tmp_path: Path) -> None:
    import requests
    from aiohttp import web

    app = web.Application()

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hi")

    app.router.add_get("/", hello)
    with LabServer() as server:
        ep = server.add("tls", app, ssl_context=lab_pki.server_ssl)
        assert requests.get(ep.url, verify=str(lab_pki.ca_bundle), timeout=5).text == "hi"
        assert requests.get(f"https://localhost:{ep.port}", verify=str(lab_pki.ca_bundle), timeout=5).ok
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(ep.url, timeout=5)  # not trusted without the lab CA
    cert_path, key_path = lab_pki.ca.issue_server().write(tmp_path / "tls")
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_path, key_path)


def test_separate_cas_do_not_trust_each_other(lab_pki: LabPki) -> None:
    other = CertificateAuthority.create("other")
    leaf = x509.load_pem_x509_certificate(other.issue_server().cert_pem)
    assert leaf.issuer != x509.load_pem_x509_certificate(lab_pki.ca.cert_pem).subject


# ------------------------------------------------------------------------------------- tokens
def test_mint_claims_and_verify() -> None:
    issuer = TokenIssuer("tenant-a")
    token, exp = issuer.mint(
        audience="https://monitor.azure.com//.default", client_id="cid", principal_id="oid"
    )
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == issuer.kid
    claims = issuer.verify(f"Bearer {token}", audiences=["https://monitor.azure.com/"])
    assert claims["aud"] == "https://monitor.azure.com"
    assert claims["iss"] == "https://sts.windows.net/tenant-a/"
    assert (claims["tid"], claims["oid"], claims["sub"], claims["appid"], claims["azp"], claims["idtyp"]) == (
        "tenant-a",
        "oid",
        "oid",
        "cid",
        "cid",
        "app",
    )
    assert claims["exp"] == exp and claims["nbf"] <= time.time() < exp
    # The published JWKS verifies it with a standard library, as a real resource server would.
    key = jwt.PyJWK(issuer.jwks()["keys"][0]).key
    assert jwt.decode(token, key, algorithms=["RS256"], audience="https://monitor.azure.com")["oid"] == "oid"


@pytest.mark.parametrize(
    "token_aud,accepted,ok",
    [
        ("https://monitor.azure.com", "https://monitor.azure.com//.default", True),
        ("https://monitor.azure.com/", "https://monitor.azure.com/.default", True),
        ("https://monitor.azure.com", "https://monitor.azure.us", False),
        ("https://management.core.windows.net/", "https://monitor.azure.com", False),
    ],
)
def test_audience_normalisation(token_aud: str, accepted: str, ok: bool) -> None:
    assert audience_matches(token_aud, [accepted]) is ok


def test_verify_reasons() -> None:
    issuer = TokenIssuer("tenant-a")
    aud = ["https://monitor.azure.com"]
    good, _ = issuer.mint(audience=aud[0], client_id="c", principal_id="p")
    cases = {
        "missing": None,
        "malformed": "not-a-jwt",
        "signature": TokenIssuer("tenant-a").mint(audience=aud[0], client_id="c", principal_id="p")[0],
        "expired": issuer.mint(
            audience=aud[0], client_id="c", principal_id="p", not_before=int(time.time()) - 7200
        )[0],
        "audience": issuer.mint(audience="https://vault.azure.net", client_id="c", principal_id="p")[0],
        "tenant": issuer.mint(audience=aud[0], client_id="c", principal_id="p", tenant_id="tenant-b")[0],
    }
    for reason, token in cases.items():
        with pytest.raises(TokenInvalid) as info:
            issuer.verify(token, audiences=aud)
        assert info.value.reason == reason, (reason, info.value.message)
        if token:
            assert token not in info.value.message  # never echo the token
    tampered = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
    with pytest.raises(TokenInvalid) as info:
        issuer.verify(tampered, audiences=aud)
    assert info.value.reason == "signature"
    future = issuer.mint(audience=aud[0], client_id="c", principal_id="p", not_before=int(time.time()) + 600)[
        0
    ]
    with pytest.raises(TokenInvalid, match="not yet valid"):
        issuer.verify(future, audiences=aud)


def test_oidc_issuer_service_account_token() -> None:
    oidc = OidcIssuer("https://oidc.example/cluster/")
    token = oidc.service_account_token("monitoring", "prometheus")
    key = jwt.PyJWK(oidc.jwks()["keys"][0]).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="api://AzureADTokenExchange")
    assert claims["sub"] == "system:serviceaccount:monitoring:prometheus"
    assert claims["iss"] == "https://oidc.example/cluster/"
