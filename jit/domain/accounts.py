"""How the system names and marks the accounts it creates."""

from __future__ import annotations

import re
import secrets
import string
import unicodedata

MARKER_PREFIX = "JIT:"
_SAFE = re.compile(r"[^a-z0-9]+")


def marker(grant_id: str) -> str:
    """What a JIT-created account carries in `employeeType`: which grant made it (and so may remove it)."""
    return f"{MARKER_PREFIX}{grant_id}"


def is_marked_for(employee_type: str | None, grant_id: str) -> bool:
    return employee_type == marker(grant_id)


def generated_upn(display_name: str, grant_id: str, domain: str, attempt: int = 0) -> str:
    """`jit-<name>-<grant suffix>[-n]@domain`: readable, unique per grant, and the same on every retry."""
    ascii_name = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode().lower()
    slug = _SAFE.sub("-", ascii_name).strip("-")
    # "JIT admin for ..." must not become "jit-jit-admin-for-...".
    slug = slug.removeprefix("jit-") if slug != "jit" else ""
    slug = slug[:32].strip("-") or "admin"
    local = f"jit-{slug}-{grant_id[-8:].lower()}" + (f"-{attempt + 1}" if attempt else "")
    return f"{local}@{domain}"


def mail_nickname(upn: str) -> str:
    return _SAFE.sub("", upn.split("@", 1)[0].lower())[:64] or "jitadmin"


def random_password(length: int = 64) -> str:
    """A password nobody ever sees, meeting Entra's complexity rules (every character class present)."""
    classes = [string.ascii_lowercase, string.ascii_uppercase, string.digits, "!@#$%^&*-_=+?"]
    alphabet = "".join(classes)
    chosen = [secrets.choice(c) for c in classes] + [secrets.choice(alphabet) for _ in range(length - len(classes))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)
