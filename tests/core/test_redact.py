from __future__ import annotations

import logging

from promrw_doctor.core.redact import REDACTED, RedactingFilter, redact, redact_value

JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL21vbml0b3IuYXp1cmUuY29tIn0.sig_nature-value"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----"


def test_redacts_common_secret_shapes():
    text = (f"token={JWT} Authorization: Bearer abcdefghijklmnop123 client_secret=s3cr3tvalue "
            f'"access_token": "opaque-token-value" AccountKey=Zm9vYmFy; key:\n{PEM}')
    out = redact(text)
    for secret in (JWT, "abcdefghijklmnop123", "s3cr3tvalue", "opaque-token-value", "Zm9vYmFy", "MIIEowIBAAKCAQEA"):
        assert secret not in out
    assert REDACTED in out


def test_keeps_ordinary_evidence():
    text = "AZURE_CLIENT_ID=7eb6a1b2-0000-0000-0000-00000000a6a9 status=403 dcr-0123456789abcdef0123456789abcdef"
    assert redact(text) == text


def test_redact_value_nested_and_secret_keys():
    value = {"a": [JWT, {"password": "hunter22"}], "client_id": "x", "token": "tok"}
    out = redact_value(value)
    assert out["a"][0] == REDACTED
    assert out["a"][1]["password"] == REDACTED
    assert out["token"] == REDACTED
    assert out["client_id"] == "x"


def test_logging_filter(caplog):
    logger = logging.getLogger("promrw-test-redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="promrw-test-redact"):
        logger.info("got %s", JWT)
    assert JWT not in caplog.text and REDACTED in caplog.text
