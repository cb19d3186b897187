// The moves between phases that several inputs share: follow, start an
// election, proclaim, take office, give up. Each sets ctx.reason so that the
// role event says why.

import { majority } from "../cluster-view.js";
import { mutated } from "../mutations.js";
import { armSilenceTimer, isLive } from "../failure-detector.js";
import type { NodeId } from "../ids.js";
import { dominates } from "../version-vector.js";
import { abstaining, broadcast, outranks, self, sendTo, setDurable, type Ctx } from "./context.js";
import type { LeaderPhase, Vote } from "./types.js";

/** A coordinator that has its majority may spend this many election timeouts pulling the ops it lacks. */
export const CATCH_UP_TIMEOUT_FACTOR = 4;
/** After an operator stepdown the old leader stays out of elections this many election timeouts. */
export const ABSTAIN_TIMEOUT_FACTOR = 2;
/**
 * Bound on the pre-vote backoff, in election timeouts: an isolated node asks
 * at most this rarely, and after a heal a region still gets a leader within a
 * few election timeouts.
 */
export const PREVOTE_BACKOFF_FACTOR_MAX = 4;

/** Waiting for an ANSWER to ELECTION: half an election timeout (Bully's answer bound). */
export function answerWaitMs(ctx: Ctx): number {
  return Math.ceil(ctx.s.cfg.electionTimeoutMs / 2);
}

/**
 * The leader this node hears right now, for the pre-vote rule: itself when it
 * is the active leader, else the node it follows if heard within
 * electionTimeoutMs; null otherwise.
 */
export function liveLeader(ctx: Ctx): NodeId | null {
  const p = ctx.s.phase;
  if (p.kind === "leader") return self(ctx);
  if (p.kind === "follower" && p.leader !== null && isLive(p.timer.heardMs, ctx.nowMs, ctx.s.cfg.electionTimeoutMs)) return p.leader;
  return null;
}

/**
 * Follower of `leader` (null: of nobody yet), with the silence timer armed now
 * for `timeoutFactor` election timeouts (more than one only after a failed pre-vote).
 */
export function becomeFollower(ctx: Ctx, leader: NodeId | null, reason: string, timeoutFactor = 1): void {
  // Hearing a leader ends a run of failed pre-votes.
  const s = leader === null ? ctx.s : { ...ctx.s, prevoteFailures: 0 };
  const timer = armSilenceTimer(ctx.nowMs, timeoutFactor * s.cfg.electionTimeoutMs, ctx.random);
  let preemptAtMs: number | null = null;
  if (leader !== null && s.cfg.failover === "auto" && s.cfg.preempt && outranks(ctx, self(ctx), leader)) {
    // Keep the first deadline while following the same leader, so that its
    // heartbeats do not push the takeover back forever.
    const p = s.phase;
    preemptAtMs = p.kind === "follower" && p.leader === leader && p.preemptAtMs !== null ? p.preemptAtMs : timer.suspectAtMs;
  }
  ctx.s = { ...s, phase: { kind: "follower", leader, timer, preemptAtMs } };
  ctx.reason = reason;
}

/**
 * Leaves office (or a pending candidacy) and tells the region, whose members
 * then elect at once instead of waiting out the silence timeout.
 */
export function resign(ctx: Ctx, reason: string): void {
  broadcast(ctx, { type: "stepdown" });
  becomeFollower(ctx, null, reason);
}

/** The follower heard its leader: re-arm the silence timer. */
export function heardLeader(ctx: Ctx, leader: NodeId): void {
  const p = ctx.s.phase;
  if (p.kind === "follower" && p.leader === leader) {
    ctx.s = { ...ctx.s, phase: { ...p, timer: armSilenceTimer(ctx.nowMs, ctx.s.cfg.electionTimeoutMs, ctx.random) } };
  } else {
    becomeFollower(ctx, leader, `following ${leader}, leader of epoch ${ctx.s.epoch}`);
  }
}

/**
 * Adopts a higher epoch learned from a leader or coordinator. A pending or
 * active leader of an older epoch demotes at once: its epoch is over; a
 * follower drops the leader of the older epoch (the caller follows the new one).
 */
export function adoptEpoch(ctx: Ctx, epoch: number, vote: Vote | null, reason: string): void {
  if (epoch <= ctx.s.epoch) throw new Error(`election: adoptEpoch(${epoch}) at epoch ${ctx.s.epoch}`);
  setDurable(ctx, epoch, vote);
  const p = ctx.s.phase;
  if (p.kind === "pending" || p.kind === "leader" || (p.kind === "follower" && p.leader !== null)) becomeFollower(ctx, null, reason);
}

/**
 * Bully: ask every higher-ranked member that may be alive (not `silent`, the
 * leader whose silence started this); with none, go to the pre-vote at once.
 * Skipping the silent leader saves the answer wait in the common failover,
 * the leader's death. Only automatic failover elects (manual mode proclaims
 * through promote).
 */
export function startElection(ctx: Ctx, reason: string, silent: NodeId | null = null): void {
  const s = ctx.s;
  if (s.cfg.failover !== "auto") throw new Error("election: startElection in manual failover");
  if (abstaining(ctx)) throw new Error("election: startElection while abstaining (after a stepdown, or with a skewed clock)");
  const kind = s.phase.kind;
  // One candidacy at a time: never from prevoting, pending or leader.
  if (kind !== "follower" && kind !== "awaiting") throw new Error(`election: startElection from phase ${kind}`);
  const higher = s.ranked.slice(0, s.ranked.indexOf(self(ctx))).filter((n) => n !== silent);
  if (higher.length === 0) {
    startPrevote(ctx, reason, `${reason}; no higher-ranked member alive`);
    return;
  }
  for (const node of higher) sendTo(ctx, node, { type: "election" });
  ctx.s = { ...s, phase: { kind: "electing", deadlineMs: ctx.nowMs + answerWaitMs(ctx) } };
  ctx.reason = reason;
}

/**
 * Pre-vote (Raft's PreVote on top of Bully): before raising its epoch, the
 * node asks every member whether it hears a live leader, and proclaims only
 * once a majority (itself included) says no. A node cut off from its region
 * never gets there, so its epoch stays where it was however long it tries.
 * `why` becomes the proclamation's reason.
 */
export function startPrevote(ctx: Ctx, reason: string, why: string): void {
  const s = ctx.s;
  const kind = s.phase.kind;
  if (kind === "prevoting" || kind === "pending" || kind === "leader") throw new Error(`election: pre-vote from phase ${kind}`);
  ctx.s = {
    ...s,
    phase: { kind: "prevoting", sinceMs: ctx.nowMs, deadlineMs: ctx.nowMs + s.cfg.electionTimeoutMs, grants: new Set(), nextResendMs: ctx.nowMs + s.cfg.heartbeatMs, why },
  };
  ctx.reason = reason;
  broadcast(ctx, { type: "prevote", round: ctx.nowMs });
  checkPrevote(ctx);
}

/** A pre-vote with a majority of grants (itself included) proclaims. */
export function checkPrevote(ctx: Ctx): void {
  const p = ctx.s.phase;
  if (p.kind !== "prevoting") return;
  const granted = 1 + p.grants.size;
  if (granted < majority(ctx.s.ranked.length)) return;
  proclaim(ctx, `${p.why}; ${granted} of ${ctx.s.ranked.length} granted the pre-vote`);
}

/** A pre-vote failed: follow nobody, and try again later, the later the more often it failed. */
export function failPrevote(ctx: Ctx, reason: string): void {
  const failures = ctx.s.prevoteFailures + 1;
  ctx.s = { ...ctx.s, prevoteFailures: failures };
  becomeFollower(ctx, null, reason, prevoteBackoffFactor(failures));
}

/** Silence timeouts after `failures` failed pre-votes in a row: 2, 4, 4, ... election timeouts. */
export function prevoteBackoffFactor(failures: number): number {
  return Math.min(2 ** failures, PREVOTE_BACKOFF_FACTOR_MAX);
}

/**
 * Proclaims this node coordinator of a fresh epoch (highest seen + 1): the
 * self-vote is made durable before the COORDINATOR messages leave (the
 * runtime persists before it sends).
 */
export function proclaim(ctx: Ctx, reason: string): void {
  const s = ctx.s;
  // One candidacy at a time (an active leader may proclaim: that renews its
  // epoch, which its lease, a majority's confirmation, entitles it to).
  if (s.phase.kind === "pending") throw new Error("election: proclaim while a candidacy is pending");
  if (s.phase.kind !== "prevoting" && s.phase.kind !== "leader") throw new Error(`election: proclaim from phase ${s.phase.kind} without a pre-vote`);
  const epoch = Math.max(s.epoch, s.seenEpoch) + 1;
  if (!Number.isSafeInteger(epoch)) throw new Error(`election: epoch overflow at ${s.seenEpoch}`);
  setDurable(ctx, epoch, { epoch, node: self(ctx) });
  ctx.s = {
    ...ctx.s,
    phase: { kind: "pending", sinceMs: ctx.nowMs, accepts: new Map(), refusedBy: new Set(), nextResendMs: ctx.nowMs + s.cfg.heartbeatMs, stallFloorMs: -Infinity, stallDebtMs: 0 },
  };
  ctx.reason = reason;
  broadcast(ctx, { type: "coordinator", vv: ctx.s.localVv, round: ctx.nowMs });
  checkActivation(ctx);
}

/**
 * A pending coordinator takes office once a majority (itself included) has
 * accepted its epoch recently and it holds every op those acceptors reported:
 * any two majorities intersect, so it then holds every write a majority
 * acknowledged under an earlier epoch.
 */
export function checkActivation(ctx: Ctx): void {
  const s = ctx.s;
  const p = s.phase;
  if (p.kind !== "pending") return;
  let ready = 1; // itself: its own vv trivially dominates itself
  for (const a of p.accepts.values()) {
    if (isLive(agedRound(a.round, p), ctx.nowMs, s.cfg.electionTimeoutMs) && dominates(s.localVv, a.vv)) ready++;
  }
  if (ready < majority(s.ranked.length) && !mutated("no-majority-acceptance")) return;
  const confirmed = new Map<NodeId, number>();
  for (const [node, a] of p.accepts) confirmed.set(node, a.round);
  ctx.s = { ...s, prevoteFailures: 0, phase: { kind: "leader", confirmed, nextHeartbeatMs: ctx.nowMs, stallFloorMs: p.stallFloorMs, stallDebtMs: p.stallDebtMs } };
  ctx.reason = `elected leader of epoch ${s.epoch}: ${ready} of ${s.ranked.length} members accepted and are caught up`;
  sendHeartbeats(ctx);
}

/** The active leader's heartbeat round; the next one is due heartbeatMs later. */
export function sendHeartbeats(ctx: Ctx): void {
  const p = ctx.s.phase;
  if (p.kind !== "leader") throw new Error(`election: heartbeat from phase ${p.kind}`);
  broadcast(ctx, { type: "heartbeat", round: ctx.nowMs });
  const hb = ctx.s.cfg.heartbeatMs;
  // Keep the cadence, but never queue up a burst after a stall.
  const next = p.nextHeartbeatMs + hb > ctx.nowMs ? p.nextHeartbeatMs + hb : ctx.nowMs + hb;
  ctx.s = { ...ctx.s, phase: { ...p, nextHeartbeatMs: next } };
}

/** Members (itself included) that confirmed the active leader within the lease. */
export function confirmedCount(ctx: Ctx, p: LeaderPhase): number {
  return leaseCount(p, ctx.nowMs, ctx.s.cfg.electionTimeoutMs);
}

/** When a confirmed round was sent, in the peers' terms: a round from before this node's latest stall is older by it. */
function agedRound(round: number, p: { readonly stallFloorMs: number; readonly stallDebtMs: number }): number {
  return round < p.stallFloorMs ? round - p.stallDebtMs : round;
}

/** Members (itself included) whose confirmation is live at awake time `nowMs`, a round from before a stall aged by it. */
export function leaseCount(p: LeaderPhase, nowMs: number, electionTimeoutMs: number): number {
  let n = 1;
  for (const round of p.confirmed.values()) {
    if (isLive(agedRound(round, p), nowMs, electionTimeoutMs)) n++;
  }
  return n;
}
