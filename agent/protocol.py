"""The wire protocol between the function app and an on-premises AD agent.

Pure Python (standard library only) so the function app can import it without pulling in LDAP or Azure SDKs.

Commands travel as base64-encoded JSON queue messages on queue `jit-ad-<site>`; results come back as entities in
table `<prefix>AgentResults`; the agent's heartbeat is an entity in table `<prefix>Agents`. See docs/onprem-agent.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

PROTOCOL_VERSION: Final = 1

OP_ENSURE_ACCOUNT: Final = "ensure_account"
OP_ADD_TO_GROUP: Final = "add_to_group"
OP_REMOVE_FROM_GROUP: Final = "remove_from_group"
OP_DISABLE: Final = "disable"
OP_DELETE: Final = "delete"
OP_READ_BACK: Final = "read_back"
OP_LIST_GROUPS: Final = "list_groups"
OP_MARKED_ACCOUNTS: Final = "marked_accounts"

# Ops about one account need its samAccountName and the marker it must carry; site-wide ops need neither.
ACCOUNT_OPS: Final = frozenset({OP_ENSURE_ACCOUNT, OP_ADD_TO_GROUP, OP_REMOVE_FROM_GROUP, OP_DISABLE, OP_DELETE, OP_READ_BACK})
SITE_OPS: Final = frozenset({OP_LIST_GROUPS, OP_MARKED_ACCOUNTS})
OPS: Final = ACCOUNT_OPS | SITE_OPS

# The value written to msDS-cloudExtensionAttribute1 is MARKER_PREFIX + the command's marker.
MARKER_PREFIX: Final = "JIT:"

# Error codes the agent reports (error.code). Transient ones leave the queue message to be delivered again.
E_BAD_MESSAGE: Final = "bad_message"  # not base64 / not JSON / missing or ill-typed fields
E_UNSUPPORTED_VERSION: Final = "unsupported_version"
E_UNKNOWN_OP: Final = "unknown_op"
E_WRONG_SITE: Final = "wrong_site"
E_WRONG_TENANT: Final = "wrong_tenant"
E_NOT_OURS: Final = "not_ours"  # the account exists but lacks our marker, carries another one, or is outside the OU
E_NOT_FOUND: Final = "not_found"  # the account does not exist (for ops that need it)
E_GROUP_NOT_ALLOWED: Final = "group_not_allowed"
E_GROUP_NOT_FOUND: Final = "group_not_found"
E_NAME_CONFLICT: Final = "name_conflict"
E_PASSWORD_REJECTED: Final = "password_rejected"  # noqa: S105 - the directory's password policy refused the one-time password
E_SEALED_PASSWORD: Final = "sealed_password_invalid"  # noqa: S105 - not sealed for this agent's key, or tampered with
E_VERIFY_FAILED: Final = "verify_failed"  # the write succeeded but reading back did not show it
E_LDAP_UNAVAILABLE: Final = "ldap_unavailable"  # transient: the DC cannot be reached or is busy
E_LDAP_BIND: Final = "ldap_bind_failed"  # transient: the agent's own credentials or TLS trust need fixing
E_LDAP_ERROR: Final = "ldap_error"  # any other refusal from the directory
E_INTERNAL: Final = "internal_error"
E_RESULT_TOO_LARGE: Final = "result_too_large"

_SITE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){0,54}[a-z0-9]$")
# Characters Table Storage forbids in PartitionKey/RowKey, plus control characters.
_KEY_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_SAM = re.compile(r'^[^"/\\\[\]:;|=,+*?<>@]{1,20}$')
_MAX_KEY = 512
# A table string property holds at most 64 KiB of UTF-16; keep each chunk well under that.
_CHUNK = 30_000
_MAX_CHUNKS = 15


class ProtocolError(ValueError):
    """A message that can never be processed (a poison message); `code` is one of the E_* codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def queue_name(site: str) -> str:
    """The site's command queue. Site names are lower-case letters, digits and single hyphens (a queue name rule)."""
    validate_site(site)
    return f"jit-ad-{site}"


def validate_site(site: str) -> str:
    if not _SITE.match(site):
        raise ValueError(f"site name {site!r} must be 2-56 lower-case letters, digits or single hyphens")
    return site


def results_table(prefix: str = "Jit") -> str:
    return f"{prefix}AgentResults"


def agents_table(prefix: str = "Jit") -> str:
    return f"{prefix}Agents"


HEARTBEAT_PARTITION: Final = "agent"


def site_partition(site: str) -> str:
    return f"site-{site}"


@dataclass(frozen=True)
class SealedSecret:
    """A secret encrypted to the agent's RSA public key (RSA-OAEP, SHA-256); see agent.sealing."""

    alg: str
    kid: str  # SHA-256 fingerprint (hex) of the public key's DER SubjectPublicKeyInfo
    ct: str  # base64 ciphertext

    def to_json(self) -> dict[str, str]:
        return {"alg": self.alg, "kid": self.kid, "ct": self.ct}

    @classmethod
    def from_json(cls, data: Any) -> SealedSecret:
        if not isinstance(data, dict):
            raise ProtocolError(E_BAD_MESSAGE, "args.password must be an object {alg, kid, ct}")
        return cls(alg=_str(data, "alg"), kid=_str(data, "kid"), ct=_str(data, "ct"))


@dataclass(frozen=True)
class Command:
    """One unit of work for a site's agent. `args` depends on `op` (see parse_args and the docs)."""

    id: str
    site: str
    op: str
    args: dict[str, Any]
    tenant_id: str = ""
    grant_id: str = ""
    issued_at: str = field(default_factory=lambda: now_iso())
    v: int = PROTOCOL_VERSION

    @property
    def partition_key(self) -> str:
        """Results for a grant's commands live with the grant; site-wide ops (no grantId) in `site-<site>`."""
        return self.grant_id or site_partition(self.site)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "id": self.id,
            "site": self.site,
            "tenantId": self.tenant_id,
            "grantId": self.grant_id,
            "op": self.op,
            "args": self.args,
            "issuedAt": self.issued_at,
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def encode_command(command: Command) -> str:
    """The queue message text: base64 of the command's JSON (what the Functions queue binding also expects)."""
    validate_command(command)
    return base64.b64encode(json.dumps(command.to_json(), separators=(",", ":")).encode()).decode("ascii")


def decode_command(text: str | bytes) -> Command:
    """Parse and validate a queue message; raises ProtocolError (a poison message) when it cannot be processed."""
    try:
        raw = base64.b64decode(text, validate=True)
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError) as error:
        raise ProtocolError(E_BAD_MESSAGE, f"message is not base64-encoded JSON: {type(error).__name__}") from None
    if not isinstance(data, dict):
        raise ProtocolError(E_BAD_MESSAGE, "message JSON must be an object")
    version = data.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(E_UNSUPPORTED_VERSION, f"protocol version {version!r} is not supported (this agent speaks v1)")
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError(E_BAD_MESSAGE, "args must be an object")
    command = Command(
        id=_str(data, "id"),
        site=_str(data, "site"),
        op=_str(data, "op"),
        args=args,
        tenant_id=_str(data, "tenantId", required=False),
        grant_id=_str(data, "grantId", required=False),
        issued_at=_str(data, "issuedAt"),
    )
    validate_command(command)
    return command


def invalid_key(value: str) -> bool:
    """True when `value` cannot be a Table Storage PartitionKey/RowKey."""
    return len(value) > _MAX_KEY or bool(_KEY_FORBIDDEN.search(value))


def validate_command(command: Command) -> None:
    if command.v != PROTOCOL_VERSION:
        raise ProtocolError(E_UNSUPPORTED_VERSION, f"protocol version {command.v!r} is not supported")
    for name, value in (("id", command.id), ("grantId", command.grant_id)):
        if invalid_key(value):
            raise ProtocolError(E_BAD_MESSAGE, f"{name} must be at most {_MAX_KEY} characters without / \\ # ? or controls")
    if not command.id:
        raise ProtocolError(E_BAD_MESSAGE, "id is required")
    if not _SITE.match(command.site):
        raise ProtocolError(E_BAD_MESSAGE, "site is not a valid site name")
    if command.op not in OPS:
        raise ProtocolError(E_UNKNOWN_OP, f"unknown op {command.op!r}")
    try:
        datetime.fromisoformat(command.issued_at.replace("Z", "+00:00"))
    except ValueError:
        raise ProtocolError(E_BAD_MESSAGE, "issuedAt must be an ISO 8601 timestamp") from None
    parse_args(command)


# ---- per-op arguments -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRef:
    """Names an account and the marker it must carry (without MARKER_PREFIX)."""

    sam_account_name: str
    marker: str


@dataclass(frozen=True)
class EnsureAccountArgs(AccountRef):
    user_principal_name: str
    display_name: str
    password: SealedSecret


@dataclass(frozen=True)
class GroupArgs(AccountRef):
    group: str  # a group name among the site's allowed ones, or a group's DN


@dataclass(frozen=True)
class MarkedAccountsArgs:
    marker_prefix: str = ""  # narrows to markers starting with MARKER_PREFIX + this


@dataclass(frozen=True)
class NoArgs:
    pass


OpArgs = EnsureAccountArgs | GroupArgs | AccountRef | MarkedAccountsArgs | NoArgs


def parse_args(command: Command) -> OpArgs:
    args = command.args
    if command.op == OP_LIST_GROUPS:
        return NoArgs()
    if command.op == OP_MARKED_ACCOUNTS:
        return MarkedAccountsArgs(marker_prefix=_str(args, "markerPrefix", required=False, where="args."))
    sam = _str(args, "samAccountName", where="args.")
    if not _SAM.match(sam) or sam.endswith(".") or sam.strip() != sam:
        raise ProtocolError(E_BAD_MESSAGE, "args.samAccountName is not a valid sAMAccountName (1-20 characters)")
    marker = _str(args, "marker", where="args.")
    if len(marker) > 200:
        raise ProtocolError(E_BAD_MESSAGE, "args.marker must be at most 200 characters")
    if command.op == OP_ENSURE_ACCOUNT:
        display_name = _str(args, "displayName", where="args.")
        if len(display_name) > 64:
            # The display name is also the account's CN, which AD limits to 64 characters.
            raise ProtocolError(E_BAD_MESSAGE, "args.displayName must be at most 64 characters")
        return EnsureAccountArgs(
            sam_account_name=sam,
            marker=marker,
            user_principal_name=_str(args, "userPrincipalName", where="args."),
            display_name=display_name,
            password=SealedSecret.from_json(args.get("password")),
        )
    if command.op in (OP_ADD_TO_GROUP, OP_REMOVE_FROM_GROUP):
        return GroupArgs(sam_account_name=sam, marker=marker, group=_str(args, "group", where="args."))
    return AccountRef(sam_account_name=sam, marker=marker)


def _str(data: dict[str, Any], key: str, *, required: bool = True, where: str = "") -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ProtocolError(E_BAD_MESSAGE, f"{where}{key} must be a non-empty string")
    return value


# ---- results ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str
    transient: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "transient": self.transient}


@dataclass(frozen=True)
class Result:
    """What the agent reports for one command: `result` when ok, `error` otherwise."""

    partition_key: str
    command_id: str
    ok: bool
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    op: str = ""
    site: str = ""
    tenant_id: str = ""
    completed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    attempt: int = 1
    agent_version: str = ""

    @property
    def final(self) -> bool:
        """A transient failure is retried (the message reappears); anything else settles the command."""
        return self.ok or (self.error is not None and not self.error.transient)


def result_to_entity(result: Result) -> dict[str, Any]:
    """The table entity. `result` and `error` are JSON strings; a large `result` is split over resultPartN."""
    entity: dict[str, Any] = {
        "PartitionKey": result.partition_key,
        "RowKey": result.command_id,
        "ok": result.ok,
        "op": result.op,
        "site": result.site,
        "tenantId": result.tenant_id,
        "completedAt": result.completed_at,
        "attempt": result.attempt,
        "agentVersion": result.agent_version,
        "errorCode": result.error.code if result.error else "",
        "error": json.dumps(result.error.to_json()) if result.error else "",
        "result": "",
    }
    if result.result is not None:
        text = json.dumps(result.result, separators=(",", ":"), sort_keys=True)
        chunks = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
        if len(chunks) > _MAX_CHUNKS:
            raise ValueError("result too large for one table entity")
        entity["result"] = chunks[0]
        for index, chunk in enumerate(chunks[1:], start=1):
            entity[f"resultPart{index}"] = chunk
        entity["resultParts"] = len(chunks)
    return entity


def result_from_entity(entity: dict[str, Any]) -> Result:
    parts = int(entity.get("resultParts") or 0)
    text = "".join([str(entity.get("result") or "")] + [str(entity[f"resultPart{i}"]) for i in range(1, parts)])
    error_text = str(entity.get("error") or "")
    error = None
    if error_text:
        data = json.loads(error_text)
        error = ErrorInfo(code=data["code"], message=data["message"], transient=bool(data["transient"]))
    completed = entity.get("completedAt")
    return Result(
        partition_key=str(entity["PartitionKey"]),
        command_id=str(entity["RowKey"]),
        ok=bool(entity.get("ok")),
        result=json.loads(text) if text else None,
        error=error,
        op=str(entity.get("op") or ""),
        site=str(entity.get("site") or ""),
        tenant_id=str(entity.get("tenantId") or ""),
        completed_at=completed if isinstance(completed, datetime) else datetime.now(UTC),
        attempt=int(entity.get("attempt") or 1),
        agent_version=str(entity.get("agentVersion") or ""),
    )


@dataclass(frozen=True)
class Heartbeat:
    site: str
    last_seen: datetime
    agent_version: str
    host_name: str
    public_key: str  # PEM SubjectPublicKeyInfo; seal one-time passwords to it
    key_id: str
    queue: str

    def to_entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": HEARTBEAT_PARTITION,
            "RowKey": self.site,
            "lastSeen": self.last_seen,
            "agentVersion": self.agent_version,
            "hostName": self.host_name,
            "publicKey": self.public_key,
            "keyId": self.key_id,
            "queue": self.queue,
        }

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Heartbeat:
        return cls(
            site=str(entity["RowKey"]),
            last_seen=entity["lastSeen"],
            agent_version=str(entity.get("agentVersion") or ""),
            host_name=str(entity.get("hostName") or ""),
            public_key=str(entity.get("publicKey") or ""),
            key_id=str(entity.get("keyId") or ""),
            queue=str(entity.get("queue") or ""),
        )
