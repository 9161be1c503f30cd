"""What the live suite runs against, read from the environment: a real tenant when all three JIT_LIVE_* variables
are set, the Graph simulator when none is, and a clear refusal when only some are."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

TENANT_VARIABLE = "JIT_LIVE_TENANT_ID"
CLIENT_VARIABLE = "JIT_LIVE_CLIENT_ID"
CERTIFICATE_VARIABLE = "JIT_LIVE_CERTIFICATE_PATH"
LIVE_VARIABLES = (TENANT_VARIABLE, CLIENT_VARIABLE, CERTIFICATE_VARIABLE)
ROLE_VARIABLE = "JIT_LIVE_ROLE"
WINDOW_VARIABLE = "JIT_LIVE_WINDOW_MINUTES"

# Every object the suite creates carries this at the start of its display name (and the run's id after it), so a
# later run can find what an interrupted one left behind.
MARKER_PREFIX = "jitlive-"
DEFAULT_ROLE = "Exchange Administrator"
# Tier-0 roles: handing one to a throwaway account in a tenant somebody may also use is not worth the test, and the
# product's default policy sends them for approval, which the suite does not give.
REFUSED_ROLES = frozenset({"global administrator", "privileged role administrator", "privileged authentication administrator"})
DEFAULT_WINDOW = timedelta(minutes=3)
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)


class Mode(StrEnum):
    SIMULATOR = "simulator"
    LIVE = "live"


class LiveSetupError(Exception):
    """The environment asks for live mode but does not describe a usable tenant."""


@dataclass(frozen=True)
class LiveTenant:
    tenant: str  # GUID or an initial/verified domain: Entra's token endpoint accepts both
    client_id: str
    certificate_path: Path  # PEM: the certificate and its unencrypted private key


@dataclass(frozen=True)
class SuiteOptions:
    role: str  # the role every scenario grants, by display name
    window: timedelta  # how long a grant that is left to expire lasts


def mode_of(env: Mapping[str, str]) -> Mode:
    return Mode.LIVE if any(env.get(name, "").strip() for name in LIVE_VARIABLES) else Mode.SIMULATOR


def live_tenant(env: Mapping[str, str]) -> LiveTenant | None:
    """The tenant named by JIT_LIVE_*, or None when none of them is set; LiveSetupError listing every problem."""
    values = {name: env.get(name, "").strip() for name in LIVE_VARIABLES}
    if not any(values.values()):
        return None
    problems = [f"{name} is not set" for name, value in values.items() if not value]
    if problems:
        given = ", ".join(name for name, value in values.items() if value)
        raise LiveSetupError(
            f"live mode needs all of {', '.join(LIVE_VARIABLES)}; {given} set but " + "; ".join(problems)
            + ". Unset them all to run against the Graph simulator (docs/live-testing.md)."
        )
    tenant, client_id, path_text = values[TENANT_VARIABLE], values[CLIENT_VARIABLE], values[CERTIFICATE_VARIABLE]
    if not (_is_guid(tenant) or _DOMAIN.match(tenant)):
        problems.append(f"{TENANT_VARIABLE}={tenant!r} is neither a tenant GUID nor a domain name")
    if not _is_guid(client_id):
        problems.append(f"{CLIENT_VARIABLE}={client_id!r} is not an application (client) id GUID")
    path = Path(path_text).expanduser()
    problems += certificate_problems(path)
    if problems:
        raise LiveSetupError("live mode: " + "; ".join(problems) + " (docs/live-testing.md)")
    return LiveTenant(tenant.lower(), client_id.lower(), path)


def certificate_problems(path: Path) -> list[str]:
    """What keeps `path` from being the PEM CertificateCredential needs (certificate plus unencrypted key)."""
    if not path.is_file():
        return [f"{CERTIFICATE_VARIABLE}={str(path)!r} is not a file"]
    data = path.read_bytes()
    problems = []
    try:
        x509.load_pem_x509_certificate(data)
    except ValueError:
        problems.append(f"{CERTIFICATE_VARIABLE}: {path} holds no PEM certificate")
    if b"PRIVATE KEY-----" not in data:
        problems.append(f"{CERTIFICATE_VARIABLE}: {path} holds no private key (concatenate the key and the certificate)")
    else:
        try:
            load_pem_private_key(data, password=None)
        except TypeError:
            problems.append(f"{CERTIFICATE_VARIABLE}: the private key in {path} is encrypted; the product reads it without a password")
        except ValueError:
            problems.append(f"{CERTIFICATE_VARIABLE}: the private key in {path} cannot be read")
    return problems


def suite_options(env: Mapping[str, str]) -> SuiteOptions:
    role = env.get(ROLE_VARIABLE, "").strip() or DEFAULT_ROLE
    if role.lower() in REFUSED_ROLES:
        raise LiveSetupError(
            f"{ROLE_VARIABLE}={role!r}: the live suite does not hand out tier-0 roles (they also need approval); pick a lower-risk one"
        )
    minutes_text = env.get(WINDOW_VARIABLE, "").strip()
    window = DEFAULT_WINDOW
    if minutes_text:
        try:
            minutes = int(minutes_text)
        except ValueError:
            minutes = 0
        if not 1 <= minutes <= 30:
            raise LiveSetupError(f"{WINDOW_VARIABLE}={minutes_text!r} must be a whole number of minutes from 1 to 30")
        window = timedelta(minutes=minutes)
    return SuiteOptions(role, window)


def new_run_id(now: datetime | None = None) -> str:
    """`jitlive-20260514t0930-3fa2`: sortable, unique enough, and usable in display names and mail nicknames."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{MARKER_PREFIX}{moment:%Y%m%dt%H%M}-{secrets.token_hex(2)}"


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36
