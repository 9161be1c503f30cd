// Drift findings (approvers, admins): what the daily comparison with the directory found out of band.

import { api, describe } from "../api.js";
import { field, fill, h } from "../dom.js";
import { timeElement } from "../format.js";
import { table, tenantSelect } from "../widgets.js";

const KINDS = {
  RoleRemovedOutOfBand: "A role the grant gave was removed outside the service",
  RoleAddedOutOfBand: "A role was added to a JIT account outside the service",
  GroupMembershipRemovedOutOfBand: "A membership the grant gave was removed outside the service",
  ActiveGrantAccountMissing: "The account of an active grant is gone",
  EndedGrantAccessPresent: "An ended grant's access was back (taken away again)",
  JitAccountWithoutGrant: "A JIT-marked account no grant explains",
};

export default async function drift(ctx, root, params, scope) {
  const registry = await ctx.tenants();
  const names = new Map(registry.value.map((t) => [t.id, t.displayName || t.initialDomain]));
  const tenant = tenantSelect(registry, { extra: [["", "All tenants"]] });
  const since = h("input", { type: "date", name: "since" });
  const area = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "filters", "aria-label": "Which findings" },
    field({ label: "Tenant", control: tenant, name: "tenant" }).wrapper,
    field({ label: "Since", control: since, name: "since", hint: "Empty: the last 7 days." }).wrapper,
    h("div", { class: "field" }, h("button", { type: "submit", class: "primary" }, "Show")));
  fill(root, h("p", {}, "The drift check compares active and recently ended grants with the directory every day."), form, area);

  let loadSeq = 0;
  async function load() {
    const seq = ++loadSeq;
    fill(area, h("p", { class: "summary" }, "Loading…"));
    try {
      const query = { tenantId: tenant.value, since: since.value ? new Date(`${since.value}T00:00:00`).toISOString() : null };
      const { data } = await api("GET", "/api/jit/drift", { query, signal: scope.signal });
      if (seq !== loadSeq) return; // asked again meanwhile
      fill(area, h("p", { class: "summary" }, `${data.value.length} finding${data.value.length === 1 ? "" : "s"}.`), table("Drift findings", [
        ["Found", (d) => timeElement(h, d.foundDateTime)],
        ["Tenant", (d) => names.get(d.tenantId) || d.tenantId],
        ["What", (d) => [h("strong", {}, KINDS[d.kind] || d.kind), h("div", { class: "hint" }, d.kind)], "wrap"],
        ["Detail", (d) => d.detail, "wrap"],
        ["Grant", (d) => (d.grantId ? h("a", { href: `#/grants/${encodeURIComponent(d.grantId)}` }, d.grantId) : "—")],
        ["Put right", (d) => (d.remediated ? "yes" : "no")],
      ], data.value, { empty: "No drift found: the directory matches the grants." }));
    } catch (error) {
      fill(area, h("p", { class: "notice notice--error", role: "alert" }, describe(error)));
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  await load();
}
