// Keeping grants fresh without hammering the API: one timer for all the grants on a page, each grant due again when
// its answer's Retry-After says (the API's own pacing), a request waiting for a person backing off to a minute,
// an active grant looked at again when it ends, at most a few calls at a time, and nothing while the tab is hidden.

import { api } from "./api.js";

const MOVING = new Set(["AwaitingApproval", "Scheduled", "Provisioning", "Expiring"]);
const MAX_WAIT_S = 3600;
const PER_TICK = 4;

export function isMoving(grant) {
  return MOVING.has(grant.status);
}

/** Seconds until `grant` should be read again, or null when nothing about it will change by itself. */
export function nextCheck(grant, retryAfter, previous) {
  if (MOVING.has(grant.status)) {
    const asked = Math.max(2, retryAfter ?? 5);
    if (grant.status === "AwaitingApproval") return Math.min(60, Math.max(asked, (previous || 0) * 1.5));
    return Math.min(MAX_WAIT_S, asked);
  }
  if (grant.status === "Active") {
    if (grant.extension && grant.extension.status === "AwaitingApproval") return Math.min(60, Math.max(15, (previous || 0) * 1.5));
    const untilEnd = (new Date(grant.endDateTime).getTime() - Date.now()) / 1000 + 3;
    return untilEnd < MAX_WAIT_S ? Math.max(2, untilEnd) : MAX_WAIT_S;
  }
  return null;
}

export class GrantPoller {
  /** `onUpdate(grant)` gets every fresh copy; `onGone(id)` a grant the API no longer shows. */
  constructor(scope, { onUpdate, onGone = () => {} }) {
    this.scope = scope;
    this.onUpdate = onUpdate;
    this.onGone = onGone;
    this.due = new Map(); // id -> {at (ms), wait (s)}
    this.timer = null;
    this.running = false;
    this.visible = () => {
      if (!document.hidden) this.schedule();
    };
    document.addEventListener("visibilitychange", this.visible);
    scope.signal.addEventListener("abort", () => document.removeEventListener("visibilitychange", this.visible));
  }

  /** Follow `grant` from now on, as its last answer (and Retry-After, in seconds) says. */
  watch(grant, retryAfter = null) {
    const previous = this.due.get(grant.id);
    const wait = nextCheck(grant, retryAfter, previous ? previous.wait : 0);
    if (wait === null) this.due.delete(grant.id);
    else this.due.set(grant.id, { at: Date.now() + wait * 1000, wait });
    this.schedule();
  }

  forget(id) {
    this.due.delete(id);
  }

  schedule() {
    if (!this.scope.alive || this.running) return;
    if (this.timer !== null) this.scope.cancel(this.timer);
    this.timer = null;
    if (!this.due.size || document.hidden) return;
    const soonest = Math.min(...[...this.due.values()].map((d) => d.at));
    this.timer = this.scope.later(() => this.tick(), Math.max(0, soonest - Date.now()));
  }

  async tick() {
    this.timer = null;
    if (document.hidden) return; // resumed by visibilitychange
    this.running = true;
    const now = Date.now();
    const ready = [...this.due.entries()].filter(([, d]) => d.at <= now).slice(0, PER_TICK);
    for (const [id, due] of ready) {
      if (!this.scope.alive) return;
      try {
        const { data, retryAfter } = await api("GET", `/api/jit/requests/${encodeURIComponent(id)}`, { signal: this.scope.signal });
        this.onUpdate(data);
        this.watch(data, retryAfter);
      } catch (error) {
        if (!this.scope.alive) return;
        if (error.status === 404) {
          this.due.delete(id);
          this.onGone(id);
        } else {
          // Unavailable, throttled or offline: come back when asked, else later and later.
          const wait = Math.min(120, Math.max(error.retryAfter ?? 0, due.wait * 2, 5));
          this.due.set(id, { at: Date.now() + wait * 1000, wait });
        }
      }
    }
    this.running = false;
    this.schedule();
  }
}
