"""Send one write request (a canary by default) through the forwarder's stack, without a server.

The end-to-end probe and ``promrw-doctor send`` use this: the same token source,
the same upstream client, headers and 401-refresh-retry as the forwarder, so "the
probe worked" means "the sidecar replacement would have worked".

The result separates the three ways a write fails, because each has a different fix:

* ``error.kind == "token"``: no token (``token_category``: config / unavailable /
  authentication / network / tls);
* ``"network"``: no HTTP answer (``network``: dns / tls / connect / timeout / reset);
* ``"http"``: an answer that is not 2xx (``status``, redacted ``body_excerpt``).

``claims`` carries the token's decoded claims (aud, tid, oid, appid, exp; never the
signature) so a 401/403 can be explained: wrong audience, wrong tenant, which
principal needs Monitoring Metrics Publisher.

Example::

    from promrw_doctor.forwarder.config import config_from_env
    from promrw_doctor.forwarder.send import send_canary
    result = send_canary(config_from_env(pod_env), cluster="aks-prod")
    if result.ok: query for result.canary.promql() and compare with result.canary.nonce
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..core.redact import redact
from ..identity.claims import TokenClaims
from ..identity.credentials import Token, TokenSource
from ..identity.errors import TokenError
from ..identity.manager import TokenManager
from ..remote_write.builders import SeriesSpec, build_write_request
from ..remote_write.canary import Canary, build_canary
from ..remote_write.codec import HEADERS, encode
from .config import ForwarderConfig

ErrorKind = Literal["token", "network", "http", "config"]


@dataclass(frozen=True)
class SendError:
    kind: ErrorKind
    detail: str  # one line, redacted
    network: str | None = None  # dns | tls | connect | timeout | reset (kind == "network")
    status: int | None = None  # kind == "http"
    body_excerpt: str | None = None  # redacted, kind == "http"
    # kind == "token": config | unavailable | authentication | network | tls
    token_category: str | None = None


@dataclass(frozen=True)
class SendResult:
    ok: bool  # upstream answered 2xx
    url: str
    identity: str
    status: int | None = None
    latency_ms: float | None = None  # the HTTP request (final attempt), token fetch excluded
    token_ms: float | None = None  # token acquisition (0 when served from cache)
    error: SendError | None = None
    claims: TokenClaims | None = None
    canary: Canary | None = None  # set when a canary was sent
    samples: int = 0
    request_id: str | None = None  # x-ms-request-id of the upstream answer, for Azure support
    token_refreshed_after_401: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.canary is not None:
            d["canary"] = {"cluster": self.canary.cluster, "nonce": self.canary.nonce,
                           "timestamp_ms": self.canary.timestamp_ms, "promql": self.canary.promql()}
        if self.claims is not None:
            d["claims"] = self.claims.to_dict()
        return d

    def summary(self) -> str:
        """One line for humans."""
        if self.ok:
            extra = f" canary nonce {self.canary.nonce}" if self.canary else ""
            return (f"accepted: HTTP {self.status} in {self.latency_ms:.0f} ms "
                    f"(token {self.token_ms or 0:.0f} ms),{extra} {self.samples} sample(s)")
        e = self.error
        assert e is not None
        if e.kind == "http":
            return f"rejected: HTTP {e.status}: {e.body_excerpt or e.detail}"
        if e.kind == "network":
            return f"network error ({e.network}): {e.detail}"
        return f"{e.kind} error: {e.detail}"


async def send_canary_async(
    config: ForwarderConfig,
    *,
    credential: Any = None,
    tokens: TokenManager | None = None,
    cluster: str | None = None,
    samples: Sequence[SeriesSpec] | None = None,
    timeout: float = 10.0,
) -> SendResult:
    """Async form of :func:`send_canary` (use inside a running event loop)."""
    from .server import excerpt
    from .upstream import Upstream, UpstreamError

    ident = config.identity
    identity = (ident.describe() if credential is None
                else f"{type(credential).__name__} (caller's credential)")
    url = redact(config.ingestion_url)
    canary: Canary | None = None
    try:
        if samples is None:
            canary = build_canary(cluster or config.cluster or "")
            body = canary.body
            n = 1
        else:
            body = encode(build_write_request(samples))
            n = sum(len(s.samples) for s in samples)
    except ValueError as exc:
        return SendResult(ok=False, error=SendError("config", redact(str(exc))), url=url, identity=identity)

    if tokens is None:
        source = TokenSource(ident, credential=credential, scope=ident.scope, description=identity) \
            if credential is not None else TokenSource(ident)
        tokens = TokenManager(source, force_min_interval=0.0)
    started = time.perf_counter()
    try:
        cached = tokens.current()
        token: Token = cached if cached is not None else await asyncio.to_thread(tokens.get)
    except TokenError as exc:
        return SendResult(ok=False, canary=canary, samples=n,
                          token_ms=(time.perf_counter() - started) * 1000.0,
                          error=SendError("token", f"{exc.identity}: {exc.cause}",
                                          token_category=exc.category),
                          url=url, identity=identity)
    token_ms = 0.0 if cached is not None else (time.perf_counter() - started) * 1000.0
    headers = dict(HEADERS)
    upstream = Upstream(config.ingestion_url, max_connections=2, timeout=timeout,
                        connect_timeout=min(timeout, 10.0), ca_bundle=config.ca_bundle)
    refreshed = False
    try:
        await upstream.start()
        while True:
            headers["Authorization"] = token.authorization()
            try:
                r = await upstream.post(body, headers)
            except UpstreamError as exc:
                return SendResult(ok=False, canary=canary, samples=n, token_ms=token_ms,
                                  latency_ms=exc.seconds * 1000.0, claims=token.claims(),
                                  error=SendError("network", redact(exc.detail), network=exc.kind),
                                  token_refreshed_after_401=refreshed, url=url, identity=identity)
            if r.status == 401 and not refreshed and credential is None:
                fresh = await tokens.force_refresh(token)
                if fresh is not None:
                    token, refreshed = fresh, True
                    continue
            break
    finally:
        await upstream.close()
    request_id = r.headers.get("x-ms-request-id")
    ok = 200 <= r.status < 300
    err = None if ok else SendError("http", f"upstream answered {r.status} {r.reason}".strip(),
                                    status=r.status, body_excerpt=excerpt(r.body_excerpt))
    return SendResult(ok=ok, status=r.status, latency_ms=r.seconds * 1000.0, token_ms=token_ms, error=err,
                      claims=token.claims(), canary=canary, samples=n, request_id=request_id,
                      token_refreshed_after_401=refreshed, url=url, identity=identity)


def send_canary(
    config: ForwarderConfig,
    *,
    credential: Any = None,
    tokens: TokenManager | None = None,
    cluster: str | None = None,
    samples: Sequence[SeriesSpec] | None = None,
    timeout: float = 10.0,
) -> SendResult:
    """Build a canary (or ``samples``) and POST it to ``config.ingestion_url`` with an Entra token.

    ``credential``: an azure-identity-style credential to use instead of
    ``config.identity`` (its own cache applies; no forced refresh after 401).
    ``tokens``: a shared :class:`TokenManager` (e.g. the forwarder's). ``cluster``:
    the canary's ``cluster`` label (default ``config.cluster``). ``timeout``: seconds
    for the HTTP request. Never raises for delivery problems: they are in the result.
    Safe to call from inside a running event loop (runs in a helper thread then).
    """
    coro_args = {"credential": credential, "tokens": tokens, "cluster": cluster, "samples": samples,
                 "timeout": timeout}
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(send_canary_async(config, **coro_args))
    box: dict[str, Any] = {}

    def _run() -> None:
        try:
            box["result"] = asyncio.run(send_canary_async(config, **coro_args))
        except BaseException as exc:  # pragma: no cover - re-raised below
            box["error"] = exc

    t = threading.Thread(target=_run, name="promrw-send", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    result: SendResult = box["result"]
    return result
