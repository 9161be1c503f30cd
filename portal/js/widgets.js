// Pieces the admin pages share: tables, tenant pickers, line-list text areas, and problems shown next to fields.

import { ApiError, describe } from "./api.js";
import { fill, h, showErrors } from "./dom.js";

/** A table in a scrollable, labelled region: columns are [heading, (row) => cell content, className?]. */
export function table(label, columns, rows, { empty = "Nothing to show." } = {}) {
  if (!rows.length) return h("p", { class: "summary" }, empty);
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": label, tabindex: "0" },
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, label),
      h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell, cls]) => h("td", { class: cls || null }, cell(row)))))),
    ),
  );
}

/** A <select> of onboarded tenants, optionally with leading extra options ([value, label]). */
export function tenantSelect(registry, { name = "tenantId", extra = [], readyOnly = false } = {}) {
  return h(
    "select",
    { name },
    extra.map(([value, label]) => h("option", { value }, label)),
    registry.value
      .filter((t) => !readyOnly || t.state === "Ready")
      .map((t) => h("option", { value: t.id }, `${t.displayName || t.initialDomain} (${t.initialDomain})`)),
  );
}

/** Text area lines <-> list. */
export const lines = {
  read: (textarea) => textarea.value.split("\n").map((l) => l.trim()).filter(Boolean),
  write: (textarea, values) => {
    textarea.value = (values || []).join("\n");
  },
};

/**
 * Show an API error next to the fields it names. `slots` maps a field name (the first segment of the API's path,
 * e.g. "maxDuration" for "maxDuration" or "temporaryAccessPass" for "temporaryAccessPass.minLifetimeInMinutes") to
 * {error, control}. What no field claims goes to `general`. Returns the number of field problems shown.
 */
export function showApiProblems(error, slots, general) {
  for (const slot of Object.values(slots)) showErrors(slot.error, slot.control, []);
  general.hidden = true;
  if (!(error instanceof ApiError)) {
    general.hidden = false;
    fill(general, describe(error));
    return 0;
  }
  const byField = {};
  const unclaimed = [];
  for (const e of error.fieldErrors) {
    const key = Object.keys(slots).find((name) => e.field === name || e.field.startsWith(`${name}.`));
    const detail = e.field.includes(".") && key ? `${e.field.slice(key.length + 1)}: ${e.detail}` : e.detail;
    if (key) (byField[key] ||= []).push(detail);
    else unclaimed.push(`${e.field}: ${e.detail}`);
  }
  for (const [key, messages] of Object.entries(byField)) showErrors(slots[key].error, slots[key].control, messages);
  const shown = Object.values(byField).flat().length;
  if (unclaimed.length || !shown) {
    general.hidden = false;
    fill(general, unclaimed.length ? unclaimed.join("; ") : describe(error));
  }
  const first = Object.keys(byField)[0];
  if (first && slots[first].control) slots[first].control.focus();
  return shown;
}

export function clearProblems(slots, general) {
  for (const slot of Object.values(slots)) showErrors(slot.error, slot.control, []);
  general.hidden = true;
}
