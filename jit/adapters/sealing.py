"""Secrets at rest (a Temporary Access Pass, a one-time password): AES-256-GCM, bound to their grant.

Each sealed value names the key that sealed it (the first 8 hex digits of the key's SHA-256), so keys can be rotated:
the current key seals, every configured key opens. The grant's tenant and id are the associated data, so a sealed
value copied onto another grant does not open.
"""

from __future__ import annotations

import base64
import hashlib
import os

from jit.settings import TapKeys


class SealedUnreadable(Exception):
    """A sealed value this process cannot open: its key is not configured (any more), or it was tampered with."""

    def __init__(self, message: str, key_id: str) -> None:
        super().__init__(message)
        self.key_id = key_id


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class Sealer:
    def __init__(self, keys: TapKeys) -> None:
        self._current = keys.current
        self._keys = {key_id(k): k for k in (keys.current, *keys.previous)}

    def seal(self, tenant_id: str, grant_id: str, value: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        sealed = AESGCM(self._current).encrypt(nonce, value.encode(), _context(tenant_id, grant_id))
        return f"v1:{key_id(self._current)}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, tenant_id: str, grant_id: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        version, kid, payload = [*sealed.split(":", 2), "", ""][:3]
        key = self._keys.get(kid)
        if version != "v1" or key is None:
            raise SealedUnreadable(
                f"sealed with key {kid}, which is not configured: set it as JIT_TAP_ENCRYPTION_KEY_PREVIOUS", kid
            )
        raw = base64.b64decode(payload)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], _context(tenant_id, grant_id)).decode()
        except InvalidTag:
            raise SealedUnreadable("the sealed value does not open with its key and grant", kid) from None


def _context(tenant_id: str, grant_id: str) -> bytes:
    return f"jit-tap/{tenant_id}/{grant_id}".encode()
