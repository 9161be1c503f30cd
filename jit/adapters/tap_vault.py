"""Temporary Access Passes at rest: AES-256-GCM encrypted, in their own table, handed out exactly once.

Each sealed value names the key that sealed it (the first 8 hex digits of the key's SHA-256), so keys can be
rotated: the current key seals, every configured key opens. The grant's tenant and id are the associated data, so
a sealed value copied onto another grant does not open.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from datetime import UTC, datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jit.settings import TapKeys

ROW = "tap"


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class TableTapVault:
    def __init__(self, table: TableClient, keys: TapKeys) -> None:
        self._table = table
        self._current = keys.current
        self._keys = {key_id(k): k for k in (keys.current, *keys.previous)}

    def put(self, tenant_id: str, grant_id: str, value: str, expires_at: datetime | None) -> None:
        nonce = os.urandom(12)
        sealed = AESGCM(self._current).encrypt(nonce, value.encode(), _context(tenant_id, grant_id))
        self._table.upsert_entity(
            {
                "PartitionKey": grant_id,
                "RowKey": ROW,
                "TenantId": tenant_id,
                "Sealed": f"v1:{key_id(self._current)}:{base64.b64encode(nonce + sealed).decode()}",
                "ExpiresAt": expires_at,
            },
            mode=UpdateMode.REPLACE,
        )

    def has(self, grant_id: str) -> bool:
        try:
            self._table.get_entity(grant_id, ROW, select=["PartitionKey"])
        except ResourceNotFoundError:
            return False
        return True

    def take(self, tenant_id: str, grant_id: str, now: datetime) -> tuple[str, datetime | None] | None:
        """The TAP, erased as it is read: of two callers racing, exactly one gets it. None when there is none
        (never issued, already taken, or expired — an expired one is erased too)."""
        try:
            entity = self._table.get_entity(grant_id, ROW)
        except ResourceNotFoundError:
            return None
        try:
            self._table.delete_entity(entity, etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return None  # somebody else took it first
        expires_at = entity.get("ExpiresAt")
        if entity.get("TenantId") != tenant_id or (expires_at is not None and expires_at <= now):
            return None
        return self._open(entity["Sealed"], tenant_id, grant_id), expires_at

    def erase(self, grant_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(grant_id, ROW)

    def erase_expired(self, now: datetime) -> int:
        expired = list(
            self._table.query_entities("ExpiresAt le @now", parameters={"now": now.astimezone(UTC)}, select=["PartitionKey"])
        )
        for entity in expired:
            self.erase(entity["PartitionKey"])
        return len(expired)

    def _open(self, sealed: str, tenant_id: str, grant_id: str) -> str:
        version, kid, payload = sealed.split(":", 2)
        key = self._keys.get(kid)
        if version != "v1" or key is None:
            raise ValueError(f"TAP sealed with unknown key {kid}: configure it as JIT_TAP_ENCRYPTION_KEY_PREVIOUS")
        raw = base64.b64decode(payload)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], _context(tenant_id, grant_id)).decode()
        except InvalidTag:
            raise ValueError("sealed TAP does not open with its key and grant") from None


def _context(tenant_id: str, grant_id: str) -> bytes:
    return f"jit-tap/{tenant_id}/{grant_id}".encode()
