// Times, durations and names as people read them. Dates are shown in the browser's locale and time zone; the API
// speaks UTC ISO 8601.

const DURATION = /^P(?:(\d+)W|(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?)$/;

/** Seconds in an ISO 8601 duration of weeks, days, hours, minutes and seconds (PT4H); null when not one. */
export function durationSeconds(text) {
  const match = DURATION.exec(text || "");
  if (!match || text === "P" || text.endsWith("T")) return null;
  const [, weeks, days, hours, minutes, seconds] = match.map((v) => (v === undefined ? 0 : Number(v)));
  return weeks * 604800 + days * 86400 + hours * 3600 + minutes * 60 + seconds;
}

/** The ISO 8601 duration of a whole number of minutes: 90 -> PT1H30M. */
export function isoMinutes(total) {
  const hours = Math.floor(total / 60);
  const minutes = total % 60;
  return `PT${hours ? `${hours}H` : ""}${minutes || !hours ? `${minutes}M` : ""}`;
}

/** "2 h 30 min", "3 days 4 h", "45 s". */
export function humanDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const parts = [];
  if (days) parts.push(`${days} ${days === 1 ? "day" : "days"}`);
  if (hours) parts.push(`${hours} h`);
  if (minutes && days === 0) parts.push(`${minutes} min`);
  if (!parts.length) parts.push(s < 60 ? `${s} s` : "1 min");
  return parts.join(" ");
}

/** "12:04" (minutes:seconds) or "1:02:03" for a countdown. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });

export function when(iso, { seconds = false } = {}) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : (seconds ? dateTimeSeconds : dateTime).format(date);
}

/** A <time> element: the local reading, with the exact instant in `datetime` and as a tooltip. */
export function timeElement(h, iso, options) {
  return h("time", { datetime: iso || "", title: iso || "" }, when(iso, options));
}

/** Seconds from now until an ISO instant (negative once past). */
export function secondsUntil(iso, now = Date.now()) {
  return (new Date(iso).getTime() - now) / 1000;
}

/** A datetime-local input's value (local wall time) as an ISO instant with offset. */
export function localInputToIso(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** An instant as a datetime-local input's value (local wall time, minutes). */
export function isoToLocalInput(iso) {
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Who a grant is for, in words. */
export function grantUser(grant) {
  const user = grant.user || {};
  const account = grant.access && grant.access.user;
  if (user.type === "new") {
    const upn = account ? account.userPrincipalName : user.userPrincipalName;
    return `new account “${user.displayName}”${upn ? ` (${upn})` : ""}`;
  }
  return user.userPrincipalName || user.id || "an existing account";
}

/** What a grant gives, in words. */
export function grantAccess(grant) {
  const parts = [];
  if (grant.roles && grant.roles.length) parts.push(grant.roles.join(", "));
  if (grant.groups && grant.groups.length) {
    const names = (grant.access && grant.access.groups) || [];
    const label = grant.groups.map((id) => (names.find((g) => g.id === id) || {}).name || id);
    parts.push(`groups: ${label.join(", ")}`);
  }
  return parts.join("; ") || "nothing";
}

/** "rolesRequiringApproval: Global Administrator" -> {rule, detail}. */
export function splitRule(text) {
  const match = /^([A-Za-z]+):\s*(.*)$/.exec(text || "");
  return match ? { rule: match[1], detail: match[2] } : { rule: "", detail: text || "" };
}

export const RULE_NAMES = {
  approvalRequired: "Every request needs approval",
  rolesRequiringApproval: "Role needs approval",
  roleAssignableGroup: "Role-assignable group",
  existingAccountCredentials: "TAP for an existing account",
  allowedRoles: "Roles allowed",
  allowedGroups: "Groups allowed",
  maxDuration: "Longest grant",
  maxDurationPerRole: "Longest grant for this role",
  ticketRequired: "Ticket required",
  ticketPattern: "Ticket format",
  temporaryAccessPass: "TAP lifetime",
  allowedExpirationActions: "What happens at the end",
  maxConcurrentGrantsPerUser: "Open grants per requester",
};
