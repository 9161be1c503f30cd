// Policies (admins): the default policy and each tenant's own, edited as a form. The API validates; its problems are
// shown next to the fields they name. Saving sends the version read (If-Match), so two admins cannot overwrite
// each other unknowingly. Every saved version is kept and listed, and can be loaded back into the form.

import { api, describe } from "../api.js";
import { field, fill, h, uid } from "../dom.js";
import { timeElement } from "../format.js";
import { clearProblems, lines, showApiProblems, table, tenantSelect } from "../widgets.js";

const ACTIONS = ["DeleteUser", "DisableUser", "RemoveRoles", "RemoveGroups"];

export default async function policies(ctx, root, params, scope) {
  const registry = await ctx.tenants();
  const scopeSelect = tenantSelect(registry, { name: "scope", extra: [["default", "Default policy (every tenant without its own)"]] });
  scopeSelect.value = ctx.query.scope || "default";
  const scopeField = field({ label: "Policy of", control: scopeSelect, name: "scope" });
  const status = h("div", { "aria-live": "polite" });
  const formArea = h("div", {});
  const historyArea = h("section", { class: "panel", "aria-labelledby": "history-title" });
  fill(root, scopeField.wrapper, status, h("div", { class: "admin-grid admin-grid--two" }, formArea, historyArea));

  let roleNames = new Map(); // template id -> display name
  let loaded = null; // {policy, own}

  async function loadRoles(tenantId) {
    const ready = registry.value.find((t) => t.id === tenantId) || registry.value.find((t) => t.state === "Ready");
    if (!ready) return;
    try {
      const { data } = await api("GET", `/api/jit/tenants/${encodeURIComponent(ready.id)}/roles`, { signal: scope.signal });
      roleNames = new Map(data.value.map((r) => [(r.templateId || r.id).toLowerCase(), r.displayName]));
    } catch {
      roleNames = new Map();
    }
  }
  const named = (role) => roleNames.get(String(role).toLowerCase()) || role;

  // -- The form -------------------------------------------------------------------------------------------------
  const c = {
    maxDuration: h("input", { type: "text", name: "maxDuration", class: "short", placeholder: "PT8H" }),
    maxDurationPerRole: h("textarea", { name: "maxDurationPerRole", rows: 3 }),
    approvalRequired: h("input", { type: "checkbox", name: "approvalRequired", id: uid("approval") }),
    rolesRequiringApproval: h("textarea", { name: "rolesRequiringApproval", rows: 4 }),
    allowedRoles: h("textarea", { name: "allowedRoles", rows: 3 }),
    allowedGroups: h("textarea", { name: "allowedGroups", rows: 2 }),
    groupsWithoutApproval: h("textarea", { name: "groupsWithoutApproval", rows: 2 }),
    ticketRequired: h("input", { type: "checkbox", name: "ticketRequired", id: uid("ticket") }),
    ticketPattern: h("input", { type: "text", name: "ticketPattern", placeholder: "^INC[0-9]+$" }),
    tapMin: h("input", { type: "number", name: "minLifetimeInMinutes", min: 10, max: 43200, class: "short" }),
    tapMax: h("input", { type: "number", name: "maxLifetimeInMinutes", min: 10, max: 43200, class: "short" }),
    maxConcurrentGrantsPerUser: h("input", { type: "number", name: "maxConcurrentGrantsPerUser", min: 1, max: 1000, class: "short" }),
    existingAccountCredentials: h("select", { name: "existingAccountCredentials" }, h("option", { value: "never" }, "Never"), h("option", { value: "withApproval" }, "With an approver's agreement")),
  };
  const actionBoxes = ACTIONS.map((a) => h("input", { type: "checkbox", value: a, id: uid("action"), name: "allowedExpirationActions" }));
  const actionsError = h("p", { class: "field-error", hidden: true, id: uid("actions-error") });
  const approvalError = h("p", { class: "field-error", hidden: true, id: uid("approval-error") });
  const ticketError = h("p", { class: "field-error", hidden: true, id: uid("ticketreq-error") });
  const f = {
    maxDuration: field({ label: "Longest grant", control: c.maxDuration, name: "maxDuration", hint: "ISO 8601 duration (PT4H, P1D). Empty: only the service's own maximum." }),
    maxDurationPerRole: field({ label: "Longest grant per role", control: c.maxDurationPerRole, name: "maxDurationPerRole", hint: "One a line: role name = duration (Global Administrator = PT1H)." }),
    rolesRequiringApproval: field({ label: "Roles that need approval", control: c.rolesRequiringApproval, name: "rolesRequiringApproval", hint: "One role a line (name or template id)." }),
    allowedRoles: field({ label: "Roles that may be asked for", control: c.allowedRoles, name: "allowedRoles", hint: "One a line. Empty: any role." }),
    allowedGroups: field({ label: "Groups that may be asked for", control: c.allowedGroups, name: "allowedGroups", hint: "Group object ids, one a line. Empty: any group." }),
    groupsWithoutApproval: field({ label: "Role-assignable groups that need no approval", control: c.groupsWithoutApproval, name: "groupsWithoutApproval", hint: "Group object ids, one a line." }),
    ticketPattern: field({ label: "Ticket format", control: c.ticketPattern, name: "ticketPattern", hint: "A regular expression the whole ticket id must match (RE2: no back-references or look-around)." }),
    tapMin: field({ label: "Shortest TAP lifetime (minutes)", control: c.tapMin, name: "tapMin" }),
    tapMax: field({ label: "Longest TAP lifetime (minutes)", control: c.tapMax, name: "tapMax" }),
    maxConcurrentGrantsPerUser: field({ label: "Open grants per requester", control: c.maxConcurrentGrantsPerUser, name: "maxConcurrentGrantsPerUser", hint: "Empty: no limit." }),
    existingAccountCredentials: field({ label: "A TAP for an existing account", control: c.existingAccountCredentials, name: "existingAccountCredentials", hint: "A TAP satisfies MFA: issuing one to someone's account is taking it over." }),
  };
  const tapErrorSlot = { error: h("p", { class: "field-error", hidden: true, id: uid("tap-error") }), control: c.tapMin };
  const slots = {
    maxDuration: f.maxDuration,
    maxDurationPerRole: f.maxDurationPerRole,
    approvalRequired: { error: approvalError, control: c.approvalRequired },
    rolesRequiringApproval: f.rolesRequiringApproval,
    allowedRoles: f.allowedRoles,
    allowedGroups: f.allowedGroups,
    groupsWithoutApproval: f.groupsWithoutApproval,
    ticketRequired: { error: ticketError, control: c.ticketRequired },
    ticketPattern: f.ticketPattern,
    temporaryAccessPass: tapErrorSlot,
    maxConcurrentGrantsPerUser: f.maxConcurrentGrantsPerUser,
    allowedExpirationActions: { error: actionsError, control: actionBoxes[0] },
    existingAccountCredentials: f.existingAccountCredentials,
  };
  const general = h("div", { class: "notice notice--error", role: "alert", hidden: true });
  const inherited = h("p", { class: "notice", hidden: true });
  const save = h("button", { type: "submit", class: "primary" }, "Save policy");
  const title = h("h2", { id: "policy-title" }, "Policy");
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "policy-title", novalidate: true },
    title,
    inherited,
    h("fieldset", { class: "group" }, h("legend", {}, "Duration"), f.maxDuration.wrapper, f.maxDurationPerRole.wrapper),
    h("fieldset", { class: "group" }, h("legend", {}, "Approval"),
      h("label", { for: c.approvalRequired.id, class: "check" }, c.approvalRequired, " Every request needs approval"), approvalError,
      f.rolesRequiringApproval.wrapper, f.groupsWithoutApproval.wrapper),
    h("fieldset", { class: "group" }, h("legend", {}, "What may be asked for"), f.allowedRoles.wrapper, f.allowedGroups.wrapper, f.maxConcurrentGrantsPerUser.wrapper),
    h("fieldset", { class: "group" }, h("legend", {}, "Ticket"),
      h("label", { for: c.ticketRequired.id, class: "check" }, c.ticketRequired, " A ticket is required"), ticketError, f.ticketPattern.wrapper),
    h("fieldset", { class: "group" }, h("legend", {}, "Temporary Access Pass"), f.tapMin.wrapper, f.tapMax.wrapper, tapErrorSlot.error, f.existingAccountCredentials.wrapper),
    h("fieldset", { class: "group", "aria-describedby": actionsError.id }, h("legend", {}, "What may happen at the end (empty: anything)"),
      h("div", { class: "checks" }, actionBoxes.map((box) => h("label", { for: box.id, class: "check" }, box, ` ${box.value}`))), actionsError),
    general,
    h("div", { class: "actions" }, save),
  );

  function toForm(policy) {
    c.maxDuration.value = policy.maxDuration || "";
    c.maxDurationPerRole.value = Object.entries(policy.maxDurationPerRole || {}).map(([role, limit]) => `${named(role)} = ${limit}`).join("\n");
    c.approvalRequired.checked = Boolean(policy.approvalRequired);
    lines.write(c.rolesRequiringApproval, (policy.rolesRequiringApproval || []).map(named));
    lines.write(c.allowedRoles, (policy.allowedRoles || []).map(named));
    lines.write(c.allowedGroups, policy.allowedGroups);
    lines.write(c.groupsWithoutApproval, policy.groupsWithoutApproval);
    c.ticketRequired.checked = Boolean(policy.ticketRequired);
    c.ticketPattern.value = policy.ticketPattern || "";
    const tap = policy.temporaryAccessPass || {};
    c.tapMin.value = tap.minLifetimeInMinutes ?? "";
    c.tapMax.value = tap.maxLifetimeInMinutes ?? "";
    c.maxConcurrentGrantsPerUser.value = policy.maxConcurrentGrantsPerUser ?? "";
    for (const box of actionBoxes) box.checked = (policy.allowedExpirationActions || []).includes(box.value);
    c.existingAccountCredentials.value = policy.existingAccountCredentials || "never";
  }

  function fromForm() {
    const number = (input) => (input.value.trim() === "" ? undefined : Number(input.value));
    const perRole = {};
    for (const line of lines.read(c.maxDurationPerRole)) {
      const at = line.lastIndexOf("=");
      perRole[at > 0 ? line.slice(0, at).trim() : line] = at > 0 ? line.slice(at + 1).trim() : "";
    }
    const body = {
      allowedRoles: lines.read(c.allowedRoles),
      allowedGroups: lines.read(c.allowedGroups),
      groupsWithoutApproval: lines.read(c.groupsWithoutApproval),
      maxDurationPerRole: perRole,
      approvalRequired: c.approvalRequired.checked,
      rolesRequiringApproval: lines.read(c.rolesRequiringApproval),
      ticketRequired: c.ticketRequired.checked,
      allowedExpirationActions: actionBoxes.filter((b) => b.checked).map((b) => b.value),
      existingAccountCredentials: c.existingAccountCredentials.value,
    };
    if (c.maxDuration.value.trim()) body.maxDuration = c.maxDuration.value.trim();
    if (c.ticketPattern.value.trim()) body.ticketPattern = c.ticketPattern.value.trim();
    const tap = { minLifetimeInMinutes: number(c.tapMin), maxLifetimeInMinutes: number(c.tapMax) };
    if (tap.minLifetimeInMinutes !== undefined || tap.maxLifetimeInMinutes !== undefined) body.temporaryAccessPass = JSON.parse(JSON.stringify(tap));
    const concurrent = number(c.maxConcurrentGrantsPerUser);
    if (concurrent !== undefined) body.maxConcurrentGrantsPerUser = concurrent;
    return body;
  }

  let loadSeq = 0;
  async function load() {
    clearProblems(slots, general);
    const chosen = scopeSelect.value;
    const seq = ++loadSeq;
    fill(status, h("p", { class: "summary" }, "Loading…"));
    try {
      await loadRoles(chosen === "default" ? null : chosen);
      const { data } = await api("GET", `/api/jit/policies/${encodeURIComponent(chosen)}`, { signal: scope.signal });
      if (seq !== loadSeq) return; // another scope was chosen meanwhile
      // A tenant without its own policy is answered with the one in force for it (the default): saving creates its own.
      const own = chosen === "default" ? data.scope !== "built-in default" || data.version > 0 : data.scope === chosen;
      loaded = { policy: data, own, scope: chosen };
      inherited.hidden = own;
      fill(inherited, chosen === "default" ? "No default policy is saved yet: this is the built-in one. Saving stores it as the default policy." : `This tenant has no policy of its own: it follows the ${data.scope === "default" ? "default policy" : "built-in default"} (version ${data.version}). Saving gives it its own.`);
      fill(title, `${chosen === "default" ? "Default policy" : "Tenant policy"}${own ? `, version ${data.version}` : ""}`);
      toForm(data);
      fill(status, null);
      fill(formArea, form);
      await loadHistory();
    } catch (error) {
      fill(status, h("p", { class: "notice notice--error", role: "alert" }, `The policy could not be read: ${describe(error)}`));
    }
  }

  async function loadHistory() {
    fill(historyArea, h("h2", { id: "history-title" }, "Versions"), h("p", { class: "summary" }, "Loading…"));
    try {
      const asked = loaded.scope;
      const { data } = await api("GET", `/api/jit/policies/${encodeURIComponent(asked)}/history`, { signal: scope.signal });
      if (asked !== loaded.scope) return;
      const versions = [...data.value].sort((a, b) => b.version - a.version);
      fill(
        historyArea,
        h("h2", { id: "history-title" }, "Versions"),
        table("Policy versions", [
          ["Version", (v) => String(v.version)],
          ["Saved", (v) => [timeElement(h, v.updatedDateTime), h("br"), v.updatedBy]],
          ["", (v) => [
            h("details", {}, h("summary", {}, "Document"), h("pre", {}, JSON.stringify(v.document, null, 2))),
            h("button", { type: "button", onclick: () => { toForm(v.document); ctx.announce(`Version ${v.version} is in the form; save to make it current.`); } }, `Load version ${v.version} into the form`),
          ]],
        ], versions, { empty: "No saved versions yet." }),
      );
    } catch (error) {
      fill(historyArea, h("h2", { id: "history-title" }, "Versions"), h("p", { class: "notice notice--error" }, describe(error)));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(slots, general);
    save.disabled = true;
    try {
      const headers = loaded.own ? { "If-Match": `"${loaded.policy.version}"` } : { "If-Match": '"0"' };
      const { data } = await api("PUT", `/api/jit/policies/${encodeURIComponent(loaded.scope)}`, { body: fromForm(), headers });
      ctx.announce(`Saved: version ${data.version}.`);
      await load();
    } catch (error) {
      if (error.status === 409) {
        general.hidden = false;
        fill(general, `Someone saved this policy meanwhile (${describe(error)}). `, h("button", { type: "button", class: "link-button", onclick: load }, "Load the current version"), " and make your change again.");
      } else {
        showApiProblems(error, slots, general);
      }
    } finally {
      save.disabled = false;
    }
  });

  scopeSelect.addEventListener("change", () => {
    history.replaceState(null, "", `#/admin/policies?scope=${encodeURIComponent(scopeSelect.value)}`);
    load();
  });
  await load();
}
