"""Every IDENTITY_TYPE against the lab's real emulators, through the real azure-identity credentials.

IMDS/NMI over plain HTTP via AZURE_POD_IDENTITY_AUTHORITY_HOST; Entra over HTTPS with the
lab's self-signed CA (certificate, secret, workload identity).
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from forwarder.harness import TENANT, WI_SUBJECT, Emulators

from promrw_doctor.identity import IdentitySettings, TokenError, TokenSource
from promrw_doctor.lab.emulators import entra, imds


def _settings(emu: Emulators, identity_type: str, **kw: object) -> IdentitySettings:
    base: dict[str, object] = {"identity_type": identity_type, "audience": "https://monitor.azure.com/.default"}
    if identity_type != "userAssigned":
        base.update(tenant_id=TENANT, authority_host=emu.entra.url, disable_instance_discovery=True,
                    ca_bundle=str(emu.certs.ca_bundle))
    base.update(kw)
    return IdentitySettings(**base)  # type: ignore[arg-type]


def _verify(emu: Emulators, value: str, audience: str = "https://monitor.azure.com") -> dict[str, object]:
    return emu.world.issuer.verify(value, audiences=[audience])


# --------------------------------------------------------------------------- userAssigned
def test_user_assigned_managed_identity_via_imds(emu: Emulators) -> None:
    src = TokenSource(_settings(emu, "userAssigned", client_id=emu.world.uami.client_id, imds_retry_total=0))
    t1 = src.fetch()
    claims = _verify(emu, t1.value)
    assert claims["appid"] == emu.world.uami.client_id and claims["oid"] == emu.world.uami.principal_id
    t2 = src.fetch()
    # A fresh fetch really goes to IMDS again (the SDK's own cache must not hide a refresh).
    reqs = [r for r in emu.imds_requests() if r.outcome == "ok"]
    assert len(reqs) == 2 and t2.serial == 2
    assert reqs[0].resource == "https://monitor.azure.com" and reqs[0].client_id == emu.world.uami.client_id


def test_user_assigned_without_client_id_uses_the_only_identity(emu: Emulators) -> None:
    tok = TokenSource(_settings(emu, "userAssigned", imds_retry_total=0)).fetch()
    assert _verify(emu, tok.value)["oid"] == emu.world.uami.principal_id
    assert emu.imds_requests()[-1].client_id is None


def test_pod_identity_via_nmi(emu: Emulators, clean_env: pytest.MonkeyPatch) -> None:
    nmi_app = imds.make_app(emu.world.state, emu.world.issuer, pod=("monitoring", "prometheus-0"))
    nmi = emu.lab.add("nmi", nmi_app)
    clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", nmi.url)
    s = _settings(emu, "userAssigned", client_id=emu.world.uami.client_id, imds_retry_total=0)
    assert _verify(emu, TokenSource(s).fetch().value)["oid"] == emu.world.uami.principal_id
    # Pod without an assigned identity: NMI answers 404 text; we fail fast and name the endpoint.
    emu.world.state.nmi_assigned_pods = set()
    with pytest.raises(TokenError) as exc:
        TokenSource(s).fetch()
    assert exc.value.category == "unavailable"
    assert nmi.url in exc.value.cause and "userAssigned (client id" in str(exc.value)
    assert imds.request_log(nmi_app)[-1].outcome == "not-assigned"


def test_imds_not_listening(emu: Emulators, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")
    with pytest.raises(TokenError) as exc:
        TokenSource(_settings(emu, "userAssigned", client_id="x", imds_retry_total=0)).fetch()
    assert exc.value.category == "unavailable" and "http://127.0.0.1:9" in exc.value.cause


def test_sovereign_audience_reaches_imds_as_resource(emu: Emulators) -> None:
    s = _settings(emu, "userAssigned", audience="https://monitor.azure.us/", imds_retry_total=0)
    assert s.scope == "https://monitor.azure.us/.default"
    tok = TokenSource(s).fetch()
    assert _verify(emu, tok.value, "https://monitor.azure.us")["aud"] == "https://monitor.azure.us"
    assert emu.imds_requests()[-1].resource == "https://monitor.azure.us"


# ------------------------------------------------------------------------- aadApplication
def test_certificate_pem(emu: Emulators, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pem = tmp_path / "cert.pem"
    pem.write_bytes(emu.certs.valid.pem_bundle())
    caplog.set_level(logging.DEBUG)
    tok = TokenSource(_settings(emu, "aadApplication", client_id=emu.world.app.app_id,
                                certificate_path=str(pem))).fetch()
    claims = _verify(emu, tok.value)
    assert claims["appid"] == emu.world.app.app_id and claims["oid"] == emu.world.app.sp_object_id
    grants = [r.grant for r in entra.request_log(emu.entra_app)]
    assert grants == ["discovery", "client_certificate"]
    assert tok.value not in caplog.text


@pytest.mark.parametrize("form", ["pfx", "pfx-base64"])
def test_certificate_pkcs12_with_password(emu: Emulators, tmp_path: Path, form: str) -> None:
    data = emu.certs.valid.pfx(b"s3cret-pass")
    path = tmp_path / "cert.pfx"
    path.write_bytes(base64.b64encode(data) + b"\n" if form == "pfx-base64" else data)
    s = _settings(emu, "aadApplication", client_id=emu.world.app.app_id, certificate_path=str(path),
                  certificate_password="s3cret-pass")
    assert _verify(emu, TokenSource(s).fetch().value)["appid"] == emu.world.app.app_id
    wrong = _settings(emu, "aadApplication", client_id=emu.world.app.app_id, certificate_path=str(path),
                      certificate_password="wrong")
    with pytest.raises(TokenError) as exc:
        TokenSource(wrong).fetch()
    assert exc.value.category == "config" and "password" in exc.value.cause
    assert "s3cret-pass" not in str(exc.value) and "wrong" not in exc.value.identity


def test_certificate_problems_are_named(emu: Emulators, tmp_path: Path) -> None:
    public_only = tmp_path / "public.pem"
    public_only.write_bytes(emu.certs.valid.cert_pem)
    cases = {
        str(tmp_path / "missing.pem"): "no such file",
        str(public_only): "no private key",
    }
    for path, words in cases.items():
        with pytest.raises(TokenError) as exc:
            TokenSource(_settings(emu, "aadApplication", client_id=emu.world.app.app_id,
                                  certificate_path=path)).fetch()
        assert exc.value.category == "config" and words in exc.value.cause
        assert "aadApplication (client id" in str(exc.value)


def test_expired_certificate_is_an_entra_refusal(emu: Emulators, tmp_path: Path) -> None:
    pem = tmp_path / "old.pem"
    pem.write_bytes(emu.certs.expired.pem_bundle())
    with pytest.raises(TokenError) as exc:
        TokenSource(_settings(emu, "aadApplication", client_id=emu.world.app.app_id,
                              certificate_path=str(pem))).fetch()
    assert exc.value.category == "authentication" and exc.value.cause.startswith("AADSTS")
    assert "\n" not in str(exc.value)


def test_untrusted_entra_tls_is_reported_as_tls(emu: Emulators, tmp_path: Path) -> None:
    pem = tmp_path / "cert.pem"
    pem.write_bytes(emu.certs.valid.pem_bundle())
    s = _settings(emu, "aadApplication", client_id=emu.world.app.app_id, certificate_path=str(pem),
                  ca_bundle=None)
    with pytest.raises(TokenError) as exc:
        TokenSource(s).fetch()
    assert exc.value.category == "tls" and "REQUESTS_CA_BUNDLE" in exc.value.cause


def test_requests_ca_bundle_env_is_honoured(emu: Emulators, tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    pem = tmp_path / "cert.pem"
    pem.write_bytes(emu.certs.valid.pem_bundle())
    clean_env.setenv("REQUESTS_CA_BUNDLE", str(emu.certs.ca_bundle))
    s = _settings(emu, "aadApplication", client_id=emu.world.app.app_id, certificate_path=str(pem),
                  ca_bundle=None)
    assert _verify(emu, TokenSource(s).fetch().value)["appid"] == emu.world.app.app_id


# ----------------------------------------------------------------------- workloadIdentity
def test_workload_identity_federated_token(emu: Emulators, tmp_path: Path) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(emu.world.oidc.service_account_token("monitoring", "prometheus"))
    assert WI_SUBJECT.endswith("monitoring:prometheus")
    s = _settings(emu, "workloadIdentity", client_id=emu.world.wi_app.app_id,
                  federated_token_file=str(token_file))
    tok = TokenSource(s).fetch()
    assert _verify(emu, tok.value)["appid"] == emu.world.wi_app.app_id
    assert entra.request_log(emu.entra_app)[-1].grant == "federated"
    # Wrong service account: Entra refuses the assertion (no matching federated credential).
    token_file.write_text(emu.world.oidc.service_account_token("monitoring", "other-sa"))
    with pytest.raises(TokenError) as exc:
        TokenSource(s).fetch()
    assert exc.value.category == "authentication" and exc.value.cause.startswith("AADSTS")


def test_workload_identity_missing_token_file(emu: Emulators, tmp_path: Path) -> None:
    s = _settings(emu, "workloadIdentity", client_id=emu.world.wi_app.app_id,
                  federated_token_file=str(tmp_path / "nope"))
    with pytest.raises(TokenError) as exc:
        TokenSource(s).fetch()
    assert exc.value.category == "config" and "azure.workload.identity/use" in exc.value.cause


# --------------------------------------------------------------------------- clientSecret
def test_client_secret_dev_mode(emu: Emulators) -> None:
    s = _settings(emu, "clientSecret", client_id=emu.world.app.app_id, client_secret=emu.world.secret)
    assert emu.world.secret not in repr(s)
    assert _verify(emu, TokenSource(s).fetch().value)["appid"] == emu.world.app.app_id
    bad = _settings(emu, "clientSecret", client_id=emu.world.app.app_id, client_secret="not-the-secret")
    with pytest.raises(TokenError) as exc:
        TokenSource(bad).fetch()
    assert exc.value.category == "authentication" and "not-the-secret" not in str(exc.value)


def test_unknown_identity_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown identity type"):
        IdentitySettings(identity_type="systemAssigned", audience="https://monitor.azure.com")
