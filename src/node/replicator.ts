// Runs the pure replication machine (src/core/replication) with real time and
// real links, in the shape of election-driver.ts: it feeds the machine link
// events (up, down, signs of life), decoded frames, commits and ticks, and
// carries out what each step returns — fill ops frames from the in-memory
// tail (the op log only for a peer that fell behind it), apply the batches the
// machine accepts, send, close the links it presumes dead, resolve client ack
// waits, log the events, set the metrics. It decides nothing of its own.

import type { Logger } from "pino";
import type { MemberConfig, PeerView } from "../core/cluster-view.js";
import type { NodeId } from "../core/ids.js";
import type { Dot, Op } from "../core/op.js";
import { highestSeqs } from "../core/replication/decisions.js";
import { clockOffsetMs, initReplication, isAcked, isClockSkewed, knownEpochOf, leaderOf, refusesWritesForClock, snapshotWanted, step, viewOf } from "../core/replication/machine.js";
import { stableVvOf, tombstoneHorizonOf } from "../core/replication/stability.js";
import type { TombstoneHorizon } from "../core/compaction.js";
import type { InFrame, Leadership, OutFrame, ReplInput, ReplOutput, ReplState } from "../core/replication/types.js";
import { vvLag, type VersionVector } from "../core/version-vector.js";
import type { NodeMetrics } from "./metrics.js";
import { FRAME_OPS_MAX, type Frame, type Intro } from "../net/frames.js";
import type { Hub } from "../net/hub.js";
import type { Storage } from "../storage/port.js";
import { nodeError, type NodeError } from "./errors.js";
import type { LocalStore } from "./local-store.js";
import { OpTail } from "./op-tail.js";
import type { AckLevel, PeerStatus } from "./service.js";

/** Unacked ops per peer before the sender waits: the bound on what a slow peer costs in memory. */
export const SEND_WINDOW_OPS = 1024;
/** Ops one step may plan over all peers: a catch-up yields to the event loop between steps. */
export const STEP_OPS_MAX = 512;
/**
 * Peers' ops applied per event-loop turn. Applying is synchronous up to the
 * commit, and a heal brings frames from every peer at once: applied as they
 * were read, one poll phase took them all (seconds on a loaded machine), and
 * heartbeats waited behind them until followers called elections. Frames
 * wait in arrival order instead and are applied in slices, one per turn;
 * what waits is bounded by the peers' send windows.
 */
export const APPLY_OPS_PER_TURN = 256;

/** An accepted ops frame on its way into the store. */
interface ApplyJob {
  readonly peer: NodeId;
  readonly batch: number;
  readonly ops: readonly Op[];
  /** Ops of the frame handed to the store so far. */
  next: number;
  readonly commits: Promise<unknown>[];
}

/** The region's leadership as the election knows it (ElectionDriver implements it). */
export interface RegionLeadership {
  leader(): NodeId | null;
  isActiveLeader(): boolean;
  role(): "leader" | "follower" | "candidate";
  epoch(): number;
  onControl(peer: NodeId, json: string): void;
  /** This node's clock became (or stopped being) skewed from its peers'. */
  onClockSkew?(skewed: boolean): void;
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
  /** A member silent this long stops holding compaction back. */
  readonly memberForgetMs: number;
  /** The machine asks for snapshot `id` of this node's state to be streamed to `peer` (snapshots.ts). */
  readonly sendSnapshot: (peer: NodeId, id: number) => void;
  /** Wall clock (Date.now): pings carry it for clock-offset estimates. */
  readonly now: () => number;
  readonly logger: Logger;
  readonly metrics: NodeMetrics;
  /** The election; absent, the best-ranked reachable node leads (no elections). */
  readonly leadership?: RegionLeadership;
}

/** Streams ops between this node and its peers. */
export class Replicator {
  private readonly o: ReplicatorOptions;
  private state: ReplState;
  private readonly tail = new OpTail();
  private readonly waiters = new Map<number, (r: true | NodeError) => void>();
  private nextWaitId = 1;
  private timer: NodeJS.Timeout | undefined;
  private flushQueued = false;
  private stopped = false;
  private readonly applyQueue: ApplyJob[] = [];
  private applyScheduled = false;
  /** isClockSkewed after the last step: the election hears each change once. */
  private skewed = false;

  constructor(o: ReplicatorOptions) {
    this.o = o;
    this.state = initReplication(
      {
        self: o.self,
        members: o.members,
        heartbeatMs: o.heartbeatMs,
        electionTimeoutMs: o.electionTimeoutMs,
        maxClockSkewMs: o.maxClockSkewMs,
        ackWaitMs: o.writeWaitMs,
        sendWindowOps: SEND_WINDOW_OPS,
        frameOpsMax: FRAME_OPS_MAX,
        stepOpsMax: STEP_OPS_MAX,
        memberForgetMs: o.memberForgetMs,
      },
      o.storage.appliedVv(),
      performance.now(),
      o.now(),
      o.storage.opLogFloor(),
    );
    if (o.leadership) this.state = { ...this.state, leadership: this.leadershipNow() };
  }

  /** Starts heartbeats. */
  start(): void {
    this.timer = setInterval(() => this.tick(), this.o.heartbeatMs);
    this.tick();
  }

  /** Stops heartbeats and fails pending acknowledgement waits. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const resolve of this.waiters.values()) resolve(nodeError("no_leader", "the node is shutting down"));
    this.waiters.clear();
  }

  // ---- what the rest of the node asks ------------------------------------------

  /** Who leads `region`, as this node believes now. */
  leaderOf(region: string): NodeId | null {
    return leaderOf(this.state, region);
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
    return knownEpochOf(this.state, region);
  }

  /** True when this node's clock is too far from its peers' to take writes, or was stepped since they last measured it. */
  clockSkewed(): boolean {
    return refusesWritesForClock(this.state, performance.now(), this.o.now());
  }

  /** This node's clock minus its peers' (the median of those measured), null before any sample. */
  clockOffsetMs(): number | null {
    return clockOffsetMs(this.state);
  }

  /** The stability frontier as this node knows it, never below `persisted` (compaction.ts). */
  stableVv(persisted: VersionVector): VersionVector {
    return stableVvOf(this.state, persisted);
  }

  /** The tombstone horizon this node could take now (null until every member was heard since start). */
  tombstoneHorizon(): TombstoneHorizon | null {
    return tombstoneHorizonOf(this.state);
  }

  /** The op log was compacted up to `floor`: older ops can no longer be sent. */
  compacted(floor: VersionVector): void {
    this.input({ type: "compacted", floor });
  }

  /** True while snapshot `id` to `peer` is still wanted (its stream goes on only then). */
  snapshotWanted(peer: NodeId, id: number): boolean {
    return snapshotWanted(this.state, peer, id);
  }

  /** The stream of snapshot `id` to `peer` ended. */
  snapshotSent(peer: NodeId, id: number, ok: boolean, reason?: string): void {
    this.input({ type: "snapshot_sent", peer, id, ok, ...(reason === undefined ? {} : { reason }) });
  }

  /** A snapshot was installed here: the vector and the floor rose to what the store now holds. */
  installed(): void {
    // The floor first: with the vector first, the step in between plans ops below the new floor, which the install removed from the log.
    this.input({ type: "compacted", floor: this.o.storage.opLogFloor() });
    this.input({ type: "committed", vv: this.o.storage.appliedVv() });
  }

  /** How many ops this node lacks that `peer` reported having. */
  behindPeer(peer: NodeId): number {
    const p = this.state.peers.get(peer);
    return p ? vvLag(p.view.vv, this.state.committedVv) : 0;
  }

  /** What this node last heard from each peer. */
  peerViews(): PeerView[] {
    return [...viewOf(this.state).peers.values()];
  }

  /** Per-peer rows for /status. */
  peerStatus(): PeerStatus[] {
    const awake = performance.now() - this.state.clock.stalledMs;
    return [...this.state.peers.values()].map((p) => ({
      node: p.view.node,
      region: p.view.region,
      state: p.view.up ? ("up" as const) : ("down" as const),
      lagOps: vvLag(this.state.committedVv, p.view.vv),
      lastContactMs: p.heardMs === null ? null : Math.max(0, Math.round(awake - p.heardMs)),
    }));
  }

  // ---- inputs --------------------------------------------------------------------

  onLinkUp(peer: NodeId, intro: Intro): void {
    this.input({ type: "link_up", peer, vv: intro.vv, epoch: intro.epoch });
    this.o.metrics.linkUp.set({ peer }, 1);
  }

  onLinkDown(peer: NodeId, reason: string): void {
    this.input({ type: "link_down", peer, reason });
    this.o.metrics.linkUp.set({ peer }, 0);
  }

  /** The link to `peer` showed its connection lives (a ws pong, a drained send queue). */
  onAlive(peer: NodeId): void {
    this.input({ type: "alive", peer });
  }

  onFrame(peer: NodeId, f: Frame): void {
    switch (f.t) {
      case "ops": {
        const out = this.input({ type: "frame", peer, frame: { t: "ops", batch: f.batch, fence: f.fence, highest: highestSeqs(f.ops) } });
        if (out.batch === "stale") this.o.metrics.staleBatches.inc();
        if (out.batch !== "apply") return;
        this.applyQueue.push({ peer, batch: f.batch, ops: f.ops, next: 0, commits: [] });
        this.scheduleApply();
        return;
      }
      case "ack":
      case "refuse":
      case "ping":
      case "pong":
        this.input({ type: "frame", peer, frame: f as InFrame });
        return;
      case "control":
        this.o.leadership?.onControl(peer, f.json);
        return;
      // Presence and live updates belong to the live documents, snapshots to snapshots.ts (the runtime routes them there).
      case "presence":
      case "live-update":
      case "snap-begin":
      case "snap-rows":
      case "snap-end":
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

  /**
   * Called by the store after a commit (local writes and remote ops alike),
   * once per batch, in commit order. The committed vector grows by exactly
   * these ops, all of them now in the tail: storage.appliedVv() would already
   * count the later batches of the same group commit, whose ops the tail does
   * not have yet, and sending them would read them back from the log.
   */
  onCommitted(ops: readonly Op[]): void {
    this.tail.add(ops);
    this.input({ type: "committed", vv: highestSeqs(ops) });
  }

  /** The election changed role, leader or epoch. */
  leadershipChanged(_reason: string): void {
    if (this.o.leadership) this.input({ type: "leadership", leadership: this.leadershipNow() });
  }

  /** Resolves once `op` is durable at `level`, or with an error after writeWaitMs. */
  awaitAck(op: Dot, level: AckLevel): Promise<true | NodeError> {
    if (level === "local" || isAcked(this.state, op.origin, op.seq, level)) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(nodeError("no_leader", "the node is shutting down"));
    return new Promise((resolve) => {
      const id = this.nextWaitId++;
      this.waiters.set(id, resolve);
      this.input({ type: "await", id, origin: op.origin, seq: op.seq, level });
    });
  }

  // ---- carrying out a step -------------------------------------------------------

  private tick(): void {
    this.input({ type: "tick" });
    for (const [id, p] of this.state.peers) {
      this.o.metrics.sendQueueDepth.set({ peer: id }, this.o.hub.queuedBytes(id));
      this.o.metrics.replicationLagOps.set({ peer: id }, vvLag(this.state.committedVv, p.view.vv));
    }
  }

  private leadershipNow(): Leadership {
    const l = this.o.leadership as RegionLeadership;
    return { active: l.isActiveLeader(), role: l.role(), leader: l.leader(), epoch: l.epoch() };
  }

  private input(input: ReplInput): ReplOutput {
    const out = step(this.state, input, performance.now(), this.o.now());
    this.state = out.state;
    const unsent = new Set<NodeId>();
    for (const { to, frame } of out.send) {
      if (unsent.has(to) && frame.t === "ops") continue;
      if (!this.send(to, frame) && frame.t === "ops") unsent.add(to);
    }
    for (const r of out.resolved) {
      const resolve = this.waiters.get(r.id);
      if (resolve === undefined) continue;
      this.waiters.delete(r.id);
      resolve(r.ok ? true : nodeError("no_leader", `${r.reason}; it is durable on ${this.o.self.node} and will replicate when the peers are reachable`, 1));
    }
    for (const e of out.events) this.o.logger[e.level](e.fields, e.msg);
    // The machine took these links down already; the hub's onLinkDown for them changes nothing.
    for (const c of out.close) this.o.hub.closeLink(c.peer, c.reason);
    // A catch-up bigger than one step continues on the next turn, after I/O.
    if (out.more) this.queueFlush();
    // After everything of this step was carried out: the machine learns which ops never left.
    for (const peer of unsent) this.input({ type: "unsent", peer });
    this.reportSkew();
    return out;
  }

  /** Tells the election (and the log) when the clock's verdict changed in a step. */
  private reportSkew(): void {
    const skewed = isClockSkewed(this.state);
    if (skewed === this.skewed) return;
    this.skewed = skewed;
    const fields = { offsetMs: clockOffsetMs(this.state), maxClockSkewMs: this.o.maxClockSkewMs };
    if (skewed) this.o.logger.warn(fields, `clock skewed: more than ${this.o.maxClockSkewMs} ms from most peers; refusing client writes, not leading`);
    else this.o.logger.info(fields, "clock no longer skewed: taking writes and standing for election again");
    this.o.leadership?.onClockSkew?.(skewed);
  }

  private scheduleApply(): void {
    if (this.applyScheduled || this.stopped) return;
    this.applyScheduled = true;
    setImmediate(() => {
      this.applyScheduled = false;
      if (!this.stopped) this.applySlice();
    });
  }

  /** Applies up to APPLY_OPS_PER_TURN queued ops, in arrival order; a frame is `applied` once all its slices are durable. */
  private applySlice(): void {
    let budget = APPLY_OPS_PER_TURN;
    while (budget > 0) {
      const job = this.applyQueue[0];
      if (job === undefined) return;
      const n = Math.min(budget, job.ops.length - job.next);
      job.commits.push(this.o.store.applyRemote(job.next === 0 && n === job.ops.length ? job.ops : job.ops.slice(job.next, job.next + n)));
      job.next += n;
      budget -= n;
      if (job.next < job.ops.length) break;
      this.applyQueue.shift();
      Promise.all(job.commits).then(
        () => {
          this.input({ type: "applied", peer: job.peer, batch: job.batch });
          this.queueFlush();
        },
        (err: unknown) => this.o.logger.error({ err, peer: job.peer, batch: job.batch }, "could not apply ops from peer"),
      );
    }
    if (this.applyQueue.length > 0) this.scheduleApply();
  }

  /** One `flush` per event-loop turn: batched acks, and the next slice of a catch-up. */
  private queueFlush(): void {
    if (this.flushQueued || this.stopped) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      if (!this.stopped) this.input({ type: "flush" });
    });
  }

  /** Sends one frame; false when it did not go out. */
  private send(to: NodeId, frame: OutFrame): boolean {
    if (frame.t === "ping") return this.o.hub.send(to, { ...frame, hlc: this.o.store.clock() });
    if (frame.t === "snapshot") {
      this.o.sendSnapshot(to, frame.id);
      return true;
    }
    if (frame.t !== "ops") return this.o.hub.send(to, frame);
    const r = frame.range;
    // Live streaming from the shared tail; the op log only for a peer behind it.
    let ops = this.tail.get(r.origin, r.fromSeq, r.toSeq);
    if (ops === undefined) {
      ops = this.o.storage.getOps(r.origin, r.fromSeq, r.toSeq, r.toSeq - r.fromSeq + 1);
      this.o.metrics.opsFromLog.inc(ops.length);
    }
    // Every planned op is committed, so it is in the tail or the log.
    if (ops.length !== r.toSeq - r.fromSeq + 1) {
      this.o.logger.error({ peer: to, origin: r.origin, fromSeq: r.fromSeq, toSeq: r.toSeq, found: ops.length }, "planned ops are missing from the tail and the op log");
      return false;
    }
    return this.o.hub.send(to, { t: "ops", batch: frame.batch, fence: frame.fence, ops });
  }
}
