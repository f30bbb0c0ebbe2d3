"""Locally minted keys, tokens and TLS certificates for the auth tests (no network, no issuer).

`Issuer` plays Keycloak and SPIRE at once: it holds RSA and EC signing keys,
publishes them as a JWKS, and mints tokens with whatever claims a test needs.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

ISSUER = "https://keycloak.test/realms/shasta"
AUDIENCE = "bos"
TENANT = "vcluster-blue"
SPIFFE_PREFIX = "spiffe://shasta/compute/"


def node_subject(xname: str) -> str:
    return f"{SPIFFE_PREFIX}{xname}/workload/bos-reporter"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> Dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        data = json.loads(algorithm.to_jwk(self.private.public_key()))
        data.update(kid=self.kid, alg=self.alg, use="sig")
        return data


def rsa_key(kid: str = "rsa-1", alg: str = "RS256") -> SigningKey:
    return SigningKey(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str = "ec-1") -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


class Issuer:
    def __init__(self, keys: Optional[List[SigningKey]] = None) -> None:
        self.keys = keys or [rsa_key(), ec_key()]

    def jwks(self) -> Dict[str, Any]:
        return {"keys": [key.jwk() for key in self.keys]}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()))
        return path

    def key(self, kid: Optional[str] = None) -> SigningKey:
        return next(k for k in self.keys if kid is None or k.kid == kid)

    def claims(self, sub: str, roles: Optional[List[str]] = None, tenant: Optional[str] = None,
               lifetime: float = 300, **extra: Any) -> Dict[str, Any]:
        now = int(time.time())
        claims: Dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + int(lifetime)}
        if roles is not None:
            claims["realm_access"] = {"roles": roles}
        if tenant is not None:
            claims["tenant"] = tenant
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: Dict[str, Any], kid: Optional[str] = None, headers: Optional[Dict[str, Any]] = None) -> str:
        key = self.key(kid)
        return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid, **(headers or {})})

    def token(self, sub: str, roles: Optional[List[str]] = None, tenant: Optional[str] = None,
              kid: Optional[str] = None, **extra: Any) -> str:
        return self.sign(self.claims(sub, roles, tenant, **extra), kid)

    def admin(self, **kw: Any) -> str:
        return self.token("admin-alice", ["admin"], **kw)

    def read_only(self, **kw: Any) -> str:
        return self.token("viewer-victor", ["read-only"], **kw)

    def tenant_admin(self, tenant: str = TENANT, **kw: Any) -> str:
        return self.token("tenant-admin-tess", ["tenant-admin"], tenant, **kw)

    def node(self, xname: str, **kw: Any) -> str:
        return self.token(node_subject(xname), **kw)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: Dict[str, Any]) -> str:
    """An `alg: none` token (what an attacker sends hoping verification is skipped)."""
    header = {"alg": "none", "typ": "JWT"}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def tampered(token: str, **changes: Any) -> str:
    """The token with its payload changed but the original signature kept."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{head}.{b64(json.dumps(claims).encode())}.{signature}"


def bearer(token: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- TLS --------------------------------------------------------------------------------------

@dataclass
class Tls:
    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path) -> Tls:
    """A private CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BOS test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return tls


def auth_server_args(jwks: Path, tls: Optional[Tls] = None) -> List[str]:
    """bos-server flags for auth on (this issuer, audience `bos`) and, with `tls`, HTTPS."""
    args = ["--auth-jwks-file", str(jwks), "--auth-issuer", ISSUER, "--auth-audience", AUDIENCE]
    if tls is not None:
        args += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    return args
