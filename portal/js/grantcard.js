// One grant as a card: what it gives, to whom, in which tenant, its state and time left, and what the signed-in
// person may do with it (see the Temporary Access Pass once, extend, revoke). Used by the grants list and a
// grant's own page.

import { api, describe } from "./api.js";
import { dialog, field, fill, h, showErrors, uid } from "./dom.js";
import { clock, grantAccess, grantUser, humanDuration, isoToLocalInput, localInputToIso, secondsUntil, timeElement, when } from "./format.js";

const ENDED = new Set(["Expired", "Revoked", "Denied", "Cancelled", "Failed"]);
const REVOCABLE = new Set(["AwaitingApproval", "Scheduled", "Provisioning", "Active"]);
const EXTENDABLE = new Set(["Scheduled", "Active"]);

const STATUS_TEXT = {
  AwaitingApproval: "Waiting for approval",
  Scheduled: "Scheduled",
  Provisioning: "Being set up",
  Active: "Active",
  Expiring: "Being taken away",
  Expired: "Expired",
  Revoked: "Revoked",
  Denied: "Denied",
  Cancelled: "Cancelled",
  Failed: "Failed",
};

export function statusBadge(status) {
  return h("span", { class: `status status--${status.toLowerCase()}`, dataset: { status } }, STATUS_TEXT[status] || status);
}

/** "1 h 12 min left", "starts in 3 h", "ended 10 min ago" (refreshed by `tickCountdowns`). */
function timeText(grant) {
  if (ENDED.has(grant.status)) return grant.revokedDateTime ? `ended ${when(grant.revokedDateTime)}` : `ended`;
  const toStart = secondsUntil(grant.startDateTime);
  if (grant.status === "Scheduled" && toStart > 0) return `starts in ${humanDuration(toStart)}`;
  if (grant.status === "AwaitingApproval") return `would last ${humanDuration(secondsUntil(grant.endDateTime, new Date(grant.startDateTime).getTime()))}`;
  const left = secondsUntil(grant.endDateTime);
  return left > 0 ? `${humanDuration(left)} left` : "ending now";
}

export function tickCountdowns(root) {
  for (const element of root.querySelectorAll("[data-countdown]")) {
    const grant = element._grant;
    if (grant) element.textContent = timeText(grant);
  }
  for (const element of root.querySelectorAll("[data-tap-expiry]")) {
    const left = secondsUntil(element.dataset.tapExpiry);
    element.textContent = left > 0 ? `expires in ${clock(left)}` : "has expired";
  }
}

/** Revealed passes, by grant id: in this page's memory only, gone with a reload or when the person hides them. */
const revealed = new Map();

export function forgetRevealed() {
  revealed.clear();
}

/**
 * The card's content for `grant`. `ctx` is the page context, `options.onChanged(grant, retryAfter)` is told of
 * every answer an action got, `options.tenantName(id)` names tenants, `options.detail` shows history too.
 */
export function grantCard(ctx, grant, options) {
  const titleId = `grant-${grant.id}-title`;
  const card = h("article", { class: "card grant", id: `grant-${grant.id}`, "aria-labelledby": titleId, dataset: { grantId: grant.id, status: grant.status } });
  renderInto(card, ctx, grant, options);
  return card;
}

export function renderInto(card, ctx, grant, options) {
  const focused = document.activeElement && card.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  const titleId = `grant-${grant.id}-title`;
  const mine = grant.requesterId === ctx.me.id;
  const mayChange = mine || ctx.isAdmin;
  const countdown = h("span", { class: "countdown", dataset: { countdown: "" } }, timeText(grant));
  countdown._grant = grant;
  card.dataset.status = grant.status;

  const facts = [
    ["For", grantUser(grant)],
    ["Tenant", options.tenantName(grant.tenantId)],
    ["When", [timeElement(h, grant.startDateTime), " – ", timeElement(h, grant.endDateTime), " · ", countdown]],
    ["Reason", grant.reason],
    grant.ticketId ? ["Ticket", grant.ticketId] : null,
    mine ? null : ["Requested by", grant.requestedBy],
    grant.templateName ? ["Template", grant.templateName] : null,
  ].filter(Boolean);
  const extension = grant.extension;
  if (extension && extension.status === "AwaitingApproval") {
    facts.push(["Extension", [`waiting for approval: to end ${when(extension.endDateTime)}`, extension.reason ? ` (${extension.reason})` : ""]]);
  } else if (extension && extension.status === "Denied") {
    facts.push(["Extension", `denied by ${extension.decidedBy || "an approver"}${extension.comment ? `: ${extension.comment}` : ""}`]);
  }
  if (grant.status === "Denied" || grant.status === "Cancelled" || grant.status === "Revoked") {
    // Who ended it: the decision, the cancellation, or the revoke that set it Expiring (not the system's last step).
    const ending = [...(grant.history || [])].reverse().find((t) => ["Denied", "Cancelled", "Expiring"].includes(t.to));
    const label = { Denied: "Denied by", Cancelled: "Cancelled by", Revoked: "Revoked by" }[grant.status];
    if (ending) facts.push([label, `${ending.actor}${ending.reason ? `: ${ending.reason}` : ""}`]);
  }
  if (grant.error) facts.push(["Error", typeof grant.error === "string" ? grant.error : grant.error.message || JSON.stringify(grant.error)]);

  const actions = h("div", { class: "actions" });
  const tapArea = h("div", { class: "tap-area" });
  fillTap(tapArea, ctx, grant, mine, options);

  if (mayChange && EXTENDABLE.has(grant.status) && !(extension && extension.status === "AwaitingApproval")) {
    actions.append(h("button", { type: "button", dataset: { action: "extend" }, onclick: () => extend(ctx, grant, options) }, "Extend"));
  }
  if (mayChange && REVOCABLE.has(grant.status)) {
    const label = grant.status === "Active" || grant.status === "Provisioning" ? "Revoke" : "Cancel request";
    actions.append(h("button", { type: "button", class: "danger", dataset: { action: "revoke" }, onclick: () => revoke(ctx, grant, options, label) }, label));
  }
  if (!options.detail) {
    actions.append(h("a", { href: `#/grants/${encodeURIComponent(grant.id)}`, class: "button-link", dataset: { action: "details" } }, "Details", h("span", { class: "visually-hidden" }, ` of the grant ${grantAccess(grant)}`)));
  }

  fill(
    card,
    h("header", { class: "card__header" }, h("h2", { id: titleId, class: "card__title" }, grantAccess(grant)), statusBadge(grant.status)),
    h("dl", { class: "facts" }, facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    tapArea,
    actions.childElementCount ? actions : null,
    options.detail ? details(grant) : null,
  );
  if (focused) {
    const again = card.querySelector(`[data-action="${focused}"]`);
    if (again) again.focus();
  }
}

function fillTap(area, ctx, grant, mine, options) {
  const tap = grant.temporaryAccessPass || {};
  const state = (grant.access && grant.access.temporaryAccessPass) || null;
  const shown = revealed.get(grant.id);
  if (!tap.enabled) return;
  if (shown) {
    const valueId = uid("tap");
    const copy = h("button", { type: "button", dataset: { action: "copy" } }, "Copy");
    copy.addEventListener("click", async () => {
      const ok = await copyText(shown.temporaryAccessPass, area.querySelector(".tap-value"));
      ctx.announce(ok ? "The Temporary Access Pass is copied." : "Copying failed: select the pass and copy it by hand.", { tone: ok ? "info" : "error" });
    });
    const hide = h("button", { type: "button", dataset: { action: "hide-tap" } }, "Hide it for good");
    hide.addEventListener("click", () => {
      revealed.delete(grant.id);
      options.onChanged(grant, null);
      ctx.announce("The Temporary Access Pass is hidden; it can not be shown again.");
    });
    fill(
      area,
      h(
        "section",
        { class: "tap", "aria-label": "Temporary Access Pass" },
        h("p", { class: "tap__label", id: `${valueId}-label` }, "Temporary Access Pass for ", h("strong", {}, shown.userPrincipalName)),
        h("p", {}, h("output", { class: "tap-value", id: valueId, "aria-labelledby": `${valueId}-label` }, shown.temporaryAccessPass)),
        h(
          "p",
          { class: "tap__meta" },
          "The pass ",
          h("span", { dataset: { tapExpiry: shown.expiresDateTime } }, `expires in ${clock(secondsUntil(shown.expiresDateTime))}`),
          ` (${when(shown.expiresDateTime)})`,
          shown.isUsableOnce ? "; it works for one sign-in." : "; it works for any number of sign-ins until then.",
        ),
        h("p", { class: "tap__warning" }, "Shown once: the service has erased it. It is gone when you leave or reload this page."),
        h("div", { class: "actions" }, copy, hide),
      ),
    );
    return;
  }
  if (state && state.retrievedAt) {
    fill(area, h("p", { class: "tap-note" }, `The Temporary Access Pass was shown ${when(state.retrievedAt)}; it is shown only once.`));
    return;
  }
  if (grant.status !== "Active" || !state || state.state !== "done") {
    if (ENDED.has(grant.status)) return;
    fill(area, h("p", { class: "tap-note" }, "A Temporary Access Pass will be ready here once the access is active."));
    return;
  }
  if (!mine) {
    fill(area, h("p", { class: "tap-note" }, "Only the requester can see the Temporary Access Pass."));
    return;
  }
  const reveal = h("button", { type: "button", class: "primary", dataset: { action: "reveal" } }, "Show the Temporary Access Pass");
  const note = h("p", { class: "tap-note" }, "It can be shown once: have the sign-in page ready.");
  reveal.addEventListener("click", async () => {
    reveal.disabled = true;
    try {
      const { data } = await api("GET", `/api/jit/requests/${encodeURIComponent(grant.id)}/credentials`);
      revealed.set(grant.id, data);
      ctx.announce("The Temporary Access Pass is shown. It will not be shown again.");
      // Read the grant again: it now says the pass was retrieved.
      const fresh = await api("GET", `/api/jit/requests/${encodeURIComponent(grant.id)}`);
      options.onChanged(fresh.data, fresh.retryAfter);
      const output = document.querySelector(`#grant-${CSS.escape(grant.id)} .tap-value`);
      if (output) output.closest(".tap").querySelector("button").focus();
    } catch (error) {
      reveal.disabled = false;
      const gone = error.status === 410;
      fill(note, gone ? "The Temporary Access Pass was already shown, or it has expired: it is shown only once. Revoke this grant and ask again if it was lost." : `The pass could not be shown: ${describe(error)}`);
      note.setAttribute("role", "alert");
      if (gone) reveal.remove();
    }
  });
  fill(area, reveal, note);
}

async function copyText(text, element) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Without clipboard permission: select the text so that Ctrl+C copies it.
    if (element) {
      const range = document.createRange();
      range.selectNodeContents(element);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
    return false;
  }
}

async function revoke(ctx, grant, options, label) {
  const reason = h("textarea", { rows: 2, maxlength: 1000, name: "reason" });
  const reasonField = field({ label: "Why (optional)", control: reason, name: "reason" });
  let answer = null;
  const done = await dialog({
    title: `${label}: ${grantAccess(grant)}`,
    content: [
      h("p", {}, grant.status === "Active" ? "The access is taken away now: the account loses what this grant gave it." : "The request is cancelled: nothing will be set up."),
      reasonField.wrapper,
    ],
    actions: [
      { label: "Keep it", value: "cancel" },
      { label, value: "revoke", submit: true, class: "danger" },
    ],
    onSubmit: async () => {
      try {
        const body = reason.value.trim() ? { reason: reason.value.trim() } : {};
        answer = await api("POST", `/api/jit/requests/${encodeURIComponent(grant.id)}/revoke`, { body });
        return null;
      } catch (error) {
        return describe(error);
      }
    },
  });
  if (done && answer) {
    options.onChanged(answer.data, answer.retryAfter);
    ctx.announce(answer.data.status === "Cancelled" ? "The request is cancelled." : "Revoking: the access is being taken away.");
  }
}

async function extend(ctx, grant, options) {
  const end = new Date(grant.endDateTime);
  const input = h("input", { type: "datetime-local", required: true, name: "endDateTime", value: isoToLocalInput(new Date(end.getTime() + 3600_000).toISOString()) });
  const endField = field({ label: "New end", control: input, name: "endDateTime", hint: `Now ends ${when(grant.endDateTime)}.` });
  const quick = h(
    "div",
    { class: "chips", role: "group", "aria-label": "Add to the current end" },
    [30, 60, 120].map((minutes) =>
      h("button", { type: "button", class: "chip", onclick: () => (input.value = isoToLocalInput(new Date(end.getTime() + minutes * 60_000).toISOString())) }, `+${humanDuration(minutes * 60)}`),
    ),
  );
  const reason = h("textarea", { rows: 2, maxlength: 1000, name: "reason" });
  const reasonField = field({ label: "Why", control: reason, name: "reason" });
  let answer = null;
  const done = await dialog({
    title: `Extend: ${grantAccess(grant)}`,
    content: [endField.wrapper, quick, reasonField.wrapper],
    actions: [
      { label: "Cancel", value: "cancel" },
      { label: "Extend", value: "extend", submit: true, class: "primary" },
    ],
    onSubmit: async () => {
      showErrors(endField.error, input, []);
      try {
        answer = await api("POST", `/api/jit/requests/${encodeURIComponent(grant.id)}/extend`, {
          body: { endDateTime: localInputToIso(input.value), reason: reason.value.trim() },
        });
        return null;
      } catch (error) {
        const about = (error.fieldErrors || []).filter((e) => e.field === "endDateTime");
        if (about.length) {
          showErrors(endField.error, input, about.map((e) => e.detail));
          input.focus();
          return "The new end is not possible.";
        }
        return describe(error);
      }
    },
  });
  if (done && answer) {
    options.onChanged(answer.data, answer.retryAfter);
    const ext = answer.data.extension;
    ctx.announce(ext && ext.status === "AwaitingApproval" ? "The extension is waiting for an approver." : `Extended: it now ends ${when(answer.data.endDateTime)}.`);
  }
}

function details(grant) {
  const access = grant.access || {};
  const rows = (grant.history || []).map((t) =>
    h("tr", {}, h("td", {}, timeElement(h, t.at, { seconds: true })), h("td", {}, t.from ? `${t.from} → ${t.to}` : t.to), h("td", {}, t.actor), h("td", {}, t.reason || "")),
  );
  const held = [
    access.user ? `Account: ${access.user.userPrincipalName}${access.user.created ? " (created for this grant)" : ""}` : null,
    ...(access.roles || []).map((r) => `Role ${r.name || r.roleDefinitionId}: ${r.state}`),
    ...(access.groups || []).map((g) => `Group ${g.name || g.id}: ${g.state}`),
    access.temporaryAccessPass ? `Temporary Access Pass: ${access.temporaryAccessPass.state}${access.temporaryAccessPass.expiresAt ? `, expires ${when(access.temporaryAccessPass.expiresAt)}` : ""}` : null,
    access.expiration && access.expiration.remaining ? `Still to take away: ${access.expiration.remaining.join(", ")}` : null,
  ].filter(Boolean);
  return h(
    "div",
    { class: "grant-details" },
    h("h3", {}, "In the directory"),
    held.length ? h("ul", {}, held.map((line) => h("li", {}, line))) : h("p", {}, "Nothing yet."),
    h("h3", {}, "History"),
    h(
      "div",
      { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "History" },
      h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Change"), h("th", { scope: "col" }, "By"), h("th", { scope: "col" }, "Why"))), h("tbody", {}, rows)),
    ),
    h("p", { class: "hint" }, `Grant ${grant.id}`),
  );
}
