// Templates (admins): named, pre-filled requests (roles, groups, duration, TAP, a reason prefix), global or for one
// tenant. Requesters pick one in the request form.

import { api, describe } from "../api.js";
import { dialog, field, fill, h, showErrors, uid } from "../dom.js";
import { clearProblems, lines, showApiProblems, table, tenantSelect } from "../widgets.js";

const ACTIONS = ["DeleteUser", "DisableUser", "RemoveRoles", "RemoveGroups"];

export default async function templates(ctx, root, params, scope) {
  const registry = await ctx.tenants();
  const scopeSelect = tenantSelect(registry, { name: "tenantId", extra: [["", "Global (every tenant)"]] });
  const listArea = h("div", {});
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 64, autocomplete: "off" });
  const description = h("input", { type: "text", name: "description", maxlength: 500 });
  const roles = h("textarea", { name: "roles", rows: 3 });
  const groups = h("textarea", { name: "groups", rows: 2 });
  const duration = h("input", { type: "text", name: "duration", class: "short", placeholder: "PT2H" });
  const reasonPrefix = h("input", { type: "text", name: "reasonPrefix", maxlength: 100 });
  const tapMode = h("select", { name: "tap" }, h("option", { value: "" }, "As the request says"), h("option", { value: "on" }, "Issue one"), h("option", { value: "off" }, "Do not issue one"));
  const tapLifetime = h("input", { type: "number", name: "lifetimeInMinutes", min: 10, max: 43200, class: "short", value: 60 });
  const tapOnce = h("input", { type: "checkbox", id: uid("once"), name: "isUsableOnce" });
  const actionBoxes = ACTIONS.map((a) => h("input", { type: "checkbox", value: a, id: uid("action") }));
  const f = {
    name: field({ label: "Name", control: name, name: "name", required: true, hint: "Letters, digits, space, '.', '_' or '-'. Saving an existing name replaces it." }),
    description: field({ label: "Description", control: description, name: "description" }),
    roles: field({ label: "Roles", control: roles, name: "roles", hint: "One a line (name or template id)." }),
    groups: field({ label: "Groups", control: groups, name: "groups", hint: "Group object ids, one a line." }),
    duration: field({ label: "Duration", control: duration, name: "duration", hint: "ISO 8601 (PT2H)." }),
    reasonPrefix: field({ label: "Reason prefix", control: reasonPrefix, name: "reasonPrefix", hint: "Put before the requester's reason." }),
    tap: field({ label: "Temporary Access Pass", control: tapMode, name: "temporaryAccessPass" }),
    tapLifetime: field({ label: "TAP lifetime (minutes)", control: tapLifetime, name: "tapLifetime" }),
  };
  const actionsError = h("p", { class: "field-error", hidden: true });
  const slots = {
    name: f.name, description: f.description, roles: f.roles, groups: f.groups, duration: f.duration, reasonPrefix: f.reasonPrefix,
    temporaryAccessPass: f.tap, expirationActions: { error: actionsError, control: actionBoxes[0] },
  };
  const general = h("div", { class: "notice notice--error", role: "alert", hidden: true });
  const form = h("form", { class: "panel", "aria-labelledby": "template-form-title", novalidate: true },
    h("h2", { id: "template-form-title" }, "Add or change a template"),
    f.name.wrapper, f.description.wrapper, f.roles.wrapper, f.groups.wrapper, f.duration.wrapper, f.reasonPrefix.wrapper,
    f.tap.wrapper, f.tapLifetime.wrapper, h("label", { for: tapOnce.id, class: "check" }, tapOnce, " Usable for one sign-in only"),
    h("fieldset", { class: "group" }, h("legend", {}, "At the end (empty: the defaults)"), h("div", { class: "checks" }, actionBoxes.map((b) => h("label", { for: b.id, class: "check" }, b, ` ${b.value}`))), actionsError),
    general,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save template")));
  fill(root, field({ label: "Templates of", control: scopeSelect, name: "scope" }).wrapper, h("div", { class: "admin-grid admin-grid--two" }, h("section", { "aria-labelledby": "templates-title" }, h("h2", { id: "templates-title" }, "Templates"), listArea), form));

  const query = () => (scopeSelect.value ? { tenantId: scopeSelect.value } : {});

  let loadSeq = 0;
  async function load() {
    const seq = ++loadSeq;
    fill(listArea, h("p", { class: "summary" }, "Loading…"));
    try {
      const { data } = await api("GET", "/api/jit/templates", { query: query(), signal: scope.signal });
      if (seq !== loadSeq) return;
      const here = data.value.filter((t) => (scopeSelect.value ? t.scope === scopeSelect.value : t.scope === "global"));
      fill(listArea, table("Templates", [
        ["Name", (t) => [h("strong", {}, t.name), t.description ? h("p", { class: "hint" }, t.description) : null]],
        ["Gives", (t) => [...(t.roles || []), ...(t.groups || []).map((g) => `group ${g}`)].join(", ") || "—", "wrap"],
        ["Duration", (t) => t.duration || "—"],
        ["", (t) => h("div", { class: "actions" },
          h("button", { type: "button", onclick: () => edit(t) }, "Edit", h("span", { class: "visually-hidden" }, ` ${t.name}`)),
          h("button", { type: "button", class: "danger", onclick: () => remove(t) }, "Delete", h("span", { class: "visually-hidden" }, ` ${t.name}`)))],
      ], here, { empty: "No templates here yet." }));
    } catch (error) {
      fill(listArea, h("p", { class: "notice notice--error", role: "alert" }, describe(error)));
    }
  }

  function edit(t) {
    clearProblems(slots, general);
    name.value = t.name;
    description.value = t.description || "";
    lines.write(roles, t.roles);
    lines.write(groups, t.groups);
    duration.value = t.duration || "";
    reasonPrefix.value = t.reasonPrefix || "";
    tapMode.value = t.temporaryAccessPass ? (t.temporaryAccessPass.enabled ? "on" : "off") : "";
    tapLifetime.value = (t.temporaryAccessPass && t.temporaryAccessPass.lifetimeInMinutes) || 60;
    tapOnce.checked = Boolean(t.temporaryAccessPass && t.temporaryAccessPass.isUsableOnce);
    for (const box of actionBoxes) box.checked = (t.expirationActions || []).includes(box.value);
    name.focus();
  }

  async function remove(t) {
    const sure = await dialog({
      title: `Delete the template ${t.name}?`,
      content: h("p", {}, "Requests already made with it keep what it gave them."),
      actions: [{ label: "Keep it", value: "cancel" }, { label: "Delete", value: "delete", submit: true, class: "danger" }],
    });
    if (!sure) return;
    try {
      await api("DELETE", `/api/jit/templates/${encodeURIComponent(t.name)}`, { query: query() });
      ctx.announce(`The template ${t.name} is deleted.`);
      await load();
    } catch (error) {
      ctx.announce(describe(error), { tone: "error" });
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(slots, general);
    const body = {};
    if (description.value.trim()) body.description = description.value.trim();
    if (lines.read(roles).length) body.roles = lines.read(roles);
    if (lines.read(groups).length) body.groups = lines.read(groups);
    if (duration.value.trim()) body.duration = duration.value.trim();
    if (reasonPrefix.value.trim()) body.reasonPrefix = reasonPrefix.value.trim();
    if (tapMode.value) body.temporaryAccessPass = { enabled: tapMode.value === "on", lifetimeInMinutes: Number(tapLifetime.value) || 60, isUsableOnce: tapOnce.checked };
    const actions = actionBoxes.filter((b) => b.checked).map((b) => b.value);
    if (actions.length) body.expirationActions = actions;
    if (!name.value.trim()) {
      showErrors(f.name.error, name, ["Give the template a name."]);
      name.focus();
      return;
    }
    try {
      const { status } = await api("PUT", `/api/jit/templates/${encodeURIComponent(name.value.trim())}`, { body, query: query() });
      ctx.announce(`The template ${name.value.trim()} is ${status === 201 ? "added" : "saved"}.`);
      await load();
    } catch (error) {
      showApiProblems(error, slots, general);
    }
  });

  scopeSelect.addEventListener("change", load);
  await load();
}
