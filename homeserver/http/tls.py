"""TLS for our listeners: a self-signed certificate for development, and the context.

Federation requires HTTPS (Server-Server API, "Server discovery"); in
production the certificate comes from a CA, but a fresh deployment and the
tests need one that exists right away.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path


def make_self_signed_cert(hostname: str, cert_path: str | Path, key_path: str | Path) -> None:
    """Write a one-year EC P-256 certificate for ``hostname``, localhost and 127.0.0.1.

    The key file is created readable by its owner only. ``cryptography`` is
    imported here, not with the module: a serving process that never makes a
    certificate does not carry it (about 8 MB of resident memory).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    alt_names: list[x509.GeneralName] = []
    for dns in dict.fromkeys([hostname, "localhost"]):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(dns)))
        except ValueError:
            alt_names.append(x509.DNSName(dns))
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    if loopback not in alt_names:
        alt_names.append(loopback)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # Its own trust root: clients pin this certificate as their CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as key_file:
        key_file.write(key_bytes)
    Path(cert_path).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def load_ssl_context(cert_path: str | Path, key_path: str | Path) -> ssl.SSLContext:
    """A server context: TLS 1.2 or later, HTTP/1.1 announced over ALPN."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_path), str(key_path))
    context.set_alpn_protocols(["http/1.1"])
    return context
