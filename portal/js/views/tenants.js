// Tenants (admins): the registry with each tenant's onboarding state and what the last check found, onboarding a
// new one (followed until the directory answers), a check on demand, and which directories a tenant uses.

import { api, describe } from "../api.js";
import { dialog, field, fill, h } from "../dom.js";
import { timeElement } from "../format.js";
import { clearProblems, lines, showApiProblems, table } from "../widgets.js";

const STATE_CLASS = { Ready: "active", Pending: "scheduled", ConsentMissing: "failed", Offboarded: "expired" };

export default async function tenants(ctx, root, params, scope) {
  const listArea = h("div", {});
  const pendingArea = h("div", {});
  const progress = h("p", { class: "summary", "aria-live": "polite" });

  // Onboarding form
  const reference = h("input", { type: "text", name: "tenant", required: true, autocomplete: "off", placeholder: "contoso.onmicrosoft.com" });
  const refField = field({ label: "Tenant", control: reference, name: "tenant", required: true, hint: "Its initial domain (…onmicrosoft.com) or its tenant id. Grant the app admin consent there first (docs/deploy.md)." });
  const directories = h("textarea", { name: "directories", rows: 2 });
  directories.value = "entra";
  const dirField = field({ label: "Directories", control: directories, name: "directories", hint: "One a line: entra, entra-pim (through PIM), ad:<site> (an on-premises agent's site)." });
  const defaultDirectory = h("input", { type: "text", name: "defaultDirectory", autocomplete: "off", placeholder: "the first one" });
  const defField = field({ label: "Default directory", control: defaultDirectory, name: "defaultDirectory" });
  const general = h("p", { class: "notice notice--error", role: "alert", hidden: true });
  const slots = { tenant: refField, directories: dirField, defaultDirectory: defField };
  const onboard = h("form", { class: "panel", "aria-labelledby": "onboard-title", novalidate: true },
    h("h2", { id: "onboard-title" }, "Onboard a tenant"), refField.wrapper, dirField.wrapper, defField.wrapper, general,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Onboard")), progress);

  fill(root, h("div", { class: "admin-grid" }, h("section", { "aria-labelledby": "registry-title" }, h("h2", { id: "registry-title" }, "Registry"), listArea, pendingArea), onboard));

  async function load() {
    fill(listArea, h("p", { class: "summary" }, "Loading…"));
    try {
      const registry = await ctx.tenants({ fresh: true });
      render(registry);
    } catch (error) {
      fill(listArea, h("p", { class: "notice notice--error", role: "alert" }, describe(error)));
    }
  }

  function render(registry) {
    fill(
      listArea,
      table(
        "Onboarded tenants",
        [
          ["Tenant", (t) => [h("strong", {}, t.displayName || t.initialDomain), h("br"), t.initialDomain, h("br"), h("code", {}, t.id)], "wrap"],
          ["State", (t) => [h("span", { class: `status status--${STATE_CLASS[t.state] || "scheduled"}` }, t.state), t.detail ? h("p", { class: "hint" }, t.detail) : null], "wrap"],
          ["Directories", (t) => t.directories.map((d) => h("div", {}, d, d === t.defaultDirectory ? " (default)" : ""))],
          ["PIM licence", (t) => (t.pimLicensed === true ? "yes" : t.pimLicensed === false ? "no" : "not checked")],
          ["Onboarded", (t) => [timeElement(h, t.onboardedDateTime), h("br"), t.onboardedBy || ""]],
          ["Last check", (t) => timeElement(h, t.checkedDateTime)],
          // On-premises directories are reached through an agent: its heartbeat comes with the tenant's own view.
          ["Agent", (t) => (t.directories.some((d) => d.startsWith("ad:")) ? agentCell(t) : "none needed"), "wrap"],
          ["", (t) => h("div", { class: "actions" },
            h("button", { type: "button", onclick: (e) => check(t, e.currentTarget) }, "Check now", h("span", { class: "visually-hidden" }, ` ${t.initialDomain}`)),
            h("button", { type: "button", onclick: () => configure(t) }, "Configure", h("span", { class: "visually-hidden" }, ` ${t.initialDomain}`)))],
        ],
        registry.value,
        { empty: "No tenant is onboarded yet." },
      ),
    );
    const pending = registry.pending || [];
    fill(pendingArea, pending.length ? [h("h3", {}, "Being onboarded"), table("Tenants being onboarded", [
      ["Tenant", (p) => p.tenant],
      ["Asked by", (p) => [p.requestedBy, h("br"), timeElement(h, p.requestedAt)]],
      ["Where it stands", (p) => p.detail || "asking the directory", "wrap"],
    ], pending)] : null);
  }

  function agentCell(tenant) {
    const cell = h("div", { "aria-live": "polite" }, h("span", { class: "hint" }, "asking…"));
    api("GET", `/api/jit/tenants/${encodeURIComponent(tenant.id)}`)
      .then(({ data }) => {
        const health = data.directoryHealth || {};
        const sites = tenant.directories.filter((d) => d.startsWith("ad:"));
        fill(cell, sites.map((site) => {
          const known = health[site];
          if (!known) return h("div", {}, `${site}: no heartbeat yet`);
          const state = known.available ? "reporting" : "not reporting";
          return h("div", {},
            h("span", { class: `status status--${known.available ? "active" : "failed"}` }, `${site}: ${state}`),
            known.lastSeen ? [h("br"), "last heartbeat ", timeElement(h, known.lastSeen)] : null,
            known.detail && !known.available ? h("p", { class: "hint" }, known.detail) : null);
        }));
      })
      .catch((error) => fill(cell, h("span", { class: "hint" }, describe(error))));
    return cell;
  }

  async function check(tenant, button) {
    button.disabled = true;
    try {
      await api("POST", `/api/jit/tenants/${encodeURIComponent(tenant.id)}/check`);
      ctx.announce(`A check of ${tenant.initialDomain} is queued.`);
      // The check runs on the queue: look again a few times, a couple of seconds apart.
      for (let i = 0; i < 5 && scope.alive; i += 1) {
        await new Promise((resolve) => scope.later(resolve, 2000));
        const { data } = await api("GET", `/api/jit/tenants/${encodeURIComponent(tenant.id)}`);
        if (data.checkedDateTime !== tenant.checkedDateTime) {
          ctx.announce(`${tenant.initialDomain} checked: ${data.state}.`);
          break;
        }
      }
      if (scope.alive) await load();
    } catch (error) {
      ctx.announce(`The check could not start: ${describe(error)}`, { tone: "error" });
      button.disabled = false;
    }
  }

  async function configure(tenant) {
    const dirs = h("textarea", { rows: 3, name: "directories" });
    lines.write(dirs, tenant.directories);
    const dirsField = field({ label: "Directories", control: dirs, name: "directories", hint: "One a line: entra, entra-pim, ad:<site>." });
    const def = h("input", { type: "text", name: "defaultDirectory", value: tenant.defaultDirectory || "" });
    const defaultField = field({ label: "Default directory", control: def, name: "defaultDirectory" });
    const off = h("input", { type: "checkbox", id: "offboard", name: "offboarded" });
    const problemSlots = { directories: dirsField, defaultDirectory: defaultField };
    const problem = h("p", { class: "notice notice--error", role: "alert", hidden: true });
    const saved = await dialog({
      title: `Configure ${tenant.displayName || tenant.initialDomain}`,
      content: [dirsField.wrapper, defaultField.wrapper, h("label", { for: "offboard", class: "check" }, off, " Offboard: no new requests for this tenant"), problem],
      actions: [{ label: "Cancel", value: "cancel" }, { label: "Save", value: "save", submit: true, class: "primary" }],
      onSubmit: async () => {
        try {
          const body = { directories: lines.read(dirs), defaultDirectory: def.value.trim() || null };
          if (off.checked) body.offboarded = true;
          if (!body.defaultDirectory) delete body.defaultDirectory;
          await api("PATCH", `/api/jit/tenants/${encodeURIComponent(tenant.id)}`, { body });
          return null;
        } catch (error) {
          const shown = showApiProblems(error, problemSlots, problem);
          return shown ? "Some fields need another look." : problem.textContent;
        }
      },
    });
    if (saved) {
      ctx.announce(`${tenant.initialDomain} saved.`);
      await load();
    }
  }

  onboard.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(slots, general);
    const body = { tenant: reference.value.trim(), directories: lines.read(directories) };
    if (defaultDirectory.value.trim()) body.defaultDirectory = defaultDirectory.value.trim();
    const submit = onboard.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      let answer = await api("POST", "/api/jit/tenants", { body });
      fill(progress, `Onboarding ${body.tenant}: ${answer.data.detail || answer.data.state}…`);
      // 202 while the directory is asked who the tenant is: follow it, as Retry-After says, for a little while.
      for (let i = 0; i < 10 && answer.status === 202 && scope.alive; i += 1) {
        await new Promise((resolve) => scope.later(resolve, Math.max(1, answer.retryAfter ?? 2) * 1000));
        answer = await api("GET", `/api/jit/tenants/${encodeURIComponent(body.tenant)}`);
        fill(progress, `Onboarding ${body.tenant}: ${answer.data.state}${answer.data.detail ? ` — ${answer.data.detail}` : ""}`);
        if (answer.status === 202 && answer.data.state !== "Pending") break;
      }
      if (answer.status === 200) {
        fill(progress, `${answer.data.displayName || body.tenant} is onboarded: ${answer.data.state}.`);
        ctx.announce(`${body.tenant} is onboarded.`);
      }
      await load();
    } catch (error) {
      showApiProblems(error, slots, general);
    } finally {
      submit.disabled = false;
    }
  });

  await load();
}
