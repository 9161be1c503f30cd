"""The portal in a real browser against the local stack: a technician asks, an approver decides, the technician
sees the grant go Active and its Temporary Access Pass exactly once; a denial; policy problems shown next to the
field before anything is sent; the audit trail verified; the approver's inbox on a phone.

Each test leaves a picture of where it ended in docs/screenshots/ (the README opens with one)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from devstack.notification_sink import NotificationSink
from tests.browser.conftest import DESKTOP, PHONE, accessibility_problems, screenshot
from tests.browser.signin import sign_in

DEMO_TENANT = "demo.onmicrosoft.com"
SETTLE_MS = 30_000  # provisioning on the local stack takes about a second; room for a slow machine


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenantId": DEMO_TENANT,
        "user": {"type": "new", "displayName": "Mail helper"},
        "duration": "PT1H",
        "roles": ["Global Administrator"],
        "reason": "Tenant-wide mail flow change",
        "ticketId": "INC1001",
    }
    body.update(overrides)
    return body


def test_technician_asks_approver_approves_technician_sees_the_tap_once(people: Any) -> None:
    tess = people("Tess Technician")
    page = tess.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Request access")
    # The only Ready tenant is chosen; its live roles are listed, privileged ones marked.
    page.get_by_label("Name of the new account").fill("Break glass helper")
    page.get_by_label("Find a role").fill("global admin")
    role = page.locator(".choice-list li:not([hidden])", has_text="Global Administrator")
    expect(role.locator(".tag--privileged")).to_have_text("privileged")
    page.get_by_label("Global Administrator").check()
    page.get_by_label("Reason").fill("Conditional Access change for the whole tenant")
    page.get_by_label("Ticket").fill("INC4711")
    # The dry run says, before sending, that an approver must agree and which rule asks for it.
    assessment = page.locator(".assessment")
    expect(assessment).to_contain_text("An approver must agree first")
    expect(assessment).to_contain_text("Role needs approval: Global Administrator")
    expect(page.get_by_role("button", name="Send for approval")).to_be_visible()
    assert accessibility_problems(page) == []
    assessment.scroll_into_view_if_needed()
    screenshot(page, "request-form")
    page.get_by_role("button", name="Send for approval").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Grant: Global Administrator")
    card = page.locator("article.grant")
    expect(card.locator(".status")).to_have_text("Waiting for approval")

    avery = people("Avery Approver")
    inbox = avery.page
    expect(inbox.get_by_role("heading", level=1)).to_have_text("Approvals")
    waiting = inbox.locator("article.approval", has_text="Break glass helper")
    expect(waiting).to_contain_text("tess.technician@msp.example.com")
    expect(waiting).to_contain_text("Conditional Access change for the whole tenant")
    expect(waiting.locator(".rules")).to_contain_text("rolesRequiringApproval")
    waiting.get_by_label("Comment (optional)").fill("Agreed in the change board")
    screenshot(inbox, "approvals")
    waiting.get_by_role("button", name="Approve").click()
    expect(inbox.locator("#toast")).to_contain_text("Approved")
    expect(waiting).to_have_count(0)

    # The technician's page follows the grant by itself (polling with Retry-After) until it is Active.
    expect(card.locator(".status")).to_have_text("Active", timeout=SETTLE_MS)
    expect(card).to_contain_text("left")
    card.get_by_role("button", name="Show the Temporary Access Pass").click()
    tap = card.locator(".tap-value")
    expect(tap).to_have_text(re.compile(r"^\S{8,}$"))
    expect(card.locator("[data-tap-expiry]")).to_contain_text("expires in")
    expect(card).to_contain_text("Shown once")
    screenshot(page, "tap-once")
    shown = tap.inner_text()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    card.get_by_role("button", name="Copy").click()
    expect(page.locator("#toast")).to_contain_text("copied")
    assert page.evaluate("navigator.clipboard.readText()") == shown
    # Tokens and sign-in state live in this tab's sessionStorage only; the pass in no storage at all.
    assert page.evaluate("localStorage.length") == 0
    stored = page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
    assert "access_token" in stored and shown not in stored

    # Once is once: after a reload the pass is gone, and the API says so too.
    page.reload()
    expect(card.locator(".status")).to_have_text("Active")
    expect(card.locator(".tap-value")).to_have_count(0)
    expect(card.get_by_role("button", name="Show the Temporary Access Pass")).to_have_count(0)
    expect(card).to_contain_text("was shown")
    assert shown not in page.content()
    grant_id = card.get_attribute("data-grant-id")
    technician = sign_in(page.url.split("/portal/")[0], "Tess Technician")
    assert technician.call("GET", f"/api/jit/requests/{grant_id}/credentials").status_code == 410


def test_approver_denies_with_a_comment(people: Any, stack: str) -> None:
    technician = sign_in(stack, "Tess Technician")
    asked = technician.call("POST", "/api/jit/requests", json=request_body(user={"type": "new", "displayName": "Denied helper"}))
    assert asked.status_code == 202, asked.text
    grant_id = asked.json()["id"]

    avery = people("Avery Approver")
    waiting = avery.page.locator(f"article.approval[data-grant-id='{grant_id}']")
    waiting.get_by_label("Comment (optional)").fill("No change window this week")
    waiting.get_by_role("button", name="Deny").click()
    expect(avery.page.locator("#toast")).to_contain_text("Denied")
    expect(waiting).to_have_count(0)

    tess = people("Tess Technician")
    tess.page.goto(f"{stack}/portal/#/grants/{grant_id}")
    card = tess.page.locator("article.grant")
    expect(card.locator(".status")).to_have_text("Denied")
    expect(card).to_contain_text("No change window this week")
    expect(card.get_by_role("button", name="Show the Temporary Access Pass")).to_have_count(0)
    screenshot(tess.page, "denied")
    assert technician.call("GET", f"/api/jit/requests/{grant_id}").json()["status"] == "Denied"


def test_technician_extends_then_revokes_a_grant(people: Any, stack: str) -> None:
    grant_id = active_grant(stack, "Extend helper")
    tess = people("Tess Technician")
    page = tess.page
    page.goto(f"{stack}/portal/#/grants/{grant_id}")
    card = page.locator("article.grant")
    expect(card.locator(".status")).to_have_text("Active")
    before = card.locator("time").nth(1).get_attribute("datetime")
    card.get_by_role("button", name="Extend").click()
    dialog = page.get_by_role("dialog", name=re.compile("Extend"))
    dialog.get_by_role("button", name="+30 min").click()
    dialog.get_by_label("Why").fill("The migration runs longer")
    dialog.get_by_role("button", name="Extend").click()
    expect(dialog).to_have_count(0)
    expect(page.locator("#toast")).to_contain_text("Extended")
    expect(card.locator("time").nth(1)).not_to_have_attribute("datetime", before or "")

    card.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog", name=re.compile("Revoke"))
    dialog.get_by_label("Why (optional)").fill("Done early")
    dialog.get_by_role("button", name="Revoke").click()
    # Expiring while the access is taken away, then Revoked once the directory shows it gone.
    expect(card.locator(".status")).to_have_text("Revoked", timeout=SETTLE_MS)
    expect(card.get_by_role("button", name="Revoke")).to_have_count(0)


def test_a_template_fills_the_form(people: Any, stack: str) -> None:
    admin = sign_in(stack, "Ada Admin")
    template = {
        "description": "Exchange work",
        "roles": ["Exchange Administrator"],
        "duration": "PT2H",
        "reasonPrefix": "Mailbox:",
    }
    assert admin.call("PUT", "/api/jit/templates/Mailbox-work", json=template).status_code in (200, 201)
    try:
        tess = people("Tess Technician")
        page = tess.page
        page.get_by_label("Template").select_option("Mailbox-work")
        expect(page.get_by_label("Exchange Administrator")).to_be_checked()
        expect(page.get_by_label("2 h")).to_be_checked()
        expect(page.locator(".prefix")).to_have_text("Mailbox: ")
        page.get_by_label("Name of the new account").fill("Template helper")
        page.get_by_label("Reason").fill("Shared mailbox permissions")
        expect(page.locator(".assessment")).to_contain_text("No approval needed")
        page.get_by_role("button", name="Request access").click()
        card = page.locator("article.grant")
        expect(card).to_contain_text("Mailbox: Shared mailbox permissions")
        expect(card).to_contain_text("Mailbox-work")
    finally:
        admin.call("DELETE", "/api/jit/templates/Mailbox-work")


@pytest.fixture
def strict_policy(stack: str) -> Any:
    """The demo tenant's own policy, set by the admin through the API: tickets INC<digits>, at most 4 hours."""
    admin = sign_in(stack, "Ada Admin")
    tenant = admin.call("GET", "/api/jit/tenants").json()["value"][0]["id"]
    current = admin.call("GET", f"/api/jit/policies/{tenant}")
    version = current.headers["ETag"] if current.json()["scope"] == tenant else '"0"'
    saved = admin.call(
        "PUT",
        f"/api/jit/policies/{tenant}",
        json={"ticketRequired": True, "ticketPattern": "^INC[0-9]+$", "maxDuration": "PT4H"},
        headers={"If-Match": version},
    )
    assert saved.status_code == 200, saved.text
    yield tenant
    # Back to a policy with no limits of its own, for the other tests of this module.
    reset = admin.call("PUT", f"/api/jit/policies/{tenant}", json={}, headers={"If-Match": saved.headers["ETag"]})
    assert reset.status_code == 200, reset.text


def test_policy_problems_show_next_to_their_fields_before_sending(people: Any, strict_policy: str) -> None:
    tess = people("Tess Technician")
    page = tess.page
    page.get_by_label("Name of the new account").fill("Exchange helper")
    page.get_by_label("Find a role").fill("exchange")
    page.get_by_label("Exchange Administrator").check()
    page.get_by_label("Reason").fill("Mailbox migration for the finance team")
    # The presets stop at the policy's maximum; a longer one typed by hand is refused next to the duration.
    expect(page.locator("fieldset[data-field=duration]")).to_contain_text("at most 4 h")
    expect(page.get_by_label("8 h")).to_have_count(0)
    page.get_by_label("Other", exact=True).check()
    page.get_by_label("Number of hours").fill("6")
    page.get_by_label("Ticket").fill("12345")
    ticket_error = page.locator(".field[data-field=ticket] .field-error")
    expect(ticket_error).to_contain_text("ticketId must match ^INC[0-9]+$")
    expect(page.get_by_label("Ticket")).to_have_attribute("aria-invalid", "true")
    duration_error = page.locator("fieldset[data-field=duration] > .field-error")
    expect(duration_error).to_contain_text("at most 4 hours")
    expect(page.locator(".assessment")).to_contain_text("Outside the policy: 2 problems")
    assert accessibility_problems(page) == []
    screenshot(page, "policy-inline")

    # Put right, the problems go away before anything is sent.
    page.get_by_label("Ticket").fill("INC2024")
    page.get_by_label("2 h").check()
    expect(ticket_error).to_be_hidden()
    expect(duration_error).to_be_hidden()
    expect(page.locator(".assessment")).to_contain_text("No approval needed")


def test_admin_verifies_the_audit_trail(people: Any, stack: str) -> None:
    technician = sign_in(stack, "Tess Technician")
    asked = technician.call("POST", "/api/jit/requests", json=request_body(roles=["Exchange Administrator"]))
    assert asked.status_code == 202, asked.text

    ada = people("Ada Admin")
    page = ada.page
    page.get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    verdict = page.locator(".verification")
    expect(verdict).to_have_attribute("data-intact", "true")
    expect(verdict).to_contain_text("Intact")
    expect(page.locator("table")).to_contain_text("grant.")
    page.get_by_label("Filter the entries shown").fill(asked.json()["id"])
    expect(page.locator("tbody tr").first).to_contain_text(asked.json()["id"])
    assert accessibility_problems(page) == []
    screenshot(page, "audit")


def test_approver_inbox_on_a_phone(people: Any, stack: str) -> None:
    technician = sign_in(stack, "Tess Technician")
    asked = technician.call("POST", "/api/jit/requests", json=request_body(user={"type": "new", "displayName": "Phone helper"}))
    assert asked.status_code == 202, asked.text
    # An admin's own request: in the admin's inbox, but not the admin's to decide.
    admin = sign_in(stack, "Ada Admin")
    own = admin.call("POST", "/api/jit/requests", json=request_body(user={"type": "new", "displayName": "Admin's own"}))
    assert own.status_code == 202, own.text

    avery = people("Avery Approver", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=1)
    page = avery.page
    card = page.locator(f"article.approval[data-grant-id='{asked.json()['id']}']")
    expect(card).to_contain_text("Phone helper")
    # One column: nothing wider than the screen, the decision buttons full width and big enough to tap.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    approve = card.get_by_role("button", name="Approve")
    box = approve.bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= PHONE["width"] * 0.7
    # The navigation sits behind a Menu button.
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("link", name="Drift")).to_be_hidden()
    assert accessibility_problems(page) == []
    screenshot(page, "approvals-phone")
    menu.click()
    expect(page.get_by_role("link", name="Drift")).to_be_visible()

    ada = people("Ada Admin", viewport=PHONE, is_mobile=True, has_touch=True)
    ada.page.goto(f"{stack}/portal/#/approvals")
    mine = ada.page.locator(f"article.approval[data-grant-id='{own.json()['id']}']")
    expect(mine.get_by_role("button", name="Approve")).to_be_disabled()
    expect(mine.get_by_role("button", name="Deny")).to_be_disabled()
    expect(mine.locator(".cannot")).to_have_text("The requester of a grant can not decide on it: someone else must decide.")
    expect(mine.get_by_role("button", name="Approve")).to_have_accessible_description(
        "The requester of a grant can not decide on it: someone else must decide."
    )


def test_notifications_reach_the_local_sink(people: Any, stack: str, browser: Any) -> None:
    admin = sign_in(stack, "Ada Admin")
    with NotificationSink() as sink:
        channel = {
            "kind": "teams",
            "addresses": [sink.teams_url("ops")],
            "description": "Local sink",
            "allowPrivateNetwork": True,
        }
        assert admin.call("PUT", "/api/jit/channels/local-sink", json=channel).status_code in (200, 201)
        try:
            tess = people("Tess Technician")
            page = tess.page
            page.get_by_label("Name of the new account").fill("Notified helper")
            page.get_by_label("Find a role").fill("exchange")
            page.get_by_label("Exchange Administrator").check()
            page.get_by_label("Reason").fill("Transport rule for the sales team")
            page.get_by_label("local-sink (teams)").check()
            expect(page.locator(".assessment")).to_contain_text("No approval needed")
            page.get_by_role("button", name="Request access").click()
            expect(page.locator("article.grant .status")).to_have_text("Active", timeout=SETTLE_MS)

            # The service posts an Adaptive Card for each event; the one for Active names the account it made.
            def active_card() -> bool:
                return any("JIT access active: jit-notified-helper-" in json.dumps(d.body) for d in sink.deliveries)

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not active_card():
                time.sleep(0.2)
            assert active_card(), [json.dumps(d.body)[:300] for d in sink.deliveries]
            viewer = browser.new_page(viewport=DESKTOP)
            viewer.goto(sink.url)
            expect(viewer.get_by_role("heading", name=re.compile(r"Teams cards \(\d+\)"))).to_be_visible()
            expect(viewer.locator("article").first).to_contain_text("JIT access")
            screenshot(viewer, "notification-sink")
            viewer.close()
        finally:
            admin.call("DELETE", "/api/jit/channels/local-sink")


ADMIN_PAGES = [
    "admin/tenants",
    "admin/policies",
    "admin/templates",
    "admin/channels",
    "admin/audit",
    "drift",
    "reports",
    "grants",
    "approvals",
    "request",
]


def test_every_admin_page_loads_and_passes_the_accessibility_rules(people: Any, stack: str) -> None:
    ada = people("Ada Admin")
    page = ada.page
    for route in ADMIN_PAGES:
        page.goto(f"{stack}/portal/#/{route}")
        expect(page.locator("main .view")).not_to_contain_text("Loading…")
        expect(page.locator("main .notice--error:visible"), route).to_have_count(0)
        assert accessibility_problems(page) == [], route
    # The navigation names the current page for assistive technology.
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Request access")
    # From the keyboard: the skip link comes first in tab order, and takes the focus to the page's heading.
    first = page.evaluate("document.querySelector('a[href], button:not([disabled]), input, select, textarea').textContent")
    assert first == "Skip to content"
    skip = page.get_by_role("link", name="Skip to content")
    skip.focus()
    expect(skip).to_be_visible()  # shown while focused
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_be_focused()


def active_grant(stack: str, display_name: str) -> str:
    """A grant that needs no approval, made through the API and followed until it is Active."""
    technician = sign_in(stack, "Tess Technician")
    body = request_body(roles=["Exchange Administrator"], user={"type": "new", "displayName": display_name})
    asked = technician.call("POST", "/api/jit/requests", json=body)
    assert asked.status_code == 202, asked.text
    grant_id = str(asked.json()["id"])
    deadline = time.monotonic() + SETTLE_MS / 1000
    while time.monotonic() < deadline:
        status = technician.call("GET", f"/api/jit/requests/{grant_id}").json()["status"]
        if status == "Active":
            return grant_id
        assert status in ("Scheduled", "Provisioning"), status
        time.sleep(0.3)
    raise AssertionError(f"grant {grant_id} is still {status}")


def test_admin_edits_a_policy_sees_its_errors_and_versions_and_downloads_the_report(people: Any, stack: str) -> None:
    grant_id = active_grant(stack, "Report helper")
    ada = people("Ada Admin")
    page = ada.page
    page.get_by_role("link", name="Policies").click()
    page.get_by_label("Policy of").select_option(label="JIT Demo Tenant (demo.onmicrosoft.com)")
    expect(page.get_by_role("heading", level=2, name=re.compile("Tenant policy"))).to_be_visible()
    # The API refuses a pattern RE2 cannot run and a duration that is none; each problem shows at its field.
    page.get_by_label("Ticket format").fill("(a)\\1")
    page.get_by_label("Longest grant", exact=True).fill("four hours")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator(".field[data-field=ticketPattern] .field-error")).to_contain_text("RE2")
    expect(page.locator(".field[data-field=maxDuration] .field-error")).to_contain_text("duration")
    expect(page.get_by_label("Ticket format")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Ticket format").fill("^CHG[0-9]+$")
    page.get_by_label("Longest grant", exact=True).fill("PT6H")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("#toast")).to_contain_text("Saved: version")
    versions = page.get_by_role("region", name="Policy versions")
    expect(versions).to_contain_text("ada.admin@msp.example.com")
    expect(versions.locator("tbody tr").first.locator("pre")).to_contain_text("^CHG[0-9]+$", use_inner_text=False)
    screenshot(page, "policy-editor")

    page.get_by_role("link", name="Monthly report").click()
    expect(page.get_by_role("region", name=re.compile("Access in"))).to_contain_text("jit-report-helper-")
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download CSV").click()
    download = downloading.value
    assert download.suggested_filename.startswith("jit-access-demo.onmicrosoft.com-")
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("grantId,user,roles,groups,from,to")
    assert any(line.startswith(f"{grant_id},jit-report-helper-") for line in text.splitlines()[1:]), text


def test_without_its_sign_in_library_the_portal_says_how_to_build_it(browser: Any, stack: str) -> None:
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.route("**/portal/vendor/**", lambda route: route.fulfill(status=404, body="not found"))
        page.goto(f"{stack}/portal/")
        expect(page.get_by_role("heading", level=1)).to_have_text("The portal cannot start")
        expect(page.get_by_role("alert")).to_contain_text("scripts/build-portal")
    finally:
        context.close()


def test_the_tenants_page_says_whether_an_on_premises_agent_reports(people: Any, stack: str) -> None:
    """A site nobody configured has no agent reporting: the admin sees it, with the reason, on the tenants page."""
    admin = sign_in(stack, "Ada Admin")
    tenant = admin.call("GET", "/api/jit/tenants").json()["value"][0]
    before = tenant["directories"]
    changed = admin.call("PATCH", f"/api/jit/tenants/{tenant['id']}", json={"directories": [*before, "ad:branch-office"]})
    assert changed.status_code == 200, changed.text
    try:
        page = people("Ada Admin").page
        page.goto(f"{stack}/portal/#/admin/tenants")
        cell = page.locator("td", has_text="ad:branch-office: not reporting")
        expect(cell).to_be_visible()
        expect(cell).to_contain_text("branch-office")
    finally:
        admin.call("PATCH", f"/api/jit/tenants/{tenant['id']}", json={"directories": before})
