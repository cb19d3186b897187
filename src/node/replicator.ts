// The replication runtime of one node: keeps the ClusterView current from link
// events and heartbeats, pushes ops to the peers the core says to feed (from
// the op log, in bounded windows), applies what peers send and acknowledges
// it once durable, and resolves `ack=region|all` waits. Every decision is a
// call into src/core/replication.ts; this file does the I/O around it.

import type { Logger } from "pino";
import type { MemberConfig, PeerView } from "../core/cluster-view.js";
import type { NodeId } from "../core/ids.js";
import type { Dot, Op } from "../core/op.js";
import {
  allAcked,
  clockSkewed,
  highestRankedLeader,
  highestSeqs,
  usableClockSample,
  markSent,
  mayPush,
  onAck,
  onPeerVv,
  onRefused,
  planSend,
  pushTargets,
  regionAcked,
  sendStateFrom,
  type SendState,
} from "../core/replication.js";
import { advanceKnownEpoch, epochLearnedFromPing, fencingTokenOf, formatFencingToken, judgeBatch } from "../core/fence.js";
import { mergeVv, vvLag, type VersionVector } from "../core/version-vector.js";
import type { NodeMetrics } from "./metrics.js";
import { FRAME_OPS_MAX, type Frame, type Intro } from "../net/frames.js";
import type { Hub } from "../net/hub.js";
import type { Storage } from "../storage/port.js";
import { nodeError, type NodeError } from "./errors.js";
import type { LocalStore } from "./local-store.js";
import type { AckLevel, PeerStatus } from "./service.js";

/** Unacked ops per peer before the sender waits: the bound on what a slow peer costs in memory. */
export const SEND_WINDOW_OPS = 1024;
/** At most one log line per peer in this period about batches refused from it (the rest are counted). */
export const REFUSAL_LOG_INTERVAL_MS = 5000;

/** The region's leadership as the election knows it (ElectionDriver implements it). */
export interface RegionLeadership {
  leader(): NodeId | null;
  isActiveLeader(): boolean;
  role(): "leader" | "follower" | "candidate";
  epoch(): number;
  onControl(peer: NodeId, json: string): void;
}

export interface ReplicatorOptions {
  readonly self: MemberConfig;
  readonly members: readonly MemberConfig[];
  readonly hub: Hub;
  readonly store: LocalStore;
  readonly storage: Storage;
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  readonly writeWaitMs: number;
  readonly maxClockSkewMs: number;
  readonly now: () => number;
  readonly logger: Logger;
  readonly metrics: NodeMetrics;
  /** The election; absent, the best-ranked reachable node leads (no elections). */
  readonly leadership?: RegionLeadership;
}

interface PeerRuntime {
  view: PeerView;
  linkUp: boolean;
  lastHeardMs: number | null;
  send: SendState;
  /** Estimated (peer wall clock - ours), from ping round trips. */
  offsetMs: number | null;
  /** Rate limit of the "refused a batch from this peer" log line. */
  refusalLog: { lastMs: number; suppressed: number };
}

interface AckWaiter {
  readonly op: Dot;
  readonly level: AckLevel;
  readonly resolve: (r: true | NodeError) => void;
  readonly timer: NodeJS.Timeout;
}

/** Streams ops between this node and its peers. */
export class Replicator {
  private readonly o: ReplicatorOptions;
  private readonly peers = new Map<NodeId, PeerRuntime>();
  private readonly waiters = new Set<AckWaiter>();
  private timer: NodeJS.Timeout | undefined;
  private lastTickMs: number;
  private currentLeader: NodeId | null = null;
  /** What this node has committed (the store's vector may run ahead of the log by one group). */
  private committedVv: VersionVector;

  constructor(o: ReplicatorOptions) {
    this.o = o;
    this.committedVv = o.storage.appliedVv();
    this.lastTickMs = o.now();
    for (const m of o.members) {
      if (m.node === o.self.node) continue;
      this.peers.set(m.node, {
        view: { node: m.node, region: m.region, up: false, vv: {}, role: "follower", epoch: 0, leader: "" },
        linkUp: false,
        lastHeardMs: null,
        send: sendStateFrom({}),
        offsetMs: null,
        refusalLog: { lastMs: -Infinity, suppressed: 0 },
      });
    }
  }

  /** Starts heartbeats. */
  start(): void {
    this.timer = setInterval(() => this.tick(), this.o.heartbeatMs);
    this.tick();
  }

  /** Stops heartbeats and fails pending acknowledgement waits. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve(nodeError("no_leader", "the node is shutting down"));
    }
    this.waiters.clear();
  }

  // ---- views ---------------------------------------------------------------

  private view() {
    const peers = new Map<string, PeerView>();
    for (const [id, p] of this.peers) peers.set(id, p.view);
    return { self: this.o.self, members: this.o.members, peers };
  }

  /**
   * Highest epoch per other region learned from its active leaders (their
   * pings and fenced batches): batches under older ones are stale. Never
   * from a candidate: an epoch nobody accepted must fence nothing.
   */
  private readonly regionEpochs = new Map<string, number>();

  /** Who leads `region`, as this node believes now. */
  leaderOf(region: string): NodeId | null {
    if (region === this.o.self.region && this.o.leadership) return this.o.leadership.leader();
    return highestRankedLeader(this.view(), region);
  }

  /** This node's leader (null while it knows none). */
  leader(): NodeId | null {
    return this.leaderOf(this.o.self.region);
  }

  /** True when this node takes client writes: the active leader of its region. */
  isLeader(): boolean {
    if (this.o.leadership) return this.o.leadership.isActiveLeader();
    return this.leader() === this.o.self.node;
  }

  /** The epoch this node knows for `region` (its own from the election). */
  knownEpoch(region: string): number {
    if (region === this.o.self.region) return this.o.leadership?.epoch() ?? (this.o.storage.getMeta("epoch") ?? 0);
    return this.regionEpochs.get(region) ?? 0;
  }

  private noteEpoch(region: string, learned: number | null): void {
    if (region === this.o.self.region) return;
    this.regionEpochs.set(region, advanceKnownEpoch(this.regionEpochs.get(region) ?? 0, learned));
  }

  /** True when this node's clock is too far from its peers' to take writes. */
  clockSkewed(): boolean {
    const offsets = [...this.peers.values()].filter((p) => p.view.up && p.offsetMs !== null).map((p) => -(p.offsetMs as number));
    return clockSkewed(offsets, this.o.maxClockSkewMs);
  }

  /** How many ops this node lacks that `peer` reported having. */
  behindPeer(peer: NodeId): number {
    const p = this.peers.get(peer);
    return p ? vvLag(p.view.vv, this.committedVv) : 0;
  }

  /** What this node last heard from each peer. */
  peerViews(): PeerView[] {
    return [...this.peers.values()].map((p) => p.view);
  }

  /** Per-peer rows for /status. */
  peerStatus(): PeerStatus[] {
    const now = this.o.now();
    return [...this.peers.values()].map((p) => ({
      node: p.view.node,
      region: p.view.region,
      state: p.view.up ? ("up" as const) : ("down" as const),
      lagOps: vvLag(this.committedVv, p.view.vv),
      lastContactMs: p.lastHeardMs === null ? null : Math.max(0, Math.round(now - p.lastHeardMs)),
    }));
  }

  // ---- link events -----------------------------------------------------------

  onLinkUp(peer: NodeId, intro: Intro): void {
    const p = this.peers.get(peer);
    if (!p) return;
    p.linkUp = true;
    p.lastHeardMs = this.o.now();
    p.view = { ...p.view, up: true, vv: intro.vv, epoch: intro.epoch };
    p.send = sendStateFrom(intro.vv);
    this.o.metrics.linkUp.set({ peer }, 1);
    this.refreshLeader("link up");
    this.pumpAll();
  }

  onLinkDown(peer: NodeId, reason: string): void {
    const p = this.peers.get(peer);
    if (!p) return;
    p.linkUp = false;
    p.view = { ...p.view, up: false };
    this.o.metrics.linkUp.set({ peer }, 0);
    this.o.logger.debug({ peer, reason }, "link down");
    this.refreshLeader(`link to ${peer} down`);
  }

  onFrame(peer: NodeId, f: Frame): void {
    const p = this.peers.get(peer);
    if (!p) return;
    p.lastHeardMs = this.o.now();
    if (!p.view.up && p.linkUp) {
      p.view = { ...p.view, up: true };
      this.refreshLeader(`heard from ${peer}`);
    }
    switch (f.t) {
      case "ops":
        this.receiveOps(p, f.batch, f.fence, f.ops);
        return;
      case "ack":
        p.send = onAck(p.send, f.batch, f.vv);
        this.peerVv(p, f.vv);
        this.pump(peer);
        return;
      case "refuse":
        this.refused(p, f.knownEpoch, f.vv);
        return;
      case "ping":
        p.view = { ...p.view, role: f.role, leader: f.leader, epoch: f.epoch };
        this.noteEpoch(p.view.region, epochLearnedFromPing(f.role, f.epoch));
        this.peerVv(p, f.vv);
        this.o.hub.send(peer, { t: "pong", echoWallMs: f.wallMs, wallMs: this.o.now(), vv: this.committedVv });
        this.refreshLeader(`ping from ${peer}`);
        return;
      case "pong": {
        const now = this.o.now();
        const rtt = Math.max(0, now - f.echoWallMs);
        // The offset estimate is off by up to rtt/2. A slow round trip (a
        // stall on either side, a busy loop) would make a good clock look
        // skewed and refuse writes, so only quick round trips count.
        if (usableClockSample(rtt, this.o.maxClockSkewMs)) p.offsetMs = f.wallMs - (f.echoWallMs + rtt / 2);
        this.peerVv(p, f.vv);
        return;
      }
      case "control":
        this.o.leadership?.onControl(peer, f.json);
        return;
      case "hello":
      case "welcome":
      case "auth":
        return;
      default: {
        const never: never = f;
        this.o.logger.warn({ peer, frame: never }, "unexpected frame");
      }
    }
  }

  private peerVv(p: PeerRuntime, vv: VersionVector): void {
    p.view = { ...p.view, vv: mergeVv(p.view.vv, vv) };
    p.send = onPeerVv(p.send, vv);
    this.o.metrics.replicationLagOps.set({ peer: p.view.node }, vvLag(this.committedVv, p.view.vv));
    this.checkWaiters();
  }

  private receiveOps(p: PeerRuntime, batch: number, fence: string, ops: readonly Op[]): void {
    const peer = p.view.node;
    const verdict = judgeBatch(fence, p.view.region, this.knownEpoch(p.view.region));
    switch (verdict.kind) {
      case "malformed":
        this.o.logger.warn({ peer, fence }, "ops batch with a malformed fencing token; dropped");
        return;
      case "stale":
        // From a deposed leader: nothing under it is accepted, and the sender
        // is told why, so it backs off instead of resending on every answer.
        // (It will merge its writes as a follower, unstamped.)
        this.o.metrics.staleBatches.inc();
        this.logRefusal(p, fence, verdict.knownEpoch);
        this.o.hub.send(peer, { t: "refuse", batch, knownEpoch: verdict.knownEpoch, vv: this.committedVv });
        return;
      case "accept":
        this.noteEpoch(p.view.region, verdict.epoch);
        break;
      case "unfenced":
        break;
      default: {
        const never: never = verdict;
        throw new Error(`unknown batch verdict ${JSON.stringify(never)}`);
      }
    }
    // The sender has what it just sent (contiguous ops from its own log):
    // without this it would look like lacking them until its next ack or
    // ping, and they would be sent straight back to it.
    p.send = onPeerVv(p.send, highestSeqs(ops));
    this.o.store.applyRemote(ops).then(
      () => {
        // The persisted vector, not the store's in-memory one: an ack promises durability.
        this.o.hub.send(peer, { t: "ack", batch, vv: this.o.storage.appliedVv() });
      },
      (err: unknown) => this.o.logger.error({ err, peer, batch }, "could not apply ops from peer"),
    );
  }

  /** One line per peer per REFUSAL_LOG_INTERVAL_MS, with how many refusals it stands for. */
  private logRefusal(p: PeerRuntime, fence: string, knownEpoch: number): void {
    const now = this.o.now();
    const log = p.refusalLog;
    if (now - log.lastMs < REFUSAL_LOG_INTERVAL_MS) {
      log.suppressed++;
      return;
    }
    const known = formatFencingToken(fencingTokenOf(p.view.region, knownEpoch));
    this.o.logger.info({ peer: p.view.node, fence, known, alsoRefusedSinceLastLine: log.suppressed }, "refused a batch under a stale fencing token");
    p.refusalLog = { lastMs: now, suppressed: 0 };
  }

  /** The peer refused our batch: it knows a newer epoch of our region. Resync from its vector after a backoff. */
  private refused(p: PeerRuntime, knownEpoch: number, vv: VersionVector): void {
    const fence = this.ownFence();
    const before = p.send.refused;
    p.send = onRefused(p.send, vv, fence, this.o.now());
    this.peerVv(p, vv);
    const after = p.send.refused;
    if (after === null || after === before) return;
    // Either this node was deposed (the region's election will tell it within
    // a lease) or the peer is ahead of the news; both pass without a resend loop.
    this.o.logger.warn(
      { peer: p.view.node, fence, known: formatFencingToken(fencingTokenOf(this.o.self.region, knownEpoch)), backoffMs: after.backoffMs },
      "peer refused our batches under a stale fencing token; backing off",
    );
  }

  /** The fence this node stamps on its batches: its epoch's while it leads, "" otherwise. */
  private ownFence(): string {
    return this.isLeader() ? formatFencingToken(fencingTokenOf(this.o.self.region, this.knownEpoch(this.o.self.region))) : "";
  }

  /** Called by the store after a commit (local writes and remote ops alike). */
  onCommitted(ops: readonly Op[]): void {
    // The persisted node vector is the truth: contiguous and committed.
    if (ops.length > 0) this.committedVv = mergeVv(this.committedVv, this.o.storage.appliedVv());
    this.checkWaiters();
    this.pumpAll();
  }

  // ---- sending ---------------------------------------------------------------

  private pumpAll(): void {
    for (const peer of pushTargets(this.view(), (r) => this.leaderOf(r))) this.pump(peer);
  }

  private pump(peer: NodeId): void {
    const p = this.peers.get(peer);
    if (!p || !p.linkUp) return;
    if (!pushTargets(this.view(), (r) => this.leaderOf(r)).includes(peer)) return;
    const fence = this.ownFence();
    if (!mayPush(p.send, fence, this.o.now())) return;
    for (;;) {
      const ranges = planSend(p.send, this.committedVv, SEND_WINDOW_OPS);
      if (ranges.length === 0) return;
      let sentAny = false;
      for (const r of ranges) {
        const ops = this.o.storage.getOps(r.origin, r.fromSeq, r.toSeq, Math.min(FRAME_OPS_MAX, r.toSeq - r.fromSeq + 1));
        if (ops.length === 0) continue;
        const last = ops[ops.length - 1] as Op;
        const frameMax: VersionVector = { [r.origin]: last.seq };
        const { state, batch } = markSent(p.send, frameMax);
        if (!this.o.hub.send(peer, { t: "ops", batch, fence, ops })) return;
        p.send = state;
        sentAny = true;
      }
      if (!sentAny) return;
    }
  }

  // ---- acknowledgement -------------------------------------------------------

  /** Resolves once `op` is durable at `level`, or with an error after writeWaitMs. */
  awaitAck(op: Dot, level: AckLevel): Promise<true | NodeError> {
    if (level === "local" || this.acked(op, level)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: AckWaiter = {
        op,
        level,
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const what = level === "region" ? `a majority of region ${this.o.self.region}` : "every region's leader";
          resolve(nodeError("no_leader", `${what} did not confirm the write within ${this.o.writeWaitMs} ms; it is durable on ${this.o.self.node} and will replicate when the peers are reachable`, 1));
        }, this.o.writeWaitMs),
      };
      this.waiters.add(waiter);
    });
  }

  private acked(op: Dot, level: AckLevel): boolean {
    const view = this.view();
    const region = regionAcked(view, op.origin, op.seq, this.committedVv);
    if (level === "region") return region;
    return region && allAcked(view, op.origin, op.seq, (r) => this.leaderOf(r));
  }

  private checkWaiters(): void {
    for (const w of this.waiters) {
      if (!this.acked(w.op, w.level)) continue;
      clearTimeout(w.timer);
      this.waiters.delete(w);
      w.resolve(true);
    }
  }

  // ---- heartbeats --------------------------------------------------------------

  private tick(): void {
    const now = this.o.now();
    // A tick that ran late means this process was stalled: silence during the
    // stall is ours, not the peers', so it does not count against them.
    const stallMs = Math.max(0, now - this.lastTickMs - this.o.heartbeatMs);
    this.lastTickMs = now;
    let changed = false;
    for (const p of this.peers.values()) {
      if (stallMs > 0 && p.lastHeardMs !== null) p.lastHeardMs += stallMs;
      const up = p.linkUp && p.lastHeardMs !== null && now - p.lastHeardMs <= this.o.electionTimeoutMs;
      if (up !== p.view.up) {
        p.view = { ...p.view, up };
        changed = true;
      }
    }
    if (changed) this.refreshLeader("failure detector");
    const leader = this.leader();
    const ping: Frame = {
      t: "ping",
      wallMs: now,
      hlc: this.o.store.clock(),
      role: this.o.leadership ? this.o.leadership.role() : leader === this.o.self.node ? "leader" : "follower",
      leader: leader ?? "",
      epoch: this.knownEpoch(this.o.self.region),
      vv: this.committedVv,
    };
    for (const [id, p] of this.peers) if (p.linkUp) this.o.hub.send(id, ping);
    this.pumpAll();
    for (const id of this.peers.keys()) this.o.metrics.sendQueueDepth.set({ peer: id }, this.o.hub.queuedBytes(id));
  }

  /** The election changed role, leader or epoch: re-route and push. */
  leadershipChanged(reason: string): void {
    this.refreshLeader(reason);
    this.pumpAll();
  }

  private refreshLeader(reason: string): void {
    const leader = this.leader();
    if (leader === this.currentLeader) return;
    const was = this.currentLeader;
    this.currentLeader = leader;
    // With an election, the driver logs and counts role changes itself.
    if (!this.o.leadership) {
      this.o.metrics.leaderChanges.inc();
      const role = leader === this.o.self.node ? "leader" : "follower";
      this.o.logger.info({ role, leader, was, reason }, `role ${role}: leader of ${this.o.self.region} is ${leader ?? "nobody"}`);
    }
    this.pumpAll();
  }
}
