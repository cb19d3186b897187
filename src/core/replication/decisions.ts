// Replication decisions, as pure functions of a ClusterView: whom a node
// streams ops to, what it sends next to each (bounded by a window of unacked
// ops, so a slow peer is served from the op log instead of from memory), and
// when a write counts as acknowledged at `local`, `region` or `all`.

import type { NodeId } from "../ids.js";
import { compareRank, majority, regionMembers, type ClusterView } from "../cluster-view.js";
import { planCatchUp, type CatchUpRange } from "../replication-plan.js";
import { mergeVv, vvGet, type VersionVector } from "../version-vector.js";

/**
 * Whom this node pushes ops to. A leader feeds its followers and the other
 * regions' leaders (everything it has, so ops travel transitively when two
 * regions cannot see each other); a follower pushes to its own leader only
 * what that leader lacks (a deposed leader's unreplicated writes).
 */
export function pushTargets(view: ClusterView, leaderOf: (region: string) => NodeId | null): NodeId[] {
  const self = view.self;
  const myLeader = leaderOf(self.region);
  const out: NodeId[] = [];
  for (const p of view.peers.values()) {
    if (!p.up) continue;
    if (myLeader === self.node) {
      if (p.region === self.region) out.push(p.node);
      else if (leaderOf(p.region) === p.node) out.push(p.node);
    } else if (p.node === myLeader) {
      out.push(p.node);
    }
  }
  return out.sort();
}

/** Per-peer sending state: what the peer has for sure, and what is on the wire. */
export interface SendState {
  /** The peer's node vector as it last reported it. */
  readonly acked: VersionVector;
  /** acked plus every op sent and not yet acknowledged. */
  readonly sent: VersionVector;
  /** Unacked batches: id -> highest seq per origin in it. */
  readonly inflight: ReadonlyMap<number, VersionVector>;
  readonly nextBatch: number;
  /** The peer refused our batches under this fence: no push under it before `untilMs`. */
  readonly refused: Refusal | null;
}

/** A peer's refusal of our fencing token, and how long we hold off. */
export interface Refusal {
  readonly fence: string;
  readonly untilMs: number;
  readonly backoffMs: number;
}

/**
 * After a refusal the sender waits this long before trying the same fence
 * again, doubling up to the max: a refused window costs at most one resend
 * per backoff, never a loop on every ack.
 */
export const REFUSAL_BACKOFF_MIN_MS = 250;
export const REFUSAL_BACKOFF_MAX_MS = 8000;

/** A fresh state for a link that just came up, from the peer's advertised vector. */
export function sendStateFrom(peerVv: VersionVector): SendState {
  return { acked: peerVv, sent: peerVv, inflight: new Map(), nextBatch: 1, refused: null };
}

/**
 * The peer refused a batch under `fence` (it knows a newer epoch of our
 * region) at `nowMs`: forget what is in flight (none of it was applied), take
 * its vector, and back off. Refusals of batches that were already on the wire
 * during a backoff change nothing.
 */
export function onRefused(s: SendState, peerVv: VersionVector, fence: string, nowMs: number): SendState {
  const prev = s.refused;
  if (prev !== null && prev.fence === fence && nowMs < prev.untilMs) return s;
  const backoffMs = prev !== null && prev.fence === fence ? Math.min(2 * prev.backoffMs, REFUSAL_BACKOFF_MAX_MS) : REFUSAL_BACKOFF_MIN_MS;
  const acked = mergeVv(s.acked, peerVv);
  return { acked, sent: acked, inflight: new Map(), nextBatch: s.nextBatch, refused: { fence, untilMs: nowMs + backoffMs, backoffMs } };
}

/** True unless the peer refused `fence` and the backoff has not run out (a new fence is tried at once). */
export function mayPush(s: SendState, fence: string, nowMs: number): boolean {
  return s.refused === null || s.refused.fence !== fence || nowMs >= s.refused.untilMs;
}

/** Ops in flight to the peer (sent minus acked), the window's fill level. */
export function inflightOps(s: SendState): number {
  let n = 0;
  for (const k in s.sent) n += Math.max(0, vvGet(s.sent, k) - vvGet(s.acked, k));
  return n;
}

/** What to send next: ranges the peer lacks, at most `windowOps` in flight. */
export function planSend(s: SendState, localVv: VersionVector, windowOps: number): CatchUpRange[] {
  const room = windowOps - inflightOps(s);
  if (room <= 0) return [];
  return planCatchUp(localVv, s.sent, room);
}

/** Records that a batch with these highest seqs went out. */
export function markSent(s: SendState, batchMax: VersionVector): { state: SendState; batch: number } {
  const inflight = new Map(s.inflight);
  inflight.set(s.nextBatch, batchMax);
  return { state: { ...s, sent: mergeVv(s.sent, batchMax), inflight, nextBatch: s.nextBatch + 1 }, batch: s.nextBatch };
}

/**
 * Takes an ack. If the peer's vector does not cover a batch it has acked (it
 * dropped ops: a gap, or a stale fencing token), what we believed sent falls
 * back to what it has, so the next plan resends from there.
 */
export function onAck(s: SendState, batch: number, peerVv: VersionVector): SendState {
  const acked = mergeVv(s.acked, peerVv);
  const inflight = new Map(s.inflight);
  let sent = mergeVv(s.sent, acked);
  // An ack covers its batch and every earlier one (frames arrive in order on
  // a link): any op of those that the peer's vector lacks was lost or
  // dropped past a gap, so what we believed sent falls back to what it has.
  for (const [id, covered] of s.inflight) {
    if (id > batch) continue;
    inflight.delete(id);
    for (const k in covered) {
      if (vvGet(peerVv, k) < vvGet(covered, k)) sent = { ...sent, [k]: vvGet(acked, k) };
    }
  }
  // An ack means a batch was taken: any refusal is over.
  return { acked, sent, inflight, nextBatch: s.nextBatch, refused: null };
}

/** Takes a vector the peer reported outside an ack (ping, pong). */
export function onPeerVv(s: SendState, peerVv: VersionVector): SendState {
  return { ...s, acked: mergeVv(s.acked, peerVv), sent: mergeVv(s.sent, peerVv) };
}

/** True when a majority of the region (this node included) has the op. */
export function regionAcked(view: ClusterView, origin: NodeId, seq: number, localVv: VersionVector): boolean {
  const members = regionMembers(view, view.self.region);
  let have = vvGet(localVv, origin) >= seq ? 1 : 0;
  for (const m of members) {
    if (m.node === view.self.node) continue;
    const p = view.peers.get(m.node);
    if (p && vvGet(p.vv, origin) >= seq) have++;
  }
  return have >= majority(members.length);
}

/** True when every other region's leader (as this node believes) has the op. */
export function allAcked(view: ClusterView, origin: NodeId, seq: number, leaderOf: (region: string) => NodeId | null): boolean {
  const regions = new Set(view.members.map((m) => m.region));
  for (const r of regions) {
    if (r === view.self.region) continue;
    const leader = leaderOf(r);
    if (leader === null) return false;
    const p = view.peers.get(leader);
    if (!p || vvGet(p.vv, origin) < seq) return false;
  }
  return true;
}

/**
 * The region's leader before elections exist: its best-ranked node that is up
 * (this node counts as up). For another region, the node that claims to lead
 * it with the highest epoch, else its best-ranked reachable node.
 */
export function highestRankedLeader(view: ClusterView, region: string): NodeId | null {
  if (region !== view.self.region) {
    let best: { node: NodeId; epoch: number } | null = null;
    for (const p of view.peers.values()) {
      if (p.region !== region || !p.up || p.role !== "leader") continue;
      if (!best || p.epoch > best.epoch) best = { node: p.node, epoch: p.epoch };
    }
    if (best) return best.node;
  }
  for (const m of regionMembers(view, region)) {
    if (m.node === view.self.node) return m.node;
    if (view.peers.get(m.node)?.up) return m.node;
  }
  return null;
}

/** The highest seq per origin among `ops` (what a sender of contiguous ops surely has). */
export function highestSeqs(ops: readonly { readonly origin: string; readonly seq: number }[]): VersionVector {
  const out: Record<string, number> = {};
  for (const op of ops) if (op.seq > (out[op.origin] ?? 0)) out[op.origin] = op.seq;
  return out;
}

/**
 * True when a ping round trip is quick enough to estimate a peer's clock
 * offset from: the estimate is off by up to rtt/2, so a round trip over half
 * the skew bound could make a good clock look skewed.
 */
export function usableClockSample(rttMs: number, maxClockSkewMs: number): boolean {
  // Negative: this node's wall clock went back between ping and pong, so the
  // echo is from the clock before the step and the sample says nothing.
  return rttMs >= 0 && rttMs <= maxClockSkewMs / 2;
}

/**
 * True when the wall clock moved against the monotonic one by more than half
 * the skew bound since `wallMinusMonoMs` was taken (an NTP step, an operator,
 * a VM resumed): this node knows at once, before any peer measures it, that
 * its clock samples are void and its clock may now be wrong.
 */
export function wallClockStepped(wallMinusMonoMs: number, wallMs: number, monoMs: number, maxClockSkewMs: number): boolean {
  return Math.abs(wallMs - monoMs - wallMinusMonoMs) > maxClockSkewMs / 2;
}

/**
 * True while a step of the wall clock waits to be measured again by a
 * majority of the `upPeers` that offsets `measured` come from (with no peer up
 * there is nobody to ask, as at start, and the clock is trusted).
 */
export function clockStepUnmeasured(stepped: boolean, measured: number, upPeers: number): boolean {
  return stepped && upPeers > 0 && measured * 2 <= upPeers;
}

/** How far this node's wall clock is from its peers': the median offset of those measured. */
export function medianOffsetMs(offsetsMs: readonly number[]): number | null {
  if (offsetsMs.length === 0) return null;
  const s = [...offsetsMs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * True when this node's clock is too far from its peers' to take writes or
 * lead: more than `maxSkewMs` from a strict majority of the peers it measured.
 * A majority, not the median: in a region of three where one peer's clock is
 * off, the good node is far from one of its two peers and must not think
 * itself the skewed one, while the bad node is far from both. With a single
 * peer measured the two clocks cannot tell which is wrong, and both refuse.
 */
export function clockSkewed(offsetsMs: readonly number[], maxSkewMs: number, wasSkewed = false): boolean {
  // Hysteresis: a clock found skewed must come back well inside the bound, so
  // one hovering at it (samples vary by up to rtt/2) does not flap leadership.
  const boundMs = wasSkewed ? maxSkewMs * CLOCK_RECOVER_FRACTION : maxSkewMs;
  const far = offsetsMs.filter((o) => Math.abs(o) > boundMs).length;
  return far > offsetsMs.length / 2;
}

/** A skewed clock counts as good again only within this fraction of maxClockSkewMs. */
export const CLOCK_RECOVER_FRACTION = 0.8;

export { compareRank };
