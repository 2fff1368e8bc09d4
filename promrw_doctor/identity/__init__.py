"""Entra token sources per ``IDENTITY_TYPE`` (azure-identity), with caching and refresh at half life.

``IdentitySettings`` says who; ``TokenSource`` fetches a fresh token; ``TokenManager``
caches it, refreshes it before expiry and backs off on failure. Importing this
package does not import azure-identity (that happens on the first fetch).
"""

from .claims import TokenClaims, decode_claims
from .credentials import Token, TokenSource, create_credential, load_certificate_data
from .errors import TokenError, describe_exception
from .manager import TokenManager, TokenStats
from .settings import CLIENT_SECRET, IDENTITY_TYPES, IdentitySettings, needs_instance_discovery_disabled

__all__ = [
    "CLIENT_SECRET",
    "IDENTITY_TYPES",
    "IdentitySettings",
    "Token",
    "TokenClaims",
    "TokenError",
    "TokenManager",
    "TokenSource",
    "TokenStats",
    "create_credential",
    "decode_claims",
    "describe_exception",
    "load_certificate_data",
    "needs_instance_discovery_disabled",
]
