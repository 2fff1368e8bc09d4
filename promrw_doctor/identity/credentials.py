"""azure-identity credentials for each identity type, and a :class:`TokenSource` over them.

Why a *new* credential per fetch: every azure-identity credential caches its token
and hands the cached one back until about five minutes before expiry. The forwarder
refreshes at half life and after a 401, so it must bypass that cache; building a
fresh (cheap) credential per fetch does so without private SDK flags.

Sync credentials only: token fetches are rare (twice an hour), the async server runs
them in a worker thread, and the sync MSAL/requests path is the one whose behaviour
(``REQUESTS_CA_BUNDLE``, ``disable_instance_discovery``) is verified in the domain notes.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.redact import RedactingFilter
from .claims import TokenClaims, decode_claims
from .errors import TokenError, describe_exception
from .settings import CLIENT_SECRET, DEFAULT_FEDERATED_TOKEN_FILE, IdentitySettings

log = logging.getLogger("promrw_doctor.identity")
log.addFilter(RedactingFilter())


@dataclass(frozen=True)
class Token:
    """An access token; ``value`` stays out of ``repr``/``str`` (:meth:`authorization` builds the header)."""

    value: str = field(repr=False)
    expires_on: float
    acquired_at: float
    serial: int = 0
    fetch_ms: float = 0.0

    def __str__(self) -> str:
        return f"Token(serial={self.serial}, expires_on={int(self.expires_on)})"

    def authorization(self) -> str:
        return f"Bearer {self.value}"

    @property
    def lifetime(self) -> float:
        return max(0.0, self.expires_on - self.acquired_at)

    def claims(self) -> TokenClaims | None:
        return decode_claims(self.value)


def load_certificate_data(path: str, password: str | None = None) -> bytes:
    """Read a client certificate file and return PEM or PKCS#12 bytes azure-identity accepts.

    Clear errors for the classic mounts: a missing file, a PEM with only the public
    certificate (Key Vault ``objectType: cert``), a wrong or missing password, and a
    base64 *text* PKCS#12 (the ``objectEncoding: base64`` shape) which is decoded here.
    """
    data = _read_certificate(path)
    _check_private_key(path, data, password)
    return data


_PEM_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S)


def _check_private_key(path: str, data: bytes, password: str | None) -> None:
    """Open the private key now, so a wrong password or key type is named before any network call."""
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12

    pw = password.encode("utf-8") if password else None
    hint = "wrong or missing password (AZURE_CLIENT_CERTIFICATE_PASSWORD)"
    pem = b"-----BEGIN" in data
    kind = "PEM private key" if pem else "PKCS#12"
    key: Any
    try:
        if pem:
            block = _PEM_KEY.search(data)
            if block is None:
                raise ValueError("no private key block")
            key = load_pem_private_key(block.group(0), password=pw)
        else:
            key = pkcs12.load_key_and_certificates(data, pw)[0]
    except TypeError:  # encrypted without a password, or a password for an unencrypted key
        raise TokenError("", f"certificate file {path}: cannot open the {kind}: {hint}", "config") from None
    except ValueError:
        raise TokenError("", f"certificate file {path}: cannot open the {kind}: {hint}, or not a "
                             f"{kind} file", "config") from None
    if key is None:
        raise TokenError("", f"certificate file {path}: the PKCS#12 holds no private key", "config")
    if not isinstance(key, RSAPrivateKey):
        raise TokenError("", f"certificate file {path}: the private key is not RSA; Entra client "
                             "assertions are signed with RS256", "config")


def _read_certificate(path: str) -> bytes:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TokenError("", f"certificate file {path}: no such file", "config") from None
    except IsADirectoryError:
        raise TokenError("", f"certificate file {path}: is a directory", "config") from None
    except PermissionError:
        raise TokenError("", f"certificate file {path}: permission denied", "config") from None
    except OSError as exc:
        raise TokenError("", f"certificate file {path}: cannot read: {exc.strerror or exc}",
                         "config") from None
    if not data.strip():
        raise TokenError("", f"certificate file {path}: empty", "config")
    if b"-----BEGIN" in data:
        if b"PRIVATE KEY-----" not in data:
            raise TokenError("", f"certificate file {path}: PEM has no private key (a Key Vault "
                                 "objectType: cert mount holds only the public certificate; "
                                 "use objectType: secret)", "config")
        return data
    stripped = data.strip()
    if _looks_base64(stripped):
        try:
            decoded = base64.b64decode(stripped, validate=False)
        except (binascii.Error, ValueError):
            decoded = b""
        if decoded[:1] == b"\x30":  # DER SEQUENCE: a PKCS#12 blob
            return decoded
    return data


def _looks_base64(data: bytes) -> bool:
    if len(data) < 64:
        return False
    allowed = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n")
    return all(b in allowed for b in data)


def _transport_kwargs(settings: IdentitySettings) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if settings.ca_bundle:
        kw["connection_verify"] = settings.ca_bundle
    return kw


def create_credential(settings: IdentitySettings) -> Any:
    """A new sync azure-identity credential for ``settings`` (raises :class:`TokenError` for bad config)."""
    from azure.identity import (
        CertificateCredential,
        ClientSecretCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )

    t = settings.identity_type
    who = settings.describe()
    try:
        if t == "userAssigned":
            kw: dict[str, Any] = {}
            if settings.imds_retry_total is not None:
                kw["retry_total"] = settings.imds_retry_total
            return ManagedIdentityCredential(client_id=settings.client_id or None, **kw)
        authority: dict[str, Any] = {}
        if settings.authority_host:
            authority["authority"] = settings.authority_host
        if not settings.tenant_id or not settings.client_id:
            raise TokenError(who, f"{t} needs AZURE_TENANT_ID and AZURE_CLIENT_ID", "config")
        if t == "aadApplication":
            if not settings.certificate_path:
                raise TokenError(who, "aadApplication needs AZURE_CLIENT_CERTIFICATE_PATH", "config")
            try:
                data = load_certificate_data(settings.certificate_path, settings.certificate_password)
            except TokenError as exc:
                raise TokenError(who, exc.cause, exc.category) from None
            return CertificateCredential(
                settings.tenant_id, settings.client_id, certificate_data=data,
                password=settings.certificate_password or None,
                send_certificate_chain=settings.send_certificate_chain,
                disable_instance_discovery=settings.disable_instance_discovery,
                **authority, **_transport_kwargs(settings))
        if t == "workloadIdentity":
            token_file = settings.federated_token_file or DEFAULT_FEDERATED_TOKEN_FILE
            if not Path(token_file).is_file():
                raise TokenError(who, f"federated token file {token_file}: no such file (is the pod labelled "
                                      'azure.workload.identity/use: "true"?)', "config")
            return WorkloadIdentityCredential(
                tenant_id=settings.tenant_id, client_id=settings.client_id, token_file_path=token_file,
                **authority, **_transport_kwargs(settings))
        if t == CLIENT_SECRET:
            if not settings.client_secret:
                raise TokenError(who, "clientSecret needs AZURE_CLIENT_SECRET", "config")
            return ClientSecretCredential(
                settings.tenant_id, settings.client_id, settings.client_secret,
                disable_instance_discovery=settings.disable_instance_discovery,
                **authority, **_transport_kwargs(settings))
    except TokenError:
        raise
    except Exception as exc:  # ValueError for a bad authority / certificate / password
        category, cause = describe_exception(exc)
        if "password" in cause.lower() or "decrypt" in cause.lower():
            cause = f"cannot load the certificate (wrong or missing password?): {cause}"
        raise TokenError(who, cause, "config" if category == "authentication" else category) from None
    raise TokenError(who, f"unknown identity type {t!r}", "config")  # pragma: no cover - settings validate it


def imds_endpoint() -> str:
    """Where ManagedIdentityCredential sends IMDS requests (NMI intercepts the same address)."""
    import os

    return os.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://169.254.169.254").rstrip("/")


class TokenSource:
    """Fetches a *fresh* token for one identity on every :meth:`fetch`.

    Either from :class:`IdentitySettings` (a new credential each time) or from a
    caller's credential object (``credential.get_token`` as-is: its own cache applies).
    """

    def __init__(
        self,
        settings: IdentitySettings | None = None,
        *,
        credential: Any = None,
        scope: str | None = None,
        description: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if settings is None and credential is None:
            raise ValueError("TokenSource needs settings or a credential")
        if settings is None and not scope:
            raise ValueError("TokenSource with a bare credential needs scope=")
        self.settings = settings
        self._credential = credential
        self.scope = scope or (settings.scope if settings else "")
        self.description = description or (settings.describe() if settings else type(credential).__name__)
        self._clock = clock
        self._serial = 0

    def fetch(self) -> Token:
        """A token now, or :class:`TokenError` naming the identity and the cause."""
        started = time.perf_counter()
        credential = self._credential
        try:
            if credential is None:
                assert self.settings is not None
                credential = create_credential(self.settings)
            if hasattr(credential, "get_token_info"):
                info = credential.get_token_info(self.scope)
                value, expires_on = info.token, float(info.expires_on)
            else:
                at = credential.get_token(self.scope)
                value, expires_on = at.token, float(at.expires_on)
        except TokenError:
            raise
        except Exception as exc:
            category, cause = describe_exception(exc)
            if self.settings is not None and self.settings.identity_type == "userAssigned":
                cause = f"{cause.rstrip('.')} (IMDS/NMI endpoint {imds_endpoint()})"
            raise TokenError(self.description, cause, category) from None
        finally:
            if credential is not None and credential is not self._credential and hasattr(credential, "close"):
                try:
                    credential.close()
                except Exception:  # pragma: no cover - best effort
                    pass
        self._serial += 1
        now = self._clock()
        return Token(value=value, expires_on=expires_on, acquired_at=now, serial=self._serial,
                     fetch_ms=(time.perf_counter() - started) * 1000.0)
