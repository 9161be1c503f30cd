// One grant on its own page: where a new request lands, followed until it settles (honouring Retry-After), with
// its history and what it holds in the directory.

import { api, describe } from "../api.js";
import { fill, h } from "../dom.js";
import { forgetRevealed, grantCard, renderInto, tickCountdowns } from "../grantcard.js";
import { GrantPoller } from "../poller.js";
import { grantAccess } from "../format.js";

export default async function grant(ctx, root, params, scope) {
  scope.signal.addEventListener("abort", forgetRevealed);
  const registry = await ctx.tenants();
  const names = new Map(registry.value.map((t) => [t.id, t.displayName || t.initialDomain || t.id]));
  let answer;
  try {
    answer = await api("GET", `/api/jit/requests/${encodeURIComponent(params.id)}`, { signal: scope.signal });
  } catch (error) {
    fill(root, h("p", { class: "notice notice--error", role: "alert" }, error.status === 404 ? "There is no such grant, or it is not yours to see." : describe(error)));
    return;
  }
  ctx.setTitle(`Grant: ${grantAccess(answer.data)}`);
  let card = null;
  const options = {
    detail: true,
    tenantName: (id) => names.get(id) || id,
    onChanged: (fresh, retryAfter) => {
      renderInto(card, ctx, fresh, options);
      poller.watch(fresh, retryAfter);
    },
  };
  const poller = new GrantPoller(scope, {
    onUpdate: (fresh) => {
      const before = card.dataset.status;
      renderInto(card, ctx, fresh, options);
      if (before !== fresh.status) ctx.announce(`The grant is now: ${card.querySelector(".status").textContent}.`);
    },
  });
  card = grantCard(ctx, answer.data, options);
  fill(root, h("p", {}, h("a", { href: "#/grants" }, "← All grants")), card);
  poller.watch(answer.data, answer.retryAfter);
  const tick = () => {
    tickCountdowns(root);
    scope.later(tick, 1000);
  };
  scope.later(tick, 1000);
}
