"""Client certificates: PEM/PFX parsing, thumbprints, and validity windows. Pure logic, no network.

Why: an Entra application authenticates the sidecar with a certificate, and the three
places that hold "the" certificate (the file the pod mounts, the Key Vault certificate
it was exported from, the application registration's ``keyCredentials``) drift apart:
Key Vault renews, the CSI driver mounts the new version, nobody uploads it to the app.
They can only be compared by SHA-1 thumbprint, which each place spells differently:

================================  ==============================================
where                             thumbprint spelling
================================  ==============================================
the certificate (DER)             ``sha1(der)``, shown as upper-case hex
Key Vault ``x5t``                 base64url of the SHA-1 bytes, unpadded
Graph ``customKeyIdentifier``     base64 of the SHA-1 bytes (Graph Binary type)
Graph ``key``                     base64 of the DER certificate itself
================================  ==============================================

Everything here normalises to upper-case hex. A file that is not a certificate, or a
PKCS#12 that does not open with the given password, raises :class:`CertificateError`
with one line (never the password, never key material).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

DEFAULT_WARN_DAYS = 30.0
DEFAULT_HIGH_DAYS = 7.0

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)
_PEM_KEY = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S)
_HEX40 = re.compile(r"^[0-9A-Fa-f]{40}$")


class CertificateError(ValueError):
    """A certificate that cannot be read. ``kind``: ``file``, ``not-a-certificate``, ``password``."""

    def __init__(self, message: str, kind: str = "not-a-certificate") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class CertInfo:
    """What the doctor needs to know about one X.509 certificate (no key material)."""

    subject: str
    issuer: str
    thumbprint: str  # upper-case hex SHA-1 of the DER certificate
    not_before: datetime
    not_after: datetime
    serial: str
    has_private_key: bool
    format: Literal["pem", "pfx", "der"]
    key_type: str | None = None  # "RSA 2048", "EC 256" (the public key)

    @property
    def x5t(self) -> str:
        return x5t_from_thumbprint(self.thumbprint)

    def to_evidence(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "thumbprint": self.thumbprint,
            "not_before": iso(self.not_before),
            "not_after": iso(self.not_after),
            "format": self.format,
            "has_private_key": self.has_private_key,
        }


# --------------------------------------------------------------------------- thumbprints


def thumbprint_of_der(der: bytes) -> str:
    return hashlib.sha1(der).hexdigest().upper()


def normalize_thumbprint(value: str | None) -> str | None:
    """``aa:bb:…`` / ``aabb…`` / with spaces -> ``AABB…`` (40 hex digits), else None."""
    if not value:
        return None
    v = re.sub(r"[\s:]", "", str(value))
    return v.upper() if _HEX40.match(v) else None


def _b64_any(value: str) -> bytes | None:
    text = value.strip()
    if not text:
        return None
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def thumbprint_from_x5t(x5t: str | None) -> str | None:
    """Key Vault / JWT ``x5t`` (base64url SHA-1) -> upper-case hex."""
    raw = _b64_any(x5t or "")
    return raw.hex().upper() if raw is not None and len(raw) == 20 else None


def x5t_from_thumbprint(thumbprint: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(thumbprint)).rstrip(b"=").decode("ascii")


def thumbprint_from_key_identifier(value: str | None) -> str | None:
    """Graph ``customKeyIdentifier``: base64 of the thumbprint bytes; some tools store the hex text."""
    if not value:
        return None
    direct = normalize_thumbprint(value)
    if direct is not None and len(value.strip()) == 40:
        return direct
    raw = _b64_any(value)
    if raw is None:
        return None
    if len(raw) == 20:
        return raw.hex().upper()
    try:  # base64 of the hex *text* (seen with older PowerShell uploads)
        return normalize_thumbprint(raw.decode("ascii"))
    except UnicodeDecodeError:
        return None


def thumbprint_from_b64_der(value: str | None) -> str | None:
    """Graph ``keyCredential.key`` / Key Vault ``cer``: base64 DER certificate -> thumbprint."""
    raw = _b64_any(value or "")
    return thumbprint_of_der(raw) if raw else None


# --------------------------------------------------------------------------- parsing


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _info(cert: Any, *, fmt: Literal["pem", "pfx", "der"], has_key: bool) -> CertInfo:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    der = cert.public_bytes(serialization.Encoding.DER)
    key = cert.public_key()
    key_type = None
    if isinstance(key, rsa.RSAPublicKey):
        key_type = f"RSA {key.key_size}"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type = f"EC {key.key_size}"
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        thumbprint=thumbprint_of_der(der),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=format(cert.serial_number, "X"),
        has_private_key=has_key,
        format=fmt,
        key_type=key_type,
    )


def _pem(data: bytes, password: str | None, origin: str) -> CertInfo:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    blocks = [m.group(0) for m in re.finditer(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                                                data, re.S)]
    if not blocks:
        raise CertificateError(f"{origin}: PEM without a CERTIFICATE block (not a certificate)")
    certs = []
    for b in blocks:
        try:
            certs.append(x509.load_pem_x509_certificate(b))
        except ValueError:
            raise CertificateError(f"{origin}: damaged PEM CERTIFICATE block (not a certificate)") from None
    key_block = _PEM_KEY.search(data)
    leaf = certs[0]
    if key_block is not None:
        encrypted = b"ENCRYPTED" in key_block.group(1) or b"Proc-Type: 4,ENCRYPTED" in key_block.group(0)
        if encrypted and password:
            try:
                key = load_pem_private_key(key_block.group(0), password=password.encode("utf-8"))
            except (ValueError, TypeError):
                raise CertificateError(f"{origin}: the PEM private key does not open with the given password "
                                       "(wrong password)", "password") from None
            leaf = _matching(certs, key) or leaf
        elif not encrypted:
            try:
                key = load_pem_private_key(key_block.group(0), password=None)
            except (ValueError, TypeError):
                key = None
            if key is not None:
                leaf = _matching(certs, key) or leaf
    return _info(leaf, fmt="pem", has_key=key_block is not None)


def _matching(certs: list[Any], key: Any) -> Any:
    """The certificate whose public key belongs to ``key`` (the leaf, in a PEM that also holds a chain)."""
    from cryptography.hazmat.primitives import serialization

    want = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    for c in certs:
        got = c.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
        if got == want:
            return c
    return None


def _pfx(data: bytes, password: str | None, origin: str) -> CertInfo:
    from cryptography.hazmat.primitives.serialization import pkcs12

    attempts: list[bytes | None] = [password.encode("utf-8")] if password else [None, b""]
    last: Exception | None = None
    for pw in attempts:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, pw)
        except (ValueError, TypeError) as exc:
            last = exc
            continue
        if cert is None:
            if extra:
                cert = extra[0]
            else:
                raise CertificateError(f"{origin}: the PKCS#12 file holds no certificate")
        return _info(cert, fmt="pfx", has_key=key is not None)
    hint = "wrong password" if password else "it needs a password (--client-certificate-password)"
    raise CertificateError(f"{origin}: the PKCS#12/PFX file does not open: {hint}", "password") from last


def _looks_pkcs12(data: bytes) -> bool:
    """A DER SEQUENCE whose first element is INTEGER 3 (PFX version): cheap and unambiguous enough."""
    if len(data) < 8 or data[0] != 0x30:
        return False
    i = 1
    first = data[i]
    i += 1 + (first & 0x7F if first & 0x80 else 0)
    return data[i:i + 3] == b"\x02\x01\x03"


def _decode_base64_text(data: bytes) -> bytes | None:
    """Key Vault ``objectEncoding: base64`` mounts hold the PFX as base64 text."""
    stripped = b"".join(data.split())
    if len(stripped) < 64 or not re.fullmatch(rb"[A-Za-z0-9+/=]+", stripped):
        return None
    try:
        decoded = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if decoded[:1] == b"\x30" else None


def parse_certificate(data: bytes, password: str | None = None, origin: str = "certificate") -> CertInfo:
    """Read PEM (certificate, optional key, optional chain), PKCS#12/PFX (binary or base64 text) or DER."""
    from cryptography import x509

    if not data or not data.strip():
        raise CertificateError(f"{origin}: empty (not a certificate)")
    if b"-----BEGIN" in data:
        return _pem(data, password, origin)
    decoded = _decode_base64_text(data)
    if decoded is not None:
        data = decoded
    if _looks_pkcs12(data):
        return _pfx(data, password, origin)
    if data[:1] == b"\x30":
        try:
            return _info(x509.load_der_x509_certificate(data), fmt="der", has_key=False)
        except ValueError:
            pass
        return _pfx(data, password, origin)
    raise CertificateError(f"{origin}: not a certificate (expected PEM, PKCS#12/PFX or DER)")


def load_certificate_file(path: str | Path, password: str | None = None) -> CertInfo:
    """Read and parse a certificate file; every failure is a one-line :class:`CertificateError`."""
    p = Path(path)
    origin = f"certificate file {p}"
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise CertificateError(f"{origin}: no such file", "file") from None
    except IsADirectoryError:
        raise CertificateError(f"{origin}: is a directory", "file") from None
    except PermissionError:
        raise CertificateError(f"{origin}: permission denied", "file") from None
    except OSError as exc:
        raise CertificateError(f"{origin}: cannot read: {exc.strerror or exc}", "file") from None
    return parse_certificate(data, password, origin)


def certificate_from_b64_der(value: str, origin: str = "certificate") -> CertInfo:
    """Key Vault ``cer`` / Graph ``key``: base64 DER."""
    from cryptography import x509

    raw = _b64_any(value)
    if not raw:
        raise CertificateError(f"{origin}: not base64")
    try:
        return _info(x509.load_der_x509_certificate(raw), fmt="der", has_key=False)
    except ValueError:
        raise CertificateError(f"{origin}: not a DER certificate") from None


# --------------------------------------------------------------------------- validity

ValidityStatus = Literal["expired", "not-yet-valid", "expiring-high", "expiring-warn", "valid"]


@dataclass(frozen=True)
class Validity:
    status: ValidityStatus
    days_left: float  # negative once expired
    not_before: datetime
    not_after: datetime

    @property
    def problem(self) -> bool:
        return self.status != "valid"

    def describe(self) -> str:
        if self.status == "expired":
            return f"expired {abs(self.days_left):.0f} day(s) ago ({iso(self.not_after)})"
        if self.status == "not-yet-valid":
            return f"not valid before {iso(self.not_before)}"
        return f"expires in {self.days_left:.1f} day(s) ({iso(self.not_after)})"


def validity(not_before: datetime, not_after: datetime, now: datetime,
             warn_days: float = DEFAULT_WARN_DAYS, high_days: float = DEFAULT_HIGH_DAYS) -> Validity:
    """Where ``now`` falls in the window; ``expiring-high`` under ``high_days``, ``expiring-warn`` under
    ``warn_days``."""
    nb = _aware(not_before)
    na = _aware(not_after)
    n = _aware(now)
    days = (na - n) / timedelta(days=1)
    if n >= na:
        return Validity("expired", days, nb, na)
    if n < nb:
        return Validity("not-yet-valid", days, nb, na)
    if days < high_days:
        return Validity("expiring-high", days, nb, na)
    if days < warn_days:
        return Validity("expiring-warn", days, nb, na)
    return Validity("valid", days, nb, na)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """Graph DateTimeOffset strings and Key Vault unix times -> aware datetime (None if unreadable)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    m = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", text)
    if m:  # ARM/Graph may send 7 fractional digits; Python takes at most 6
        text = f"{m.group(1)}.{m.group(2)[:6]}{m.group(3)}"
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        return None
