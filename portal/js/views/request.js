// The request form: tenant, template, who, roles (the tenant's live definitions, privileged ones marked), groups
// (searched by name), how long (presets within policy), why, ticket, Temporary Access Pass, channels. As the form
// changes, the API's dry run (POST /requests/assess) says what policy thinks, and each problem is shown next to
// the field it is about before anything is sent.

import { ApiError, api, describe } from "../api.js";
import { field, fill, h, showErrors, uid } from "../dom.js";
import { RULE_NAMES, durationSeconds, humanDuration, isoMinutes, localInputToIso, splitRule } from "../format.js";

const PRESETS = [30, 60, 120, 240, 480]; // minutes
const ASSESS_DELAY_MS = 400;
// Which field each policy rule is about (the rest are about the request as a whole).
const RULE_FIELD = {
  allowedRoles: "roles",
  allowedGroups: "groups",
  maxDuration: "duration",
  maxDurationPerRole: "duration",
  ticketRequired: "ticket",
  ticketPattern: "ticket",
  temporaryAccessPass: "tap",
  existingAccountCredentials: "tap",
};

function fieldOf(path, userKind) {
  if (path.startsWith("tenantId")) return "tenant";
  if (path.startsWith("directory")) return "directory";
  if (path.startsWith("user.displayName")) return "displayName";
  if (path.startsWith("user.userPrincipalName")) return userKind === "new" ? "upn" : "existingUpn";
  if (path.startsWith("user")) return userKind === "new" ? "displayName" : "existingUpn";
  if (path.startsWith("roles")) return "roles";
  if (path.startsWith("groups")) return "groups";
  if (path === "duration" || path === "endDateTime") return "duration";
  if (path.startsWith("startDateTime")) return "start";
  if (path.startsWith("reason")) return "reason";
  if (path.startsWith("ticketId")) return "ticket";
  if (path.startsWith("temporaryAccessPass")) return "tap";
  if (path.startsWith("notifications")) return "channels";
  if (path.startsWith("templateName")) return "template";
  return "form";
}

export default async function request(ctx, root, params, scope) {
  const registry = await ctx.tenants();
  const tenants = registry.value;
  const slots = {}; // field key -> {error, control}
  const touched = new Set();
  let submitted = false;
  let catalog = { roles: [], templates: [], policy: null, channels: [] };
  let assessSeq = 0;
  let assessTimer = null;
  let assessController = null;
  let lastSent = { json: "", key: "" };

  // -- Where ----------------------------------------------------------------------------------------------------
  const tenant = h(
    "select",
    { name: "tenantId", required: true },
    h("option", { value: "" }, tenants.length ? "Choose a tenant" : "No tenant is onboarded yet"),
    tenants.map((t) =>
      h("option", { value: t.id, disabled: t.state !== "Ready" }, `${t.displayName || t.initialDomain} (${t.initialDomain})${t.state !== "Ready" ? ` — ${t.state}` : ""}`),
    ),
  );
  const tenantField = field({ label: "Tenant", control: tenant, name: "tenant", required: true });
  slots.tenant = tenantField;
  const directory = h("select", { name: "directory" });
  const directoryField = field({ label: "Directory", control: directory, name: "directory", hint: "Where the access is given." });
  directoryField.wrapper.hidden = true;
  slots.directory = directoryField;
  const template = h("select", { name: "templateName" }, h("option", { value: "" }, "None"));
  const templateField = field({ label: "Template", control: template, name: "template", hint: "A template fills in roles, groups and duration; you can change them." });
  slots.template = templateField;

  // -- Who ------------------------------------------------------------------------------------------------------
  const kindName = uid("user-kind");
  const kindNew = h("input", { type: "radio", name: kindName, value: "new", checked: true, id: uid("kind") });
  const kindExisting = h("input", { type: "radio", name: kindName, value: "existing", id: uid("kind") });
  const displayName = h("input", { type: "text", name: "displayName", maxlength: 256, autocomplete: "off" });
  const displayField = field({ label: "Name of the new account", control: displayName, name: "displayName", required: true, hint: "An account made for this grant and deleted at its end. You get its Temporary Access Pass." });
  slots.displayName = displayField;
  const upn = h("input", { type: "text", name: "userPrincipalName", maxlength: 113, autocomplete: "off", placeholder: "optional" });
  const upnField = field({ label: "Sign-in name (optional)", control: upn, name: "upn", hint: "Left empty, one is made from the name on the tenant's initial domain." });
  slots.upn = upnField;
  const existingUpn = h("input", { type: "email", name: "existingUserPrincipalName", maxlength: 113, autocomplete: "off" });
  const existingField = field({ label: "Sign-in name of the existing account", control: existingUpn, name: "existingUpn", required: true, hint: "The account keeps what it had; it loses what this grant gave it at the end." });
  existingField.wrapper.hidden = true;
  slots.existingUpn = existingField;
  const who = h(
    "fieldset",
    { class: "group", dataset: { field: "user" } },
    h("legend", {}, "Who gets the access"),
    h("div", { class: "radios" }, h("label", { for: kindNew.id }, kindNew, " A new account"), h("label", { for: kindExisting.id }, kindExisting, " An existing account")),
    displayField.wrapper,
    upnField.wrapper,
    existingField.wrapper,
  );

  // -- What: roles ----------------------------------------------------------------------------------------------
  const roleSearch = h("input", { type: "search", name: "roleSearch", autocomplete: "off", placeholder: "Filter roles" });
  const roleSearchField = field({ label: "Find a role", control: roleSearch, name: "roleSearchBox" });
  const roleList = h("ul", { class: "choice-list", id: uid("roles") });
  const roleStatus = h("p", { class: "hint", "aria-live": "polite" });
  const rolesError = h("p", { class: "field-error", id: uid("roles-error"), hidden: true });
  const rolesLegendId = uid("roles-legend");
  const roleGroup = h("div", { role: "group", "aria-labelledby": rolesLegendId, "aria-describedby": rolesError.id, class: "choice-scroll", tabindex: "-1" }, roleList);
  slots.roles = { error: rolesError, control: roleGroup };
  const selectedRoles = new Set();
  const selectedRolesView = h("p", { class: "selected", "aria-live": "polite" });

  // -- What: groups ---------------------------------------------------------------------------------------------
  const groupSearch = h("input", { type: "search", name: "groupSearch", autocomplete: "off", placeholder: "Start of the group's name" });
  const groupSearchField = field({ label: "Find a group", control: groupSearch, name: "groupSearchBox", hint: "Type at least two letters." });
  const groupResults = h("ul", { class: "choice-list" });
  const groupStatus = h("p", { class: "hint", "aria-live": "polite" });
  const groupsError = h("p", { class: "field-error", id: uid("groups-error"), hidden: true });
  const selectedGroups = new Map(); // id -> name
  const selectedGroupsView = h("ul", { class: "chips" });
  slots.groups = { error: groupsError, control: groupSearch };
  groupSearch.setAttribute("aria-describedby", `${groupSearch.getAttribute("aria-describedby")} ${groupsError.id}`);

  const what = h(
    "fieldset",
    { class: "group", dataset: { field: "roles" } },
    h("legend", { id: rolesLegendId }, "Roles"),
    roleSearchField.wrapper,
    roleStatus,
    roleGroup,
    selectedRolesView,
    rolesError,
  );
  const groupsSet = h(
    "fieldset",
    { class: "group", dataset: { field: "groups" } },
    h("legend", {}, "Groups (optional)"),
    groupSearchField.wrapper,
    groupStatus,
    groupResults,
    h("p", { class: "hint" }, "Chosen groups:"),
    selectedGroupsView,
    groupsError,
  );

  // -- How long -------------------------------------------------------------------------------------------------
  const durationName = uid("duration");
  const durationError = h("p", { class: "field-error", id: uid("duration-error"), hidden: true });
  const durationHint = h("p", { class: "hint", id: uid("duration-hint") });
  const presetBox = h("div", { class: "radios radios--wrap" });
  const customHours = h("input", { type: "number", name: "customHours", min: 0.25, step: 0.25, inputmode: "decimal", disabled: true, class: "short" });
  const customField = field({ label: "Number of hours", control: customHours, name: "duration" });
  const durationSet = h(
    "fieldset",
    { class: "group", dataset: { field: "duration" }, "aria-describedby": `${durationHint.id} ${durationError.id}` },
    h("legend", {}, "How long"),
    durationHint,
    presetBox,
    customField.wrapper,
    durationError,
  );
  slots.duration = { error: durationError, control: presetBox };
  const later = h("input", { type: "checkbox", name: "startLater", id: uid("later") });
  const startAt = h("input", { type: "datetime-local", name: "startDateTime", disabled: true });
  const startField = field({ label: "Start at", control: startAt, name: "start" });
  startField.wrapper.hidden = true;
  slots.start = startField;
  durationSet.append(h("label", { for: later.id, class: "check" }, later, " Start later"), startField.wrapper);

  function renderPresets() {
    const max = maxMinutes();
    const current = presetBox.querySelector("input:checked");
    const wanted = current ? current.value : "60";
    const allowed = PRESETS.filter((m) => max === null || m <= max);
    presetBox.replaceChildren(
      ...allowed.map((minutes) => {
        const input = h("input", { type: "radio", name: durationName, value: String(minutes), id: uid("preset") });
        return h("label", { for: input.id, class: "chip-radio" }, input, ` ${humanDuration(minutes * 60)}`);
      }),
      (() => {
        const input = h("input", { type: "radio", name: durationName, value: "custom", id: uid("preset") });
        return h("label", { for: input.id, class: "chip-radio" }, input, " Other");
      })(),
    );
    const keep = presetBox.querySelector(`input[value="${wanted}"]`) || presetBox.querySelector(`input[value="${allowed.includes(60) ? 60 : allowed[allowed.length - 1] ?? "custom"}"]`);
    if (keep) keep.checked = true;
    showCustom((presetBox.querySelector("input:checked") || {}).value === "custom");
    fill(durationHint, max === null ? "Ends by itself at the end: nothing to remember." : `The policy allows at most ${humanDuration(max * 60)} for what you chose.`);
  }

  function showCustom(shown) {
    customHours.disabled = !shown;
    customField.wrapper.hidden = !shown;
  }

  /** The longest grant the policy allows for the chosen roles, in minutes (null: the policy sets none). */
  function maxMinutes() {
    const policy = catalog.policy;
    if (!policy) return null;
    const limits = [];
    if (policy.maxDuration) limits.push(durationSeconds(policy.maxDuration) / 60);
    for (const [role, limit] of Object.entries(policy.maxDurationPerRole || {})) {
      const chosen = [...selectedRoles].some((name) => sameRole(name, role));
      if (chosen) limits.push(durationSeconds(limit) / 60);
    }
    return limits.length ? Math.min(...limits) : null;
  }

  function sameRole(name, reference) {
    const found = catalog.roles.find((r) => r.displayName === name);
    const ref = String(reference).toLowerCase();
    return name.toLowerCase() === ref || (found && (found.templateId || "").toLowerCase() === ref);
  }

  function durationValue() {
    const chosen = presetBox.querySelector("input:checked");
    if (!chosen) return null;
    if (chosen.value === "custom") {
      const hours = Number(customHours.value);
      return hours > 0 ? isoMinutes(Math.round(hours * 60)) : null;
    }
    return isoMinutes(Number(chosen.value));
  }

  // -- Why ------------------------------------------------------------------------------------------------------
  const prefix = h("span", { class: "prefix", hidden: true });
  const reason = h("textarea", { name: "reason", rows: 3, maxlength: 1000 });
  const reasonField = field({ label: "Reason", control: reason, name: "reason", required: true, hint: "What you will do, 10 to 1000 characters. Approvers and the audit trail see it." });
  reasonField.wrapper.insertBefore(prefix, reason);
  slots.reason = reasonField;
  const ticket = h("input", { type: "text", name: "ticketId", maxlength: 100, autocomplete: "off" });
  const ticketField = field({ label: "Ticket", control: ticket, name: "ticket", hint: "The ticket this work is for." });
  slots.ticket = ticketField;

  // -- Sign-in --------------------------------------------------------------------------------------------------
  const tapEnabled = h("input", { type: "checkbox", name: "tapEnabled", checked: true, id: uid("tap") });
  const tapLifetime = h("input", { type: "number", name: "lifetimeInMinutes", min: 10, max: 43200, step: 1, value: 60, class: "short" });
  const tapLifetimeField = field({ label: "Pass valid for (minutes)", control: tapLifetime, name: "tap" });
  const tapOnce = h("input", { type: "checkbox", name: "isUsableOnce", id: uid("tap-once") });
  const tapError = h("p", { class: "field-error", id: uid("tap-error"), hidden: true });
  tapEnabled.setAttribute("aria-describedby", tapError.id);
  let tapTouched = false;
  slots.tap = { error: tapError, control: tapEnabled };
  const tapSet = h(
    "fieldset",
    { class: "group", dataset: { field: "tap" } },
    h("legend", {}, "Temporary Access Pass"),
    h("label", { for: tapEnabled.id, class: "check" }, tapEnabled, " Issue a Temporary Access Pass to sign in with"),
    tapLifetimeField.wrapper,
    h("label", { for: tapOnce.id, class: "check" }, tapOnce, " Usable for one sign-in only"),
    tapError,
  );

  // -- Channels -------------------------------------------------------------------------------------------------
  const channelList = h("div", { class: "checks" });
  const channelsError = h("p", { class: "field-error", id: uid("channels-error"), hidden: true });
  slots.channels = { error: channelsError, control: channelList };
  const channelSet = h("fieldset", { class: "group", dataset: { field: "channels" }, hidden: true }, h("legend", {}, "Also tell (optional)"), channelList, channelsError);

  // -- Outcome --------------------------------------------------------------------------------------------------
  const assessment = h("section", { class: "assessment", "aria-live": "polite", "aria-label": "What the policy says" });
  const formError = h("div", { class: "notice notice--error", role: "alert", hidden: true });
  slots.form = { error: formError, control: null };
  const submit = h("button", { type: "submit", class: "primary" }, "Request access");
  const form = h(
    "form",
    { class: "request-form", novalidate: true, "aria-labelledby": "page-title" },
    h("fieldset", { class: "group" }, h("legend", {}, "Where"), tenantField.wrapper, directoryField.wrapper, templateField.wrapper),
    who,
    what,
    groupsSet,
    durationSet,
    h("fieldset", { class: "group", dataset: { field: "reason" } }, h("legend", {}, "Why"), reasonField.wrapper, ticketField.wrapper),
    tapSet,
    channelSet,
    assessment,
    formError,
    h("div", { class: "actions" }, submit),
  );
  fill(root, form);
  renderPresets();

  // -- Loading what the tenant offers ---------------------------------------------------------------------------
  async function loadTenant() {
    const id = tenant.value;
    catalog = { roles: [], templates: [], policy: null, channels: catalog.channels };
    roleList.replaceChildren();
    selectedRoles.clear();
    renderSelectedRoles();
    // Roles and groups belong to a tenant: a change of tenant starts them afresh.
    selectedGroups.clear();
    groupResults.replaceChildren();
    renderSelectedGroups();
    fill(template, h("option", { value: "" }, "None"));
    const registration = tenants.find((t) => t.id === id);
    directory.replaceChildren(...(registration ? registration.directories : []).map((d) => h("option", { value: d }, directoryLabel(d))));
    directoryField.wrapper.hidden = !registration || registration.directories.length < 2;
    if (registration) directory.value = registration.defaultDirectory || registration.directories[0];
    if (!id) {
      fill(roleStatus, "Choose a tenant to see its roles.");
      return;
    }
    fill(roleStatus, "Reading the tenant's roles…");
    const [roles, templates, policy] = await Promise.allSettled([
      api("GET", `/api/jit/tenants/${encodeURIComponent(id)}/roles`, { signal: scope.signal }),
      api("GET", "/api/jit/templates", { query: { tenantId: id }, signal: scope.signal }),
      api("GET", `/api/jit/policies/${encodeURIComponent(id)}`, { signal: scope.signal }),
    ]);
    if (!scope.alive || tenant.value !== id) return;
    if (roles.status === "fulfilled") {
      catalog.roles = roles.value.data.value;
      fill(roleStatus, `${catalog.roles.length} roles in this tenant.`);
    } else {
      fill(roleStatus, h("span", { role: "alert" }, `The tenant's roles could not be read: ${describe(roles.reason)}`));
    }
    if (templates.status === "fulfilled") catalog.templates = templates.value.data.value;
    if (policy.status === "fulfilled") catalog.policy = policy.value.data;
    template.append(...catalog.templates.map((t) => h("option", { value: t.name }, t.scope === "global" ? t.name : `${t.name} (this tenant)`)));
    applyPolicyHints();
    renderRoles();
    renderPresets();
    scheduleAssess();
  }

  function directoryLabel(name) {
    if (name === "entra") return "Entra ID (direct role assignment)";
    if (name === "entra-pim") return "Entra ID through PIM";
    if (name.startsWith("ad:")) return `Active Directory at ${name.slice(3)}`;
    return name;
  }

  function needsApproval(role) {
    const gated = (catalog.policy && catalog.policy.rolesRequiringApproval) || [];
    return gated.some((g) => sameRole(role.displayName, g)) || Boolean(catalog.policy && catalog.policy.approvalRequired);
  }

  function renderRoles() {
    const filter = roleSearch.value.trim().toLowerCase();
    const items = catalog.roles.map((role) => {
      const id = uid("role");
      const box = h("input", { type: "checkbox", id, value: role.displayName, checked: selectedRoles.has(role.displayName) });
      box.addEventListener("change", () => {
        if (box.checked) selectedRoles.add(role.displayName);
        else selectedRoles.delete(role.displayName);
        renderSelectedRoles();
        renderPresets();
      });
      const tags = [
        role.privileged ? h("span", { class: "tag tag--privileged" }, "privileged") : null,
        needsApproval(role) ? h("span", { class: "tag tag--approval" }, "needs approval") : null,
      ];
      return h("li", { hidden: Boolean(filter) && !role.displayName.toLowerCase().includes(filter) }, h("label", { for: id }, box, " ", role.displayName, " ", tags));
    });
    roleList.replaceChildren(...items);
  }

  function renderSelectedRoles() {
    fill(selectedRolesView, selectedRoles.size ? `Chosen: ${[...selectedRoles].join(", ")}` : "No role chosen.");
  }

  function applyPolicyHints() {
    const policy = catalog.policy || {};
    const tap = policy.temporaryAccessPass || {};
    tapLifetime.min = tap.minLifetimeInMinutes || 10;
    tapLifetime.max = tap.maxLifetimeInMinutes || 43200;
    const value = Number(tapLifetime.value);
    if (value < tapLifetime.min) tapLifetime.value = tapLifetime.min;
    if (value > tapLifetime.max) tapLifetime.value = tapLifetime.max;
    const hintParts = ["The ticket this work is for."];
    if (policy.ticketRequired) hintParts.push("This tenant's policy requires one.");
    if (policy.ticketPattern) hintParts.push(`Format: ${policy.ticketPattern}`);
    fill(ticketField.wrapper.querySelector(".hint"), hintParts.join(" "));
    ticket.toggleAttribute("required", Boolean(policy.ticketRequired));
    ticket.setAttribute("aria-required", String(Boolean(policy.ticketRequired)));
  }

  // -- Groups ---------------------------------------------------------------------------------------------------
  let groupTimer = null;
  let groupSeq = 0;
  groupSearch.addEventListener("input", () => {
    clearTimeout(groupTimer);
    const text = groupSearch.value.trim();
    if (text.length < 2) {
      groupResults.replaceChildren();
      fill(groupStatus, "");
      return;
    }
    groupTimer = setTimeout(() => searchGroups(text), 300);
  });

  async function searchGroups(text) {
    if (!tenant.value) {
      fill(groupStatus, "Choose a tenant first.");
      return;
    }
    const seq = ++groupSeq;
    fill(groupStatus, "Searching…");
    try {
      const { data } = await api("GET", `/api/jit/tenants/${encodeURIComponent(tenant.value)}/groups`, { query: { search: text }, signal: scope.signal });
      if (seq !== groupSeq) return;
      fill(groupStatus, `${data.value.length} group${data.value.length === 1 ? "" : "s"} found.`);
      groupResults.replaceChildren(
        ...data.value.map((g) => {
          const id = uid("group");
          const box = h("input", { type: "checkbox", id, value: g.id, checked: selectedGroups.has(g.id) });
          box.addEventListener("change", () => {
            if (box.checked) selectedGroups.set(g.id, g.displayName);
            else selectedGroups.delete(g.id);
            renderSelectedGroups();
            scheduleAssess();
          });
          return h("li", {}, h("label", { for: id }, box, " ", g.displayName, g.isAssignableToRole ? [" ", h("span", { class: "tag tag--privileged" }, "can hold roles")] : null));
        }),
      );
    } catch (error) {
      if (seq === groupSeq && scope.alive) fill(groupStatus, h("span", { role: "alert" }, `Groups could not be searched: ${describe(error)}`));
    }
  }

  function renderSelectedGroups() {
    selectedGroupsView.replaceChildren(
      ...[...selectedGroups].map(([id, name]) =>
        h(
          "li",
          {},
          h("button", {
            type: "button",
            class: "chip",
            "aria-label": `Remove ${name}`,
            onclick: () => {
              selectedGroups.delete(id);
              const box = groupResults.querySelector(`input[value="${CSS.escape(id)}"]`);
              if (box) box.checked = false;
              renderSelectedGroups();
              scheduleAssess();
              groupSearch.focus();
            },
          }, name, " ×"),
        ),
      ),
    );
    if (!selectedGroups.size) selectedGroupsView.append(h("li", { class: "hint" }, "none"));
  }
  renderSelectedGroups();

  // -- Channels -------------------------------------------------------------------------------------------------
  api("GET", "/api/jit/channels", { signal: scope.signal })
    .then(({ data }) => {
      catalog.channels = data.value;
      channelSet.hidden = !data.value.length;
      channelList.replaceChildren(
        ...data.value.map((c) => {
          const id = uid("channel");
          return h("label", { for: id, class: "check" }, h("input", { type: "checkbox", id, value: c.name, name: "channel" }), ` ${c.name} (${c.kind})`, c.description ? h("span", { class: "hint" }, ` — ${c.description}`) : null);
        }),
      );
    })
    .catch(() => {});

  // -- The request's body ---------------------------------------------------------------------------------------
  function userKind() {
    return kindExisting.checked ? "existing" : "new";
  }

  /** The request as the API takes it. With `forAssessment`, fields a person has not reached yet get stand-ins, so
   * that policy can speak about the rest (the API's dry run validates the whole body first). */
  function body(forAssessment = false) {
    const kind = userKind();
    const stand = (key, value, standIn) => (forAssessment && !value && !touched.has(key) && !submitted ? standIn : value);
    const user =
      kind === "new"
        ? { type: "new", displayName: stand("displayName", displayName.value.trim(), "New account") }
        : { type: "existing", userPrincipalName: stand("existingUpn", existingUpn.value.trim(), "someone@example.com") };
    if (kind === "new" && upn.value.trim()) user.userPrincipalName = upn.value.trim();
    const text = reason.value.trim();
    const result = {
      tenantId: tenant.value,
      user,
      roles: [...selectedRoles],
      groups: [...selectedGroups.keys()],
      reason: forAssessment && text.length < 10 && !touched.has("reason") && !submitted ? "(reason not written yet)" : text,
    };
    const duration = durationValue();
    if (duration) result.duration = duration;
    else if (forAssessment) result.duration = "PT1H";
    if (later.checked && startAt.value) result.startDateTime = localInputToIso(startAt.value);
    if (!directoryField.wrapper.hidden && directory.value) result.directory = directory.value;
    if (ticket.value.trim()) result.ticketId = ticket.value.trim();
    result.temporaryAccessPass = { enabled: tapEnabled.checked, lifetimeInMinutes: Math.round(Number(tapLifetime.value) || 60), isUsableOnce: tapOnce.checked };
    const channels = [...channelList.querySelectorAll("input:checked")].map((c) => c.value);
    if (channels.length) result.notifications = { channels };
    if (template.value) result.templateName = template.value;
    return result;
  }

  // -- Problems next to their fields ----------------------------------------------------------------------------
  function showProblems({ fieldErrors = [], violations = [] }) {
    const byField = {};
    const kind = userKind();
    for (const e of fieldErrors) {
      const key = fieldOf(e.field, kind);
      if (!submitted && !touched.has(key) && key !== "form") continue; // not yet reached: no scolding
      (byField[key] ||= []).push(e.detail.charAt(0).toUpperCase() + e.detail.slice(1) + ".");
    }
    for (const v of violations) {
      const key = RULE_FIELD[v.rule] || "form";
      (byField[key] ||= []).push(`${RULE_NAMES[v.rule] || v.rule}: ${v.detail}.`);
    }
    for (const [key, slot] of Object.entries(slots)) {
      showErrors(slot.error, slot.control, byField[key] || []);
    }
    return byField;
  }

  function showAssessment(result) {
    if (!result) {
      fill(assessment, h("p", { class: "hint" }, "Choose a tenant and at least one role or group to see what the policy says."));
      submit.textContent = "Request access";
      return;
    }
    if (result.error) {
      fill(assessment, h("p", { class: "assessment__state assessment__state--problem" }, result.error));
      return;
    }
    const { violations, needsApproval: approval, approvalReasons } = result;
    submit.textContent = approval ? "Send for approval" : "Request access";
    if (violations.length) {
      fill(
        assessment,
        h("p", { class: "assessment__state assessment__state--problem" }, `Outside the policy: ${violations.length} problem${violations.length === 1 ? "" : "s"}, shown next to the fields.`),
      );
      return;
    }
    fill(
      assessment,
      approval
        ? [
            h("p", { class: "assessment__state assessment__state--approval" }, "Within policy. An approver must agree first, because:"),
            h("ul", {}, approvalReasons.map((text) => {
              const { rule, detail } = splitRule(text);
              return h("li", {}, h("strong", {}, RULE_NAMES[rule] || rule), detail ? `: ${detail}` : "");
            })),
          ]
        : h("p", { class: "assessment__state assessment__state--ok" }, "Within policy. No approval needed: it starts as requested."),
    );
  }

  function scheduleAssess() {
    clearTimeout(assessTimer);
    assessTimer = setTimeout(assess, ASSESS_DELAY_MS);
  }

  async function assess() {
    const draft = body(true);
    if (!draft.tenantId || (!draft.roles.length && !draft.groups.length)) {
      showProblems({});
      showAssessment(null);
      return;
    }
    const seq = ++assessSeq;
    if (assessController) assessController.abort();
    assessController = new AbortController();
    scope.signal.addEventListener("abort", () => assessController.abort(), { once: true });
    try {
      const { data } = await api("POST", "/api/jit/requests/assess", { body: draft, signal: assessController.signal });
      if (seq !== assessSeq) return;
      showProblems({ violations: data.violations });
      showAssessment(data);
    } catch (error) {
      if (seq !== assessSeq || (error && error.name === "AbortError")) return;
      if (error instanceof ApiError && error.status === 400) {
        const shown = showProblems({ fieldErrors: error.fieldErrors });
        const hidden = error.fieldErrors.length - Object.values(shown).flat().length;
        showAssessment({ error: hidden > 0 && !Object.keys(shown).length ? "Fill in the form to see what the policy says." : "Some fields need another look; see the notes next to them." });
      } else {
        showAssessment({ error: `The policy could not be checked: ${describe(error)}` });
      }
    }
  }

  // -- Events ---------------------------------------------------------------------------------------------------
  form.addEventListener("input", (event) => {
    const holder = event.target.closest("[data-field]");
    if (holder && holder.dataset.field) touched.add(holder.dataset.field);
    if (event.target === roleSearch) {
      renderRoles();
      return;
    }
    if (event.target === groupSearch) return;
    scheduleAssess();
  });
  form.addEventListener("change", (event) => {
    const target = event.target;
    if (target === tenant) {
      touched.add("tenant");
      loadTenant();
      return;
    }
    if (target === kindNew || target === kindExisting) {
      const existing = kindExisting.checked;
      displayField.wrapper.hidden = existing;
      upnField.wrapper.hidden = existing;
      existingField.wrapper.hidden = !existing;
      if (!tapTouched) tapEnabled.checked = !existing; // a new account needs a pass; an existing one has its own sign-in
    }
    if (target === tapEnabled) tapTouched = true;
    if (target === later) {
      startAt.disabled = !later.checked;
      startField.wrapper.hidden = !later.checked;
    }
    if (target.name === durationName) {
      showCustom(target.value === "custom");
      if (target.value === "custom") customHours.focus();
    }
    if (target === template) applyTemplate();
    if (target === roleSearch || target === groupSearch) return;
    scheduleAssess();
  });

  function applyTemplate() {
    const chosen = catalog.templates.find((t) => t.name === template.value);
    const hint = templateField.wrapper.querySelector(".hint");
    prefix.hidden = !(chosen && chosen.reasonPrefix);
    fill(prefix, chosen && chosen.reasonPrefix ? `${chosen.reasonPrefix} ` : "");
    if (!chosen) {
      fill(hint, "A template fills in roles, groups and duration; you can change them.");
      return;
    }
    fill(hint, chosen.description || "Filled in from the template; you can change it.");
    if (chosen.roles) {
      selectedRoles.clear();
      for (const name of chosen.roles) {
        const found = catalog.roles.find((r) => r.displayName.toLowerCase() === name.toLowerCase() || (r.templateId || "").toLowerCase() === name.toLowerCase());
        selectedRoles.add(found ? found.displayName : name);
      }
      renderRoles();
      renderSelectedRoles();
    }
    if (chosen.groups) {
      selectedGroups.clear();
      for (const id of chosen.groups) selectedGroups.set(id, id);
      renderSelectedGroups();
    }
    if (chosen.duration) {
      const minutes = Math.round((durationSeconds(chosen.duration) || 3600) / 60);
      renderPresets();
      const preset = presetBox.querySelector(`input[value="${minutes}"]`);
      if (preset) preset.checked = true;
      else {
        presetBox.querySelector('input[value="custom"]').checked = true;
        showCustom(true);
        customHours.value = String(minutes / 60);
      }
    }
    if (chosen.temporaryAccessPass) {
      tapEnabled.checked = chosen.temporaryAccessPass.enabled;
      if (chosen.temporaryAccessPass.lifetimeInMinutes) tapLifetime.value = chosen.temporaryAccessPass.lifetimeInMinutes;
      tapOnce.checked = Boolean(chosen.temporaryAccessPass.isUsableOnce);
      tapTouched = true;
    }
    renderPresets();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submitted = true;
    clearTimeout(assessTimer);
    assessSeq += 1; // a dry run still on its way says nothing any more
    const draft = body(false);
    const json = JSON.stringify(draft);
    // The same body sent again (a retry after a lost answer) carries the same key, so it makes one grant.
    if (json !== lastSent.json) lastSent = { json, key: crypto.randomUUID() };
    submit.disabled = true;
    formError.hidden = true;
    try {
      const { data } = await api("POST", "/api/jit/requests", { body: draft, headers: { "Idempotency-Key": lastSent.key } });
      ctx.announce(data.status === "AwaitingApproval" ? "Request sent: it waits for an approver." : "Request sent.");
      ctx.navigate(`#/grants/${encodeURIComponent(data.id)}`);
    } catch (error) {
      submit.disabled = false;
      if (error instanceof ApiError && (error.fieldErrors.length || error.ruleErrors.length)) {
        const shown = showProblems({ fieldErrors: error.fieldErrors, violations: error.ruleErrors });
        if (!shown.form) {
          formError.hidden = false;
          fill(formError, error.status === 403 ? "The request is outside the policy: see the notes next to the fields." : "Some fields need another look: see the notes next to them.");
        }
        focusFirstProblem();
      } else {
        formError.hidden = false;
        fill(formError, `The request was not sent: ${describe(error)}`);
      }
    }
  });

  function focusFirstProblem() {
    const first = form.querySelector(".field-error:not([hidden])");
    if (!first) return;
    const holder = first.closest(".field, fieldset");
    const control = holder && holder.querySelector("input:not([type=hidden]):not([disabled]), select, textarea, [role=group]");
    (control || formError).focus();
  }

  if (tenants.filter((t) => t.state === "Ready").length === 1) {
    tenant.value = tenants.find((t) => t.state === "Ready").id;
    await loadTenant();
  } else {
    fill(roleStatus, "Choose a tenant to see its roles.");
  }
  showAssessment(null);
}
