// What a node does with each election message: Bully's ELECTION / ANSWER /
// COORDINATOR exchange, plus the split-brain guards on top of it (one vote
// per epoch, a pre-vote before any epoch is raised, epochs that only move forward, leases confirmed by
// echoed rounds).

import { majority } from "../cluster-view.js";
import type { NodeId } from "../ids.js";
import { abstaining, outranks, self, sendTo, setDurable, type Ctx } from "./context.js";
import {
  adoptEpoch,
  becomeFollower,
  checkActivation,
  checkPrevote,
  heardLeader,
  liveLeader,
  proclaim,
  startElection,
} from "./transitions.js";
import type { ElectionMsg, RejectCode } from "./types.js";

type Msg<T extends ElectionMsg["type"]> = Extract<ElectionMsg, { type: T }>;

/** Handles one message from a member of this region; anything else is ignored. */
export function onMessage(ctx: Ctx, msg: ElectionMsg): void {
  // The runtime only routes region peers here; a stray id (misconfigured
  // peer, own echo) has no vote and no say.
  if (msg.from === self(ctx) || !ctx.s.ranked.includes(msg.from)) return;
  if (msg.epoch > ctx.s.seenEpoch) ctx.s = { ...ctx.s, seenEpoch: msg.epoch };
  switch (msg.type) {
    case "prevote":
      return onPrevote(ctx, msg);
    case "prevote_ok":
      return onPrevoteOk(ctx, msg);
    case "election":
      return onElection(ctx, msg);
    case "answer":
      return onAnswer(ctx, msg);
    case "alive":
      return onAlive(ctx, msg);
    case "coordinator":
      return onCoordinator(ctx, msg);
    case "accept":
      return onAccept(ctx, msg);
    case "reject":
      return onReject(ctx, msg);
    case "heartbeat":
      return onHeartbeat(ctx, msg);
    case "heartbeat_ack":
      return onHeartbeatAck(ctx, msg);
    case "stepdown":
      return onStepdown(ctx, msg);
    default:
      return assertNever(msg);
  }
}

/**
 * Pre-vote: grant unless this node hears a live leader (or is one). A grant
 * binds nothing and moves no epoch; the vote that counts comes later, once
 * per epoch, for a coordinator.
 */
function onPrevote(ctx: Ctx, m: Msg<"prevote">): void {
  if (ctx.s.phase.kind === "leader") {
    // Leading: say so, and let the candidate hear a heartbeat now.
    sendTo(ctx, m.from, { type: "alive", leader: self(ctx) });
    sendTo(ctx, m.from, { type: "heartbeat", round: ctx.nowMs });
    return;
  }
  const live = liveLeader(ctx);
  if (live !== null && !(ctx.s.cfg.preempt && outranks(ctx, m.from, live))) {
    sendTo(ctx, m.from, { type: "alive", leader: live });
    // If that leader falls silent before the candidate gives up, grant then.
    ctx.s = { ...ctx.s, deferredGrants: new Map(ctx.s.deferredGrants).set(m.from, m.round) };
    return;
  }
  sendTo(ctx, m.from, { type: "prevote_ok", round: m.round });
}

function onPrevoteOk(ctx: Ctx, m: Msg<"prevote_ok">): void {
  const p = ctx.s.phase;
  // A grant counts only for the pre-vote it answers: an older round may come from before a leader appeared.
  if (p.kind !== "prevoting" || m.round < p.sinceMs || m.round > ctx.nowMs || p.grants.has(m.from)) return;
  ctx.s = { ...ctx.s, phase: { ...p, grants: new Set(p.grants).add(m.from) } };
  checkPrevote(ctx);
}

function onElection(ctx: Ctx, m: Msg<"election">): void {
  const cfg = ctx.s.cfg;
  if (ctx.s.phase.kind === "leader") {
    // Already leading: tell the sender, and let it hear a heartbeat now.
    sendTo(ctx, m.from, { type: "alive", leader: self(ctx) });
    sendTo(ctx, m.from, { type: "heartbeat", round: ctx.nowMs });
    return;
  }
  const live = liveLeader(ctx);
  // Pre-vote: a node that hears a live leader does not join an election,
  // unless it is a legitimate preemption (the sender outranks that leader).
  if (live !== null && !(cfg.preempt && outranks(ctx, m.from, live))) {
    sendTo(ctx, m.from, { type: "alive", leader: live });
    return;
  }
  // Bully: only a higher-ranked node answers. A node that just stepped down
  // stays silent so that a different node wins.
  if (!outranks(ctx, self(ctx), m.from) || cfg.failover !== "auto" || abstaining(ctx)) return;
  sendTo(ctx, m.from, { type: "answer" });
  // A leader this follower still names is not live (see above): no need to wait for its answer.
  const p = ctx.s.phase;
  if (p.kind === "follower") startElection(ctx, `answered an election from ${m.from}`, p.leader);
}

function onAnswer(ctx: Ctx, m: Msg<"answer">): void {
  if (ctx.s.phase.kind !== "electing") return;
  ctx.s = { ...ctx.s, phase: { kind: "awaiting", deadlineMs: ctx.nowMs + ctx.s.cfg.electionTimeoutMs } };
  ctx.reason = `${m.from} answered; waiting for its coordinator`;
}

function onAlive(ctx: Ctx, m: Msg<"alive">): void {
  const kind = ctx.s.phase.kind;
  if (kind !== "electing" && kind !== "awaiting") return;
  becomeFollower(ctx, null, `backing off: ${m.from} hears leader ${m.leader}`);
}

function onCoordinator(ctx: Ctx, m: Msg<"coordinator">): void {
  const s = ctx.s;
  const c = m.from;
  if (m.epoch < s.epoch) {
    reject(ctx, c, staleCode(ctx), `epoch ${m.epoch} is stale: ${self(ctx)} is at epoch ${s.epoch}`);
    return;
  }
  if (s.vote !== null && s.vote.epoch === m.epoch) {
    if (s.vote.node !== c) {
      reject(ctx, c, "voted_other", `already accepted ${s.vote.node} for epoch ${m.epoch}`);
      return;
    }
    // A resend or duplicate of the coordinator this node accepted: accept again
    // (fresh round, current vv; the vote is already durable). It counts as
    // hearing from that coordinator, unless another node already leads this
    // epoch live (it won the epoch; this coordinator cannot).
    const live = liveLeader(ctx);
    if (live === null || live === c) heardLeader(ctx, c);
    sendTo(ctx, c, { type: "accept", vv: ctx.s.localVv, round: m.round }, m.epoch);
    return;
  }
  const live = liveLeader(ctx);
  if (live !== null && live !== c && !(s.cfg.preempt && outranks(ctx, c, live))) {
    reject(ctx, c, "leader_alive", `leader ${live} is alive`);
    return;
  }
  const reason = `accepted ${c} as coordinator of epoch ${m.epoch}`;
  if (m.epoch > s.epoch) adoptEpoch(ctx, m.epoch, { epoch: m.epoch, node: c }, reason);
  else adoptVoteInEpoch(ctx, m.epoch, c);
  becomeFollower(ctx, c, reason);
  sendTo(ctx, c, { type: "accept", vv: ctx.s.localVv, round: m.round }, m.epoch);
}

/** First vote in the current epoch (adopted earlier without a vote, e.g. from a stepdown). */
function adoptVoteInEpoch(ctx: Ctx, epoch: number, node: NodeId): void {
  const kind = ctx.s.phase.kind;
  // Pending and active leaders voted for themselves in their epoch, so they never get here.
  if (kind === "pending" || kind === "leader") throw new Error(`election: ${kind} without a self-vote in epoch ${epoch}`);
  setDurable(ctx, epoch, { epoch, node });
}

function onAccept(ctx: Ctx, m: Msg<"accept">): void {
  const s = ctx.s;
  const p = s.phase;
  if (m.epoch !== s.epoch) return;
  // A round from the future is not ours: clamp it so it cannot stretch a lease.
  const round = Math.min(m.round, ctx.nowMs);
  if (p.kind === "pending") {
    const accepts = new Map(p.accepts).set(m.from, { vv: m.vv, round: Math.max(round, p.accepts.get(m.from)?.round ?? round) });
    const refusedBy = new Set(p.refusedBy);
    refusedBy.delete(m.from);
    ctx.s = { ...s, phase: { ...p, accepts, refusedBy } };
    checkActivation(ctx);
  } else if (p.kind === "leader") {
    confirm(ctx, m.from, round);
  }
}

function onReject(ctx: Ctx, m: Msg<"reject">): void {
  const s = ctx.s;
  const p = s.phase;
  if (p.kind === "pending") {
    if (m.epoch > s.epoch) {
      becomeFollower(ctx, null, `candidacy for epoch ${s.epoch} is outdated: ${m.from} is at epoch ${m.epoch}`);
      return;
    }
    // Only a vote for another node in this very epoch is final; "leader
    // alive" may change as that leader's liveness runs out, and anything else
    // answers an older message.
    if (m.code !== "voted_other" || m.epoch !== s.epoch) return;
    const accepts = new Map(p.accepts);
    accepts.delete(m.from);
    const refusedBy = new Set(p.refusedBy).add(m.from);
    ctx.s = { ...s, phase: { ...p, accepts, refusedBy } };
    const n = s.ranked.length;
    if (n - refusedBy.size < majority(n)) {
      becomeFollower(ctx, null, `candidacy for epoch ${s.epoch} cannot reach a majority: ${refusedBy.size} of ${n} voted for others`);
    }
    return;
  }
  if (p.kind === "leader" && m.epoch > s.epoch && m.code === "stale_epoch") {
    // A member that hears this leader sits at a higher epoch with no leader
    // (a failed candidacy of its own): it can only follow a newer epoch, so the
    // leader proclaims one; its followers accept because it is their live leader.
    proclaim(ctx, `renewing leadership: ${m.from} is at epoch ${m.epoch} without a leader`);
  }
  // A "superseded" leader keeps its office until its lease says otherwise:
  // one member's word is not a majority's.
}

function onHeartbeat(ctx: Ctx, m: Msg<"heartbeat">): void {
  const s = ctx.s;
  if (m.epoch < s.epoch) {
    reject(ctx, m.from, staleCode(ctx), `epoch ${m.epoch} is stale: ${self(ctx)} is at epoch ${s.epoch}`);
    return;
  }
  if (s.phase.kind === "leader" && m.epoch === s.epoch) {
    // Heartbeats come only from active leaders, and an active leader had a
    // majority of durable votes in its epoch: two of them is split brain.
    throw new Error(`election: split brain: ${self(ctx)} and ${m.from} both lead epoch ${m.epoch}`);
  }
  if (m.epoch > s.epoch) {
    adoptEpoch(ctx, m.epoch, { epoch: m.epoch, node: m.from }, `${m.from} leads the newer epoch ${m.epoch}`);
  } else if (s.phase.kind === "prevoting" && s.cfg.preempt && outranks(ctx, self(ctx), m.from)) {
    // Pre-voting to preempt this lower-ranked leader: its heartbeat (the answer
    // to our pre-vote) does not call the preemption off.
    return;
  }
  heardLeader(ctx, m.from);
  sendTo(ctx, m.from, { type: "heartbeat_ack", vv: ctx.s.localVv, round: m.round });
}

function onHeartbeatAck(ctx: Ctx, m: Msg<"heartbeat_ack">): void {
  if (ctx.s.phase.kind !== "leader" || m.epoch !== ctx.s.epoch) return;
  confirm(ctx, m.from, Math.min(m.round, ctx.nowMs));
}

function onStepdown(ctx: Ctx, m: Msg<"stepdown">): void {
  if (m.epoch < ctx.s.epoch) return; // an old leader's, delayed
  if (m.epoch > ctx.s.epoch) adoptEpoch(ctx, m.epoch, ctx.s.vote, `${m.from} stepped down from epoch ${m.epoch}`);
  const p = ctx.s.phase;
  if (p.kind !== "follower" || (p.leader !== null && p.leader !== m.from)) return;
  const reason = `leader ${m.from} stepped down`;
  // Promptly, without waiting for the silence timeout.
  // The leader that stepped down abstains: asking it would only wait for its silence.
  if (ctx.s.cfg.failover === "auto" && !abstaining(ctx)) startElection(ctx, reason, m.from);
  else becomeFollower(ctx, null, reason);
}

/** The active leader records a member's confirmation of `round`. */
function confirm(ctx: Ctx, node: NodeId, round: number): void {
  const p = ctx.s.phase;
  if (p.kind !== "leader") return;
  if ((p.confirmed.get(node) ?? -Infinity) >= round) return;
  ctx.s = { ...ctx.s, phase: { ...p, confirmed: new Map(p.confirmed).set(node, round) } };
}

function reject(ctx: Ctx, to: NodeId, code: RejectCode, reason: string): void {
  sendTo(ctx, to, { type: "reject", code, reason });
}

/**
 * Why an older epoch is refused: "superseded" when this node has (or is) a
 * newer leader or candidate, "stale_epoch" when it sits at a higher epoch with
 * nobody to follow, which asks a live leader to renew its epoch.
 */
function staleCode(ctx: Ctx): RejectCode {
  const kind = ctx.s.phase.kind;
  return liveLeader(ctx) !== null || kind === "pending" || kind === "leader" ? "superseded" : "stale_epoch";
}

function assertNever(x: never): never {
  throw new Error(`election: unhandled message ${JSON.stringify(x)}`);
}
