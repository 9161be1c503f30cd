// Grants: a requester's own, or all of them for approvers and admins (the API decides), with live status and
// time left. Moving grants are followed through the poller (Retry-After), countdowns tick locally.

import { api, describe } from "../api.js";
import { field, fill, h } from "../dom.js";
import { forgetRevealed, grantCard, renderInto, tickCountdowns } from "../grantcard.js";
import { GrantPoller } from "../poller.js";

const STATUSES = ["AwaitingApproval", "Scheduled", "Provisioning", "Active", "Expiring", "Expired", "Revoked", "Denied", "Cancelled", "Failed"];

export default async function grants(ctx, root, params, scope) {
  const everyone = ctx.isAdmin || ctx.isApprover;
  ctx.setTitle(everyone ? "Grants" : "My grants");
  scope.signal.addEventListener("abort", forgetRevealed);
  const registry = await ctx.tenants();
  const names = new Map(registry.value.map((t) => [t.id, t.displayName || t.initialDomain || t.id]));
  const tenantName = (id) => names.get(id) || id;

  const status = h("select", { name: "status" }, h("option", { value: "" }, "Any"), STATUSES.map((s) => h("option", { value: s }, s)));
  const tenant = h("select", { name: "tenantId" }, h("option", { value: "" }, "All tenants"), registry.value.map((t) => h("option", { value: t.id }, tenantName(t.id))));
  status.value = ctx.query.status || "";
  tenant.value = ctx.query.tenantId || "";
  const filters = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter grants" },
    field({ label: "Status", control: status, name: "status" }).wrapper,
    field({ label: "Tenant", control: tenant, name: "tenant" }).wrapper,
  );
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const list = h("div", { class: "cards" });
  const more = h("div", { class: "more" });
  fill(root, everyone ? null : h("p", {}, "Access you asked for. Moving requests update by themselves."), filters, summary, list, more);

  const cards = new Map();
  const poller = new GrantPoller(scope, {
    onUpdate: (grant) => update(grant),
    onGone: (id) => {
      const card = cards.get(id);
      if (card) card.remove();
      cards.delete(id);
    },
  });
  const options = {
    tenantName,
    onChanged: (grant, retryAfter) => {
      update(grant, true);
      poller.watch(grant, retryAfter);
    },
  };

  function update(grant, force = false) {
    const card = cards.get(grant.id);
    if (!card) return;
    const before = card.dataset.status;
    if (force || before !== grant.status || card._modified !== grant.lastModifiedDateTime) {
      renderInto(card, ctx, grant, options);
      card._modified = grant.lastModifiedDateTime;
      if (before !== grant.status) ctx.announce(`${card.querySelector("h2").textContent}: ${card.querySelector(".status").textContent}.`);
    }
  }

  let loadSeq = 0;
  async function load(continuation) {
    const seq = continuation ? loadSeq : ++loadSeq;
    const query = { status: status.value, tenantId: tenant.value, top: 25, continuationToken: continuation };
    if (!continuation) {
      cards.clear();
      list.replaceChildren();
      for (const id of [...poller.due.keys()]) poller.forget(id);
      fill(summary, "Loading…");
    }
    try {
      const { data } = await api("GET", "/api/jit/requests", { query, signal: scope.signal });
      if (seq !== loadSeq) return; // the filters changed meanwhile
      for (const grant of data.value) {
        const card = grantCard(ctx, grant, options);
        card._modified = grant.lastModifiedDateTime;
        cards.set(grant.id, card);
        list.append(card);
        poller.watch(grant);
      }
      fill(summary, cards.size ? `${cards.size} grant${cards.size === 1 ? "" : "s"}${data.continuationToken ? " (more below)" : ""}.` : "No grants match.");
      fill(more, data.continuationToken ? h("button", { type: "button", onclick: () => load(data.continuationToken) }, "Show more") : null);
      if (!cards.size && !everyone) more.append(h("p", {}, h("a", { href: "#/request" }, "Request access")));
    } catch (error) {
      if (scope.alive) fill(summary, h("span", { role: "alert" }, `The grants could not be read: ${describe(error)}`));
    }
  }

  for (const control of [status, tenant]) {
    control.addEventListener("change", () => {
      const q = new URLSearchParams({ ...(status.value && { status: status.value }), ...(tenant.value && { tenantId: tenant.value }) });
      history.replaceState(null, "", `#/grants${q.size ? `?${q}` : ""}`);
      load();
    });
  }
  filters.addEventListener("submit", (event) => event.preventDefault());

  const tick = () => {
    tickCountdowns(root);
    scope.later(tick, 1000);
  };
  scope.later(tick, 1000);
  await load();
}
