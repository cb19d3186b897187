// What the passing of time does in each phase: suspicion and preemption for a
// follower, Bully's answer and coordinator deadlines for a candidate, resends
// and the give-up bound for a pre-vote and for a pending coordinator, heartbeats and the lease
// for a leader. Every wait here is bounded.

import { majority } from "../cluster-view.js";
import { isSuspected } from "../failure-detector.js";
import { abstaining, sendTo, type Ctx } from "./context.js";
import {
  CATCH_UP_TIMEOUT_FACTOR,
  becomeFollower,
  confirmedCount,
  failPrevote,
  liveLeader,
  sendHeartbeats,
  startElection,
  startPrevote,
} from "./transitions.js";
import type { FollowerPhase, LeaderPhase, PendingPhase, PrevotingPhase } from "./types.js";

/** Fires whatever timer is due at ctx.nowMs. */
export function onTick(ctx: Ctx): void {
  const p = ctx.s.phase;
  switch (p.kind) {
    case "follower":
      return followerTick(ctx, p);
    case "electing":
      // Bully: no higher-ranked member answered in time, so this node is the best alive.
      if (ctx.nowMs >= p.deadlineMs) startPrevote(ctx, "no higher-ranked member answered", "no higher-ranked member answered");
      return;
    case "awaiting":
      // The member that answered never proclaimed (it died or lost): start over.
      if (ctx.nowMs >= p.deadlineMs) startElection(ctx, "no coordinator came after an answer");
      return;
    case "prevoting":
      return prevotingTick(ctx, p);
    case "pending":
      return pendingTick(ctx, p);
    case "leader":
      return leaderTick(ctx, p);
    default:
      throw new Error(`election: unknown phase ${JSON.stringify(p)}`);
  }
}

function followerTick(ctx: Ctx, p: FollowerPhase): void {
  flushDeferredGrants(ctx);
  const auto = ctx.s.cfg.failover === "auto" && !abstaining(ctx);
  if (auto && p.preemptAtMs !== null && ctx.nowMs >= p.preemptAtMs && p.leader !== null && liveLeader(ctx) === p.leader) {
    startElection(ctx, `preempting lower-ranked leader ${p.leader}`);
    return;
  }
  if (!isSuspected(p.timer, ctx.nowMs)) return;
  const silentMs = ctx.nowMs - p.timer.heardMs;
  const reason = p.leader !== null ? `leader ${p.leader} silent for ${silentMs} ms` : `no leader for ${silentMs} ms`;
  if (auto) startElection(ctx, reason, p.leader);
  // Manual failover (or abstaining: after a stepdown, or skewed): forget the leader, wait quietly.
  else becomeFollower(ctx, null, reason);
}

/**
 * Grants the pre-votes refused while the leader was live, once it is not:
 * only those asked within the last election timeout (a candidate gives up
 * after that), and never while it is still live.
 */
function flushDeferredGrants(ctx: Ctx): void {
  const s = ctx.s;
  if (s.deferredGrants.size === 0 || liveLeader(ctx) !== null) return;
  for (const [node, round] of s.deferredGrants) {
    if (round >= ctx.nowMs - s.cfg.electionTimeoutMs && round <= ctx.nowMs) sendTo(ctx, node, { type: "prevote_ok", round });
  }
  ctx.s = { ...ctx.s, deferredGrants: new Map() };
}

function prevotingTick(ctx: Ctx, p: PrevotingPhase): void {
  const s = ctx.s;
  if (ctx.nowMs >= p.deadlineMs) {
    const n = s.ranked.length;
    failPrevote(ctx, `pre-vote failed: ${1 + p.grants.size} of ${n} granted within ${s.cfg.electionTimeoutMs} ms; epoch stays ${s.epoch}`);
    return;
  }
  if (ctx.nowMs < p.nextResendMs) return;
  // Ask again whoever has not granted: messages get lost, and a member that
  // still heard the old leader a moment ago stops hearing it soon.
  for (const node of s.ranked) {
    if (node !== s.cfg.self.node && !p.grants.has(node)) sendTo(ctx, node, { type: "prevote", round: ctx.nowMs });
  }
  ctx.s = { ...s, phase: { ...p, nextResendMs: ctx.nowMs + s.cfg.heartbeatMs } };
}

function pendingTick(ctx: Ctx, p: PendingPhase): void {
  const s = ctx.s;
  const n = s.ranked.length;
  const accepted = 1 + p.accepts.size;
  // Bounded candidacy: one election timeout to gather a majority, a few more
  // to pull the ops the acceptors have and this node lacks.
  const boundMs = (accepted >= majority(n) ? CATCH_UP_TIMEOUT_FACTOR : 1) * s.cfg.electionTimeoutMs;
  if (ctx.nowMs >= p.sinceMs + boundMs) {
    becomeFollower(ctx, null, `candidacy for epoch ${s.epoch} timed out: ${accepted} of ${n} accepted`);
    return;
  }
  if (ctx.nowMs < p.nextResendMs) return;
  // Resend to everyone who may still accept (messages get lost; "leader
  // alive" refusals expire), and to acceptors, whose fresh answers keep the
  // acceptance recent and tell them this coordinator is still alive.
  for (const node of s.ranked) {
    if (node !== s.cfg.self.node && !p.refusedBy.has(node)) sendTo(ctx, node, { type: "coordinator", vv: s.localVv, round: ctx.nowMs });
  }
  ctx.s = { ...s, phase: { ...p, nextResendMs: ctx.nowMs + s.cfg.heartbeatMs } };
}

function leaderTick(ctx: Ctx, p: LeaderPhase): void {
  const s = ctx.s;
  const n = s.ranked.length;
  const heard = confirmedCount(ctx, p);
  if (heard < majority(n)) {
    // The lease ran out: a leader cut off from the majority stops taking
    // writes, so a minority side of a partition has no leader.
    becomeFollower(ctx, null, `lost the majority: ${heard} of ${n} confirmed within ${s.cfg.electionTimeoutMs} ms`);
    return;
  }
  if (ctx.nowMs >= p.nextHeartbeatMs) sendHeartbeats(ctx);
}
