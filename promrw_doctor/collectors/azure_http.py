"""One small read-only client for ARM, Microsoft Graph and Key Vault, with uniform error mapping.

Why not the management SDKs: the doctor needs a handful of GETs across three services,
the exact HTTP status of each (403 must become ``unknown`` naming the missing
permission, 404 is a finding, anything else an error), one session and one token per
audience for the whole run, and the same behaviour in every cloud, including
air-gapped ones reached through a custom profile. ``requests`` does exactly that;
``REQUESTS_CA_BUNDLE`` is honoured for every call (that is how the lab's CA is trusted).

Error mapping (every call):

=====================================  ===========================================
answer                                 raised
=====================================  ===========================================
401, 403                               ``AccessDenied(needs=…)`` (``needs`` names the
                                       role/permission, e.g. ``Reader
                                       (Microsoft.Insights/dataCollectionRules/read)
                                       on /subscriptions/…``)
404                                    ``None`` returned (callers decide)
DNS, connect, TLS, timeout             ``Unreachable``
2xx that is not the JSON expected      ``UnexpectedArmAnswer`` (an ``InputError``:
                                       exit 2) for ARM, ``AzureApiError`` otherwise
5xx/429 (after one retry), other 4xx   ``AzureApiError`` (the check reports ``error``)
=====================================  ===========================================

Tokens are never logged, stored in facts, or put into exceptions.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import AccessDenied, InputError, Unreachable
from ..core.redact import redact
from ..domain.clouds import CloudProfile, normalize_audience, scope

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
MAX_PAGES = 50
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_WAIT_S = 3.0

ARM = "ARM"
GRAPH = "Microsoft Graph"
KEYVAULT = "Key Vault"

# API versions the doctor asks for (supported by every public cloud and by the lab).
API_SUBSCRIPTIONS = "2022-12-01"
API_DCR = "2022-06-01"
API_MONITOR_ACCOUNTS = "2023-04-03"
API_UAMI = "2023-01-31"
API_AKS = "2024-05-01"
API_ROLE_ASSIGNMENTS = "2022-04-01"
API_KEYVAULT = "7.4"

CREDENTIAL_NEEDS = ("an Azure credential the doctor can use (az login, AZURE_CLIENT_ID/AZURE_TENANT_ID/"
                    "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH in the environment, or a managed "
                    "identity)")


class AzureApiError(Exception):
    """An answer the doctor cannot use: a server error, throttling, an unexpected 4xx, unreadable JSON."""

    def __init__(self, service: str, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.status = status
        self.code = code


class UnexpectedArmAnswer(InputError):
    """ARM answered with something that is not the JSON the doctor expects (exit 2, one line)."""


def arm_needs(action: str, scope_id: str, role: str = "Reader") -> str:
    """``Reader (Microsoft.Insights/dataCollectionRules/read) on /subscriptions/…``."""
    return f"{role} ({action}) on {scope_id or '/'}"


GRAPH_NEEDS = ("Microsoft Graph Application.Read.All (read applications and service principals; "
               "Directory Readers also works)")


def keyvault_needs(vault: str) -> str:
    return (f"Key Vault certificates/get on vault {vault} (access policy 'Get' on certificates, or the "
            "'Key Vault Certificate User'/'Key Vault Reader' role for an RBAC vault)")


def graph_audience(profile: CloudProfile) -> str:
    return str(profile.extra.get("graph_audience") or profile.graph_endpoint)


def keyvault_audience(profile: CloudProfile) -> str:
    """``https://vault.azure.net`` for ``.vault.azure.net`` (the Key Vault resource of that cloud)."""
    explicit = profile.extra.get("keyvault_audience")
    return str(explicit) if explicit else "https://" + profile.keyvault_suffix.lstrip(".")


def _first_line(text: str, limit: int = 300) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return redact(" ".join(line.split()))[:limit]
    return ""


def _error_of(body: Any) -> tuple[str, str]:
    """(code, message) from ARM/Graph/Key Vault error envelopes."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("code") or ""), _first_line(str(err.get("message") or ""))
        if isinstance(err, str):
            return err, _first_line(str(body.get("error_description") or body.get("message") or ""))
    return "", ""


def default_verify() -> str | bool:
    """``REQUESTS_CA_BUNDLE`` (or ``CURL_CA_BUNDLE``) when set, else the system trust store."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


class AzureHttp:
    """A run's connection to ARM, Graph and Key Vault: one session, one token per audience, a call log."""

    def __init__(
        self,
        profile: CloudProfile,
        credential: Any,
        *,
        tenant: str | None = None,
        verify: str | bool | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.profile = profile
        self.credential = credential
        self.tenant = tenant
        self.verify = default_verify() if verify is None else verify
        self.timeout = timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.calls: list[tuple[str, str, int]] = []  # (method, url without query, status); 0 = no answer
        self._tokens: dict[str, tuple[str, float]] = {}
        self._token_errors: dict[str, AccessDenied] = {}
        self._lock = threading.Lock()
        self._cache: dict[Any, Any] = {}
        self._cache_errors: dict[Any, BaseException] = {}
        self._key_locks: dict[Any, threading.Lock] = {}

    # ------------------------------------------------------------------ run-wide memo
    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per ``key`` for the run (failures remembered), so N targets cost one call."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            if key in self._cache_errors:
                raise self._cache_errors[key]
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
                if key in self._cache_errors:
                    raise self._cache_errors[key]
            try:
                value = compute()
            except BaseException as exc:
                with self._lock:
                    self._cache_errors[key] = exc
                raise
            with self._lock:
                self._cache[key] = value
            return value

    # ------------------------------------------------------------------ tokens
    def token(self, audience: str) -> str:
        """A bearer token of the doctor's own identity for ``audience`` (cached until 2 minutes before expiry)."""
        key = normalize_audience(audience).lower()
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[1] - 120 > time.time():
                return cached[0]
            if key in self._token_errors:
                raise self._token_errors[key]
        kwargs: dict[str, Any] = {}
        if self.tenant:
            kwargs["tenant_id"] = self.tenant
        try:
            at = self.credential.get_token(scope(audience), **kwargs)
        except Exception as exc:
            denied = AccessDenied(CREDENTIAL_NEEDS,
                                  f"no token for {normalize_audience(audience)}: {_credential_cause(exc)}")
            with self._lock:
                self._token_errors[key] = denied
            raise denied from None
        with self._lock:
            self._tokens[key] = (str(at.token), float(at.expires_on))
        return str(at.token)

    def doctor_claims(self, audience: str) -> Any:
        """The doctor's own token claims for ``audience`` (who it is: ``oid``, ``appid``), never the token."""
        from ..identity.claims import decode_claims

        return decode_claims(self.token(audience))

    # ------------------------------------------------------------------ raw
    def get_json(self, service: str, url: str, *, audience: str, needs: str,
                 params: Iterable[tuple[str, str]] | dict[str, str] | None = None) -> dict[str, Any] | None:
        """GET ``url`` as the doctor; the parsed JSON object, or None for 404."""
        import requests

        token = self.token(audience)
        plain = url.split("?", 1)[0]
        attempts = 0
        while True:
            attempts += 1
            try:
                resp = self.session.get(url, params=params, timeout=self.timeout, verify=self.verify,
                                        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
            except requests.exceptions.SSLError as exc:
                self._log("GET", plain, 0)
                raise Unreachable(f"{service} at {_origin(url)}", f"TLS: {_short(exc)} (set REQUESTS_CA_BUNDLE to "
                                  "the CA that signed it)") from None
            except requests.exceptions.Timeout:
                self._log("GET", plain, 0)
                raise Unreachable(f"{service} at {_origin(url)}", "timed out") from None
            except requests.exceptions.RequestException as exc:
                self._log("GET", plain, 0)
                raise Unreachable(f"{service} at {_origin(url)}", _short(exc)) from None
            self._log("GET", plain, resp.status_code)
            if resp.status_code in RETRY_STATUSES and attempts == 1:
                time.sleep(_retry_after(resp.headers.get("Retry-After")))
                continue
            break
        status = resp.status_code
        if 200 <= status < 300:
            return self._parse(service, plain, resp)
        body: Any
        try:
            body = resp.json()
        except ValueError:
            body = None
        code, message = _error_of(body)
        if not message:
            message = _first_line(resp.text) or resp.reason or ""
        if status == 404:
            return None
        if status in (401, 403):
            detail = f"{status} {code}: {message}".strip().rstrip(":")
            if status == 401:
                raise AccessDenied(f"a token {service} accepts ({needs})", detail)
            raise AccessDenied(needs, detail)
        raise AzureApiError(service, f"GET {plain} answered {status} {code}: {message}".rstrip(": "), status, code)

    def _parse(self, service: str, url: str, resp: Any) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:
            snippet = _first_line(resp.text, 80)
            msg = f"GET {url} answered {resp.status_code} with something that is not JSON ({snippet!r})"
            if service == ARM:
                raise UnexpectedArmAnswer(f"unexpected answer from ARM: {msg}") from None
            raise AzureApiError(service, msg, resp.status_code) from None
        if not isinstance(data, dict):
            msg = f"GET {url}: expected a JSON object, got {type(data).__name__}"
            if service == ARM:
                raise UnexpectedArmAnswer(f"unexpected answer from ARM: {msg}")
            raise AzureApiError(service, msg, resp.status_code)
        return data

    def _log(self, method: str, url: str, status: int) -> None:
        with self._lock:
            self.calls.append((method, url, status))

    # ------------------------------------------------------------------ ARM
    def arm_url(self, path: str) -> str:
        return self.profile.arm_endpoint.rstrip("/") + "/" + path.lstrip("/")

    def arm(self, path: str, api_version: str, *, needs: str,
            params: dict[str, str] | None = None) -> dict[str, Any] | None:
        """GET one ARM resource (None when it does not exist)."""
        query = {"api-version": api_version, **(params or {})}
        return self.get_json(ARM, self.arm_url(path), audience=self.profile.arm_audience, needs=needs,
                             params=query)

    def arm_list(self, path: str, api_version: str, *, needs: str,
                 params: dict[str, str] | None = None) -> list[dict[str, Any]] | None:
        """GET an ARM collection, following ``nextLink`` on the same host; None when the scope does not exist."""
        first = self.arm(path, api_version, needs=needs, params=params)
        if first is None:
            return None
        items = _values(first, self.arm_url(path))
        page = first
        origin = _origin(self.profile.arm_endpoint)
        for _ in range(MAX_PAGES):
            nxt = page.get("nextLink")
            if not nxt or not isinstance(nxt, str) or _origin(nxt) != origin:
                break
            more = self.get_json(ARM, nxt, audience=self.profile.arm_audience, needs=needs)
            if more is None:
                break
            items.extend(_values(more, nxt))
            page = more
        return items

    # ------------------------------------------------------------------ Graph
    def graph(self, path: str, *, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        url = self.profile.graph_endpoint.rstrip("/") + "/v1.0/" + path.lstrip("/")
        return self.get_json(GRAPH, url, audience=graph_audience(self.profile), needs=GRAPH_NEEDS, params=params)

    # ------------------------------------------------------------------ Key Vault
    def keyvault(self, vault: str, path: str) -> dict[str, Any] | None:
        url = self.profile.keyvault_url(vault) + "/" + path.lstrip("/")
        return self.get_json(KEYVAULT, url, audience=keyvault_audience(self.profile), needs=keyvault_needs(vault),
                             params={"api-version": API_KEYVAULT})

    def close(self) -> None:
        self.session.close()


def _values(page: dict[str, Any], url: str) -> list[dict[str, Any]]:
    value = page.get("value")
    if not isinstance(value, list):
        raise UnexpectedArmAnswer(f"unexpected answer from ARM: GET {url.split('?', 1)[0]}: "
                                  "a collection without a 'value' list")
    return [v for v in value if isinstance(v, dict)]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, min(float(value or 1), MAX_RETRY_WAIT_S))
    except ValueError:
        return 1.0


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "Connection refused", "Name or service not known",
                   "Temporary failure in name resolution", "timed out", "No route to host"):
        if marker in text:
            return marker
    return _first_line(text, 200) or type(exc).__name__


def _credential_cause(exc: BaseException) -> str:
    """One redacted line from azure-identity's (multi-line, chain-listing) error."""
    text = " ".join(str(exc).split())
    return redact(text)[:400] or type(exc).__name__
