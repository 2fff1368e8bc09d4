"""The lab's token signing authorities: Entra (access tokens) and a cluster OIDC issuer (SA tokens).

:class:`TokenIssuer` mints RS256 access tokens shaped like Entra v1 app tokens and
verifies them for the data-plane emulators, so a wrong audience or tenant is rejected
exactly where Azure would reject it (ingestion/query), not where the token is minted.
:class:`OidcIssuer` plays the AKS OIDC issuer for workload identity: it signs projected
service-account tokens that the Entra emulator exchanges via federated credentials.

Token values are secrets even in the lab: nothing here logs them, and
:class:`TokenInvalid` messages never contain them.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from ..domain.clouds import normalize_audience

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"

REASONS = ("missing", "malformed", "signature", "expired", "audience", "tenant")


class TokenInvalid(Exception):
    """A bearer token the data plane must refuse; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"TokenInvalid({self.reason!r}, {self.message!r})"


def audience_matches(token_aud: str | list[str], accepted: Iterable[str]) -> bool:
    """Compare audiences the way Entra-protected APIs effectively do.

    ``/.default``, trailing slashes and the ``https://monitor.azure.com//.default``
    form all denote the same resource.
    """
    wanted = {normalize_audience(a).lower() for a in accepted}
    got = [token_aud] if isinstance(token_aud, str) else list(token_aud)
    return any(normalize_audience(str(a)).lower() in wanted for a in got)


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _kid_for(public_key: Any) -> str:
    """A stable key id derived from the public key (Entra uses a base64url thumbprint-like value)."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode("ascii")


def _jwk(public_key: Any, kid: str) -> dict[str, Any]:
    from jwt.algorithms import RSAAlgorithm

    jwk: dict[str, Any] = dict(RSAAlgorithm.to_jwk(public_key, as_dict=True))
    jwk.pop("key_ops", None)
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256", "x5t": kid})
    return jwk


def _decode_segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims without verification; raises :class:`TokenInvalid` ('malformed')."""
    import jwt

    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenInvalid("malformed", "The token is not a JWS compact serialization (expected 3 segments).")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenInvalid("malformed", f"The token could not be parsed: {type(exc).__name__}.") from None
    if not isinstance(claims, dict):
        raise TokenInvalid("malformed", "The token payload is not a JSON object.")
    return header, claims


class TokenIssuer:
    """The lab's Entra signing authority for one tenant (one RSA key, published as a JWKS)."""

    def __init__(
        self,
        tenant_id: str,
        issuer_base: str = "https://sts.windows.net",
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.issuer_base = issuer_base.rstrip("/")
        self._clock = clock or time.time
        self._key = _new_key()
        self.public_key = self._key.public_key()
        self.kid = _kid_for(self.public_key)

    def issuer(self, tenant_id: str | None = None) -> str:
        """The ``iss`` claim (v1 form, ``https://sts.windows.net/<tenant>/``)."""
        return f"{self.issuer_base}/{tenant_id or self.tenant_id}/"

    def now(self) -> int:
        return int(self._clock())

    def mint(
        self,
        *,
        audience: str,
        client_id: str,
        principal_id: str,
        tenant_id: str | None = None,
        lifetime_s: int = 3600,
        not_before: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, int]:
        """An RS256 app-only access token and its ``exp`` (epoch seconds).

        ``not_before`` (epoch) also sets ``iat``; ``exp = nbf + lifetime_s``, so an
        already expired token is ``not_before=now-7200, lifetime_s=3600``.
        """
        import jwt

        tid = tenant_id or self.tenant_id
        nbf = int(not_before) if not_before is not None else self.now()
        exp = nbf + int(lifetime_s)
        claims: dict[str, Any] = {
            "aud": normalize_audience(audience),
            "iss": self.issuer(tid),
            "iat": nbf,
            "nbf": nbf,
            "exp": exp,
            "aio": uuid.uuid4().hex,
            "appid": client_id,
            "appidacr": "2",
            "azp": client_id,
            "idp": self.issuer(tid),
            "idtyp": "app",
            "oid": principal_id,
            "rh": "0.lab.",
            "sub": principal_id,
            "tid": tid,
            "uti": uuid.uuid4().hex[:22],
            "ver": "1.0",
        }
        if extra:
            claims.update(extra)
        token = jwt.encode(claims, self._key, algorithm="RS256",
                           headers={"kid": self.kid, "x5t": self.kid, "typ": "JWT"})
        return token, exp

    def jwks(self) -> dict[str, Any]:
        """The JWKS Entra publishes at ``/<tenant>/discovery/v2.0/keys``."""
        return {"keys": [_jwk(self.public_key, self.kid)]}

    def verify(
        self,
        token: str | None,
        *,
        audiences: Iterable[str],
        tenant_id: str | None = None,
    ) -> dict[str, Any]:
        """Claims of a valid token, else :class:`TokenInvalid` with the first failing reason.

        Checks run in the order a resource server reports them: parse, signature,
        lifetime, audience, tenant. Accepts a bare token or ``Bearer <token>``.
        """
        import jwt

        if token is None or not token.strip():
            raise TokenInvalid("missing", "No bearer token was provided.")
        raw = token.strip()
        if raw[:7].lower() == "bearer ":
            raw = raw[7:].strip()
        if not raw:
            raise TokenInvalid("missing", "No bearer token was provided.")
        header, _ = _decode_segments(raw)
        if header.get("alg") != "RS256":
            raise TokenInvalid("signature", f"Unsupported token signing algorithm {header.get('alg')!r}.")
        if header.get("kid") not in (None, self.kid):
            raise TokenInvalid("signature", "The token signing key (kid) is not a key of this issuer.")
        try:
            claims: dict[str, Any] = jwt.decode(
                raw, self.public_key, algorithms=["RS256"],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "verify_aud": False, "verify_iss": False})
        except jwt.InvalidSignatureError:
            raise TokenInvalid("signature", "The token signature is invalid.") from None
        except jwt.PyJWTError as exc:
            raise TokenInvalid("malformed",
                               f"The token could not be validated: {type(exc).__name__}.") from None
        now = self.now()
        exp = claims.get("exp")
        nbf = claims.get("nbf")
        if not isinstance(exp, int | float):
            raise TokenInvalid("malformed", "The token has no exp claim.")
        if now >= exp:
            raise TokenInvalid("expired", f"The token is expired (exp {int(exp)}, now {now}).")
        if isinstance(nbf, int | float) and now < nbf:
            raise TokenInvalid("expired", f"The token is not yet valid (nbf {int(nbf)}, now {now}).")
        accepted = list(audiences)
        aud = claims.get("aud", "")
        if not audience_matches(aud, accepted):
            raise TokenInvalid(
                "audience",
                f"The audience '{aud}' is invalid; expected one of: "
                + ", ".join(normalize_audience(a) for a in accepted) + ".")
        want_tid = (tenant_id or self.tenant_id).lower()
        tid = str(claims.get("tid", ""))
        if tid.lower() != want_tid:
            raise TokenInvalid(
                "tenant", f"The token tenant '{tid}' does not match the resource tenant '{want_tid}'.")
        return claims


class OidcIssuer:
    """A Kubernetes service-account token issuer (the AKS OIDC issuer), for workload identity.

    Give ``{issuer.url: issuer}`` (or ``issuer.jwks()``) to the Entra emulator's
    ``workload_issuers`` and write :meth:`service_account_token` to the projected token file.
    """

    def __init__(self, url: str = "https://oidc.lab.invalid/cluster/", *,
                 clock: Callable[[], float] | None = None) -> None:
        self.url = url
        self._clock = clock or time.time
        self._key = _new_key()
        self.public_key = self._key.public_key()
        self.kid = _kid_for(self.public_key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [_jwk(self.public_key, self.kid)]}

    def service_account_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        lifetime_s: int = 3600,
        issued_at: int | None = None,
        subject: str | None = None,
    ) -> str:
        """A projected SA token (``sub = system:serviceaccount:<ns>:<sa>``) as the kubelet writes it."""
        import jwt

        iat = int(issued_at) if issued_at is not None else int(self._clock())
        claims = {
            "aud": [audience],
            "exp": iat + int(lifetime_s),
            "iat": iat,
            "nbf": iat,
            "iss": self.url,
            "sub": subject or f"system:serviceaccount:{namespace}:{service_account}",
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
            },
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
