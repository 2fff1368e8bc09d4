"""Per-run PKI for the lab: a CA for loopback HTTPS and client certificates for Entra apps.

azure-identity refuses ``http://`` authorities, so the Entra, ingestion and query
emulators must speak HTTPS; a fresh CA per run (trusted via ``connection_verify`` or
``REQUESTS_CA_BUNDLE``) keeps that honest without touching the system trust store.
Client certificates may be expired or not yet valid on purpose: those are scenarios.

Nothing is cached globally: every run (and every test) gets its own keys.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import ssl
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_CA_LIFETIME = timedelta(days=30)
_SERVER_LIFETIME = timedelta(days=7)
_BACKDATE = timedelta(minutes=5)


def _rsa_key(key_size: int = 2048) -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def x5t_of(der: bytes) -> str:
    """base64url SHA-1 of a DER certificate, unpadded (the JWT ``x5t`` header / Key Vault ``x5t``)."""
    return base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode("ascii")


def thumbprint_of(der: bytes) -> str:
    """Uppercase hex SHA-1 of a DER certificate (Graph ``customKeyIdentifier`` / portal thumbprint)."""
    return hashlib.sha1(der).hexdigest().upper()


@dataclass
class ServerCertificate:
    """A TLS server certificate for loopback, signed by the lab CA."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side context; ``ssl`` only loads key material from files, so use a private temp dir."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory(prefix="promrw-lab-tls-") as tmp:
            cert_path, key_path = self.write(tmp)
            ctx.load_cert_chain(cert_path, key_path)
        return ctx

    def write(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``server.crt`` (leaf + CA chain) and ``server.key`` (mode 0600) into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cert_path = d / "server.crt"
        key_path = d / "server.key"
        cert_path.write_bytes(self.cert_pem + self.ca_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.key_pem)
        return cert_path, key_path


@dataclass
class ClientCertificate:
    """An application's client certificate (what the sidecar reads from the CSI mount)."""

    cert_pem: bytes
    key_pem: bytes
    der: bytes
    not_before: datetime
    not_after: datetime
    common_name: str

    @property
    def thumbprint(self) -> str:
        return thumbprint_of(self.der)

    @property
    def x5t(self) -> str:
        return x5t_of(self.der)

    def pem_bundle(self) -> bytes:
        """Private key then certificate: the single-file PEM azure-identity and the sidecar read."""
        return self.key_pem + self.cert_pem

    def pfx(self, password: bytes | None = None) -> bytes:
        """PKCS#12 with key and certificate (the Key Vault ``objectFormat: pfx`` shape)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12

        key = serialization.load_pem_private_key(self.key_pem, password=None)
        cert = x509.load_der_x509_certificate(self.der)
        enc: Any = (serialization.BestAvailableEncryption(password) if password
                    else serialization.NoEncryption())
        return bytes(pkcs12.serialize_key_and_certificates(
            self.common_name.encode("utf-8"), key, cert, None, enc))  # type: ignore[arg-type]

    def public_key(self) -> Any:
        from cryptography import x509

        return x509.load_der_x509_certificate(self.der).public_key()


@dataclass
class CertificateAuthority:
    """The lab's per-run CA. Trust ``cert_pem`` (``write_bundle``) in clients that talk to the emulators."""

    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def create(cls, common_name: str = "promrw-doctor lab CA") -> CertificateAuthority:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        key = _rsa_key()
        now = datetime.now(UTC)
        name = _name(common_name)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert_pem=cert.public_bytes(serialization.Encoding.PEM), key_pem=_key_pem(key))

    def write_bundle(self, path: str | Path) -> Path:
        """Write the CA certificate (PEM): the file for ``connection_verify``/``REQUESTS_CA_BUNDLE``."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(self.cert_pem)
        return p

    def issue_server(
        self, hosts: tuple[str, ...] | list[str] = ("127.0.0.1", "localhost"),
    ) -> ServerCertificate:
        """A server certificate whose SANs are ``hosts`` (IPs become IP SANs, the rest DNS SANs)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID

        ca_key = serialization.load_pem_private_key(self.key_pem, password=None)
        ca_cert = x509.load_pem_x509_certificate(self.cert_pem)
        key = _rsa_key()
        now = datetime.now(UTC)
        sans: list[x509.GeneralName] = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        cn = next((h for h in hosts if not _is_ip(h)), hosts[0] if hosts else "localhost")
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _SERVER_LIFETIME)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        return ServerCertificate(cert_pem=cert.public_bytes(serialization.Encoding.PEM),
                                 key_pem=_key_pem(key), ca_pem=self.cert_pem)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def make_client_certificate(
    common_name: str,
    not_before: datetime,
    not_after: datetime,
    key_size: int = 2048,
) -> ClientCertificate:
    """A self-signed client certificate, as ``az ad sp create-for-rbac --create-cert``/Key Vault make them.

    ``not_before`` may be in the future and ``not_after`` in the past: expired and
    not-yet-valid certificates are scenarios, not errors.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    if not_before.tzinfo is None:
        not_before = not_before.replace(tzinfo=UTC)
    if not_after.tzinfo is None:
        not_after = not_after.replace(tzinfo=UTC)
    key = _rsa_key(key_size)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int(uuid.uuid4().int >> 1))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ClientCertificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=_key_pem(key),
        der=cert.public_bytes(serialization.Encoding.DER),
        not_before=not_before,
        not_after=not_after,
        common_name=common_name,
    )
