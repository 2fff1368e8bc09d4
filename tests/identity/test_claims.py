"""Claims are decoded without the signature, and bad input never raises."""

from __future__ import annotations

import base64
import json

from promrw_doctor.identity import decode_claims
from promrw_doctor.lab.tokens import TokenIssuer


def test_decodes_entra_claims() -> None:
    issuer = TokenIssuer("tenant-1")
    token, exp = issuer.mint(audience="https://monitor.azure.com/.default", client_id="app-1", principal_id="oid-1")
    c = decode_claims(token)
    assert c is not None
    assert (c.aud, c.tid, c.oid, c.appid, c.exp) == ("https://monitor.azure.com", "tenant-1", "oid-1", "app-1", exp)
    d = c.to_dict()
    assert token.split(".")[2] not in json.dumps(d)
    assert set(d) >= {"aud", "tid", "oid", "appid", "exp"}


def test_v2_azp_and_list_audience() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"aud": ["a", "b"], "azp": "app-2"}).encode()).rstrip(b"=")
    c = decode_claims(f"eyJhbGciOiJub25lIn0.{payload.decode()}.sig")
    assert c is not None and c.aud == "a" and c.appid == "app-2"


def test_not_a_jwt() -> None:
    assert decode_claims("opaque-token") is None
    assert decode_claims("a.!!!.c") is None
    assert decode_claims("a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c") is None
