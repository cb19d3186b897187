// Operator inputs: stepdown (the leader hands over to a different node) and
// promote (manual failover). Refusals are values with a reason the HTTP layer
// shows as is, never exceptions.

import { dominates, vvLag, type VersionVector } from "../version-vector.js";
import type { Ctx } from "./context.js";
import { ABSTAIN_TIMEOUT_FACTOR, liveLeader, resign, startPrevote } from "./transitions.js";

/** Operator stepdown: only an active leader can; it then abstains so that another node wins. */
export function onStepdownInput(ctx: Ctx): void {
  const s = ctx.s;
  const p = s.phase;
  if (p.kind !== "leader") {
    if (p.kind === "pending") ctx.refused = `not the leader: the candidacy for epoch ${s.epoch} is still pending`;
    else if (p.kind === "follower" && p.leader !== null) ctx.refused = `not the leader: ${p.leader} is`;
    else ctx.refused = "not the leader";
    return;
  }
  ctx.s = { ...s, abstainUntilMs: ctx.nowMs + ABSTAIN_TIMEOUT_FACTOR * s.cfg.electionTimeoutMs };
  resign(ctx, "stepped down on operator request");
}

/**
 * Operator promote: proclaims this node only when no leader is alive and it
 * holds everything the region's most up-to-date reachable node holds, so no
 * acknowledged write is left behind.
 */
export function onPromote(ctx: Ctx, bestReachableVv: VersionVector): void {
  const s = ctx.s;
  const p = s.phase;
  if (p.kind === "leader") {
    ctx.refused = `already the leader of epoch ${s.epoch}`;
    return;
  }
  if (p.kind === "pending") {
    ctx.refused = `a candidacy for epoch ${s.epoch} is already pending`;
    return;
  }
  if (p.kind === "prevoting") {
    ctx.refused = "a pre-vote is already running";
    return;
  }
  if (s.clockSkewed) {
    ctx.refused = "this node's clock is skewed from its peers': a leader with a wrong clock would win every conflict";
    return;
  }
  const live = liveLeader(ctx);
  if (live !== null) {
    ctx.refused = `leader ${live} is alive`;
    return;
  }
  if (!dominates(s.localVv, bestReachableVv)) {
    ctx.refused = `behind the region's most up-to-date reachable node by ${vvLag(bestReachableVv, s.localVv)} ops`;
    return;
  }
  // Even an operator's promote raises the epoch only with a majority behind it.
  startPrevote(ctx, "promoted by the operator; asking for a pre-vote", "promoted by the operator");
}
