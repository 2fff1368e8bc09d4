"""Decode an access token's claims without its signature, for diagnosis only.

The doctor never validates tokens (the resource does); it reads ``aud``, ``tid``,
``oid``, ``appid`` and ``exp`` to explain a 401/403: wrong audience, wrong tenant,
which principal needs the role. The signature segment is dropped on the floor so
the decoded result can be shown without leaking a usable credential.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TokenClaims:
    aud: str | None = None
    tid: str | None = None
    oid: str | None = None
    appid: str | None = None  # v1 ``appid``; v2 tokens carry ``azp`` instead (copied here)
    exp: int | None = None
    nbf: int | None = None
    iss: str | None = None
    idtyp: str | None = None
    xms_mirid: str | None = None  # managed identity resource id, when the token is an MI token
    other: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        keys = ("aud", "tid", "oid", "appid", "exp", "nbf", "iss", "idtyp", "xms_mirid")
        d = {k: getattr(self, k) for k in keys}
        return {k: v for k, v in d.items() if v is not None}


_KNOWN = ("aud", "tid", "oid", "appid", "azp", "exp", "nbf", "iss", "idtyp", "xms_mirid")


def decode_claims(token: str) -> TokenClaims | None:
    """Claims of a JWT (``None`` if it is not one). Never raises; never returns the signature."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        return None
    if not isinstance(payload, dict):
        return None
    aud = payload.get("aud")
    if isinstance(aud, list):
        aud = aud[0] if aud else None

    def _s(key: str) -> str | None:
        v = payload.get(key)
        return str(v) if v is not None else None

    def _i(key: str) -> int | None:
        v = payload.get(key)
        return int(v) if isinstance(v, int | float) else None

    return TokenClaims(
        aud=str(aud) if aud is not None else None,
        tid=_s("tid"),
        oid=_s("oid"),
        appid=_s("appid") or _s("azp"),
        exp=_i("exp"),
        nbf=_i("nbf"),
        iss=_s("iss"),
        idtyp=_s("idtyp"),
        xms_mirid=_s("xms_mirid"),
        other={k: v for k, v in payload.items()
               if k not in _KNOWN and isinstance(v, str | int | float | bool)},
    )
