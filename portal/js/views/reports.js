// The monthly access report (approvers, admins): who had which roles and groups in a tenant during a month, from
// when to when, why and with which ticket; on the page, or as a CSV file for the customer.

import { api, describe, download } from "../api.js";
import { field, fill, h } from "../dom.js";
import { timeElement } from "../format.js";
import { table, tenantSelect } from "../widgets.js";

export default async function reports(ctx, root, params, scope) {
  const registry = await ctx.tenants();
  const tenant = tenantSelect(registry);
  const month = h("input", { type: "month", name: "month", required: true });
  const now = new Date();
  month.value = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`;
  const area = h("div", { "aria-live": "polite" });
  const csv = h("button", { type: "button" }, "Download CSV");
  const form = h("form", { class: "filters", "aria-label": "Which report" },
    field({ label: "Tenant", control: tenant, name: "tenant" }).wrapper,
    field({ label: "Month", control: month, name: "month" }).wrapper,
    h("div", { class: "field actions" }, h("button", { type: "submit", class: "primary" }, "Show"), csv));
  fill(root, registry.value.length ? form : h("p", {}, "No tenant is onboarded yet."), area);

  const query = () => ({ tenantId: tenant.value, month: month.value });

  let loadSeq = 0;
  async function show() {
    const seq = ++loadSeq;
    fill(area, h("p", { class: "summary" }, "Loading…"));
    try {
      const { data } = await api("GET", "/api/jit/reports/monthly", { query: query(), signal: scope.signal });
      if (seq !== loadSeq) return; // asked again meanwhile
      fill(area, h("p", { class: "summary" }, `${data.rows.length} grant${data.rows.length === 1 ? "" : "s"} in ${data.month}.`), table(`Access in ${data.month}`, [
        ["Account", (r) => r.user, "wrap"],
        ["Roles and groups", (r) => [...r.roles, ...r.groups].join(", "), "wrap"],
        ["From", (r) => timeElement(h, r.from)],
        ["To", (r) => timeElement(h, r.to)],
        ["Minutes", (r) => String(Math.round(r.durationMinutes))],
        ["Why", (r) => [r.reason, r.ticketId ? h("div", { class: "hint" }, `Ticket ${r.ticketId}`) : null], "wrap"],
        ["Status", (r) => r.status],
        ["Asked by", (r) => r.requestedBy],
      ], data.rows, { empty: "Nobody had access through the service that month." }));
    } catch (error) {
      fill(area, h("p", { class: "notice notice--error", role: "alert" }, describe(error)));
    }
  }

  csv.addEventListener("click", async () => {
    csv.disabled = true;
    try {
      const name = await download("/api/jit/reports/monthly", { ...query(), format: "csv" }, `jit-access-${month.value}.csv`);
      ctx.announce(`Downloaded ${name}.`);
    } catch (error) {
      ctx.announce(`The report could not be downloaded: ${describe(error)}`, { tone: "error" });
    } finally {
      csv.disabled = false;
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  if (registry.value.length) await show();
}
