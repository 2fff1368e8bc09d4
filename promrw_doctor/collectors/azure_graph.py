"""Microsoft Graph facts: the sidecar's application registration and the certificates registered on it.

Entra checks a client assertion against the application's ``keyCredentials``; a
certificate that is mounted but not uploaded there is refused with AADSTS700027. Graph
returns ``keyCredential.key`` (the certificate itself) only for a single-object request
whose ``$select`` names ``keyCredentials``, which is why this asks for exactly that.

Fact (target scope): ``azure.application`` (:class:`AppRegistration` or None when the app
id does not exist); ``NotApplicable`` for identity variants without an application.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.errors import NotApplicable
from ..core.facts import FactContext, fact
from ..domain.certs import parse_time, thumbprint_from_b64_der, thumbprint_from_key_identifier
from ..domain.sidecar import SidecarSettings, is_guid
from .azure_http import AzureHttp


@dataclass(frozen=True)
class KeyCredentialInfo:
    key_id: str
    thumbprint: str | None
    start: datetime | None
    end: datetime | None
    display_name: str = ""
    usage: str = ""
    type: str = ""

    def to_evidence(self) -> dict[str, Any]:
        from ..domain.certs import iso

        return {"key_id": self.key_id, "thumbprint": self.thumbprint, "display_name": self.display_name or None,
                "start": iso(self.start) if self.start else None, "end": iso(self.end) if self.end else None}


@dataclass(frozen=True)
class AppRegistration:
    app_id: str
    object_id: str
    display_name: str
    key_credentials: tuple[KeyCredentialInfo, ...]

    def by_thumbprint(self, thumbprint: str) -> KeyCredentialInfo | None:
        return next((k for k in self.key_credentials if k.thumbprint and k.thumbprint == thumbprint.upper()), None)


def key_credential(raw: dict[str, Any]) -> KeyCredentialInfo:
    """One Graph ``keyCredential``; the thumbprint comes from ``key`` (the DER) when present, else from
    ``customKeyIdentifier``."""
    thumb = thumbprint_from_b64_der(raw.get("key")) if raw.get("key") else None
    thumb = thumb or thumbprint_from_key_identifier(raw.get("customKeyIdentifier"))
    return KeyCredentialInfo(key_id=str(raw.get("keyId") or ""), thumbprint=thumb,
                             start=parse_time(raw.get("startDateTime")), end=parse_time(raw.get("endDateTime")),
                             display_name=str(raw.get("displayName") or ""), usage=str(raw.get("usage") or ""),
                             type=str(raw.get("type") or ""))


def app_registration(raw: dict[str, Any]) -> AppRegistration:
    creds = [key_credential(k) for k in raw.get("keyCredentials") or [] if isinstance(k, dict)]
    return AppRegistration(app_id=str(raw.get("appId") or ""), object_id=str(raw.get("id") or ""),
                           display_name=str(raw.get("displayName") or ""),
                           key_credentials=tuple(c for c in creds if (c.type or "AsymmetricX509Cert")
                                                 == "AsymmetricX509Cert" and (c.usage or "Verify") == "Verify"))


@fact("azure.application", scope="target")
def application(ctx: FactContext) -> AppRegistration | None:
    """The sidecar's application registration (``applications(appId=…)``) with its certificates."""
    settings: SidecarSettings = ctx.fact("sidecar.settings")
    if str(ctx.fact("target.variant")) != "aadApplication":
        raise NotApplicable("only an Entra application (IDENTITY_TYPE=aadApplication) has registered certificates")
    app_id = (settings.client_id or "").strip()
    if not is_guid(app_id):
        raise NotApplicable("AZURE_CLIENT_ID is missing or not a GUID (reported by the sidecar env check)")
    client: AzureHttp = ctx.fact("azure.http")
    raw = client.cached(("app", app_id.lower()), lambda: client.graph(
        f"applications(appId='{app_id}')", params={"$select": "id,appId,displayName,keyCredentials"}))
    return None if raw is None else app_registration(raw)
