// The in-region leader election as one pure state machine:
// step(state, input, now, random) -> { state, send, persist, events }.
// No I/O, no clock, no randomness of its own: the runtime (or the simulator)
// feeds time, random numbers, messages and version vectors, persists
// `persist` and only then sends `send`.

import { compareRank, majority } from "../cluster-view.js";
import { assertRandom, awakeNow, armSilenceTimer, observeInput, startClock } from "../failure-detector.js";
import { fencingTokenOf, type FencingToken } from "../fence.js";
import type { NodeId, RegionId } from "../ids.js";
import { dominates, type VersionVector } from "../version-vector.js";
import type { Ctx } from "./context.js";
import { onMessage } from "./on-message.js";
import { onTick } from "./on-tick.js";
import { onClockInput } from "./on-clock.js";
import { onPromote, onStepdownInput } from "./operator.js";
import { checkActivation, leaseCount } from "./transitions.js";
import type { Durable, ElectionConfig, ElectionInput, ElectionOutput, ElectionState, Role, RoleEvent } from "./types.js";

/** Bound on region size: the Bully exchange is quadratic in it, and regions are small. */
export const REGION_MEMBERS_MAX = 15;

/**
 * The state of a node that starts (or restarts) at `now`: a follower of nobody,
 * with its durable epoch and vote, waiting one election timeout (plus jitter)
 * to hear a leader before it suspects anything.
 */
export function initElection(cfg: ElectionConfig, persisted: Durable, localVv: VersionVector, now: number, random: number): ElectionState {
  assertRandom(random);
  const ranked = validateConfig(cfg);
  const { epoch, vote } = persisted;
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`election: persisted epoch ${epoch} is not a non-negative integer`);
  if (vote !== null && (!Number.isSafeInteger(vote.epoch) || vote.epoch < 0 || vote.epoch > epoch)) {
    throw new Error(`election: persisted vote for epoch ${vote.epoch} does not fit epoch ${epoch}`);
  }
  const clock = startClock(now);
  const state: ElectionState = {
    cfg,
    ranked,
    epoch,
    vote,
    seenEpoch: epoch,
    localVv,
    clock,
    abstainUntilMs: -Infinity,
    clockSkewed: false,
    prevoteFailures: 0,
    deferredGrants: new Map(),
    phase: { kind: "follower", leader: null, timer: armSilenceTimer(awakeNow(clock, now), cfg.electionTimeoutMs, random), preemptAtMs: null },
  };
  checkState(state);
  return state;
}

/** Feeds one input at `now` (monotonic ms); `random` in [0, 1) is this step's jitter source. */
export function step(state: ElectionState, input: ElectionInput, now: number, random: number): ElectionOutput {
  assertRandom(random);
  const before = summary(state);
  const observed = observeInput(state.clock, now, state.cfg.heartbeatMs, input.type === "tick");
  const ctx: Ctx = {
    s: { ...state, clock: observed.clock },
    nowMs: awakeNow(observed.clock, now),
    random,
    send: [],
    durableChanged: false,
    reason: "",
    refused: undefined,
  };
  const p = ctx.s.phase;
  if (observed.stallMs > 0 && (p.kind === "leader" || p.kind === "pending")) {
    // The stall is real time to the peers: what they confirmed before it is that much older.
    ctx.s = { ...ctx.s, phase: { ...p, stallFloorMs: ctx.nowMs, stallDebtMs: p.stallDebtMs + observed.stallMs } };
  }
  switch (input.type) {
    case "tick":
      // Right after a pause of this node, read what arrived before judging any silence.
      if (observed.fireTimers) onTick(ctx);
      break;
    case "message":
      onMessage(ctx, input.msg);
      break;
    case "local_vv":
      // Version vectors only grow (ops are never un-applied); anything else is a runtime bug.
      if (!dominates(input.vv, ctx.s.localVv)) throw new Error("election: local_vv went back");
      ctx.s = { ...ctx.s, localVv: input.vv };
      checkActivation(ctx);
      break;
    case "stepdown":
      onStepdownInput(ctx);
      break;
    case "promote":
      onPromote(ctx, input.bestReachableVv);
      break;
    case "clock":
      onClockInput(ctx, input.skewed);
      break;
    default:
      throw new Error(`election: unknown input ${JSON.stringify(input satisfies never)}`);
  }
  const s = ctx.s;
  checkState(s);
  const after = summary(s);
  const events: RoleEvent[] = [];
  if (after.role !== before.role || after.leader !== before.leader || after.epoch !== before.epoch) {
    events.push({ type: "role", ...after, reason: ctx.reason || "epoch changed" });
  }
  const out: ElectionOutput = {
    state: s,
    send: ctx.send,
    persist: ctx.durableChanged ? { epoch: s.epoch, vote: s.vote } : null,
    events,
  };
  return ctx.refused === undefined ? out : { ...out, refused: ctx.refused };
}

/**
 * When the next timer of this state is due, on the runtime's clock (the
 * awake clock plus the stalls it left out), so the runtime can tick right
 * then instead of up to a tick late. Ticking at other times is harmless.
 */
export function nextTimerMs(s: ElectionState): number {
  const p = s.phase;
  let awakeMs: number;
  switch (p.kind) {
    case "follower": {
      awakeMs = Math.min(p.timer.suspectAtMs, p.preemptAtMs ?? Infinity);
      // A deferred pre-vote grant is due when the leader stops counting as live.
      if (s.deferredGrants.size > 0 && p.leader !== null) awakeMs = Math.min(awakeMs, p.timer.heardMs + s.cfg.electionTimeoutMs);
      break;
    }
    case "electing":
    case "awaiting":
      awakeMs = p.deadlineMs;
      break;
    case "prevoting":
      awakeMs = Math.min(p.deadlineMs, p.nextResendMs);
      break;
    case "pending":
      awakeMs = p.nextResendMs;
      break;
    case "leader":
      awakeMs = p.nextHeartbeatMs;
      break;
    default:
      throw new Error(`election: unknown phase ${JSON.stringify(p satisfies never)}`);
  }
  return awakeMs + s.clock.stalledMs;
}

/** "leader" only while active (takes writes); a pending coordinator is a "candidate". */
export function roleOf(s: ElectionState): Role {
  switch (s.phase.kind) {
    case "leader":
      return "leader";
    case "follower":
      return "follower";
    default:
      return "candidate";
  }
}

/** The leader this node follows (accepted for the current epoch and heard recently), itself when active, else null. */
export function leaderOf(s: ElectionState): NodeId | null {
  const p = s.phase;
  if (p.kind === "leader") return s.cfg.self.node;
  return p.kind === "follower" ? p.leader : null;
}

/** The highest epoch this node adopted (durable). */
export function epochOf(s: ElectionState): number {
  return s.epoch;
}

/** True while this node is the region's active leader: the only state in which it takes writes. */
export function isActiveLeader(s: ElectionState): boolean {
  return s.phase.kind === "leader";
}

/**
 * Whether this node may take a write at `now`: the active leader, with a
 * majority's confirmation live in real time. A gap since the last input (a
 * stall not stepped yet, as on waking from SIGSTOP before any tick) counts in
 * full, and rounds from before an earlier stall count as older by it, so a
 * leader that slept past its lease takes nothing before it hears anew.
 */
export function holdsLease(s: ElectionState, now: number): boolean {
  const p = s.phase;
  if (p.kind !== "leader") return false;
  return leaseCount(p, awakeNow(s.clock, now), s.cfg.electionTimeoutMs) >= majority(s.ranked.length);
}

/** The fencing token of this node's epoch. */
export function fencingToken(region: RegionId, s: ElectionState): FencingToken {
  if (region !== s.cfg.self.region) throw new Error(`election: fencing token for ${region} asked of a ${s.cfg.self.region} node`);
  return fencingTokenOf(region, s.epoch);
}

/** The detailed phase, for /status and logs: pending means "leader pending" (majority or catch-up outstanding). */
export function phaseOf(s: ElectionState): "follower" | "electing" | "awaiting_coordinator" | "prevoting" | "leader_pending" | "leader" {
  switch (s.phase.kind) {
    case "awaiting":
      return "awaiting_coordinator";
    case "pending":
      return "leader_pending";
    default:
      return s.phase.kind;
  }
}

/** What must be on disk for this state (the runtime may check its store against it). */
export function durableOf(s: ElectionState): Durable {
  return { epoch: s.epoch, vote: s.vote };
}

function summary(s: ElectionState): { role: Role; leader: NodeId | null; epoch: number } {
  return { role: roleOf(s), leader: leaderOf(s), epoch: s.epoch };
}

/** Checks the configuration once; returns member ids best-ranked first. */
function validateConfig(cfg: ElectionConfig): NodeId[] {
  const { self, members, heartbeatMs, electionTimeoutMs } = cfg;
  if (!(Number.isSafeInteger(heartbeatMs) && heartbeatMs > 0)) throw new Error(`election: heartbeatMs must be a positive integer, got ${heartbeatMs}`);
  // A timeout at or below the heartbeat interval suspects a healthy leader
  // between two heartbeats: an election storm by configuration.
  if (!(Number.isSafeInteger(electionTimeoutMs) && electionTimeoutMs > heartbeatMs)) {
    throw new Error(`election: electionTimeoutMs (${electionTimeoutMs}) must be an integer above heartbeatMs (${heartbeatMs})`);
  }
  if (members.length === 0 || members.length > REGION_MEMBERS_MAX) throw new Error(`election: a region has 1 to ${REGION_MEMBERS_MAX} members, got ${members.length}`);
  const ids = new Set<string>();
  for (const m of members) {
    if (m.region !== self.region) throw new Error(`election: member ${m.node} is in region ${m.region}, not ${self.region}`);
    if (ids.has(m.node)) throw new Error(`election: member ${m.node} listed twice`);
    if (!Number.isFinite(m.priority)) throw new Error(`election: member ${m.node} has priority ${m.priority}`);
    ids.add(m.node);
  }
  const me = members.find((m) => m.node === self.node);
  if (me === undefined || me.priority !== self.priority) throw new Error(`election: self ${self.node} must be one of the members, with the same priority`);
  return [...members].sort(compareRank).map((m) => m.node);
}

/** State invariants, checked after every step: a failure is a bug in this machine. */
function checkState(s: ElectionState): void {
  if (s.vote !== null && s.vote.epoch > s.epoch) throw new Error(`election: vote epoch ${s.vote.epoch} above epoch ${s.epoch}`);
  if (s.seenEpoch < s.epoch) throw new Error(`election: seen epoch ${s.seenEpoch} below epoch ${s.epoch}`);
  const p = s.phase;
  const me = s.cfg.self.node;
  const n = s.ranked.length;
  if (p.kind === "pending" || p.kind === "leader") {
    // Only a node that durably voted for itself in its epoch may coordinate it.
    if (s.vote === null || s.vote.epoch !== s.epoch || s.vote.node !== me) throw new Error(`election: ${p.kind} in epoch ${s.epoch} without a self-vote`);
  }
  if (p.kind === "pending") {
    if (p.accepts.has(me) || p.accepts.size > n - 1) throw new Error("election: accepts must hold other members only");
    if (p.refusedBy.has(me) || p.refusedBy.size > n - 1) throw new Error("election: refusals must hold other members only");
  }
  if (p.kind === "prevoting") {
    if (p.grants.has(me) || p.grants.size > n - 1) throw new Error("election: pre-vote grants must hold other members only");
    // A majority of grants proclaims within the same step.
    if (1 + p.grants.size >= majority(n)) throw new Error("election: a pre-vote with a majority did not proclaim");
  }
  if (p.kind === "leader") {
    if (p.confirmed.has(me) || p.confirmed.size > n - 1) throw new Error("election: confirmations must hold other members only");
  }
  if (p.kind === "follower" && p.leader === me) throw new Error("election: a follower cannot follow itself");
  if (s.deferredGrants.has(me) || s.deferredGrants.size > n - 1) throw new Error("election: deferred grants must name other members only");
}
