// The approver's inbox: requests and extensions waiting for a decision, with who asks, for whom, what, why, and the
// policy rule that asked for approval. Approve or deny with a comment. Where the API says this person may not
// decide (`canDecide`: their own request, or access they would receive), the buttons are disabled and say why.

import { api, describe } from "../api.js";
import { fill, h, uid } from "../dom.js";
import { RULE_NAMES, grantAccess, grantUser, humanDuration, secondsUntil, splitRule, timeElement, when } from "../format.js";

const REFRESH_S = 30;

/** Why this person may not decide, in words (the API's rule: not the requester, not who receives the access). */
function whyNot(ctx, item) {
  // The service says why (cannotDecideReason); its words are for people, so show them as they are.
  if (item.cannotDecideReason) {
    const reason = item.cannotDecideReason;
    return reason.charAt(0).toUpperCase() + reason.slice(1) + ": someone else must decide.";
  }
  return "The service does not let you decide on this one.";
}

export default async function approvals(ctx, root, params, scope) {
  const registry = await ctx.tenants();
  const names = new Map(registry.value.map((t) => [t.id, t.displayName || t.initialDomain || t.id]));
  const status = h("p", { class: "summary", "aria-live": "polite" });
  const refresh = h("button", { type: "button" }, "Refresh");
  const list = h("div", { class: "cards" });
  fill(root, h("div", { class: "toolbar" }, status, refresh), list);
  const decided = new Set();
  let timer = null;

  function card(item) {
    const titleId = uid("approval");
    const comment = h("textarea", { rows: 2, maxlength: 1000, name: "comment", id: uid("comment") });
    const noteId = uid("cannot");
    const approve = h("button", { type: "button", class: "primary", dataset: { action: "approve" } }, "Approve");
    const deny = h("button", { type: "button", class: "danger", dataset: { action: "deny" } }, "Deny");
    const problem = h("p", { class: "notice notice--error", role: "alert", hidden: true });
    const extension = item.approvalKind === "extension" ? item.extension : null;
    const span = secondsUntil(item.endDateTime, new Date(item.startDateTime).getTime());
    const reasons = (item.approvalReasons || []).map((text) => {
      const { rule, detail } = splitRule(text);
      return h("li", {}, rule ? h("strong", {}, RULE_NAMES[rule] || rule) : null, rule && detail ? ": " : "", detail, rule ? h("span", { class: "rule-id" }, ` (${rule})`) : null);
    });
    const facts = [
      ["Who asks", item.requestedBy],
      ["For", grantUser(item)],
      ["What", grantAccess(item)],
      ["Tenant", names.get(item.tenantId) || item.tenantId],
      extension
        ? ["Extension", [`from ${when(extension.previousEndDateTime || item.endDateTime)} to `, h("strong", {}, when(extension.endDateTime))]]
        : ["When", [timeElement(h, item.startDateTime), " – ", timeElement(h, item.endDateTime), ` (${humanDuration(span)})`]],
      ["Why", extension && extension.reason ? extension.reason : item.reason],
      item.ticketId ? ["Ticket", item.ticketId] : null,
      item.temporaryAccessPass && item.temporaryAccessPass.enabled ? ["Sign-in", `a Temporary Access Pass (${item.temporaryAccessPass.lifetimeInMinutes} min) for the requester`] : null,
      ["Asked", timeElement(h, extension ? extension.requestedDateTime : item.createdDateTime)],
    ].filter(Boolean);
    const element = h(
      "article",
      { class: "card approval", "aria-labelledby": titleId, dataset: { grantId: item.id, kind: item.approvalKind } },
      h("header", { class: "card__header" }, h("h2", { id: titleId, class: "card__title" }, extension ? "Extend: " : "", grantAccess(item)), h("span", { class: "status status--awaitingapproval" }, extension ? "Extension" : "Request")),
      h("dl", { class: "facts" }, facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
      h("div", { class: "rules" }, h("p", { class: "rules__title" }, "Approval asked by the policy:"), h("ul", {}, reasons)),
      h("div", { class: "field" }, h("label", { for: comment.id }, "Comment (optional)"), comment),
      item.canDecide ? null : h("p", { class: "cannot", id: noteId }, whyNot(ctx, item)),
      problem,
      h("div", { class: "actions actions--decide" }, approve, deny),
    );
    if (!item.canDecide) {
      for (const button of [approve, deny]) {
        button.disabled = true;
        button.setAttribute("aria-describedby", noteId);
      }
      comment.disabled = true;
    }
    const decide = async (verb) => {
      approve.disabled = deny.disabled = true;
      problem.hidden = true;
      try {
        await api("POST", `/api/jit/requests/${encodeURIComponent(item.id)}/${verb}`, { body: comment.value.trim() ? { comment: comment.value.trim() } : {} });
        decided.add(item.id);
        ctx.announce(`${verb === "approve" ? "Approved" : "Denied"}: ${grantAccess(item)} for ${grantUser(item)}.`);
        const next = element.nextElementSibling || element.previousElementSibling;
        element.remove();
        updateCount();
        (next ? next.querySelector("h2") : document.getElementById("page-title")).setAttribute("tabindex", "-1");
        (next ? next.querySelector("h2") : document.getElementById("page-title")).focus();
      } catch (error) {
        approve.disabled = deny.disabled = false;
        problem.hidden = false;
        fill(problem, error.status === 409 ? `Already decided or changed meanwhile: ${describe(error)}` : describe(error));
      }
    };
    approve.addEventListener("click", () => decide("approve"));
    deny.addEventListener("click", () => decide("deny"));
    return element;
  }

  function updateCount() {
    const count = list.querySelectorAll("article").length;
    const mine = list.querySelectorAll("article button[data-action=approve]:not([disabled])").length;
    fill(status, count ? `${count} waiting${mine !== count ? `, ${mine} for you to decide` : ""}.` : "Nothing is waiting for a decision.");
    ctx.setApprovalCount(mine);
  }

  async function load({ quiet = false } = {}) {
    if (timer !== null) scope.cancel(timer);
    if (!quiet) fill(status, "Loading…");
    try {
      const { data } = await api("GET", "/api/jit/approvals", { signal: scope.signal });
      const waiting = data.value.filter((item) => !decided.has(item.id));
      const known = new Map([...list.querySelectorAll("article")].map((a) => [`${a.dataset.grantId}:${a.dataset.kind}`, a]));
      // Keep cards that are still waiting (with what a person typed in them), add new ones, drop decided ones.
      const keep = [];
      for (const item of waiting) {
        const key = `${item.id}:${item.approvalKind}`;
        keep.push(known.get(key) || card(item));
        known.delete(key);
      }
      // Moving a focused card would drop the focus: only touch the list when it changed.
      const current = [...list.children];
      if (current.length !== keep.length || current.some((a, i) => a !== keep[i])) list.replaceChildren(...keep);
      updateCount();
    } catch (error) {
      if (scope.alive) fill(status, h("span", { role: "alert" }, `The inbox could not be read: ${describe(error)}`));
    }
    // Refresh now and then while the page is open and seen; not at all while the tab is hidden.
    timer = scope.later(function again() {
      if (document.hidden) timer = scope.later(again, REFRESH_S * 1000);
      else load({ quiet: true });
    }, REFRESH_S * 1000);
  }

  refresh.addEventListener("click", () => load());
  await load();
}
