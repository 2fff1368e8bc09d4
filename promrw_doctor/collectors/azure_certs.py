"""The certificate file given with ``--client-certificate`` (PEM or PFX), read once per run.

Given, it is both "the certificate in use" for the validity and registration checks and
the credential with which the doctor tries to get a token as the sidecar's Entra
application. A file that is not a certificate, or a PFX that does not open with
``--client-certificate-password``, is bad input: one line, exit 2.

Fact (run scope): ``azure.certificate_file`` (:class:`~promrw_doctor.domain.certs.CertInfo`);
``NotApplicable`` when no file was given.
"""

from __future__ import annotations

from ..core.errors import InputError, NotApplicable
from ..core.facts import FactContext, fact
from ..domain.certs import CertificateError, CertInfo, load_certificate_file


@fact("azure.certificate_file", scope="run")
def certificate_file(ctx: FactContext) -> CertInfo:
    """``--client-certificate`` parsed (subject, thumbprint, validity, whether it holds the private key)."""
    path = ctx.option("client_certificate")
    if not path:
        raise NotApplicable("no --client-certificate given")
    try:
        return load_certificate_file(str(path), ctx.option("client_certificate_password") or None)
    except CertificateError as exc:
        raise InputError(f"--client-certificate: {exc}") from None
