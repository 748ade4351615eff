"""Fixtures shared by the test folders."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    """A test CA, a server certificate for 127.0.0.1/localhost and a client certificate,
    as PEM files: ``ca.pem``, ``server.pem``, ``server.key``, ``client.pem``,
    ``client.key``."""
    return make_certificates(tmp_path)


def make_certificates(tmp: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def issue(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
              issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool,
              extra: list[x509.ExtensionType]) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                                  critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                  critical=False))
        if not ca:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False)
        else:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        for ext in extra:
            builder = builder.add_extension(ext, critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    def write(stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None
              ) -> None:
        (tmp / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            (tmp / f"{stem}.key").write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))

    import ipaddress

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue("skyfence test CA", ca_key, name("skyfence test CA"), ca_key, ca=True, extra=[])
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = issue("takserver", server_key, ca.subject, ca_key, ca=False, extra=[
        x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])])
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = issue("skyfence-node", client_key, ca.subject, ca_key, ca=False, extra=[
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])])
    write("ca", ca, None)
    write("server", server, server_key)
    write("client", client, client_key)
    return {k: tmp / k for k in ("ca.pem", "server.pem", "server.key", "client.pem",
                                 "client.key")}
