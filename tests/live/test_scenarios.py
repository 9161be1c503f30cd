"""End to end against the directory under test: the product (on Azurite) does the work through its API, queue and
timers; the suite checks the directory with its own Graph calls. The same code runs against a real tenant and the
simulator (docs/live-testing.md); only time differs — waited out against a tenant, moved by hand in the simulator.

Grants that are left to expire are made together and ended together, so a live run waits for one window only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from jit.domain.accounts import random_password

from .cleanup import sweep_until_clean
from .directory import DirectoryUnderTest
from .graph import DirectoryApi, eventually
from .product import Jit

# All of it shares one product and one tenant: keep it on one xdist worker (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("live-suite")

ENDING_CASES = {
    # case: (user, expiration actions)
    "delete": ("new", ["DeleteUser"]),
    "disable": ("new", ["DisableUser"]),
    "remove-roles": ("new", ["RemoveRoles"]),
    "remove-groups": ("new", ["RemoveGroups"]),
    "existing": ("existing", None),
    "drift": ("new", ["RemoveRoles"]),
}


@dataclass
class Observed:
    """The account as Graph shows it."""

    user: dict[str, Any] | None
    deleted: bool
    roles: set[str]
    member: bool
    taps: list[dict[str, Any]]

    @property
    def enabled(self) -> bool | None:
        return None if self.user is None else bool(self.user["accountEnabled"])


def observe(api: DirectoryApi, user_id: str, group_id: str) -> Observed:
    user = api.user(user_id)
    return Observed(
        user=user,
        deleted=user is None and api.deleted_user(user_id) is not None,
        roles=api.roles_of(user_id),
        member=user_id.lower() in api.members_of(group_id),
        taps=api.taps(user_id) if user is not None else [],
    )


def read_back(directory: DirectoryUnderTest, user_id: str, group_id: str, expected: Callable[[Observed], bool]) -> Observed:
    """The account once Graph shows what is expected — or, when replication takes too long, as it stands."""
    return eventually(lambda: observe(directory.api, user_id, group_id), expected, directory.settle_s, directory.poll_s)


def request_body(directory: DirectoryUnderTest, case: str, group_id: str, user: dict[str, Any], **extra: Any) -> dict[str, Any]:
    minutes = int(directory.options.window.total_seconds() // 60)
    return {
        "tenantId": directory.tenant,
        "user": user,
        "duration": f"PT{minutes}M",
        "roles": [directory.options.role],
        "groups": [group_id],
        "reason": f"Live suite {directory.run_id}: {case}",
        "ticketId": directory.run_id,
        **extra,
    }


def new_user(directory: DirectoryUnderTest, case: str) -> dict[str, Any]:
    # The run id leads the display name, so the cleanup finds the account the product creates.
    return {"type": "new", "displayName": f"{directory.run_id} {case}"}


def account_of(view: dict[str, Any]) -> str:
    user = view["access"]["user"]
    assert user and user.get("id"), view
    return str(user["id"])


def active(live: Jit, created: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    views = live.settle([g["id"] for g in created])
    for view in views.values():
        assert view["status"] == "Active", (view, live.failures())
    return views


def next_second() -> None:
    """Directory timestamps have whole seconds: make sure a change made from now on gets a later one."""
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1_000_000)


# A new account with a role, a group and a Temporary Access Pass ---------------------------------------------------


def test_a_new_account_gets_role_group_and_a_pass_that_is_handed_out_once(
    live: Jit, directory: DirectoryUnderTest, role_id: str, group_id: str
) -> None:
    body = request_body(
        directory, "new account", group_id, new_user(directory, "new account"),
        temporaryAccessPass={"enabled": True, "lifetimeInMinutes": 60, "isUsableOnce": True},
    )
    created = live.request(body)
    grant = active(live, [created])[created["id"]]
    user_id = account_of(grant)

    seen = read_back(directory, user_id, group_id, lambda o: o.roles == {role_id} and o.member and len(o.taps) == 1)
    assert seen.user is not None and seen.enabled is True
    assert seen.user["employeeType"] == f"JIT:{grant['id']}"  # the product's marker: this account is the grant's
    assert seen.user["displayName"] == f"{directory.run_id} new account"
    assert seen.roles == {role_id}
    assert seen.member
    [tap] = seen.taps
    assert tap["isUsableOnce"] is True and tap["lifetimeInMinutes"] == 60
    assert tap.get("temporaryAccessPass") is None  # Graph shows the secret only in the answer to its creation

    first = live.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert first.status_code == 200, first.get_body()
    assert first.headers["Cache-Control"] == "no-store"
    credentials = json.loads(first.get_body())
    # The pass is a real credential against a tenant: it goes into no assertion pytest could print.
    secret = credentials.pop("temporaryAccessPass", None)
    usable = isinstance(secret, str) and len(secret) >= 8
    assert usable, "the answer carries no usable temporaryAccessPass"
    assert credentials["userPrincipalName"].lower() == seen.user["userPrincipalName"].lower()
    again = live.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert again.status_code == 410
    leaked = str(secret) in again.get_body().decode()
    del secret
    assert not leaked, "the second answer repeats the pass"
    assert live.grant(grant["id"])["access"]["temporaryAccessPass"]["retrievedAt"] is not None

    # Revoked early: the account (a DeleteUser grant, the default) goes at once.
    revoked = live.revoke(grant["id"], "work finished early (live suite)")
    assert revoked["status"] == "Revoked", (revoked, live.failures())
    gone = read_back(directory, user_id, group_id, lambda o: o.user is None and o.deleted)
    assert gone.user is None and gone.deleted  # soft-deleted: restorable for 30 days, as Entra does
    assert gone.roles == set() and not gone.member


# Grants left to run out ------------------------------------------------------------------------------------------


@dataclass
class Ended:
    active: dict[str, Any]  # the grant's view while it was active
    before: Observed  # the account while the grant was active
    ended: dict[str, Any]  # the grant's view after its end
    user_id: str


@pytest.fixture(scope="module")
def ended(jit: Jit, directory: DirectoryUnderTest, role_id: str, group_id: str, existing_user: str) -> dict[str, Ended]:
    """One grant per expiration case, all made active, then all run out together."""
    jit.install()
    created: dict[str, dict[str, Any]] = {}
    for case, (kind, actions) in ENDING_CASES.items():
        user = new_user(directory, case) if kind == "new" else {"type": "existing", "id": existing_user}
        extra = {"expirationActions": actions} if actions else {}
        created[case] = jit.request(request_body(directory, case, group_id, user, **extra))
    views = active(jit, list(created.values()))
    before = {
        case: read_back(directory, account_of(views[g["id"]]), group_id, granted(role_id, with_pass=ENDING_CASES[case][0] == "new"))
        for case, g in created.items()
    }
    next_second()
    after = jit.end(views.values())
    return {
        case: Ended(views[g["id"]], before[case], after[g["id"]], account_of(views[g["id"]])) for case, g in created.items()
    }


def granted(role_id: str, *, with_pass: bool) -> Callable[[Observed], bool]:
    def check(seen: Observed) -> bool:
        return role_id in seen.roles and seen.member and len(seen.taps) == (1 if with_pass else 0)

    return check


def ended_case(ended: dict[str, Ended], case: str, role_id: str, jit: Jit) -> Ended:
    """The case, after checking what every one of them shares: it was active with the role, the group and (for a
    new account) a pass, and it expired."""
    result = ended[case]
    assert role_id in result.before.roles and result.before.member, result.before
    assert (len(result.before.taps) == 1) == (ENDING_CASES[case][0] == "new"), result.before.taps
    assert result.ended["status"] == "Expired", (result.ended, jit.failures())
    return result


def test_delete_user_at_the_end(live: Jit, directory: DirectoryUnderTest, ended: dict[str, Ended], role_id: str, group_id: str) -> None:
    case = ended_case(ended, "delete", role_id, live)
    assert case.ended["access"]["expiration"]["actions"] == ["DeleteUser"]
    seen = read_back(directory, case.user_id, group_id, lambda o: o.user is None and o.deleted)
    assert seen.user is None and seen.deleted
    assert seen.roles == set() and not seen.member


def test_disable_user_at_the_end_rotates_the_password(
    live: Jit, directory: DirectoryUnderTest, ended: dict[str, Ended], role_id: str, group_id: str
) -> None:
    case = ended_case(ended, "disable", role_id, live)
    assert case.before.user is not None
    changed_before = case.before.user["lastPasswordChangeDateTime"]
    sessions_before = case.before.user["signInSessionsValidFromDateTime"]
    seen = read_back(
        directory, case.user_id, group_id,
        lambda o: o.enabled is False and o.user is not None
        and o.user["lastPasswordChangeDateTime"] != changed_before and o.user["signInSessionsValidFromDateTime"] != sessions_before,
    )
    assert seen.user is not None, "DisableUser must keep the account"
    assert seen.enabled is False
    assert seen.user["lastPasswordChangeDateTime"] > changed_before  # a new password nobody knows
    assert seen.user["signInSessionsValidFromDateTime"] > sessions_before  # its sessions were revoked
    assert seen.roles == set()  # an account is disabled only after its roles are gone
    assert not seen.member
    assert seen.taps == []  # a pass never outlives its grant


def test_remove_roles_at_the_end_keeps_the_account_and_its_group(
    live: Jit, directory: DirectoryUnderTest, ended: dict[str, Ended], role_id: str, group_id: str
) -> None:
    case = ended_case(ended, "remove-roles", role_id, live)
    seen = read_back(directory, case.user_id, group_id, lambda o: o.roles == set() and o.taps == [])
    assert seen.enabled is True
    assert seen.roles == set()
    assert seen.member
    assert seen.taps == []


def test_remove_groups_at_the_end_keeps_the_account_and_its_role(
    live: Jit, directory: DirectoryUnderTest, ended: dict[str, Ended], role_id: str, group_id: str
) -> None:
    case = ended_case(ended, "remove-groups", role_id, live)
    seen = read_back(directory, case.user_id, group_id, lambda o: not o.member and o.taps == [])
    assert seen.enabled is True
    assert seen.roles == {role_id}
    assert not seen.member
    assert seen.taps == []


def test_an_existing_account_loses_only_what_the_grant_added(
    live: Jit, directory: DirectoryUnderTest, ended: dict[str, Ended], role_id: str, group_id: str, existing_user: str
) -> None:
    case = ended_case(ended, "existing", role_id, live)
    assert case.user_id == existing_user
    states = {r["state"] for r in case.active["access"]["roles"]} | {g["state"] for g in case.active["access"]["groups"]}
    assert states == {"done", "preexisting"}  # the role is the grant's; the membership was there before
    seen = read_back(directory, existing_user, group_id, lambda o: o.roles == set())
    assert seen.user is not None and seen.enabled is True  # never deleted or disabled
    assert seen.roles == set()
    assert seen.member  # it was a member before the grant: it stays one
    assert seen.taps == []


# Drift ---------------------------------------------------------------------------------------------------------


def test_a_role_put_back_on_an_ended_grants_account_is_reported_and_taken_away(
    live: Jit, directory: DirectoryUnderTest, ended: dict[str, Ended], role_id: str, group_id: str
) -> None:
    """The account is the grant's (it carries the grant's marker): the drift check takes everything away again and
    disables it — the product's rule for an account of its own that regained access after the end."""
    case = ended_case(ended, "drift", role_id, live)
    read_back(directory, case.user_id, group_id, lambda o: o.roles == set())
    directory.api.assign_role(case.user_id, role_id)  # an administrator puts it back, outside the product
    assert role_id in read_back(directory, case.user_id, group_id, lambda o: role_id in o.roles).roles

    def mine(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [f for f in findings if f.get("grantId") == case.ended["id"]]

    findings = mine(eventually(live.drift, lambda f: bool(mine(f)), directory.settle_s, max(directory.poll_s * 5, 0.05)))
    assert [f["kind"] for f in findings][:1] == ["EndedGrantAccessPresent"], findings
    assert "holds role" in findings[0]["detail"]
    assert findings[0]["userId"].lower() == case.user_id.lower()
    assert findings[0]["remediated"] is True
    seen = read_back(directory, case.user_id, group_id, lambda o: o.roles == set() and o.enabled is False)
    assert seen.roles == set()
    assert seen.enabled is False


# The cleanup itself ---------------------------------------------------------------------------------------------


def test_the_cleanup_removes_everything_named_with_the_run(directory: DirectoryUnderTest, role_id: str) -> None:
    """What the finalizer and `scripts/test-live --cleanup-only` rely on: a sweep by name prefix leaves nothing."""
    api = directory.api
    prefix = f"{directory.run_id}-sweep"
    user_id = api.create_user(f"{prefix} user", f"{prefix}@{api.initial_domain()}", random_password(24))
    group = api.create_security_group(f"{prefix} group", prefix.replace("-", ""))
    eventually(lambda: api.user(user_id), lambda u: u is not None, directory.settle_s, directory.poll_s)
    api.add_member(group, user_id)
    api.assign_role(user_id, role_id)

    swept = sweep_until_clean(api, prefix, timeout_s=directory.settle_s, interval_s=max(directory.poll_s * 5, 0.05))
    assert swept.failures == []
    assert (swept.role_assignments, swept.users, swept.purged, swept.groups) == (1, 1, 1, 1)
    assert api.users_named(prefix) == [] and api.groups_named(prefix) == [] and api.deleted_users_named(prefix) == []
    with pytest.raises(ValueError, match="only names starting with"):
        sweep_until_clean(api, "contoso", timeout_s=0, interval_s=0)
