// The audit trail (admins): a tenant's entries (or the global trail: default policy, templates, channels) for a
// period, with the API's verification of the hash chains first: intact, or each problem named.

import { apiText, describe } from "../api.js";
import { field, fill, h } from "../dom.js";
import { localInputToIso, timeElement } from "../format.js";
import { table, tenantSelect } from "../widgets.js";

const SHOWN = 500;

export default async function audit(ctx, root, params, scope) {
  const registry = await ctx.tenants();
  const tenant = tenantSelect(registry, { extra: [["global", "Global (policies, templates, channels)"]] });
  tenant.value = ctx.query.tenantId || (registry.value[0] ? registry.value[0].id : "global");
  const from = h("input", { type: "datetime-local", name: "from" });
  const to = h("input", { type: "datetime-local", name: "to" });
  const filter = h("input", { type: "search", name: "filter", placeholder: "actor, action, grant, detail…", autocomplete: "off" });
  const verdict = h("div", {});
  const count = h("p", { class: "summary", "aria-live": "polite" });
  const entriesArea = h("div", {});
  const form = h("form", { class: "filters", "aria-label": "Which entries" },
    field({ label: "Trail of", control: tenant, name: "tenant" }).wrapper,
    field({ label: "From", control: from, name: "from", hint: "Empty: 30 days before To." }).wrapper,
    field({ label: "To", control: to, name: "to", hint: "Empty: now." }).wrapper,
    h("div", { class: "field" }, h("button", { type: "submit", class: "primary" }, "Read and verify")));
  fill(root, form, verdict, field({ label: "Filter the entries shown", control: filter, name: "filter" }).wrapper, count, entriesArea);
  let entries = [];

  function renderEntries() {
    const needle = filter.value.trim().toLowerCase();
    const matching = entries.filter((e) => !needle || [e.actor, e.action, e.grantId, e.detail, e.outcome, e.chain].some((v) => String(v || "").toLowerCase().includes(needle)));
    fill(count, `${matching.length} of ${entries.length} entries${matching.length > SHOWN ? `, the newest ${SHOWN} shown` : ""}.`);
    fill(entriesArea, table("Audit entries", [
      ["When", (e) => timeElement(h, e.at, { seconds: true })],
      ["Who", (e) => e.actor],
      ["What", (e) => [h("code", {}, e.action), e.outcome && e.outcome !== "success" ? h("div", { class: "field-error" }, e.outcome) : null]],
      ["Detail", (e) => [e.detail || "", e.grantId ? h("div", { class: "hint" }, "Grant ", h("a", { href: `#/grants/${encodeURIComponent(e.grantId)}` }, e.grantId)) : null], "wrap"],
      ["Chain", (e) => h("span", { class: "hint" }, `${e.chain.length > 12 ? `…${e.chain.slice(-8)}` : e.chain} #${e.sequence}`)],
    ], matching.slice(0, SHOWN), { empty: "No entries in this period." }));
  }

  function renderVerdict(v, intactHeader) {
    if (!v) {
      fill(verdict, h("p", { class: "notice notice--warning", role: "alert" }, `The answer had no verification line (X-Audit-Intact: ${intactHeader || "absent"}).`));
      return;
    }
    const problems = v.problems && v.problems.length ? v.problems : v.problem ? [v.problem] : [];
    fill(
      verdict,
      v.intact
        ? h("div", { class: "notice notice--ok verification", role: "status", dataset: { intact: "true" } },
            `Intact: ${v.checked} entr${v.checked === 1 ? "y" : "ies"} in ${v.chains ?? "its"} chain${v.chains === 1 ? "" : "s"} verified. None was changed, removed or cut off.`)
        : h("div", { class: "notice notice--error verification", role: "alert", dataset: { intact: "false" } },
            h("p", {}, `Not intact: the trail was changed after it was written${v.brokenAt ? ` (first at sequence ${v.brokenAt})` : ""}. ${v.checked} entries checked.`),
            problems.length ? h("ul", {}, problems.map((p) => h("li", {}, typeof p === "string" ? p : JSON.stringify(p)))) : null),
    );
  }

  let loadSeq = 0;
  async function load() {
    const seq = ++loadSeq;
    fill(verdict, h("p", { class: "summary" }, "Reading and verifying…"));
    entriesArea.replaceChildren();
    try {
      const query = { tenantId: tenant.value, from: localInputToIso(from.value), to: localInputToIso(to.value) };
      const { text, headers } = await apiText("/api/jit/audit", { query, signal: scope.signal });
      if (seq !== loadSeq) return; // asked again meanwhile
      const parsed = text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
      const last = parsed.length && parsed[parsed.length - 1].verification ? parsed.pop().verification : null;
      entries = parsed.reverse();
      renderVerdict(last, headers.get("X-Audit-Intact"));
      renderEntries();
    } catch (error) {
      fill(verdict, h("p", { class: "notice notice--error", role: "alert" }, `The trail could not be read: ${describe(error)}`));
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  filter.addEventListener("input", renderEntries);
  await load();
}
