"""The agent's LDAP layer against a real Samba AD DC, bound as the delegated service account (not an admin)."""

from __future__ import annotations

import uuid

import pytest
from ldap3 import BASE, MODIFY_REPLACE, SUBTREE, Connection
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from agent import protocol as p
from agent.directory import MARKER_ATTRIBUTE, Directory, DirectoryError
from tests.onprem.conftest import can_bind, connect_as, ldap_config, one_time_password, unique_sam
from tests.onprem.samba_dc import SambaDC

DA = "Domain Admins"
ADMINISTRATORS_SID = "S-1-5-32-544"  # BUILTIN\Administrators: Domain Admins are in it, so it is in their token


def group_sid(admin: Connection, name: str) -> str:
    from agent.directory import format_sid

    admin.search(SambaDC.base_dn, f"(&(objectClass=group)(cn={escape_filter_chars(name)}))", SUBTREE, attributes=["objectSid"])
    return format_sid(admin.response[0]["raw_attributes"]["objectSid"][0])


def admin_view(admin: Connection, sam: str) -> dict | None:
    admin.search(
        SambaDC.base_dn,
        f"(sAMAccountName={escape_filter_chars(sam)})",
        SUBTREE,
        attributes=["userAccountControl", "memberOf", MARKER_ATTRIBUTE],
    )
    entries = [e for e in admin.response if e["type"] == "searchResEntry"]
    return entries[0] if entries else None


def uac(view: dict | None) -> int:
    assert view is not None
    value = view["attributes"]["userAccountControl"]
    return int(value[0] if isinstance(value, list) else value)


def sids(described: dict) -> set[str]:
    return {g["sid"] for g in described["tokenGroups"]}


def test_grant_domain_admins_verified_by_token_groups_and_idempotent(
    directory: Directory, admin: Connection, running_dc: SambaDC
) -> None:
    sam, marker, password = unique_sam(), "tenant-a/tech-1", one_time_password()
    created = directory.ensure_account(sam, f"{sam}@jit.test", f"JIT {sam}", marker, password)
    assert created["created"] is True and created["enabled"] is True and created["marker"] == marker
    assert created["dn"].lower().endswith("," + running_dc.ou_dn.lower())
    assert can_bind(running_dc, created["dn"], password)
    da_sid = group_sid(admin, DA)
    assert da_sid not in sids(created)

    granted = directory.add_to_group(sam, marker, DA)
    assert granted["changed"] is True
    assert granted["group"]["sid"] == da_sid
    assert {da_sid, ADMINISTRATORS_SID} <= sids(granted)  # effective, not just the direct link
    assert f"CN=Domain Admins,CN=Users,{SambaDC.base_dn}".lower() in {dn.lower() for dn in granted["memberOf"]}

    # The same commands again end in the same state, and say nothing changed.
    again = directory.ensure_account(sam, f"{sam}@jit.test", f"JIT {sam}", marker, password)
    assert again["created"] is False and again["enabled"] is True
    regranted = directory.add_to_group(sam, marker, DA)
    assert regranted["changed"] is False and regranted["memberOf"] == granted["memberOf"]
    assert sids(regranted) == sids(granted)
    assert can_bind(running_dc, created["dn"], password)


def test_revoke_disable_resets_password_then_second_grant_reenables(
    directory: Directory, admin: Connection, running_dc: SambaDC
) -> None:
    sam, marker, first = unique_sam(), "tenant-a/tech-2", one_time_password()
    dn = directory.ensure_account(sam, f"{sam}@jit.test", f"JIT {sam}", marker, first)["dn"]
    directory.add_to_group(sam, marker, DA)

    removed = directory.remove_from_group(sam, marker, DA)
    assert removed["changed"] is True
    assert group_sid(admin, DA) not in sids(removed) and ADMINISTRATORS_SID not in sids(removed)
    assert directory.remove_from_group(sam, marker, DA)["changed"] is False  # not a member: done

    disabled = directory.disable(sam, marker)
    assert disabled["enabled"] is False and disabled["passwordReset"] is True
    assert uac(admin_view(admin, sam)) & 2
    assert not can_bind(running_dc, dn, first)  # the old password stops working at once
    read = directory.read_back(sam, marker)
    assert read["exists"] is True and read["enabled"] is False and read["memberOf"] == []
    # Even with the account re-enabled by hand, the old password is gone (the reset is real, not just the disable).
    admin.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, ["512"])]})
    assert not can_bind(running_dc, dn, first)

    second = one_time_password()
    reenabled = directory.ensure_account(sam, f"{sam}@jit.test", f"JIT {sam}", marker, second)
    assert reenabled["created"] is False and reenabled["enabled"] is True and reenabled["dn"] == dn
    assert can_bind(running_dc, dn, second) and not can_bind(running_dc, dn, first)
    assert DA.lower() not in " ".join(reenabled["memberOf"]).lower()  # re-enabling grants nothing by itself


def test_delete_is_idempotent(directory: Directory, admin: Connection) -> None:
    sam, marker = unique_sam(), "tenant-a/tech-3"
    directory.ensure_account(sam, f"{sam}@jit.test", f"JIT {sam}", marker, one_time_password())
    assert directory.delete(sam, marker)["deleted"] is True
    assert admin_view(admin, sam) is None
    assert directory.read_back(sam, marker) == {"exists": False}
    assert directory.delete(sam, marker) == {"deleted": False, "exists": False}
    assert directory.disable(sam, marker) == {"exists": False}
    with pytest.raises(DirectoryError) as refused:
        directory.add_to_group(sam, marker, DA)
    assert refused.value.code == p.E_NOT_FOUND


def _refusals(directory: Directory, sam: str, marker: str) -> list[str]:
    codes = []
    for call in (
        lambda: directory.ensure_account(sam, f"{sam}@jit.test", "Taken over", marker, one_time_password()),
        lambda: directory.add_to_group(sam, marker, DA),
        lambda: directory.remove_from_group(sam, marker, DA),
        lambda: directory.disable(sam, marker),
        lambda: directory.delete(sam, marker),
    ):
        with pytest.raises(DirectoryError) as refused:
            call()
        codes.append(refused.value.code)
    return codes


def test_refuses_accounts_without_our_marker(directory: Directory, admin: Connection, running_dc: SambaDC) -> None:
    # An account an administrator made by hand in the JIT OU: no marker.
    sam = unique_sam()
    dn = f"CN={sam},{running_dc.ou_dn}"
    admin.add(dn, ["top", "person", "organizationalPerson", "user"], {"sAMAccountName": sam, "userAccountControl": "514"})
    assert _refusals(directory, sam, "tenant-a/tech-4") == [p.E_NOT_OURS] * 5
    assert directory.read_back(sam, "tenant-a/tech-4")["ours"] is False

    # A user outside the OU who wrote a JIT marker on itself (users may write that attribute on their own object).
    outsider, outsider_password = unique_sam(), one_time_password()
    outsider_dn = f"CN={outsider},CN=Users,{SambaDC.base_dn}"
    admin.add(
        outsider_dn,
        ["top", "person", "organizationalPerson", "user"],
        {"sAMAccountName": outsider, "unicodePwd": f'"{outsider_password}"'.encode("utf-16-le"), "userAccountControl": "512"},
    )
    self_service = connect_as(running_dc, outsider_dn, outsider_password)
    self_service.modify(outsider_dn, {MARKER_ATTRIBUTE: [(MODIFY_REPLACE, ["JIT:tenant-a/tech-4"])]})  # Personal-Information
    self_service.unbind()
    assert admin_view(admin, outsider)["attributes"][MARKER_ATTRIBUTE] == ["JIT:tenant-a/tech-4"]
    assert _refusals(directory, outsider, "tenant-a/tech-4") == [p.E_NOT_OURS] * 5

    # Our own account, but another grant's marker.
    mine = unique_sam()
    directory.ensure_account(mine, f"{mine}@jit.test", f"JIT {mine}", "tenant-b/tech-9", one_time_password())
    assert _refusals(directory, mine, "tenant-a/tech-4") == [p.E_NOT_OURS] * 5

    # Nothing was changed on any of them, and the built-in Administrator stays untouchable too.
    for name in (sam, outsider):
        view = admin_view(admin, name)
        assert view is not None and view["attributes"]["memberOf"] == []
    assert uac(admin_view(admin, mine)) & 2 == 0
    with pytest.raises(DirectoryError) as refused:
        directory.disable("Administrator", "anything")
    assert refused.value.code == p.E_NOT_OURS
    assert can_bind(running_dc, running_dc.admin_dn, running_dc.admin_password)


SPECIAL_DISPLAY = ' Ann, "Q" <x+y> \\ ; = * ( )#'


def test_names_that_need_escaping(directory: Directory, admin: Connection, running_dc: SambaDC) -> None:
    sam, marker, password = unique_sam(), "tenant-a/(tech)*\\5", one_time_password()
    created = directory.ensure_account(sam, f"{sam}@jit.test", SPECIAL_DISPLAY, marker, password)
    assert created["displayName"] == SPECIAL_DISPLAY
    assert created["marker"] == marker
    # The CN is the display name, escaped: the server finds the object under exactly that RDN.
    admin.search(
        f"CN={escape_rdn(SPECIAL_DISPLAY)},{running_dc.ou_dn}", "(objectClass=user)", BASE, attributes=["sAMAccountName"]
    )
    assert admin.response[0]["attributes"]["sAMAccountName"] == [sam]
    assert can_bind(running_dc, created["dn"], password)

    # The group with every special character, looked up by its name and by its DN.
    special = running_dc.special_group
    by_name = directory.add_to_group(sam, marker, special)
    assert by_name["group"]["name"] == special and by_name["changed"] is True
    assert group_sid(admin, special) in sids(by_name)
    by_dn = directory.add_to_group(sam, marker, by_name["group"]["dn"])
    assert by_dn["changed"] is False and by_dn["group"]["sid"] == by_name["group"]["sid"]
    listed = directory.list_groups()
    assert [g["name"] for g in listed["groups"]] == [DA, special] and listed["missing"] == []

    # Marked-account listing with a prefix full of filter metacharacters matches literally.
    found = directory.marked_accounts("tenant-a/(tech)*\\")
    assert [a["samAccountName"] for a in found["accounts"]] == [sam]
    assert directory.marked_accounts("tenant-a/(tech)x")["accounts"] == []

    # sAMAccountName may hold parentheses; a filter value is never a pattern.
    odd = f"j({uuid.uuid4().hex[:6]})x"
    assert (
        directory.ensure_account(odd, f"odd{odd[2:8]}@jit.test", "Odd (one)", marker, one_time_password())["samAccountName"]
        == odd
    )
    assert directory.read_back(odd, marker)["exists"] is True
    assert directory.read_back("*", marker) == {"exists": False}
    assert directory.read_back("jit-*", marker) == {"exists": False}
    assert directory.delete(odd, marker)["deleted"] is True

    removed = directory.remove_from_group(sam, marker, special)
    assert removed["changed"] is True and group_sid(admin, special) not in sids(removed)
    assert directory.delete(sam, marker)["deleted"] is True


@pytest.mark.parametrize(
    "group",
    [
        "Enterprise Admins",  # exists, not allowed
        "Domain Admins)(cn=*",  # filter injection
        "*",
        "Domain*",
        f"CN=Enterprise Admins,CN=Users,{SambaDC.base_dn}",  # an existing group by DN, not allowed
        f"CN=Domain Admins,CN=Users,{SambaDC.base_dn},DC=evil",
    ],
)
def test_only_allowed_groups(directory: Directory, group: str) -> None:
    sam, marker = unique_sam(), "tenant-a/tech-6"
    directory.ensure_account(sam, f"{sam}@jit.test", f"JIT {sam}", marker, one_time_password())
    with pytest.raises(DirectoryError) as refused:
        directory.add_to_group(sam, marker, group)
    assert refused.value.code == p.E_GROUP_NOT_ALLOWED
    assert directory.read_back(sam, marker)["memberOf"] == []


def test_allowed_group_that_does_not_exist(running_dc: SambaDC) -> None:
    d = Directory(ldap_config(running_dc, allowed_groups=("Domain Admins", "Tier0 Operators")))
    try:
        assert d.list_groups()["missing"] == ["Tier0 Operators"]
        sam, marker = unique_sam(), "tenant-a/tech-7"
        d.ensure_account(sam, f"{sam}@jit.test", f"JIT {sam}", marker, one_time_password())
        with pytest.raises(DirectoryError) as refused:
            d.add_to_group(sam, marker, "Tier0 Operators")
        assert refused.value.code == p.E_GROUP_NOT_FOUND
    finally:
        d.close()


def test_password_policy_refusal_is_reported(directory: Directory, admin: Connection) -> None:
    sam = unique_sam()
    with pytest.raises(DirectoryError) as refused:
        directory.ensure_account(sam, f"{sam}@jit.test", f"JIT {sam}", "tenant-a/tech-8", "short")
    assert refused.value.code == p.E_PASSWORD_REJECTED and not refused.value.transient
    assert admin_view(admin, sam) is None  # created with its password in one add: nothing half-made


def test_dc_down_is_transient_and_recovers(directory: Directory, running_dc: SambaDC) -> None:
    sam, marker = unique_sam(), "tenant-a/tech-9"
    directory.ensure_account(sam, f"{sam}@jit.test", f"JIT {sam}", marker, one_time_password())
    running_dc.stop()
    try:
        with pytest.raises(DirectoryError) as down:
            directory.read_back(sam, marker)
        assert down.value.transient is True and down.value.code == p.E_LDAP_UNAVAILABLE
        with pytest.raises(DirectoryError) as still_down:  # a fresh connection attempt fails the same way
            directory.disable(sam, marker)
        assert still_down.value.transient is True
    finally:
        running_dc.start()
    assert directory.read_back(sam, marker)["enabled"] is True


def test_wrong_bind_password_and_untrusted_ca_are_transient(running_dc: SambaDC, tmp_path) -> None:
    bad = Directory(ldap_config(running_dc, password="not-the-password"))
    with pytest.raises(DirectoryError) as refused:
        bad.list_groups()
    assert refused.value.code == p.E_LDAP_BIND and refused.value.transient
    assert "not-the-password" not in refused.value.message

    from agent.sealing import generate_private_key  # any other self-signed CA will do: make one

    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(_self_signed_ca(generate_private_key()))
    untrusted = Directory(ldap_config(running_dc, ca_file=str(other_ca)))
    with pytest.raises(DirectoryError) as tls:
        untrusted.list_groups()
    assert tls.value.code == p.E_LDAP_BIND and tls.value.transient


def _self_signed_ca(key) -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Not the Samba CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()
