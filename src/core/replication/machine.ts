// Replication as one pure state machine, in the shape of the election:
// step(state, input, nowMs, wallMs) -> { state, send, batch, resolved, close, more, events }.
// It owns what each peer is known to hold and to be, the per-peer send
// windows, which peers are up and which links are dead (judged with the
// failure detector, the election's rules, on the awake clock, so a stall of
// this node is not its peers' silence), fencing (building our fence,
// judging theirs, backing off from refusals), echo suppression, forwarding
// of third-region ops only where the direct path seems to fail, batched acks,
// `ack=region|all` resolution and clock offsets. The runtime feeds it link
// events (up, down, signs of life), decoded frames, commits and ticks, and
// carries out what it returns: it fills ops frames from its in-memory tail or
// its op log, applies batches the machine accepts, closes links presumed
// dead, and resolves client waits.

import type { ClusterView, PeerView } from "../cluster-view.js";
import { awakeNow, isLive, LINK_SILENCE_TIMEOUTS, linkPresumedDead, observeInput, startClock } from "../failure-detector.js";
import { advanceKnownEpoch, epochLearnedFromPing, fencingTokenOf, formatFencingToken, judgeBatch } from "../fence.js";
import type { NodeId, RegionId } from "../ids.js";
import { mutated } from "../mutations.js";
import { needsCompactedOps } from "../compaction.js";
import { mergeVv, vvGet, type VersionVector } from "../version-vector.js";
import {
  allAcked,
  clockSkewed,
  clockStepUnmeasured,
  medianOffsetMs,
  highestRankedLeader,
  markSent,
  mayPush,
  onAck,
  onPeerVv,
  onRefused,
  planSend,
  pushTargets,
  regionAcked,
  sendStateFrom,
  usableClockSample,
  wallClockStepped,
} from "./decisions.js";
import type { AckWait, InFrame, OutFrame, PeerState, ReplConfig, ReplEvent, ReplInput, ReplOutput, ReplState } from "./types.js";

/**
 * A batch unacknowledged this many election timeouts is taken for lost (a
 * frame dropped on a link that stayed up): the window restarts from what the
 * peer last reported, and the gap rule at the receiver drops any duplicate.
 */
export const RESEND_AFTER_TIMEOUTS = 2;

/**
 * A ping is answered with a pong at most once per this period per peer. Both
 * sides ping every heartbeat, and a ping carries everything liveness and
 * sending need (role, epoch, vector); the pong only adds a round trip for the
 * clock-offset estimate, which a sample a second keeps fresh. Answering
 * every ping doubled the control frames of an idle cluster (9 nodes, 8 links
 * each: 1,440 pongs a second at a 100 ms heartbeat).
 */
export const PONG_INTERVAL_MS = 1000;

/** At most one log line per peer in this period about batches refused from it; the rest are counted in it. */
export const REFUSAL_LOG_INTERVAL_MS = 5000;

/** Snapshots this node streams at once: each holds a read transaction and a link's bandwidth. */
export const SNAPSHOTS_AT_ONCE = 1;

/**
 * A snapshot sent whole that the peer has not installed (its vector still
 * below the floor) after this many election timeouts is taken for lost, and
 * another one is sent. A large install blocks the peer for a while, so this
 * is generous; a link that drops ends the wait at once.
 */
export const SNAPSHOT_INSTALL_TIMEOUTS = 40;

/** The state of a node that starts at `nowMs` with `committedVv` durable, its op log compacted up to `floor`, and no link up. */
export function initReplication(cfg: ReplConfig, committedVv: VersionVector, nowMs: number, wallMs: number, floor: VersionVector = {}): ReplState {
  checkConfig(cfg);
  const peers = new Map<NodeId, PeerState>();
  for (const m of cfg.members) {
    if (m.node === cfg.self.node) continue;
    peers.set(m.node, {
      view: { node: m.node, region: m.region, up: false, vv: {}, role: "follower", epoch: 0, leader: "" },
      linkUp: false,
      heardMs: null,
      aliveMs: null,
      send: sendStateFrom({}),
      offsetMs: null,
      ackDue: null,
      progress: new Map(),
      refusals: { loggedMs: -Infinity, suppressed: 0 },
      pongedMs: null,
      unsentAtMs: null,
      inflightSinceMs: null,
      needsCompacted: false,
      snapshot: null,
      forgotten: false,
      cameBack: false,
    });
  }
  const clock = startClock(nowMs);
  return {
    cfg,
    peers,
    committedVv,
    floor,
    regionEpochs: new Map(),
    leadership: null,
    waits: new Map(),
    clock,
    wallMs,
    wallMinusMonoMs: wallMs - nowMs,
    clockStepped: false,
    clockSkewed: false,
    startedMs: awakeNow(clock, nowMs),
    nextSnapshotId: 1,
  };
}

/** The scratchpad of one step (nothing outlives the call). */
interface Draft {
  s: ReplState;
  readonly nowMs: number;
  readonly monoMs: number;
  readonly send: Array<{ to: NodeId; frame: OutFrame }>;
  batch: ReplOutput["batch"];
  readonly resolved: Array<ReplOutput["resolved"][number]>;
  readonly close: Array<ReplOutput["close"][number]>;
  readonly events: ReplEvent[];
  more: boolean;
  /** The peers map of `s` was copied in this step and may be changed in place (the input state's never is). */
  peersOwned: boolean;
}

/** Feeds one input at monotonic `nowMs` and wall-clock `wallMs`. */
export function step(state: ReplState, input: ReplInput, nowMs: number, wallMs: number): ReplOutput {
  const observed = observeInput(state.clock, nowMs, state.cfg.heartbeatMs, input.type === "tick");
  const d: Draft = {
    s: { ...state, clock: observed.clock, wallMs, wallMinusMonoMs: wallMs - nowMs },
    nowMs: awakeNow(observed.clock, nowMs),
    monoMs: nowMs,
    send: [],
    batch: null,
    resolved: [],
    close: [],
    events: [],
    more: false,
    peersOwned: false,
  };
  if (wallClockStepped(state.wallMinusMonoMs, wallMs, nowMs, state.cfg.maxClockSkewMs)) voidClockSamples(d, wallMs - nowMs - state.wallMinusMonoMs);
  switch (input.type) {
    case "tick":
      detectFailures(d);
      // Drain before judging (failure-detector.ts): right after a pause the
      // signs of life that arrived meanwhile are not read yet.
      if (observed.fireTimers) closeDeadLinks(d);
      resendLost(d);
      forgetSilent(d);
      ping(d);
      expireWaits(d);
      break;
    case "link_up":
      linkUp(d, input.peer, input.vv, input.epoch);
      break;
    case "link_down":
      // A snapshot streaming on the link is cut off with it; the next link gets a new one if it still needs it.
      setPeer(d, input.peer, (p) => ({ ...p, linkUp: false, view: { ...p.view, up: false }, snapshot: null }));
      d.events.push({ level: "debug", msg: "link down", fields: { peer: input.peer, reason: input.reason } });
      break;
    case "frame":
      onFrame(d, input.peer, input.frame);
      break;
    case "alive":
      // Only the link's own evidence: a sign of life reported for a link this machine already closed keeps nothing open.
      setPeer(d, input.peer, (p) => (p.linkUp ? { ...p, aliveMs: d.nowMs } : p));
      break;
    case "committed":
      // The durable vector only grows; the runtime reports it after each commit.
      d.s = { ...d.s, committedVv: mergeVv(d.s.committedVv, input.vv) };
      break;
    case "compacted":
      d.s = { ...d.s, floor: mergeVv(d.s.floor, input.floor) };
      break;
    case "applied":
      setPeer(d, input.peer, (p) => ({ ...p, ackDue: Math.max(p.ackDue ?? 0, input.batch) }));
      break;
    case "unsent":
      // Nothing after the peer's last report is known to be on the wire: plan from there again (after a backoff, the next input).
      setPeer(d, input.peer, (p) => ({ ...p, send: { ...sendStateFrom(p.send.acked), nextBatch: p.send.nextBatch, refused: p.send.refused }, unsentAtMs: d.nowMs }));
      return finish(d, true);
    case "flush":
      flushAcks(d);
      break;
    case "snapshot_sent":
      snapshotSent(d, input.peer, input.id, input.ok, input.reason);
      break;
    case "leadership":
      d.s = { ...d.s, leadership: input.leadership };
      break;
    case "await":
      d.s = { ...d.s, waits: new Map(d.s.waits).set(input.id, { origin: input.origin, seq: input.seq, level: input.level, deadlineMs: nowMs + d.s.cfg.ackWaitMs }) };
      break;
    default:
      throw new Error(`replication: unknown input ${JSON.stringify(input satisfies never)}`);
  }
  return finish(d, false);
}

function finish(d: Draft, skipPlan: boolean): ReplOutput {
  judgeClock(d);
  resolveWaits(d);
  // Every input may open a window (a link, an ack, a commit, a new leader): plan after each.
  if (!skipPlan) planAll(d);
  return { state: d.s, send: d.send, batch: d.batch, resolved: d.resolved, close: d.close, more: d.more, events: d.events };
}

/** `<region>:<epoch>` as it travels on batches. */
function fenceText(region: RegionId, epoch: number): string {
  return formatFencingToken(fencingTokenOf(region, epoch));
}

// ---- views -------------------------------------------------------------------

// A step asks for the view and the leaders many times (per peer, per ack
// wait); both are functions of the peers map, so they are computed once per
// map and dropped when a step changes it (setPeer).
const views = new WeakMap<ReplState["peers"], ClusterView>();
const leadersByView = new WeakMap<ClusterView, Map<string, NodeId | null>>();

/** The cluster as this node sees it, for the pure decisions in decisions.ts. */
export function viewOf(s: ReplState): ClusterView {
  let view = views.get(s.peers);
  if (view === undefined) {
    const peers = new Map<string, PeerView>();
    for (const [id, p] of s.peers) peers.set(id, p.view);
    view = { self: s.cfg.self, members: s.cfg.members, peers };
    views.set(s.peers, view);
  }
  return view;
}

/** Who leads `region` as this node believes: its own from the election, others from their pings. */
export function leaderOf(s: ReplState, region: string): NodeId | null {
  if (region === s.cfg.self.region && s.leadership) return s.leadership.leader;
  const view = viewOf(s);
  let leaders = leadersByView.get(view);
  if (leaders === undefined) {
    leaders = new Map();
    leadersByView.set(view, leaders);
  }
  let leader = leaders.get(region);
  if (leader === undefined) {
    leader = highestRankedLeader(view, region);
    leaders.set(region, leader);
  }
  return leader;
}

/** The epoch this node knows for another region (its own comes from the election). */
export function knownEpochOf(s: ReplState, region: string): number {
  if (region === s.cfg.self.region) return s.leadership?.epoch ?? 0;
  return s.regionEpochs.get(region) ?? 0;
}

/** The fence this node stamps on its batches: its epoch's while it leads, "" otherwise. */
export function ownFence(s: ReplState): string {
  return s.leadership?.active ? fenceText(s.cfg.self.region, s.leadership.epoch) : "";
}

/** True when this node's measured clock is too far from its peers' to lead or take writes: what the election hears. */
export function isClockSkewed(s: ReplState): boolean {
  return s.clockSkewed;
}

/**
 * True when this node must refuse client writes at monotonic `monoMs` and
 * wall `wallMs`: its clock is skewed, or was stepped and is not measured
 * again yet; a step right now (not yet seen by a step of the machine) counts
 * at once, so no write is stamped by a clock that just jumped.
 */
export function refusesWritesForClock(s: ReplState, monoMs: number, wallMs: number): boolean {
  if (s.clockSkewed || clockStepUnmeasured(s.clockStepped, ownOffsetsMs(s).length, upPeers(s))) return true;
  return wallClockStepped(s.wallMinusMonoMs, wallMs, monoMs, s.cfg.maxClockSkewMs);
}

/** End of a step: a step of the wall clock measured again by a majority is over, and only then do the offsets judge. */
function judgeClock(d: Draft): void {
  const offsets = ownOffsetsMs(d.s);
  if (clockStepUnmeasured(d.s.clockStepped, offsets.length, upPeers(d.s))) return;
  const skewed = clockSkewed(offsets, d.s.cfg.maxClockSkewMs, d.s.clockSkewed);
  if (d.s.clockStepped || skewed !== d.s.clockSkewed) d.s = { ...d.s, clockStepped: false, clockSkewed: skewed };
}

function upPeers(s: ReplState): number {
  let n = 0;
  for (const p of s.peers.values()) if (p.view.up) n++;
  return n;
}

/** The wall clock stepped by `stepMs`: every offset measured before it is void. */
function voidClockSamples(d: Draft, stepMs: number): void {
  for (const [id, p] of d.s.peers) if (p.offsetMs !== null) setPeer(d, id, (x) => ({ ...x, offsetMs: null }));
  d.s = { ...d.s, clockStepped: true };
  d.events.push({ level: "warn", msg: "wall clock stepped against the monotonic clock; clock samples voided until the peers measure it again", fields: { stepMs: Math.round(stepMs) } });
}


/** This node's clock minus its peers', the median over the peers measured (null: none yet), for /status. */
export function clockOffsetMs(s: ReplState): number | null {
  const m = medianOffsetMs(ownOffsetsMs(s));
  return m === null ? null : Math.round(m);
}

/** (this node's clock - the peer's) for every up peer with a clock sample. */
function ownOffsetsMs(s: ReplState): number[] {
  const offsets: number[] = [];
  for (const p of s.peers.values()) if (p.view.up && p.offsetMs !== null) offsets.push(-p.offsetMs);
  return offsets;
}

/** True when `origin:seq` is durable at `level` as far as this node knows. */
export function isAcked(s: ReplState, origin: NodeId, seq: number, level: "region" | "all"): boolean {
  const view = viewOf(s);
  const region = regionAcked(view, origin, seq, s.committedVv);
  if (level === "region") return region;
  return region && allAcked(view, origin, seq, (r) => leaderOf(s, r));
}

// ---- inputs ------------------------------------------------------------------

function setPeer(d: Draft, peer: NodeId, f: (p: PeerState) => PeerState): PeerState | undefined {
  const p = d.s.peers.get(peer);
  if (p === undefined) return undefined; // not a member: the hub only routes members, but a stray id changes nothing
  const next = f(p);
  // Copy on the first write of a step, then change the copy in place: the
  // state passed in stays as it was, and a step costs one copy, not one per change.
  if (!d.peersOwned) {
    d.s = { ...d.s, peers: new Map(d.s.peers) };
    d.peersOwned = true;
  } else {
    views.delete(d.s.peers);
  }
  (d.s.peers as Map<NodeId, PeerState>).set(peer, next);
  return next;
}

function linkUp(d: Draft, peer: NodeId, vv: VersionVector, epoch: number): void {
  if (d.s.peers.get(peer)?.forgotten === true) returned(d, peer);
  setPeer(d, peer, (p) => ({
    ...p,
    linkUp: true,
    heardMs: d.nowMs,
    forgotten: false,
    cameBack: p.cameBack || p.forgotten,
    snapshot: null,
    aliveMs: null,
    view: { ...p.view, up: true, vv, epoch },
    // A new link starts from what the peer says it has: nothing is in flight on it.
    send: { ...sendStateFrom(vv), nextBatch: p.send.nextBatch },
    progress: new Map(),
    ackDue: null,
    pongedMs: null,
  }));
}

/** A peer whose link is up but that was not heard within the election timeout is down (and up again once heard). */
function detectFailures(d: Draft): void {
  for (const [id, p] of d.s.peers) {
    const up = p.linkUp && p.heardMs !== null && isLive(p.heardMs, d.nowMs, d.s.cfg.electionTimeoutMs);
    if (up !== p.view.up) setPeer(d, id, (x) => ({ ...x, view: { ...x.view, up } }));
  }
}

/**
 * A link that showed no sign of life (no frame, pong or drained queue) for
 * LINK_SILENCE_TIMEOUTS election timeouts is presumed dead: its TCP died
 * silently, and only closing it lets the hub dial a fresh one. The machine
 * takes it down at once, so it asks for the close once.
 */
function closeDeadLinks(d: Draft): void {
  const silenceMs = LINK_SILENCE_TIMEOUTS * d.s.cfg.electionTimeoutMs;
  for (const [id, p] of d.s.peers) {
    if (!p.linkUp || p.heardMs === null) continue;
    const lastMs = Math.max(p.heardMs, p.aliveMs ?? p.heardMs);
    if (!linkPresumedDead(lastMs, d.nowMs, d.s.cfg.electionTimeoutMs)) continue;
    setPeer(d, id, (x) => ({ ...x, linkUp: false, view: { ...x.view, up: false } }));
    const reason = `no sign of life for ${silenceMs} ms: connection presumed dead`;
    d.close.push({ peer: id, reason });
    d.events.push({ level: "warn", msg: "peer link presumed dead; closing it", fields: { peer: id, silentMs: d.nowMs - lastMs, reason } });
  }
}

/**
 * A member silent longer than memberForgetMs (one never heard: since this
 * node started) stops holding the stability frontier back: a member that is
 * gone for good must not stop compaction forever. Said once when it happens.
 */
function forgetSilent(d: Draft): void {
  const forgetMs = d.s.cfg.memberForgetMs;
  for (const [id, p] of d.s.peers) {
    if (p.forgotten || p.view.up) continue;
    const silentMs = d.nowMs - (p.heardMs ?? d.s.startedMs);
    if (silentMs <= forgetMs) continue;
    setPeer(d, id, (x) => ({ ...x, forgotten: true }));
    d.events.push({
      level: "warn",
      msg: "member silent longer than member-forget-ms: it no longer holds compaction back, and bootstraps from a snapshot if it returns needing compacted ops",
      fields: { peer: id, silentMs: Math.round(silentMs), memberForgetMs: forgetMs, heardSinceStart: p.heardMs !== null },
    });
  }
}

function returned(d: Draft, peer: NodeId): void {
  d.events.push({ level: "info", msg: "forgotten member is back: it holds the stability frontier again", fields: { peer } });
}

function resendLost(d: Draft): void {
  const afterMs = RESEND_AFTER_TIMEOUTS * d.s.cfg.electionTimeoutMs;
  for (const [id, p] of d.s.peers) {
    if (p.inflightSinceMs === null || d.nowMs - p.inflightSinceMs < afterMs) continue;
    setPeer(d, id, (x) => ({ ...x, send: { ...sendStateFrom(x.send.acked), nextBatch: x.send.nextBatch, refused: x.send.refused }, inflightSinceMs: null }));
    d.events.push({ level: "debug", msg: "batches unacknowledged too long; resending from the peer's vector", fields: { peer: id, afterMs } });
  }
}

function ping(d: Draft): void {
  const l = d.s.leadership;
  const leader = leaderOf(d.s, d.s.cfg.self.region);
  const role = l ? l.role : leader === d.s.cfg.self.node ? "leader" : "follower";
  const frame: OutFrame = { t: "ping", wallMs: d.s.wallMs, role, leader: leader ?? "", epoch: knownEpochOf(d.s, d.s.cfg.self.region), vv: d.s.committedVv };
  for (const [id, p] of d.s.peers) if (p.linkUp) d.send.push({ to: id, frame });
}

function onFrame(d: Draft, peer: NodeId, f: InFrame): void {
  const before = d.s.peers.get(peer);
  const p = setPeer(d, peer, (x) => ({ ...x, heardMs: d.nowMs, forgotten: false, cameBack: x.cameBack || x.forgotten, view: x.linkUp && !x.view.up ? { ...x.view, up: true } : x.view }));
  if (p === undefined) return;
  if (before?.forgotten === true) returned(d, peer);
  switch (f.t) {
    case "ops":
      return onOps(d, p, f);
    case "ack":
      setPeer(d, peer, (x) => {
        const send = onAck(x.send, f.batch, f.vv);
        return { ...x, send, inflightSinceMs: send.inflight.size === 0 ? null : d.nowMs };
      });
      return peerVv(d, peer, f.vv);
    case "refuse":
      return onRefuse(d, p, f.knownEpoch, f.vv);
    case "ping":
      setPeer(d, peer, (x) => ({ ...x, view: { ...x.view, role: f.role, leader: f.leader, epoch: f.epoch } }));
      learnEpoch(d, p.view.region, epochLearnedFromPing(f.role, f.epoch));
      peerVv(d, peer, f.vv);
      if (p.pongedMs === null || d.nowMs - p.pongedMs >= PONG_INTERVAL_MS) {
        setPeer(d, peer, (x) => ({ ...x, pongedMs: d.nowMs }));
        d.send.push({ to: peer, frame: { t: "pong", echoWallMs: f.wallMs, wallMs: d.s.wallMs, vv: d.s.committedVv } });
      }
      return;
    case "pong": {
      const rttMs = d.s.wallMs - f.echoWallMs;
      // The estimate is off by up to rtt/2: a slow round trip (a stall, a busy
      // loop) would make a good clock look skewed, so only quick ones count.
      if (usableClockSample(rttMs, d.s.cfg.maxClockSkewMs)) {
        setPeer(d, peer, (x) => ({ ...x, offsetMs: f.wallMs - (f.echoWallMs + rttMs / 2) }));
      }
      return peerVv(d, peer, f.vv);
    }
    default:
      throw new Error(`replication: unknown frame ${JSON.stringify(f satisfies never)}`);
  }
}

function onOps(d: Draft, p: PeerState, f: Extract<InFrame, { t: "ops" }>): void {
  const peer = p.view.node;
  const verdict = judgeBatch(f.fence, p.view.region, knownEpochOf(d.s, p.view.region));
  switch (verdict.kind) {
    case "malformed":
      d.batch = "malformed";
      d.events.push({ level: "warn", msg: "ops batch with a malformed fencing token; dropped", fields: { peer, fence: f.fence } });
      return;
    case "stale":
      // From a deposed leader: nothing under it is taken, and the sender is
      // told why, so it backs off instead of resending on every answer. (It
      // will merge its writes as a follower, unstamped.)
      d.batch = "stale";
      d.send.push({ to: peer, frame: { t: "refuse", batch: f.batch, knownEpoch: verdict.knownEpoch, vv: d.s.committedVv } });
      logRefusal(d, p, f.fence, verdict.knownEpoch);
      return;
    case "accept":
      learnEpoch(d, p.view.region, verdict.epoch);
      break;
    case "unfenced":
      break;
    default:
      throw new Error(`replication: unknown verdict ${JSON.stringify(verdict satisfies never)}`);
  }
  d.batch = "apply";
  if (mutated("ack-before-durable")) {
    // Claims the batch durable on arrival, in the vector its ack carries.
    d.s = { ...d.s, committedVv: mergeVv(d.s.committedVv, f.highest) };
    setPeer(d, peer, (x) => ({ ...x, ackDue: Math.max(x.ackDue ?? 0, f.batch) }));
    flushAcks(d);
  }
  // Echo suppression: the sender has what it just sent (contiguous ops from
  // its own log); without this they would look missing until its next ack
  // or ping, and go straight back to it.
  setPeer(d, peer, (x) => ({ ...x, send: onPeerVv(x.send, f.highest) }));
}

function onRefuse(d: Draft, p: PeerState, knownEpoch: number, vv: VersionVector): void {
  const fence = ownFence(d.s);
  const before = p.send.refused;
  const next = setPeer(d, p.view.node, (x) => ({ ...x, send: onRefused(x.send, vv, fence, d.nowMs) }));
  peerVv(d, p.view.node, vv);
  const after = next?.send.refused ?? null;
  if (after === null || after === before) return;
  // Either this node was deposed (the region's election tells it within a
  // lease) or the peer is ahead of the news; both pass without a resend loop.
  d.events.push({
    level: "warn",
    msg: "peer refused our batches under a stale fencing token; backing off",
    fields: { peer: p.view.node, fence, known: fenceText(d.s.cfg.self.region, knownEpoch), backoffMs: after.backoffMs },
  });
}

function logRefusal(d: Draft, p: PeerState, fence: string, knownEpoch: number): void {
  const r = p.refusals;
  if (d.monoMs - r.loggedMs < REFUSAL_LOG_INTERVAL_MS) {
    setPeer(d, p.view.node, (x) => ({ ...x, refusals: { ...r, suppressed: r.suppressed + 1 } }));
    return;
  }
  d.events.push({
    level: "info",
    msg: "refused a batch under a stale fencing token",
    fields: { peer: p.view.node, fence, known: fenceText(p.view.region, knownEpoch), alsoRefusedSinceLastLine: r.suppressed },
  });
  setPeer(d, p.view.node, (x) => ({ ...x, refusals: { loggedMs: d.monoMs, suppressed: 0 } }));
}

function learnEpoch(d: Draft, region: string, learned: number | null): void {
  if (region === d.s.cfg.self.region) return; // our own region's epoch comes from the election
  const known = d.s.regionEpochs.get(region) ?? 0;
  const next = advanceKnownEpoch(known, learned);
  if (next !== known) d.s = { ...d.s, regionEpochs: new Map(d.s.regionEpochs).set(region, next) };
}

/** A vector the peer reported (ack, refusal, ping, pong): what it holds, for sending and for acks. */
function peerVv(d: Draft, peer: NodeId, vv: VersionVector): void {
  setPeer(d, peer, (x) => ({ ...x, view: { ...x.view, vv: mergeVv(x.view.vv, vv) }, send: onPeerVv(x.send, vv) }));
}

/** Batched acks: one per peer per flush, for the highest batch made durable since the last. */
function flushAcks(d: Draft): void {
  for (const [id, p] of d.s.peers) {
    if (p.ackDue === null) continue;
    if (p.linkUp) d.send.push({ to: id, frame: { t: "ack", batch: p.ackDue, vv: d.s.committedVv } });
    setPeer(d, id, (x) => ({ ...x, ackDue: null }));
  }
}

function resolveWaits(d: Draft): void {
  if (d.s.waits.size === 0) return;
  let waits: Map<number, AckWait> | null = null;
  for (const [id, w] of d.s.waits) {
    if (!isAcked(d.s, w.origin, w.seq, w.level)) continue;
    waits ??= new Map(d.s.waits);
    waits.delete(id);
    d.resolved.push({ id, ok: true });
  }
  if (waits !== null) d.s = { ...d.s, waits };
}

function expireWaits(d: Draft): void {
  let waits: Map<number, AckWait> | null = null;
  for (const [id, w] of d.s.waits) {
    if (d.monoMs < w.deadlineMs || isAcked(d.s, w.origin, w.seq, w.level)) continue;
    waits ??= new Map(d.s.waits);
    waits.delete(id);
    const what = w.level === "region" ? `a majority of region ${d.s.cfg.self.region}` : "every region's leader";
    d.resolved.push({ id, ok: false, reason: `${what} did not confirm the write within ${d.s.cfg.ackWaitMs} ms` });
  }
  if (waits !== null) d.s = { ...d.s, waits };
}

// ---- sending -----------------------------------------------------------------

/** Plans ops frames for every peer this node feeds, within each window and the step's budget. */
function planAll(d: Draft): void {
  const targets = pushTargets(viewOf(d.s), (r) => leaderOf(d.s, r));
  const fence = ownFence(d.s);
  let budget = d.s.cfg.stepOpsMax;
  for (const peer of targets) {
    const p = d.s.peers.get(peer);
    if (p === undefined || !p.linkUp || !mayPush(p.send, fence, d.nowMs)) continue;
    // Its socket queue was full a moment ago: let it drain for a heartbeat instead of refilling it at once.
    if (p.unsentAtMs !== null && d.nowMs - p.unsentAtMs < d.s.cfg.heartbeatMs) continue;
    if (needsCompactedOps(p.send.acked, d.s.floor)) {
      planSnapshot(d, p);
      continue;
    }
    if (p.cameBack && !p.needsCompacted) setPeer(d, peer, (x) => ({ ...x, cameBack: false }));
    if (p.needsCompacted) {
      setPeer(d, peer, (x) => ({ ...x, needsCompacted: false, snapshot: null, cameBack: false }));
      d.events.push({ level: "info", msg: "peer holds what this node compacted: streaming ops to it from its vector", fields: { peer, peerVv: p.send.acked } });
    }
    const offer = offerFor(d, p);
    let send = p.send;
    for (const r of planSend(send, offer, d.s.cfg.sendWindowOps)) {
      for (let from = r.fromSeq; from <= r.toSeq; from += d.s.cfg.frameOpsMax) {
        if (budget <= 0) {
          d.more = true;
          break;
        }
        const to = Math.min(r.toSeq, from + d.s.cfg.frameOpsMax - 1, from + budget - 1);
        const marked = markSent(send, { [r.origin]: to });
        send = marked.state;
        budget -= to - from + 1;
        d.send.push({ to: peer, frame: { t: "ops", batch: marked.batch, fence, range: { origin: r.origin, fromSeq: from, toSeq: to } } });
        if (to < r.toSeq && budget <= 0) d.more = true;
      }
    }
    if (send !== p.send) setPeer(d, peer, (x) => ({ ...x, send, inflightSinceMs: x.inflightSinceMs ?? (send.inflight.size > 0 ? d.nowMs : null) }));
  }
}

/**
 * A push target needs ops below this node's floor (a new member, one that
 * lost its data, or one forgotten while silent): it gets this node's state as
 * a snapshot instead, then the ops after it. One snapshot at a time per
 * sender; one that went out whole but was not installed in time is sent again.
 */
function planSnapshot(d: Draft, p: PeerState): void {
  const peer = p.view.node;
  if (!p.needsCompacted) setPeer(d, peer, (x) => ({ ...x, needsCompacted: true }));
  let current = p.snapshot;
  if (current !== null && current.sentMs !== null && d.nowMs - current.sentMs >= SNAPSHOT_INSTALL_TIMEOUTS * d.s.cfg.electionTimeoutMs) {
    d.events.push({ level: "warn", msg: "snapshot sent but not installed in time; sending another", fields: { peer, id: current.id } });
    current = null;
  }
  if (current !== null) return;
  let streaming = 0;
  for (const x of d.s.peers.values()) if (x.snapshot !== null && x.snapshot.sentMs === null) streaming++;
  if (streaming >= SNAPSHOTS_AT_ONCE) {
    if (p.snapshot !== null) setPeer(d, peer, (x) => ({ ...x, snapshot: null }));
    return;
  }
  const id = d.s.nextSnapshotId;
  d.s = { ...d.s, nextSnapshotId: id + 1 };
  setPeer(d, peer, (x) => ({ ...x, snapshot: { id, sentMs: null } }));
  d.send.push({ to: peer, frame: { t: "snapshot", id } });
  d.events.push({
    level: "info",
    msg: "peer needs ops this node compacted away: sending it a snapshot of this node's state, then the ops after it",
    fields: {
      peer,
      id,
      // Heard again by now (that is how its link came up), so forgotten is already false: cameBack says it was.
      why: p.forgotten || p.cameBack ? "it was silent longer than member-forget-ms" : "its vector is below this node's compacted floor (a new member, or one that lost its data)",
      peerVv: p.send.acked,
      floor: d.s.floor,
    },
  });
}

function snapshotSent(d: Draft, peer: NodeId, id: number, ok: boolean, reason: string | undefined): void {
  const p = d.s.peers.get(peer);
  if (p === undefined || p.snapshot === null || p.snapshot.id !== id) return;
  if (ok) {
    setPeer(d, peer, (x) => ({ ...x, snapshot: { id, sentMs: d.nowMs } }));
    d.events.push({ level: "info", msg: "snapshot sent; waiting for the peer to install it", fields: { peer, id } });
    return;
  }
  setPeer(d, peer, (x) => ({ ...x, snapshot: null }));
  d.events.push({ level: "warn", msg: "snapshot could not be sent; trying again", fields: { peer, id, reason: reason ?? "unknown" } });
}

/**
 * True while snapshot `id` to `peer` is wanted (its driver streams the next
 * rows only then): the link that carries it is up and the machine still waits for it.
 */
export function snapshotWanted(s: ReplState, peer: NodeId, id: number): boolean {
  const p = s.peers.get(peer);
  return p !== undefined && p.linkUp && p.snapshot !== null && p.snapshot.id === id && p.snapshot.sentMs === null;
}

/**
 * What this node offers a peer: everything it has, except that another
 * region's leader gets ops of a third region's origins only once it seems not
 * to get them directly (its seq for that origin stuck for an election timeout
 * while we have more). That keeps ops travelling transitively when two
 * regions cannot see each other, without sending every op twice when they can.
 */
function offerFor(d: Draft, p: PeerState): VersionVector {
  const cfg = d.s.cfg;
  const local = d.s.committedVv;
  if (p.view.region === cfg.self.region) return local;
  const regionOf = regionsOf(cfg);
  const offer: Record<string, number> = {};
  const progress = new Map(p.progress);
  let moved = false;
  for (const origin of Object.keys(local)) {
    const ours = vvGet(local, origin);
    const theirs = vvGet(p.send.sent, origin);
    if (regionOf.get(origin) === cfg.self.region || ours <= theirs) {
      offer[origin] = ours;
      moved = progress.delete(origin) || moved;
      continue;
    }
    const seen = progress.get(origin);
    if (seen === undefined || seen.seq !== theirs) {
      progress.set(origin, { seq: theirs, atMs: d.nowMs });
      moved = true;
      offer[origin] = theirs;
    } else {
      offer[origin] = d.nowMs - seen.atMs >= cfg.electionTimeoutMs ? ours : theirs;
    }
  }
  if (moved) setPeer(d, p.view.node, (x) => ({ ...x, progress }));
  return offer;
}

const regionsByConfig = new WeakMap<ReplConfig, ReadonlyMap<string, string>>();

/** Node id -> region, for a configuration (computed once). */
function regionsOf(cfg: ReplConfig): ReadonlyMap<string, string> {
  let m = regionsByConfig.get(cfg);
  if (m === undefined) {
    m = new Map(cfg.members.map((x) => [x.node as string, x.region as string]));
    regionsByConfig.set(cfg, m);
  }
  return m;
}

function checkConfig(cfg: ReplConfig): void {
  for (const [name, v] of Object.entries({ heartbeatMs: cfg.heartbeatMs, electionTimeoutMs: cfg.electionTimeoutMs, sendWindowOps: cfg.sendWindowOps, frameOpsMax: cfg.frameOpsMax, stepOpsMax: cfg.stepOpsMax, memberForgetMs: cfg.memberForgetMs })) {
    if (!(Number.isSafeInteger(v) && v > 0)) throw new Error(`replication: ${name} must be a positive integer, got ${v}`);
  }
  if (!cfg.members.some((m) => m.node === cfg.self.node)) throw new Error(`replication: self ${cfg.self.node} is not a member`);
}
