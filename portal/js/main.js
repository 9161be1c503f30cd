// The portal's shell: settings, sign-in, who is signed in, the navigation their app roles allow, and a hash router
// that loads one view module per page. Views get a `ctx` with the signed-in person and helpers, and a scope whose
// timers and requests end when the person leaves the page.

import { Auth } from "./auth.js";
import { api, configure, describe } from "./api.js";
import { fill, h } from "./dom.js";

const REQUESTER = "Jit.Requester";
const APPROVER = "Jit.Approver";
const ADMIN = "Jit.Admin";

const ROUTES = [
  { path: "request", title: "Request access", roles: [REQUESTER, ADMIN], view: "request" },
  { path: "grants", title: "Grants", roles: [REQUESTER, APPROVER, ADMIN], view: "grants" },
  { path: "grants/:id", title: "Grant", roles: [REQUESTER, APPROVER, ADMIN], view: "grant", hidden: true },
  { path: "approvals", title: "Approvals", roles: [APPROVER, ADMIN], view: "approvals" },
  { path: "admin/tenants", title: "Tenants", roles: [ADMIN], view: "tenants" },
  { path: "admin/policies", title: "Policies", roles: [ADMIN], view: "policies" },
  { path: "admin/templates", title: "Templates", roles: [ADMIN], view: "templates" },
  { path: "admin/channels", title: "Channels", roles: [ADMIN], view: "channels" },
  { path: "admin/audit", title: "Audit trail", roles: [ADMIN], view: "audit" },
  { path: "drift", title: "Drift", roles: [APPROVER, ADMIN], view: "drift" },
  { path: "reports", title: "Monthly report", roles: [APPROVER, ADMIN], view: "reports" },
];

const main = document.getElementById("main");
const nav = document.getElementById("site-nav");
const navToggle = document.getElementById("nav-toggle");
const who = document.getElementById("who");
const toast = document.getElementById("toast");

let auth = null;
let me = null;
let leaving = () => {};
let toastTimer = null;

function announce(message, { tone = "info" } = {}) {
  clearTimeout(toastTimer);
  toast.dataset.tone = tone;
  toast.textContent = message;
  toast.classList.add("toast--shown");
  toastTimer = setTimeout(() => {
    toast.classList.remove("toast--shown");
    toast.textContent = "";
  }, tone === "error" ? 12_000 : 6_000);
}

function allowed(route) {
  return route.roles.some((role) => me.roles.includes(role));
}

function home() {
  if (me.roles.includes(APPROVER) && !me.roles.includes(ADMIN)) return "approvals";
  if (me.roles.includes(REQUESTER)) return "request";
  if (me.roles.includes(ADMIN)) return "admin/tenants";
  return null;
}

function match(hash) {
  const path = hash.replace(/^#\/?/, "").split("?")[0].replace(/\/$/, "");
  for (const route of ROUTES) {
    const names = [];
    const pattern = new RegExp(`^${route.path.replace(/:(\w+)/g, (_, name) => (names.push(name), "([^/]+)"))}$`);
    const found = pattern.exec(path);
    if (found) return { route, params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(found[i + 1])])) };
  }
  return null;
}

function query() {
  const text = location.hash.split("?")[1] || "";
  return Object.fromEntries(new URLSearchParams(text));
}

function renderNav(current) {
  const links = ROUTES.filter((r) => !r.hidden && allowed(r)).map((route) =>
    h(
      "a",
      {
        href: `#/${route.path}`,
        "aria-current": current && current.path.split("/:")[0] === route.path.split("/:")[0] ? "page" : null,
        dataset: { route: route.path },
      },
      route.title,
      route.path === "approvals" ? h("span", { class: "badge-count", id: "approvals-count", hidden: true }) : null,
    ),
  );
  fill(nav, h("ul", {}, links.map((link) => h("li", {}, link))));
  navToggle.hidden = links.length === 0;
}

/** The number of waiting approvals next to the navigation link (set by the approvals view and at start). */
function setApprovalCount(count) {
  const badge = document.getElementById("approvals-count");
  if (!badge) return;
  badge.hidden = !count;
  badge.textContent = count ? String(count) : "";
  badge.setAttribute("aria-label", `${count} waiting`);
}

async function route() {
  leaving();
  const controller = new AbortController();
  const timers = new Set();
  const scope = {
    signal: controller.signal,
    get alive() {
      return !controller.signal.aborted;
    },
    /** A timer that ends with the page. */
    later(fn, ms) {
      const id = setTimeout(() => {
        timers.delete(id);
        if (!controller.signal.aborted) fn();
      }, ms);
      timers.add(id);
      return id;
    },
    cancel(id) {
      clearTimeout(id);
      timers.delete(id);
    },
  };
  leaving = () => {
    controller.abort();
    for (const id of timers) clearTimeout(id);
    timers.clear();
  };
  nav.dataset.open = "false";
  navToggle.setAttribute("aria-expanded", "false");

  const found = match(location.hash);
  if (!found) {
    const start = home();
    if (start) {
      location.replace(`#/${start}`);
      return;
    }
    renderNav(null);
    fill(main, h("h1", { tabindex: "-1" }, "No access"), h("p", {}, "Your account has none of the app roles Jit.Requester, Jit.Approver or Jit.Admin. Ask an administrator to assign one in Entra ID (Enterprise applications → the JIT API → Users and groups)."));
    return;
  }
  const { route: current, params } = found;
  renderNav(current);
  const heading = h("h1", { tabindex: "-1", id: "page-title" }, current.title);
  const root = h("div", { class: "view" });
  fill(main, heading, root);
  document.title = `${current.title} · JIT admin access`;
  if (!allowed(current)) {
    fill(root, h("p", { class: "notice notice--error" }, `This page needs one of the app roles ${current.roles.join(", ")}.`));
    heading.focus();
    return;
  }
  const ctx = {
    me,
    roles: me.roles,
    isAdmin: me.roles.includes(ADMIN),
    isApprover: me.roles.includes(APPROVER),
    isRequester: me.roles.includes(REQUESTER),
    announce,
    setApprovalCount,
    query: query(),
    navigate: (hash) => {
      location.hash = hash;
    },
    setTitle: (text) => {
      heading.textContent = text;
      document.title = `${text} · JIT admin access`;
    },
    tenants,
  };
  heading.focus();
  try {
    const module = await import(`./views/${current.view}.js`);
    if (!scope.alive) return;
    await module.default(ctx, root, params, scope);
  } catch (error) {
    if (!scope.alive) return;
    fill(root, h("p", { class: "notice notice--error", role: "alert" }, `This page could not be shown: ${describe(error)}`));
  }
}

let tenantList = null;
/** The tenant registry, read once per page load (views may ask for a fresh copy). */
async function tenants({ fresh = false } = {}) {
  if (!tenantList || fresh) tenantList = api("GET", "/api/jit/tenants").then((r) => r.data);
  return tenantList;
}

function signInPage(settings, message) {
  who.replaceChildren();
  nav.replaceChildren();
  const local = settings.authority && settings.authority.startsWith("http://");
  const button = h("button", { type: "button", class: "primary", id: "sign-in" }, "Sign in");
  button.addEventListener("click", () => {
    button.disabled = true;
    auth.signIn().catch((error) => {
      button.disabled = false;
      announce(`Sign-in could not start: ${describe(error)}`, { tone: "error" });
    });
  });
  fill(
    main,
    h("h1", { tabindex: "-1" }, "Sign in"),
    message ? h("p", { class: "notice notice--warning", role: "alert" }, message) : null,
    h("p", {}, "Just-in-time admin access: ask for a role when you need it, for as long as you need it."),
    h("p", {}, local ? "This is a local stack: the local test issuer stands in for Microsoft Entra ID and lets you choose a demo person." : "You sign in with your Microsoft Entra ID work account."),
    button,
  );
  document.title = "Sign in · JIT admin access";
}

function showWho() {
  const signOut = h("button", { type: "button", class: "link-button", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", () => auth.signOut());
  fill(
    who,
    h("span", { class: "who__name" }, me.name),
    h("span", { class: "who__roles" }, me.roles.map((r) => r.replace("Jit.", "")).join(", ") || "no roles"),
    signOut,
  );
}

function sessionEnded() {
  if (!auth || !auth.user) return;
  auth.user = null;
  leaving();
  signInPage(lastSettings, "Your sign-in has ended. Sign in again to carry on where you were.");
}

let lastSettings = null;

async function boot() {
  if (location.pathname !== "/portal/") {
    // One address for the portal, the one registered as its redirect URI.
    location.replace(`/portal/${location.hash}`);
    return;
  }
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    (document.getElementById("page-title") || main).focus();
  });
  navToggle.addEventListener("click", () => {
    const open = nav.dataset.open !== "true";
    nav.dataset.open = String(open);
    navToggle.setAttribute("aria-expanded", String(open));
  });
  let settings;
  try {
    settings = (await api("GET", "/api/jit/portal/settings")).data;
  } catch (error) {
    fill(main, h("h1", {}, "The portal cannot start"), h("p", { role: "alert" }, `Its settings could not be read: ${describe(error)}`));
    return;
  }
  lastSettings = settings;
  if (!settings.signIn) {
    fill(
      main,
      h("h1", {}, "Sign-in is not configured"),
      h("p", {}, "This deployment has no portal sign-in: set JIT_PORTAL_CLIENT_ID and the JIT_AUTH_* settings (docs/portal.md, docs/identity.md)."),
    );
    return;
  }
  try {
    auth = new Auth(settings);
  } catch (error) {
    fill(main, h("h1", {}, "The portal cannot start"), h("p", { role: "alert" }, describe(error)));
    return;
  }
  configure({ token: () => auth.token(), unauthorized: sessionEnded });
  try {
    await auth.start();
  } catch (error) {
    signInPage(settings, `Sign-in did not complete: ${describe(error)}`);
    return;
  }
  if (!auth.user) {
    signInPage(settings);
    return;
  }
  try {
    me = (await api("GET", "/api/jit/me")).data;
  } catch (error) {
    signInPage(settings, `The API did not accept the sign-in: ${describe(error)}`);
    return;
  }
  showWho();
  // Ask to sign in again a little before the token runs out rather than failing a click.
  setTimeout(sessionEnded, Math.max(0, (auth.secondsLeft - 30) * 1000));
  window.addEventListener("hashchange", route);
  await route();
  if (me.roles.includes(APPROVER) || me.roles.includes(ADMIN)) {
    api("GET", "/api/jit/approvals")
      .then((r) => setApprovalCount(r.data.value.filter((a) => a.canDecide).length))
      .catch(() => {});
  }
}

boot();
