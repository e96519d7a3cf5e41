"""Certificates made on the fly for tests: CAs, leaves, expired ones, PEM and DER."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_cert(
    cn: str,
    *,
    ca: bool,
    issuer: tuple | None = None,
    days: int = 365,
    start: datetime | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for `cn`, self-signed unless issuer=(cert, key) is given."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = start or datetime.now(UTC) - timedelta(days=1)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Lab"),
        ]
    )
    issuer_cert, issuer_key = issuer or (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256()), key


def damaged_ca() -> x509.Certificate:
    """A CA certificate whose basic-constraints extension holds bytes that do not parse."""
    from cryptography.x509.oid import ExtensionOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Damaged CA")])
    start = datetime.now(UTC) - timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.BASIC_CONSTRAINTS, b"\x01\x02\x03"),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> bytes:
    """PEM bytes of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def der(cert: x509.Certificate) -> bytes:
    """DER bytes of a certificate."""
    return cert.public_bytes(serialization.Encoding.DER)
