// Named notification channels (admins): mailboxes, a Teams/Workflows URL or a webhook URL, that requesters name
// in their requests (a request never carries an address itself).

import { api, describe } from "../api.js";
import { dialog, field, fill, h, showErrors, uid } from "../dom.js";
import { clearProblems, lines, showApiProblems, table } from "../widgets.js";

export default async function channels(ctx, root, params, scope) {
  const listArea = h("div", {});
  const name = h("input", { type: "text", name: "name", maxlength: 64, autocomplete: "off" });
  const kind = h("select", { name: "kind" }, h("option", { value: "email" }, "Email"), h("option", { value: "teams" }, "Teams / Power Automate Workflows"), h("option", { value: "webhook" }, "Webhook (signed JSON)"));
  const addresses = h("textarea", { name: "addresses", rows: 3 });
  const description = h("input", { type: "text", name: "description", maxlength: 500 });
  const privateNet = h("input", { type: "checkbox", id: uid("private"), name: "allowPrivateNetwork" });
  const privateError = h("p", { class: "field-error", hidden: true });
  const f = {
    name: field({ label: "Name", control: name, name: "name", required: true, hint: "What requesters choose. Saving an existing name replaces it." }),
    kind: field({ label: "Kind", control: kind, name: "kind" }),
    addresses: field({ label: "Addresses", control: addresses, name: "addresses", required: true, hint: "One a line: mailboxes, or https URLs (a Teams Workflows URL carries its signature in the query: it is shown to admins only)." }),
    description: field({ label: "Description", control: description, name: "description" }),
  };
  const slots = { name: f.name, kind: f.kind, addresses: f.addresses, description: f.description, allowPrivateNetwork: { error: privateError, control: privateNet } };
  const general = h("div", { class: "notice notice--error", role: "alert", hidden: true });
  const form = h("form", { class: "panel", "aria-labelledby": "channel-form-title", novalidate: true },
    h("h2", { id: "channel-form-title" }, "Add or change a channel"),
    f.name.wrapper, f.kind.wrapper, f.addresses.wrapper, f.description.wrapper,
    h("label", { for: privateNet.id, class: "check" }, privateNet, " Allow addresses on private or loopback networks (and plain http)"), privateError,
    general, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save channel")));
  fill(root, h("div", { class: "admin-grid admin-grid--two" }, h("section", { "aria-labelledby": "channels-title" }, h("h2", { id: "channels-title" }, "Channels"), listArea), form));

  async function load() {
    fill(listArea, h("p", { class: "summary" }, "Loading…"));
    try {
      const { data } = await api("GET", "/api/jit/channels", { signal: scope.signal });
      fill(listArea, table("Channels", [
        ["Name", (c) => [h("strong", {}, c.name), c.description ? h("p", { class: "hint" }, c.description) : null]],
        ["Kind", (c) => c.kind],
        ["Addresses", (c) => (c.addresses || []).map((a) => h("div", {}, a)), "wrap"],
        ["", (c) => h("div", { class: "actions" },
          h("button", { type: "button", onclick: () => edit(c) }, "Edit", h("span", { class: "visually-hidden" }, ` ${c.name}`)),
          h("button", { type: "button", class: "danger", onclick: () => remove(c) }, "Delete", h("span", { class: "visually-hidden" }, ` ${c.name}`)))],
      ], data.value, { empty: "No channels yet." }));
    } catch (error) {
      fill(listArea, h("p", { class: "notice notice--error", role: "alert" }, describe(error)));
    }
  }

  function edit(c) {
    clearProblems(slots, general);
    name.value = c.name;
    kind.value = c.kind;
    lines.write(addresses, c.addresses);
    description.value = c.description || "";
    privateNet.checked = Boolean(c.allowPrivateNetwork);
    name.focus();
  }

  async function remove(c) {
    const sure = await dialog({
      title: `Delete the channel ${c.name}?`,
      content: h("p", {}, "Requests that name it will no longer be told through it."),
      actions: [{ label: "Keep it", value: "cancel" }, { label: "Delete", value: "delete", submit: true, class: "danger" }],
    });
    if (!sure) return;
    try {
      await api("DELETE", `/api/jit/channels/${encodeURIComponent(c.name)}`);
      ctx.announce(`The channel ${c.name} is deleted.`);
      await load();
    } catch (error) {
      ctx.announce(describe(error), { tone: "error" });
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(slots, general);
    if (!name.value.trim()) {
      showErrors(f.name.error, name, ["Give the channel a name."]);
      name.focus();
      return;
    }
    const body = { kind: kind.value, addresses: lines.read(addresses), description: description.value.trim(), allowPrivateNetwork: privateNet.checked };
    try {
      const { status } = await api("PUT", `/api/jit/channels/${encodeURIComponent(name.value.trim())}`, { body });
      ctx.announce(`The channel ${name.value.trim()} is ${status === 201 ? "added" : "saved"}.`);
      await load();
    } catch (error) {
      showApiProblems(error, slots, general);
    }
  });

  await load();
}
