"""A minimal PromQL client for the workspace's query endpoint: instant queries, Entra token, strict parsing.

Why not a Prometheus client library: the probe asks one question (is *this* nonce the
canary's value at *this* timestamp?) and must tell four failures apart, each with its own
consequence: the endpoint is unreachable (which layer), the query was refused (401/403:
the doctor lacks Monitoring Data Reader or used the wrong audience), the answer is not
the Prometheus HTTP API at all (a wrong ``--query-endpoint``), or a transient 5xx/429.

Azure's query endpoint accepts only queries with exactly one ``__name__`` matcher (and
``/series`` requires one); :func:`series_selector` builds the canary's selector that way,
and :func:`name_matchers` lets tests hold every query the probe sends to that rule.
The token is requested for the cloud profile's ``query_audience`` and never leaves this
module (errors carry status, Azure's error code and a redacted excerpt only).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.redact import redact
from ..domain.clouds import scope

DEFAULT_TIMEOUT = (5.0, 15.0)  # (connect, read) seconds per query
_METRIC_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class QueryError(Exception):
    """Base of everything the query client raises. ``kind`` says which failure it is."""

    kind = "error"

    def __init__(self, endpoint: str, detail: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(f"{endpoint}: {detail}")
        self.endpoint = endpoint
        self.detail = redact(detail)
        self.status = status
        self.code = code


class QueryUnreachable(QueryError):
    """No HTTP answer: ``layer`` is dns | tls | connect | timeout."""

    kind = "unreachable"

    def __init__(self, endpoint: str, detail: str, layer: str) -> None:
        super().__init__(endpoint, detail)
        self.layer = layer


class QueryRefused(QueryError):
    """401/403: the doctor's identity may not query this workspace (or its token has the wrong audience)."""

    kind = "refused"


class NotPrometheus(QueryError):
    """The endpoint answered, but not with the Prometheus HTTP API (wrong URL, a portal page, a proxy)."""

    kind = "not-prometheus"


class QueryTransient(QueryError):
    """429/5xx or a Prometheus-shaped error worth asking again about."""

    kind = "transient"


class QueryRejected(QueryError):
    """A Prometheus-shaped 4xx error for the query itself (bad_data: the query broke a rule)."""

    kind = "rejected"


def series_selector(metric: str, labels: Mapping[str, str]) -> str:
    """``metric{k="v",...}``: one ``__name__`` matcher (the metric name), equality matchers only."""
    if not _METRIC_RE.match(metric):
        raise ValueError(f"invalid metric name {metric!r}")
    parts = []
    for k, v in labels.items():
        if k == "__name__" or not _LABEL_RE.match(k):
            raise ValueError(f"invalid label name {k!r}")
        escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{k}="{escaped}"')
    return f"{metric}{{{','.join(parts)}}}"


def name_matchers(promql: str) -> int:
    """How many metric-name matchers a *selector-only* query has (bare name + explicit ``__name__``)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)  # ignore label values
    bare = 1 if re.match(r"^\s*[a-zA-Z_:][a-zA-Z0-9_:]*\s*(\{|$)", text) else 0
    return bare + len(re.findall(r"\b__name__\s*(=~|!~|!=|=)", text))


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: str  # as the API returns it (a string), compare with Canary.matches
    at: float


def parse_vector(endpoint: str, status: int, body: bytes, content_type: str = "") -> list[Sample]:
    """Samples of an instant-query answer; :class:`NotPrometheus` unless it is the Prometheus API's JSON."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        doc = json.loads(body)
    except ValueError:
        what = "HTML" if text.lstrip().lower().startswith(("<!doctype", "<html")) else (content_type or "non-JSON")
        raise NotPrometheus(endpoint, f"HTTP {status}: the answer is {what}, not the Prometheus HTTP API "
                                      f"({_excerpt(text)})", status=status) from None
    if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
        raise NotPrometheus(endpoint, f"HTTP {status}: JSON without the Prometheus API's \"status\" field "
                                      f"({_excerpt(text)})", status=status)
    if doc["status"] == "error":
        etype = str(doc.get("errorType") or "")
        msg = f"{etype}: {doc.get('error')}"
        if status in (429,) or status >= 500 or etype in ("timeout", "unavailable", "internal"):
            raise QueryTransient(endpoint, f"HTTP {status}: {msg}", status=status, code=etype)
        raise QueryRejected(endpoint, f"HTTP {status}: {msg}", status=status, code=etype)
    data = doc.get("data")
    rtype = data.get("resultType") if isinstance(data, dict) else None
    if not isinstance(data, dict) or rtype not in ("vector", "scalar", "matrix", "string") \
            or (rtype == "vector" and not isinstance(data.get("result"), list)):
        raise NotPrometheus(endpoint, f"HTTP {status}: \"data\" is not a Prometheus query result "
                                      f"({_excerpt(text)})", status=status)
    if rtype != "vector":
        return []
    out: list[Sample] = []
    for row in data.get("result") or []:
        try:
            at, value = row["value"]
            out.append(Sample({str(k): str(v) for k, v in (row.get("metric") or {}).items()}, str(value),
                              float(at)))
        except (KeyError, TypeError, ValueError):
            raise NotPrometheus(endpoint, f"HTTP {status}: a result row is not a Prometheus sample "
                                          f"({_excerpt(json.dumps(row))})", status=status) from None
    return out


def _excerpt(text: str, limit: int = 160) -> str:
    one = redact(" ".join(text.split()))
    return one if len(one) <= limit else one[: limit - 3] + "..."


def _azure_code(body: bytes) -> tuple[str | None, str]:
    text = body[:2000].decode("utf-8", "replace")
    try:
        doc = json.loads(body)
    except ValueError:
        return None, _excerpt(text)
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        e = doc["error"]
        return (str(e.get("code")) if e.get("code") else None), _excerpt(str(e.get("message") or ""))
    return None, _excerpt(text)


def _layer(exc: BaseException) -> str:
    import requests

    text = str(exc).lower()
    if isinstance(exc, requests.exceptions.SSLError) or "certificate" in text or "ssl" in text:
        return "tls"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timeout"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text \
            or "name resolution" in text:
        return "dns"
    return "connect"


class QueryClient:
    """Instant queries against one endpoint with the doctor's credential (``get_token(scope)``).

    ``credential`` may be None for an endpoint that needs no token (a plain Prometheus, tests).
    The token is fetched once and reused until a 401, then refreshed once.
    """

    def __init__(self, endpoint: str, *, credential: Any, audience: str,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT, verify: str | bool | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.credential = credential
        self.scope = scope(audience)
        self.timeout = timeout
        self.verify = verify
        self._token: str | None = None
        self._session: Any = None
        self.token_ms: float | None = None
        self.queries = 0

    def _auth(self, refresh: bool = False) -> dict[str, str]:
        if self.credential is None:
            return {}
        if self._token is None or refresh:
            started = time.perf_counter()
            try:
                self._token = self.credential.get_token(self.scope).token
            except Exception as exc:
                from ..identity.errors import describe_exception

                _, cause = describe_exception(exc)
                raise QueryRefused(self.endpoint, f"the doctor's credential could not get a token for "
                                                  f"{self.scope}: {cause}", code="no-token") from None
            finally:
                self.token_ms = (time.perf_counter() - started) * 1000.0
        return {"Authorization": f"Bearer {self._token}"}

    def instant(self, promql: str, at_s: float | None = None) -> list[Sample]:
        """``GET /api/v1/query`` (``time`` = ``at_s`` when given); raises a :class:`QueryError` subclass."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        params = {"query": promql}
        if at_s is not None:
            params["time"] = f"{at_s:.3f}"
        url = f"{self.endpoint}/api/v1/query"
        for refresh in (False, True):
            headers = {"Accept": "application/json", **self._auth(refresh)}
            kw: dict[str, Any] = {"params": params, "headers": headers, "timeout": self.timeout,
                                  "allow_redirects": False}
            if self.verify is not None:
                kw["verify"] = self.verify
            self.queries += 1
            try:
                resp = self._session.get(url, **kw)
            except requests.exceptions.RequestException as exc:
                raise QueryUnreachable(self.endpoint, _short(exc), _layer(exc)) from None
            if resp.status_code == 401 and not refresh and self.credential is not None:
                continue
            break
        status = resp.status_code
        body = resp.content
        if status in (401, 403):
            code, msg = _azure_code(body)
            raise QueryRefused(self.endpoint, f"HTTP {status}" + (f" {code}" if code else "") + f": {msg}",
                               status=status, code=code)
        if 300 <= status < 400:
            raise NotPrometheus(self.endpoint, f"HTTP {status} redirect to {resp.headers.get('Location', '?')}: "
                                               "not the Prometheus HTTP API", status=status)
        if status == 429 or status >= 500:
            try:
                return parse_vector(self.endpoint, status, body, resp.headers.get("Content-Type", ""))
            except (NotPrometheus, QueryRejected):
                code, msg = _azure_code(body)
                raise QueryTransient(self.endpoint, f"HTTP {status}" + (f" {code}" if code else "") + f": {msg}",
                                     status=status, code=code) from None
        return parse_vector(self.endpoint, status, body, resp.headers.get("Content-Type", ""))

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    m = re.search(r"\[Errno [^\]]+\][^)'\"]*", text)
    if m:
        return m.group(0).strip()
    return text[:200] or type(exc).__name__
