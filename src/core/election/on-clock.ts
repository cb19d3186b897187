// What this node's clock health does to its place in the election. A node
// whose wall clock is far from its peers' would stamp the region's writes
// with a wrong HLC, and last-writer-wins would let those writes beat every
// correctly stamped one: so it leaves office at once (telling the region, so
// a good-clock node is elected without waiting for a silence), withdraws any
// candidacy, and stays out of elections until its clock is back. It keeps
// voting: a vote needs no clock, and the region needs its majority.

import { becomeFollower, resign } from "./transitions.js";
import type { Ctx } from "./context.js";

/** The clock input: records the skew, and on becoming skewed leaves office or candidacy. */
export function onClockInput(ctx: Ctx, skewed: boolean): void {
  if (skewed === ctx.s.clockSkewed) return;
  ctx.s = { ...ctx.s, clockSkewed: skewed };
  // Recovered: nothing to do now; it stands again at its next suspicion.
  if (!skewed) return;
  const p = ctx.s.phase;
  switch (p.kind) {
    case "follower":
      return;
    case "leader":
    case "pending":
      // A pending coordinator's acceptors follow it already: tell them too.
      resign(ctx, `stepped down from epoch ${ctx.s.epoch}: this node's clock is skewed from its peers'`);
      return;
    case "electing":
    case "awaiting":
    case "prevoting":
      becomeFollower(ctx, null, "withdrew from the election: this node's clock is skewed from its peers'");
      return;
    default:
      throw new Error(`election: unknown phase ${JSON.stringify(p satisfies never)}`);
  }
}
