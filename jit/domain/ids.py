"""Identifiers: grant ids that sort by time, and tenant references as callers give them."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from ulid import ULID

# Crockford base32, the ULID alphabet. Mapping each character to its mirror image inverts the sort order,
# which lets the store keep one tenant's grants newest first without storing a second key.
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INVERT = str.maketrans(_ULID_ALPHABET, _ULID_ALPHABET[::-1])
_GRANT_ID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")

# Initial (routing) domains of Entra tenants: commercial, US Government, and 21Vianet (China).
# A DNS name as Entra ID verifies domains: labels of letters, digits and hyphens, a top-level label of letters.
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_INITIAL_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62})\.(?:onmicrosoft\.com|onmicrosoft\.us|partner\.onmschina\.cn)$")


def new_grant_id(now: datetime) -> str:
    """A ULID: 26 characters, unique, sorting by creation time."""
    return str(ULID.from_datetime(now))


def is_grant_id(value: str) -> bool:
    return bool(_GRANT_ID.match(value))


def newest_first_key(grant_id: str) -> str:
    """The grant id mirrored in its alphabet: ascending order of the result is newest-first order of ids."""
    return grant_id.translate(_INVERT)


def grant_id_from_key(key: str) -> str:
    return key.translate(_INVERT)


def normalize_tenant(value: str) -> str | None:
    """The tenant's GUID (lower case) or initial domain (lower case); None when it is neither."""
    candidate = value.strip().lower()
    try:
        return str(uuid.UUID(candidate)) if len(candidate) == 36 else _domain_or_none(candidate)
    except ValueError:
        return None


def _domain_or_none(candidate: str) -> str | None:
    return candidate if _INITIAL_DOMAIN.match(candidate) else None


def is_guid(value: str) -> bool:
    try:
        return len(value) == 36 and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def is_domain_name(text: str) -> bool:
    """Whether `text` (lower case) is shaped like a domain a tenant can verify."""
    return bool(_DOMAIN.match(text))
