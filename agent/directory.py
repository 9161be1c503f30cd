"""The agent's LDAP layer: manage JIT accounts in one OU of an Active Directory domain, over LDAP with TLS (ldap3).

Safety rules enforced here, whatever the command asks:
- an account is only modified when it lies under the configured OU *and* carries the command's marker in
  msDS-cloudExtensionAttribute1 (a user may write that attribute on itself, through the Personal-Information property
  set, so the marker alone proves nothing; the OU is where only the agent can create accounts);
- only the configured groups can be granted or revoked;
- every DN component is escaped with escape_rdn and every filter value with escape_filter_chars.
"""

from __future__ import annotations

import logging
import re
import secrets
import ssl
import string
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_bytes, escape_filter_chars
from ldap3.utils.dn import escape_rdn

from agent import protocol as p
from agent.config import LdapConfig

log = logging.getLogger(__name__)

MARKER_ATTRIBUTE = "msDS-cloudExtensionAttribute1"
UAC_ACCOUNTDISABLE = 0x0002
UAC_NORMAL_ACCOUNT = 0x0200
# AD and Samba both prefix password-policy refusals with this Win32 code (ERROR_PASSWORD_RESTRICTION).
_PASSWORD_RESTRICTION = "0000052D"  # noqa: S105 - an error code, not a password
_ACCOUNT_ATTRIBUTES = [
    "sAMAccountName",
    "userPrincipalName",
    "displayName",
    MARKER_ATTRIBUTE,
    "userAccountControl",
    "memberOf",
    "objectSid",
    "objectClass",
]
_GROUP_ATTRIBUTES = ["cn", "sAMAccountName", "objectSid", "objectGUID", "objectClass"]
# Result codes that mean "try again later" (RFC 4511 section 4.1.9: busy, unavailable, time limit, admin limit).
_TRANSIENT_RESULTS = {3, 11, 51, 52}
_DN_LIKE = re.compile(r",\s*DC=", re.IGNORECASE)

T = TypeVar("T")

# ldap3's stubs leave these untyped; typed aliases keep mypy strict on the calls.
_add: Callable[..., Any] = Connection.add
_modify: Callable[..., Any] = Connection.modify
_delete: Callable[..., Any] = Connection.delete


class DirectoryError(Exception):
    """A refusal or failure, carried back to the function app as error {code, message, transient}."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Account:
    dn: str
    sam_account_name: str
    user_principal_name: str
    display_name: str
    marker: str  # the full attribute value (with MARKER_PREFIX), "" when absent
    uac: int
    member_of: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        return not self.uac & UAC_ACCOUNTDISABLE


@dataclass(frozen=True)
class Group:
    name: str
    dn: str
    sid: str
    guid: bytes

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "dn": self.dn, "sid": self.sid}


def random_password(length: int = 32) -> str:
    """A password nobody learns: generated here, set once, never stored, logged or reported."""
    classes = [string.ascii_uppercase, string.ascii_lowercase, string.digits, "!#%+-.:=?@^_~"]
    alphabet = "".join(classes)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(char in chars for char in candidate) for chars in classes):
            return candidate


def _unicode_pwd(password: str) -> bytes:
    # AD takes a password as the UTF-16-LE encoding of the password in double quotes, and only over an encrypted link.
    return f'"{password}"'.encode("utf-16-le")


def format_sid(raw: bytes) -> str:
    """A binary SID (MS-DTYP 2.4.2.2) in its S-1-... string form."""
    count = raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack(f"<{count}I", raw[8 : 8 + 4 * count])
    return "-".join(["S", str(raw[0]), str(authority), *(str(sub) for sub in subs)])


def _entries(conn: Connection) -> list[dict[str, Any]]:
    return [entry for entry in (conn.response or []) if entry.get("type") == "searchResEntry"]


def _first(attributes: dict[str, Any], name: str) -> Any:
    value = attributes.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


class Directory:
    """One bound connection (opened lazily, dropped on any connection failure) and the operations of the protocol."""

    def __init__(self, config: LdapConfig) -> None:
        self.config = config
        self._conn: Connection | None = None
        self._root_dn = ""
        self._ou_dn = ""

    # ---- connection -------------------------------------------------------------------------------------------

    def _server(self) -> Server:
        tls = Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=self.config.ca_file,
            version=ssl.PROTOCOL_TLS_CLIENT,
            valid_names=[self.config.tls_server_name] if self.config.tls_server_name else None,
        )
        return Server(self.config.url, use_ssl=True, tls=tls, get_info=NONE, connect_timeout=self.config.timeout)

    def connection(self) -> Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = Connection(
            self._server(),
            user=self.config.bind_dn,
            password=self.config.password,
            authentication=SIMPLE,
            raise_exceptions=True,
            receive_timeout=int(self.config.timeout),
            read_only=False,
            auto_referrals=False,
        )
        try:
            conn.open()
            conn.bind()
        except (ldap_errors.LDAPCertificateError, ssl.SSLCertVerificationError) as error:
            # ldap3 raises a verify failure as a class deriving from both LDAPSocketOpenError and the ssl error.
            raise DirectoryError(p.E_LDAP_BIND, f"TLS validation of the DC failed: {error}", transient=True) from None
        except ldap_errors.LDAPInvalidCredentialsResult:
            raise DirectoryError(p.E_LDAP_BIND, "the DC refused the agent's bind DN or password", transient=True) from None
        except ldap_errors.LDAPBindError as error:
            raise DirectoryError(p.E_LDAP_BIND, f"bind failed: {error}", transient=True) from None
        self._conn = conn
        conn.search("", "(objectClass=*)", search_scope=BASE, attributes=["defaultNamingContext"])
        self._root_dn = str(_first(_entries(conn)[0]["attributes"], "defaultNamingContext"))
        # Read the OU back so its DN is in the server's own spelling (DN suffix checks compare like with like).
        conn.search(self.config.ou, "(objectClass=*)", search_scope=BASE, attributes=["objectClass"])
        self._ou_dn = str(_entries(conn)[0]["dn"])
        return conn

    def close(self) -> None:
        if self._conn is not None:
            with suppress(ldap_errors.LDAPException):
                self._conn.unbind()
            self._conn = None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate ldap3's exceptions into DirectoryError, telling transient from permanent."""
        try:
            yield
        except DirectoryError:
            raise
        except ldap_errors.LDAPOperationResult as error:
            if error.result in _TRANSIENT_RESULTS:
                self.close()
                message = f"the DC is busy or unavailable: {error.description}"
                raise DirectoryError(p.E_LDAP_UNAVAILABLE, message, transient=True) from None
            raise DirectoryError(p.E_LDAP_ERROR, f"{error.description}: {error.message}") from None
        except (ldap_errors.LDAPCommunicationError, ldap_errors.LDAPSessionTerminatedByServerError) as error:
            self.close()
            raise DirectoryError(p.E_LDAP_UNAVAILABLE, f"cannot reach the DC: {type(error).__name__}", transient=True) from None
        except ldap_errors.LDAPException as error:
            # Includes ldap3's client-side failures (a dropped socket surfaces in several forms).
            self.close()
            raise DirectoryError(p.E_LDAP_UNAVAILABLE, f"LDAP failure: {type(error).__name__}: {error}", transient=True) from None

    def run(self, action: Callable[[Connection], T]) -> T:
        with self._errors():
            return action(self.connection())

    # ---- lookups ----------------------------------------------------------------------------------------------

    def _find_account(self, conn: Connection, sam: str) -> Account | None:
        conn.search(self._root_dn, f"(sAMAccountName={escape_filter_chars(sam)})", SUBTREE, attributes=_ACCOUNT_ATTRIBUTES)
        entries = _entries(conn)
        if not entries:
            return None
        entry = entries[0]
        attributes = entry["attributes"]
        classes = [str(c).lower() for c in attributes.get("objectClass", [])]
        if "user" not in classes or "computer" in classes:
            raise DirectoryError(p.E_NAME_CONFLICT, f"{sam!r} names an object that is not a user account")
        return Account(
            dn=str(entry["dn"]),
            sam_account_name=str(_first(attributes, "sAMAccountName")),
            user_principal_name=str(_first(attributes, "userPrincipalName") or ""),
            display_name=str(_first(attributes, "displayName") or ""),
            marker=str(_first(attributes, MARKER_ATTRIBUTE) or ""),
            uac=int(_first(attributes, "userAccountControl") or 0),
            member_of=tuple(str(dn) for dn in attributes.get("memberOf", [])),
        )

    def _in_ou(self, dn: str) -> bool:
        return dn.lower().endswith("," + self._ou_dn.lower())

    def _check_ours(self, account: Account, marker: str) -> None:
        expected = p.MARKER_PREFIX + marker
        if not self._in_ou(account.dn):
            raise DirectoryError(p.E_NOT_OURS, f"{account.sam_account_name!r} is outside the JIT OU; the agent does not touch it")
        if not account.marker.startswith(p.MARKER_PREFIX):
            raise DirectoryError(p.E_NOT_OURS, f"{account.sam_account_name!r} lacks the JIT marker; the agent does not touch it")
        if account.marker != expected:
            raise DirectoryError(p.E_NOT_OURS, f"{account.sam_account_name!r} carries another JIT marker; refusing")

    def _require_ours(self, conn: Connection, sam: str, marker: str) -> Account:
        account = self._find_account(conn, sam)
        if account is None:
            raise DirectoryError(p.E_NOT_FOUND, f"no account {sam!r}")
        self._check_ours(account, marker)
        return account

    def _group_from_entry(self, entry: dict[str, Any]) -> Group:
        attributes = entry["attributes"]
        classes = [str(c).lower() for c in attributes.get("objectClass", [])]
        if "group" not in classes:
            raise DirectoryError(p.E_GROUP_NOT_FOUND, f"{entry['dn']!r} is not a group")
        raw = entry["raw_attributes"]
        return Group(
            name=str(_first(attributes, "cn")),
            dn=str(entry["dn"]),
            sid=format_sid(raw["objectSid"][0]),
            guid=bytes(raw["objectGUID"][0]),
        )

    def _lookup_group(self, conn: Connection, name_or_dn: str) -> Group | None:
        if _DN_LIKE.search(name_or_dn):
            try:
                conn.search(name_or_dn, "(objectClass=group)", BASE, attributes=_GROUP_ATTRIBUTES)
            except ldap_errors.LDAPNoSuchObjectResult:
                return None
            except ldap_errors.LDAPInvalidDnError:
                return None
        else:
            value = escape_filter_chars(name_or_dn)
            query = f"(&(objectClass=group)(|(sAMAccountName={value})(cn={value})))"
            conn.search(self._root_dn, query, SUBTREE, attributes=_GROUP_ATTRIBUTES)
        entries = _entries(conn)
        if len(entries) > 1:
            raise DirectoryError(p.E_GROUP_NOT_FOUND, f"{name_or_dn!r} names {len(entries)} groups; name it by DN")
        return self._group_from_entry(entries[0]) if entries else None

    def _allowed_groups(self, conn: Connection) -> tuple[list[Group], list[str]]:
        found: list[Group] = []
        missing: list[str] = []
        for name in self.config.allowed_groups:
            group = self._lookup_group(conn, name)
            if group is None:
                missing.append(name)
            else:
                found.append(group)
        return found, missing

    def _resolve_allowed(self, conn: Connection, requested: str) -> Group:
        allowed, missing = self._allowed_groups(conn)
        group = self._lookup_group(conn, requested)
        if group is None:
            if any(requested.lower() == name.lower() for name in missing):
                raise DirectoryError(p.E_GROUP_NOT_FOUND, f"allowed group {requested!r} does not exist in the domain")
            raise DirectoryError(p.E_GROUP_NOT_ALLOWED, f"{requested!r} is not a group this site allows")
        if group.guid not in {g.guid for g in allowed}:
            raise DirectoryError(p.E_GROUP_NOT_ALLOWED, f"{group.name!r} is not a group this site allows")
        return group

    def _token_groups(self, conn: Connection, dn: str) -> list[dict[str, str]]:
        """The account's effective security groups (transitive, with the primary group), as {sid, dn}."""
        conn.search(dn, "(objectClass=*)", BASE, attributes=["tokenGroups"])
        raw_sids = [bytes(sid) for sid in _entries(conn)[0]["raw_attributes"].get("tokenGroups", [])]
        resolved: dict[str, str] = {}
        if raw_sids:
            clauses = "".join(f"(objectSid={escape_bytes(sid)})" for sid in raw_sids)
            conn.search(self._root_dn, f"(|{clauses})", SUBTREE, attributes=["objectSid"])
            for entry in _entries(conn):
                resolved[format_sid(entry["raw_attributes"]["objectSid"][0])] = str(entry["dn"])
        sids = [format_sid(sid) for sid in raw_sids]
        return [{"sid": sid, "dn": resolved.get(sid, "")} for sid in sorted(sids)]

    def _describe(self, conn: Connection, account: Account) -> dict[str, Any]:
        return {
            "exists": True,
            "ours": True,
            "dn": account.dn,
            "samAccountName": account.sam_account_name,
            "userPrincipalName": account.user_principal_name,
            "displayName": account.display_name,
            "enabled": account.enabled,
            "marker": account.marker[len(p.MARKER_PREFIX) :],
            "memberOf": sorted(account.member_of),
            "tokenGroups": self._token_groups(conn, account.dn),
        }

    # ---- operations -------------------------------------------------------------------------------------------

    def ensure_account(self, sam: str, upn: str, display_name: str, marker: str, password: str) -> dict[str, Any]:
        """Create the account enabled with `password`, or re-enable our existing one and set the password."""

        def action(conn: Connection) -> dict[str, Any]:
            account = self._find_account(conn, sam)
            if account is None:
                created = True
                dn = f"CN={escape_rdn(display_name)},{self._ou_dn}"
                try:
                    _add(
                        conn,
                        dn,
                        ["top", "person", "organizationalPerson", "user"],
                        {
                            "sAMAccountName": sam,
                            "userPrincipalName": upn,
                            "displayName": display_name,
                            MARKER_ATTRIBUTE: p.MARKER_PREFIX + marker,
                            "unicodePwd": _unicode_pwd(password),
                            "userAccountControl": str(UAC_NORMAL_ACCOUNT),
                        },
                    )
                except ldap_errors.LDAPEntryAlreadyExistsResult:
                    raise DirectoryError(p.E_NAME_CONFLICT, f"an object named {display_name!r} is already in the OU") from None
                except (ldap_errors.LDAPConstraintViolationResult, ldap_errors.LDAPUnwillingToPerformResult) as error:
                    self._raise_password_or(error)
            else:
                created = False
                self._check_ours(account, marker)
                changes: dict[str, list[tuple[str, list[Any]]]] = {
                    "unicodePwd": [(MODIFY_REPLACE, [_unicode_pwd(password)])],
                    "userAccountControl": [(MODIFY_REPLACE, [str((account.uac | UAC_NORMAL_ACCOUNT) & ~UAC_ACCOUNTDISABLE)])],
                    # A technician who mistyped the last one-time password would otherwise stay locked out.
                    "lockoutTime": [(MODIFY_REPLACE, ["0"])],
                }
                if account.display_name != display_name:
                    changes["displayName"] = [(MODIFY_REPLACE, [display_name])]
                if account.user_principal_name != upn:
                    changes["userPrincipalName"] = [(MODIFY_REPLACE, [upn])]
                try:
                    _modify(conn, account.dn, changes)
                except (ldap_errors.LDAPConstraintViolationResult, ldap_errors.LDAPUnwillingToPerformResult) as error:
                    self._raise_password_or(error)
            after = self._find_account(conn, sam)
            if after is None or not after.enabled or after.marker != p.MARKER_PREFIX + marker:
                raise DirectoryError(p.E_VERIFY_FAILED, f"{sam!r} did not read back as an enabled, marked account")
            return {"created": created, **self._describe(conn, after)}

        return self.run(action)

    @staticmethod
    def _raise_password_or(error: ldap_errors.LDAPOperationResult) -> None:
        if _PASSWORD_RESTRICTION in str(error.message).upper():
            raise DirectoryError(p.E_PASSWORD_REJECTED, "the domain's password policy refused the one-time password") from None
        raise DirectoryError(p.E_LDAP_ERROR, f"{error.description}: {error.message}") from None

    def add_to_group(self, sam: str, marker: str, group_name: str) -> dict[str, Any]:
        def action(conn: Connection) -> dict[str, Any]:
            account = self._require_ours(conn, sam, marker)
            group = self._resolve_allowed(conn, group_name)
            changed = False
            if group.dn.lower() not in {dn.lower() for dn in account.member_of}:
                try:
                    _modify(conn, group.dn, {"member": [(MODIFY_ADD, [account.dn])]})
                    changed = True
                except (ldap_errors.LDAPEntryAlreadyExistsResult, ldap_errors.LDAPAttributeOrValueExistsResult):
                    pass  # already a member (a concurrent or repeated command): the goal holds
            after = self._require_ours(conn, sam, marker)
            described = self._describe(conn, after)
            if group.sid not in {g["sid"] for g in described["tokenGroups"]}:
                raise DirectoryError(p.E_VERIFY_FAILED, f"{sam!r} is not effectively in {group.name!r} after adding it")
            return {"changed": changed, "group": group.to_json(), **described}

        return self.run(action)

    def remove_from_group(self, sam: str, marker: str, group_name: str) -> dict[str, Any]:
        def action(conn: Connection) -> dict[str, Any]:
            account = self._find_account(conn, sam)
            group = self._resolve_allowed(conn, group_name)
            if account is None:
                return {"changed": False, "exists": False, "group": group.to_json()}
            self._check_ours(account, marker)
            changed = False
            if group.dn.lower() in {dn.lower() for dn in account.member_of}:
                try:
                    _modify(conn, group.dn, {"member": [(MODIFY_DELETE, [account.dn])]})
                    changed = True
                except (ldap_errors.LDAPNoSuchAttributeResult, ldap_errors.LDAPUnwillingToPerformResult):
                    pass  # not a member any more (AD says unwillingToPerform, Samba noSuchAttribute): the goal holds
            after = self._require_ours(conn, sam, marker)
            described = self._describe(conn, after)
            if group.sid in {g["sid"] for g in described["tokenGroups"]}:
                # Still effectively a member through a nested group nobody asked us to manage: say so loudly.
                raise DirectoryError(p.E_VERIFY_FAILED, f"{sam!r} is still effectively in {group.name!r} (nested membership)")
            return {"changed": changed, "group": group.to_json(), **described}

        return self.run(action)

    def disable(self, sam: str, marker: str) -> dict[str, Any]:
        """Disable the account and reset its password to a random one nobody knows (ends sessions that re-auth)."""

        def action(conn: Connection) -> dict[str, Any]:
            account = self._find_account(conn, sam)
            if account is None:
                return {"exists": False}
            self._check_ours(account, marker)
            _modify(
                conn,
                account.dn,
                {
                    "userAccountControl": [(MODIFY_REPLACE, [str(account.uac | UAC_ACCOUNTDISABLE)])],
                    "unicodePwd": [(MODIFY_REPLACE, [_unicode_pwd(random_password())])],
                },
            )
            after = self._require_ours(conn, sam, marker)
            if after.enabled:
                raise DirectoryError(p.E_VERIFY_FAILED, f"{sam!r} still reads back as enabled")
            return {"passwordReset": True, **self._describe(conn, after)}

        return self.run(action)

    def delete(self, sam: str, marker: str) -> dict[str, Any]:
        def action(conn: Connection) -> dict[str, Any]:
            account = self._find_account(conn, sam)
            if account is None:
                return {"deleted": False, "exists": False}
            self._check_ours(account, marker)
            with suppress(ldap_errors.LDAPNoSuchObjectResult):
                _delete(conn, account.dn)
            if self._find_account(conn, sam) is not None:
                raise DirectoryError(p.E_VERIFY_FAILED, f"{sam!r} still exists after delete")
            return {"deleted": True, "exists": False, "dn": account.dn}

        return self.run(action)

    def read_back(self, sam: str, marker: str) -> dict[str, Any]:
        """The account's state. Accounts that are not ours are reported as such, without their details."""

        def action(conn: Connection) -> dict[str, Any]:
            account = self._find_account(conn, sam)
            if account is None:
                return {"exists": False}
            try:
                self._check_ours(account, marker)
            except DirectoryError as refusal:
                return {"exists": True, "ours": False, "reason": refusal.message}
            return self._describe(conn, account)

        return self.run(action)

    def list_groups(self) -> dict[str, Any]:
        def action(conn: Connection) -> dict[str, Any]:
            found, missing = self._allowed_groups(conn)
            return {"groups": [g.to_json() for g in found], "missing": missing}

        return self.run(action)

    def marked_accounts(self, marker_prefix: str = "") -> dict[str, Any]:
        """Every account under the OU whose marker starts with MARKER_PREFIX + marker_prefix (for drift detection)."""

        def action(conn: Connection) -> dict[str, Any]:
            value = escape_filter_chars(p.MARKER_PREFIX + marker_prefix)
            entries = conn.extend.standard.paged_search(
                self._ou_dn,
                f"(&(objectClass=user)({MARKER_ATTRIBUTE}={value}*))",
                SUBTREE,
                attributes=_ACCOUNT_ATTRIBUTES,
                paged_size=500,
                generator=True,
            )
            accounts: list[dict[str, Any]] = []
            for entry in entries:
                if entry.get("type") != "searchResEntry":
                    continue
                attributes = entry["attributes"]
                uac = int(_first(attributes, "userAccountControl") or 0)
                accounts.append(
                    {
                        "dn": str(entry["dn"]),
                        "samAccountName": str(_first(attributes, "sAMAccountName")),
                        "marker": str(_first(attributes, MARKER_ATTRIBUTE))[len(p.MARKER_PREFIX) :],
                        "enabled": not uac & UAC_ACCOUNTDISABLE,
                        "memberOf": sorted(str(dn) for dn in attributes.get("memberOf", [])),
                    }
                )
            accounts.sort(key=lambda a: a["samAccountName"].lower())
            return {"accounts": accounts}

        return self.run(action)
