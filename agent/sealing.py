"""One-time passwords sealed for an agent: RSA-OAEP (SHA-256, MGF1-SHA-256) to the public key its heartbeat publishes.

The function app calls `seal_for_agent`; only the agent, holding the private key, can `open_sealed`. Depends only on
`cryptography` (already a function-app dependency).
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from agent.protocol import SealedSecret

ALGORITHM = "RSA-OAEP-256"
MIN_KEY_BITS = 2048
KEY_BITS = 3072


class SealingError(ValueError):
    """The sealed value cannot be opened with this key (another key, tampered with, or malformed)."""


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def key_id(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_pem(private_key: rsa.RSAPrivateKey) -> str:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return private_key.public_key().public_bytes(serialization.Encoding.PEM, spki).decode()


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise SealingError(f"not a PEM public key: {error}") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        raise SealingError(f"the agent's key must be RSA with at least {MIN_KEY_BITS} bits")
    return key


def seal_for_agent(public_pem: str | bytes, password: str) -> dict[str, str]:
    """Encrypt `password` to the agent's public key; the result goes into ensure_account's args.password."""
    key = load_public_key(public_pem)
    ciphertext = key.encrypt(password.encode("utf-8"), _oaep())
    return SealedSecret(alg=ALGORITHM, kid=key_id(key), ct=base64.b64encode(ciphertext).decode("ascii")).to_json()


def open_sealed(private_key: rsa.RSAPrivateKey, sealed: SealedSecret | dict[str, Any]) -> str:
    """Decrypt a sealed password with the agent's private key; raises SealingError for anything not sealed to it."""
    secret = sealed if isinstance(sealed, SealedSecret) else SealedSecret.from_json(sealed)
    if secret.alg != ALGORITHM:
        raise SealingError(f"unsupported algorithm {secret.alg!r}")
    if secret.kid != key_id(private_key.public_key()):
        raise SealingError("sealed for another key (kid does not match this agent's key)")
    try:
        plaintext = private_key.decrypt(base64.b64decode(secret.ct, validate=True), _oaep())
        return plaintext.decode("utf-8")
    except ValueError:
        # Decryption failures say nothing more on purpose (no padding oracle details).
        raise SealingError("the sealed value does not open with this agent's key") from None


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def load_or_create_private_key(path: Path) -> rsa.RSAPrivateKey:
    """The agent's key pair, kept in a PEM file readable by the service account only; created on first start."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_KEY_BITS:
            raise SealingError(f"{path} must hold an RSA private key of at least {MIN_KEY_BITS} bits")
        return key
    key = generate_private_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    # Create with owner-only permissions from the start (no window in which others could read it).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key
