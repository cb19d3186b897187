// One simulated geokv node: the real election machine, the real replication
// machine and the real apply path (src/core) over the in-memory storage that
// loses unsynced commits on a crash, driven the way src/node drives them. Like
// the node's drivers it decides nothing: it feeds the machines their inputs
// (ticks, frames, commits, link events) and carries out what they return, in
// the same order (epoch and vote durable before any message, ops durable
// before they are acknowledged or streamed). What the real drivers do with
// timers and promises, it does with the world's virtual agenda.

import type { ApplyOutcome, ApplyView } from "../../../src/core/apply/apply.js";
import { applyOps } from "../../../src/core/apply/apply.js";
import { isIdempotencyMismatch, replayOf, startIdempotent } from "../../../src/core/apply/idempotency.js";
import type { IntentOf } from "../../../src/core/apply/namespace.js";
import { answerOf, buildOp, loadState } from "../../../src/core/apply/table.js";
import { tokenOf } from "../../../src/core/apply/token.js";
import { isBuildRefusal, type IdempotencyRecord } from "../../../src/core/apply/types.js";
import type { MemberConfig } from "../../../src/core/cluster-view.js";
import {
  epochOf,
  holdsLease,
  initElection,
  isActiveLeader,
  leaderOf as electionLeader,
  nextTimerMs,
  parseElectionMsg,
  roleOf,
  step as electionStep,
  type ElectionInput,
  type ElectionOutput,
  type ElectionState,
} from "../../../src/core/election.js";
import { compareHlc, tick, type Hlc } from "../../../src/core/hlc.js";
import type { NodeId } from "../../../src/core/ids.js";
import type { Namespace, Op } from "../../../src/core/op.js";
import { highestSeqs } from "../../../src/core/replication/decisions.js";
import { initReplication, isAcked, knownEpochOf, leaderOf as replLeader, refusesWritesForClock, step as replStep } from "../../../src/core/replication/machine.js";
import { stableVvOf, tombstoneHorizonOf } from "../../../src/core/replication/stability.js";
import { foldStableKv, planCompactionStep, planTombstoneSweep, tombstoneDroppable } from "../../../src/core/compaction.js";
import type { ControlFrame, Leadership, ReplInput, ReplOutput, ReplState } from "../../../src/core/replication/types.js";
import { mergeVv, vvEquals, vvGet, type VersionVector } from "../../../src/core/version-vector.js";
import type { MemoryDisk } from "../../../src/storage/memory.js";
import { readNodeMeta, type Storage } from "../../../src/storage/port.js";
import { batchOf } from "../../../src/node/apply-driver.js";
import { InvariantViolation } from "../invariants.js";
import type { SnapshotHeader, SnapshotRow } from "../../../src/core/snapshot.js";
import type { KvRow } from "../../../src/storage/port.js";
import { SimSnapshots, type InstallRecord, type SnapshotCrashPhase, type SnapshotFrame } from "./snapshots.js";

/** Wall clocks start here (any date works; this one is in 2023). */
export const WALL_EPOCH_MS = 1_700_000_000_000;

export interface SimSettings {
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  /** How long an ack=region|all wait lasts (writeWaitMs). */
  readonly writeWaitMs: number;
  readonly maxClockSkewMs: number;
  readonly sendWindowOps: number;
  readonly frameOpsMax: number;
  readonly stepOpsMax: number;
  /** A member silent this long stops holding the stability frontier back. */
  readonly memberForgetMs: number;
  /** Op-log rows kept before stable ones are compacted (--op-log-retain-ops). */
  readonly opLogRetainOps: number;
  /** How often a compaction step runs (the node's COMPACT_EVERY_MS). */
  readonly compactEveryMs: number;
  /** Ops one compaction step may remove (the node's COMPACT_STEP_OPS). */
  readonly compactStepOps: number;
}

/** A node's disk: the store, its durability point, and what a crash leaves. */
export interface SimDisk {
  readonly storage: Storage;
  /** Makes every commit so far durable (the fsync). */
  sync(): void;
  /** The process dies: only what was synced survives. */
  crash(): MemoryDisk;
  /** The applied vector a crash now would keep. */
  durableVv(): VersionVector;
  /** Writes since the last sync: what a crash now would lose. */
  unsynced(): number;
}

/** What travels on a peer link: election JSON, ops with their contents, and the replication control frames. */
export type PeerFrame =
  | { readonly t: "control"; readonly json: string }
  | { readonly t: "ops"; readonly batch: number; readonly fence: string; readonly ops: readonly Op[] }
  | ControlFrame
  | SnapshotFrame;

export type AckLevel = "local" | "region" | "all";

/** A client write as the HTTP layer hands it to the store. */
export type WriteRequest = {
  [N in Namespace]: { readonly ns: N; readonly key: string; readonly intent: IntentOf<N>; readonly ack: AckLevel; readonly idem: { readonly key: string; readonly requestHash: string } | null };
}[Namespace];

export type WriteReply =
  /** Acknowledged at the level asked (replayed: the answer of an earlier copy). */
  | { readonly kind: "ok"; readonly token: string; readonly body: Record<string, unknown>; readonly replayed: boolean }
  /** Not taken: nothing was written by this attempt. */
  | { readonly kind: "refused"; readonly code: "no_leader" | "clock_skew" | "mismatch" | "bad_request"; readonly leader: NodeId | null }
  /** Durable on this node, not acknowledged at the level asked: the outcome is unknown. */
  | { readonly kind: "unacked"; readonly reason: string };

/** What the world does for a node. */
export interface Host {
  /** True (virtual) time. */
  readonly now: number;
  /** Runs `fn` on this node `delayMs` from now, unless it crashed meanwhile; deferred while it is paused. */
  later(node: SimNode, delayMs: number, kind: "timer" | "io", fn: () => void): void;
  /** Sends on the link to `to`; false when that link is down (the frame did not go out). */
  send(from: SimNode, to: NodeId, frame: PeerFrame): boolean;
  /** Closes the link to `to` (the machine presumed it dead). */
  closeLink(from: SimNode, to: NodeId, reason: string): void;
  random(): number;
  fsyncDelayMs(): number;
  readonly monitor: NodeMonitor;
  note(line: () => string): void;
  /** Right after an own idempotent counter write is durable, before anything leaves: true when the schedule crashed the node here. */
  maybeCrashAfterWrite(node: SimNode, idemKey: string): boolean;
  /** Right after an own client write is committed, before it is durable: the schedule may stall the process here (or cut it off). */
  maybePauseAfterWrite(node: SimNode): void;
  /** True while `from`'s end of its link to `to` is up (Hub.isUp). */
  linkUp(from: SimNode, to: NodeId): boolean;
  /** Holds the node's loop for `ms` (a synchronous transaction): nothing else of it runs meanwhile; `done` runs first when it ends, unless it crashed. */
  block(node: SimNode, ms: number, done: () => void): void;
  /** `node` began streaming a snapshot to `peer`: the schedule may cut them apart here. */
  snapshotStreaming(node: SimNode, peer: NodeId): void;
  /** A snapshot at its receiver reached `phase`: true when the schedule crashed the node here. */
  maybeCrashInSnapshot(node: SimNode, phase: SnapshotCrashPhase): boolean;
}

/** The checks that watch every step of a node (checks.ts). */
export interface NodeMonitor {
  electionStepped(node: SimNode, wasActive: boolean, out: ElectionOutput): void;
  batchJudged(node: SimNode, from: SimNode | undefined, fence: string, knownEpochBefore: number, verdict: ReplOutput["batch"]): void;
  /** Before `ops` are committed at `node`: none of them may be in its log already. */
  /** `fromPeer`: the ops came from a peer (a node that lost its disk gets its own earlier ops back that way). */
  applying(node: SimNode, outcome: ApplyOutcome, hlcBefore: Hlc, fromPeer: boolean): void;
  /** A client write was taken by `node` as leader of `epoch`. */
  writeTaken(node: SimNode, epoch: number, op: Op): void;
  /** A client write of `node`'s region reached ack=region (or all) at `node`. */
  regionAcked(node: SimNode, origin: NodeId, seq: number): void;
  /** `node` is about to remove its logged ops up to `target`: every member must hold them durably. */
  compacting(node: SimNode, target: VersionVector): void;
  /** `node` just installed a snapshot with `rows` over its kv rows `localKv`: nothing covered may come back, nothing beyond may go. */
  installed(node: SimNode, header: SnapshotHeader, rows: readonly SnapshotRow[], localKv: readonly KvRow[]): void;
  /** `node` kept its own ops `fromSeq..toSeq` beyond a snapshot it installed: they must reach every node. */
  keptBeyondSnapshot(node: SimNode, fromSeq: number, toSeq: number): void;
}

export interface ClockModel {
  /** Wall clock minus true time, ms. */
  offsetMs: number;
  /** Rate error: the node's clocks run (1 + drift) times true time. */
  drift: number;
}

export class SimNode {
  up = false;
  paused = false;
  /** Bumped at every crash: work scheduled before it never runs. */
  gen = 0;
  readonly backlog: Array<{ readonly kind: "timer" | "io"; readonly fn: () => void }> = [];
  disk!: SimDisk;
  election!: ElectionState;
  repl!: ReplState;
  hlc: Hlc = { wallMs: 0, logical: 0 };
  seq = 0;
  vv: VersionVector = {};
  private pending: Array<() => void> = [];
  private syncArmed = false;
  private flushArmed = false;
  private dueAt = Infinity;
  /** An own idempotent counter write is committed and not yet durable. */
  private idemWriteUnsynced: string | null = null;
  private readonly idemInflight = new Map<string, Array<(r: WriteReply) => void>>();
  private readonly waiters = new Map<number, (ok: boolean, reason: string) => void>();
  private nextWait = 1;
  readonly regionPeers: ReadonlySet<NodeId>;
  /** Over the whole run, across restarts: what compaction removed here. */
  compactedOps = 0;
  droppedTombstones = 0;
  foldedKv = 0;
  /** Over the whole run: snapshots this node streamed whole, and the ones it installed. */
  snapshotsStreamed = 0;
  readonly installRecords: InstallRecord[] = [];
  /** A crash hit this node inside an install; cleared by its next install. */
  crashedInInstall = false;
  /** The node lost its disk and has not restarted yet. */
  wiped = false;
  /** While the loop is held (World.block): what runs when it is released. */
  blockedDone: (() => void) | null = null;
  private snapshots!: SimSnapshots;

  constructor(
    readonly host: Host,
    readonly index: number,
    readonly member: MemberConfig,
    readonly members: readonly MemberConfig[],
    readonly settings: SimSettings,
    readonly clock: ClockModel,
  ) {
    this.regionPeers = new Set(members.filter((m) => m.region === member.region && m.node !== member.node).map((m) => m.node));
  }

  get id(): NodeId {
    return this.member.node;
  }

  get region(): string {
    return this.member.region;
  }

  get storage(): Storage {
    return this.disk.storage;
  }

  /** The node's wall clock (Date.now). */
  wall(): number {
    return Math.floor(WALL_EPOCH_MS + this.host.now * (1 + this.clock.drift) + this.clock.offsetMs);
  }

  /** The node's monotonic clock (performance.now): drifts, never jumps. */
  mono(): number {
    return this.host.now * (1 + this.clock.drift);
  }

  // ---- life -----------------------------------------------------------------

  /** Starts the process on `disk` (a fresh one, or what a crash left). */
  boot(disk: SimDisk): void {
    this.disk = disk;
    this.up = true;
    this.paused = false;
    this.pending = [];
    this.syncArmed = false;
    this.flushArmed = false;
    this.idemWriteUnsynced = null;
    this.dueAt = Infinity;
    this.idemInflight.clear();
    this.waiters.clear();
    this.wiped = false;
    this.blockedDone = null;
    const storage = disk.storage;
    if (storage.getMeta("nodeId") === undefined) {
      storage.setMeta("nodeId", this.id);
      disk.sync();
    }
    this.snapshots = new SimSnapshots(this);
    const meta = readNodeMeta(storage);
    this.hlc = meta.lastHlc;
    this.seq = Math.max(meta.lastSeq, vvGet(storage.opLogVv(), this.id));
    this.vv = storage.appliedVv();
    const s = this.settings;
    const regionMembers = this.members.filter((m) => m.region === this.region);
    const vote = meta.votedFor !== undefined && meta.votedFor.epoch <= meta.epoch ? meta.votedFor : null;
    this.election = initElection(
      { self: this.member, members: regionMembers, failover: "auto", preempt: false, heartbeatMs: s.heartbeatMs, electionTimeoutMs: s.electionTimeoutMs },
      { epoch: meta.epoch, vote },
      this.vv,
      this.mono(),
      this.host.random(),
    );
    const repl = initReplication(
      {
        self: this.member,
        members: this.members,
        heartbeatMs: s.heartbeatMs,
        electionTimeoutMs: s.electionTimeoutMs,
        maxClockSkewMs: s.maxClockSkewMs,
        ackWaitMs: s.writeWaitMs,
        sendWindowOps: s.sendWindowOps,
        frameOpsMax: s.frameOpsMax,
        stepOpsMax: s.stepOpsMax,
        memberForgetMs: s.memberForgetMs,
      },
      this.vv,
      this.mono(),
      this.wall(),
      storage.opLogFloor(),
    );
    this.repl = { ...repl, leadership: this.leadershipNow() };
    const electionLoop = (): void => {
      this.electionInput({ type: "tick" });
      this.host.later(this, s.heartbeatMs / 2, "timer", electionLoop);
    };
    const replLoop = (): void => {
      this.replInput({ type: "tick" });
      this.host.later(this, s.heartbeatMs, "timer", replLoop);
    };
    const compactLoop = (): void => {
      this.compactStep();
      this.host.later(this, s.compactEveryMs, "timer", compactLoop);
    };
    // Phased by node, not by the world's random stream: the schedules' other choices stay what they were without compaction.
    this.host.later(this, s.compactEveryMs * (1 + this.index / this.members.length), "timer", compactLoop);
    this.host.later(this, this.host.random() * (s.heartbeatMs / 2), "timer", electionLoop);
    this.host.later(this, this.host.random() * s.heartbeatMs, "timer", replLoop);
  }

  /** The process dies: what was not synced is gone, and so is everything in memory. */
  crash(): MemoryDisk {
    this.up = false;
    this.paused = false;
    this.gen++;
    this.backlog.length = 0;
    this.pending = [];
    this.blockedDone = null;
    return this.disk.crash();
  }

  // ---- what the rest of the node asks ------------------------------------------

  /** Takes client writes now: the active leader within its lease (ElectionDriver.isActiveLeader). */
  takesWrites(): boolean {
    return isActiveLeader(this.election) && holdsLease(this.election, this.mono());
  }

  /** The leader of this node's region as it believes (null: none). */
  leader(): NodeId | null {
    return replLeader(this.repl, this.region);
  }

  epoch(): number {
    return epochOf(this.election);
  }

  /**
   * The intro a peer gets when a link comes up: the node's committed state,
   * which for a real node (SQLite, synchronous=FULL) is its durable state.
   * The live store here also holds commits not yet synced; a peer that
   * counted those toward ack=region could acknowledge a write a crash loses.
   */
  intro(): { epoch: number; vv: VersionVector } {
    return { epoch: this.storage.getMeta("epoch") ?? 0, vv: this.disk.durableVv() };
  }

  private leadershipNow(): Leadership {
    return { active: this.takesWrites(), role: roleOf(this.election), leader: electionLeader(this.election), epoch: epochOf(this.election) };
  }

  // ---- the election driver ----------------------------------------------------

  electionInput(input: ElectionInput): string | undefined {
    const wasActive = isActiveLeader(this.election);
    const out = electionStep(this.election, input, this.mono(), this.host.random());
    if (out.persist) {
      // Durable before anything is sent (election-driver.ts).
      const meta: Record<string, unknown> = { epoch: out.persist.epoch };
      if (out.persist.vote) meta.votedFor = out.persist.vote;
      this.storage.commit({ meta });
      this.disk.sync();
    }
    this.election = out.state;
    this.host.monitor.electionStepped(this, wasActive, out);
    for (const { to, msg } of out.send) this.host.send(this, to, { t: "control", json: JSON.stringify(msg) });
    for (const e of out.events) {
      this.host.note(() => `${this.id} ${e.role} leader=${e.leader ?? "-"} epoch=${e.epoch}: ${e.reason}`);
    }
    if (out.events.length > 0) this.replInput({ type: "leadership", leadership: this.leadershipNow() });
    this.scheduleDue();
    return out.refused;
  }

  private scheduleDue(): void {
    const at = nextTimerMs(this.election);
    const now = this.mono();
    if (!Number.isFinite(at) || at <= now || at >= this.dueAt) return;
    this.dueAt = at;
    this.host.later(this, Math.ceil(at - now), "timer", () => {
      if (this.dueAt === at) this.dueAt = Infinity;
      this.electionInput({ type: "tick" });
    });
  }

  // ---- the replication driver -------------------------------------------------

  replInput(input: ReplInput): ReplOutput {
    const out = replStep(this.repl, input, this.mono(), this.wall());
    this.repl = out.state;
    const unsent = new Set<NodeId>();
    for (const { to, frame } of out.send) {
      if (unsent.has(to) && frame.t === "ops") continue;
      if (!this.sendRepl(to, frame) && frame.t === "ops") unsent.add(to);
    }
    for (const r of out.resolved) {
      const done = this.waiters.get(r.id);
      if (done === undefined) continue;
      this.waiters.delete(r.id);
      done(r.ok, r.ok ? "" : r.reason);
    }
    for (const c of out.close) this.host.closeLink(this, c.peer, c.reason);
    if (out.more) this.armFlush();
    for (const peer of unsent) this.replInput({ type: "unsent", peer });
    return out;
  }

  private sendRepl(to: NodeId, frame: ReplOutput["send"][number]["frame"]): boolean {
    if (frame.t === "snapshot") {
      this.snapshots.send(to, frame.id);
      return true;
    }
    if (frame.t !== "ops") return this.host.send(this, to, frame);
    const r = frame.range;
    const ops = this.storage.getOps(r.origin, r.fromSeq, r.toSeq, r.toSeq - r.fromSeq + 1);
    if (ops.length !== r.toSeq - r.fromSeq + 1) {
      throw new InvariantViolation(`${this.id} planned ops ${r.origin}:${r.fromSeq}..${r.toSeq} for ${to} but holds ${ops.length} of them`);
    }
    return this.host.send(this, to, { t: "ops", batch: frame.batch, fence: frame.fence, ops });
  }

  private armFlush(): void {
    if (this.flushArmed) return;
    this.flushArmed = true;
    this.host.later(this, 0.01, "io", () => {
      this.flushArmed = false;
      this.replInput({ type: "flush" });
    });
  }

  onLinkUp(peer: NodeId, intro: { epoch: number; vv: VersionVector }): void {
    this.replInput({ type: "link_up", peer, vv: intro.vv, epoch: intro.epoch });
  }

  onLinkDown(peer: NodeId, reason: string): void {
    this.replInput({ type: "link_down", peer, reason });
  }

  onFrame(from: SimNode, f: PeerFrame): void {
    switch (f.t) {
      case "control": {
        if (!this.regionPeers.has(from.id)) throw new InvariantViolation(`${this.id} got an election message from ${from.id} of another region`);
        const parsed = parseElectionMsg(JSON.parse(f.json));
        if (!parsed.ok) throw new InvariantViolation(`${from.id} sent an election message that does not parse: ${parsed.error}`);
        if (parsed.msg.from !== from.id) throw new InvariantViolation(`${from.id} sent an election message claiming to be from ${parsed.msg.from}`);
        this.electionInput({ type: "message", msg: parsed.msg });
        return;
      }
      case "ops": {
        const known = knownEpochOf(this.repl, from.region);
        const out = this.replInput({ type: "frame", peer: from.id, frame: { t: "ops", batch: f.batch, fence: f.fence, highest: highestSeqs(f.ops) } });
        this.host.monitor.batchJudged(this, from, f.fence, known, out.batch);
        if (out.batch !== "apply") return;
        const outcome = this.applyAndCommit(f.ops);
        const batch = f.batch;
        this.afterSync(() => {
          this.replInput({ type: "applied", peer: from.id, batch });
          this.armFlush();
        });
        void outcome;
        return;
      }
      case "snap-begin":
      case "snap-rows":
      case "snap-end":
        this.snapshots.onFrame(from.id, f);
        return;
      default:
        this.replInput({ type: "frame", peer: from.id, frame: f });
    }
  }

  // ---- what the snapshot driver asks (snapshots.ts) ---------------------------------

  /** No commit of this node is in flight: every one is durable and its callbacks ran (ApplyDriver.install's quiesce). */
  quiet(): boolean {
    return this.pending.length === 0 && !this.syncArmed;
  }

  /** Runs `fn` at a moment when everything written so far is durable (what a real node's committed state is). */
  whenDurable(fn: () => void): void {
    if (this.disk.unsynced() === 0) fn();
    else this.afterSync(() => this.whenDurable(fn));
  }

  /** ApplyDriver.install: the install raised the vector, seq and clock in the store; take them again. */
  refreshAfterInstall(): void {
    const meta = readNodeMeta(this.storage);
    this.vv = this.storage.appliedVv();
    this.seq = Math.max(this.seq, meta.lastSeq, vvGet(this.vv, this.id));
    if (compareHlc(meta.lastHlc, this.hlc) > 0) this.hlc = meta.lastHlc;
  }

  // ---- the compactor (src/node/compactor.ts) ----------------------------------------

  /** One compaction step, as the node's Compactor runs it: frontier, plan, remove, tell the machine. */
  private compactStep(): void {
    const storage = this.storage;
    const persisted = storage.getMeta("stableVv") ?? {};
    const stable = stableVvOf(this.repl, persisted);
    const target = planCompactionStep({
      logOps: storage.opLogStats().ops,
      retainOps: this.settings.opLogRetainOps,
      stable,
      floor: storage.opLogFloor(),
      logVv: this.vv,
      maxOps: this.settings.compactStepOps,
    });
    if (target !== null) {
      const grown = mergeVv(persisted, stable);
      if (!vvEquals(grown, persisted)) storage.setMeta("stableVv", grown);
      this.host.monitor.compacting(this, target);
      const n = storage.compactOps(target);
      this.compactedOps += n;
      this.host.note(() => `${this.id} compacts ${n} ops up to ${JSON.stringify(target)}`);
      this.replInput({ type: "compacted", floor: storage.opLogFloor() });
    }
    // The tombstone rules, as Compactor.sweepTombstones (one page: the simulator's keys are few).
    const floor = storage.opLogFloor();
    if (Object.keys(floor).length === 0) return;
    const kept = storage.getMeta("tombstoneHorizon") ?? null;
    const plan = planTombstoneSweep(kept, tombstoneHorizonOf(this.repl), floor);
    if (plan.sweep !== null) {
      const covered = plan.sweep;
      storage.setMeta("sweptVv", mergeVv(storage.getMeta("sweptVv") ?? {}, covered));
      const rows = storage.listTombstones("", 10_000).filter((r) => tombstoneDroppable(r.reg, covered));
      const n = storage.dropTombstones(rows);
      this.droppedTombstones += n;
      if (n > 0) this.host.note(() => `${this.id} drops ${n} tombstones under ${JSON.stringify(covered)}`);
    }
    if (JSON.stringify(plan.next) !== JSON.stringify(kept)) storage.setMeta("tombstoneHorizon", plan.next);
    // Folding, as Compactor.foldStable (one page, every step: the simulator's keys are few).
    const swept = storage.getMeta("sweptVv") ?? {};
    if (Object.keys(swept).length > 0) {
      const folds = storage.listKv({ limit: 10_000, includeDeleted: true }).flatMap((r) => {
        const to = foldStableKv(r.reg, swept);
        return to === null ? [] : [{ key: r.key, from: r.reg, to }];
      });
      const n = storage.foldKv(folds);
      this.foldedKv += n;
      if (n > 0) this.host.note(() => `${this.id} folds ${n} kv rows under ${JSON.stringify(swept)}`);
    }
  }

  // ---- the apply driver ----------------------------------------------------------

  private view(): ApplyView {
    const storage = this.storage;
    return {
      self: this.id,
      vv: this.vv,
      hlc: this.hlc,
      seq: this.seq,
      state: (ns, key) => loadState(storage, ns, key),
      idempotencyRecord: (key) => storage.getIdempotency(key),
      idempotencyKeyHeld: (key) => this.idemInflight.has(key),
    };
  }

  /** Runs the core apply path and commits its outcome (not yet durable: see afterSync). */
  private applyAndCommit(ops: readonly Op[]): ApplyOutcome {
    const outcome = applyOps(this.view(), ops);
    this.commitOutcome(outcome, true);
    return outcome;
  }

  private commitOutcome(outcome: ApplyOutcome, fromPeer: boolean): void {
    if (outcome.ops.length === 0) return;
    this.host.monitor.applying(this, outcome, this.hlc, fromPeer);
    this.storage.commit(batchOf(outcome));
    this.vv = outcome.vv;
    this.hlc = outcome.hlc;
    this.seq = outcome.seq;
    const ops = outcome.ops;
    const keyed = ops.find((op) => op.origin === this.id && op.ns === "counters" && op.idem !== undefined);
    if (keyed?.idem !== undefined) this.idemWriteUnsynced = keyed.idem.key;
    if (ops.some((op) => op.origin === this.id)) this.host.maybePauseAfterWrite(this);
    // Streamed and counted only once durable, as the node's onCommitted.
    this.afterSync(() => this.replInput({ type: "committed", vv: highestSeqs(ops) }));
  }

  /** Runs `fn` once everything committed so far is durable (the group commit's fsync). */
  private afterSync(fn: () => void): void {
    this.pending.push(fn);
    if (this.syncArmed) return;
    this.syncArmed = true;
    this.host.later(this, this.host.fsyncDelayMs(), "io", () => {
      this.syncArmed = false;
      this.disk.sync();
      const keyed = this.idemWriteUnsynced;
      if (keyed !== null) {
        this.idemWriteUnsynced = null;
        if (this.host.maybeCrashAfterWrite(this, keyed)) return;
      }
      const due = this.pending;
      this.pending = [];
      for (const f of due) f();
      this.electionInput({ type: "local_vv", vv: this.vv });
    });
  }

  // ---- client writes (the HTTP layer's routing, idempotent-writes.ts, write-path.ts) ----

  /** A client write arriving at this node. */
  write(req: WriteRequest, reply: (r: WriteReply) => void): void {
    const idem = req.idem;
    // A node that knows the key answers a retry itself (http/forward.ts); otherwise only the leader takes writes.
    if (idem !== null && (this.idemInflight.has(idem.key) || this.storage.getIdempotency(idem.key) !== undefined)) {
      this.idempotent(req, idem, reply);
      return;
    }
    if (!this.takesWrites()) {
      reply({ kind: "refused", code: "no_leader", leader: this.leader() });
      return;
    }
    if (idem === null) this.writeOnce(req, reply);
    else this.idempotent(req, idem, reply);
  }

  private idempotent(req: WriteRequest, idem: { key: string; requestHash: string }, reply: (r: WriteReply) => void): void {
    const inflight = this.idemInflight.get(idem.key);
    const start = startIdempotent(idem, inflight !== undefined, this.storage.getIdempotency(idem.key));
    switch (start.kind) {
      case "refuse":
        reply({ kind: "refused", code: "bad_request", leader: null });
        return;
      case "await_first":
        (inflight as Array<(r: WriteReply) => void>).push((first) => {
          const stored = this.storage.getIdempotency(idem.key);
          if (stored === undefined) return reply(first);
          const r = replayOf(stored, idem.requestHash);
          reply(isIdempotencyMismatch(r) ? { kind: "refused", code: "mismatch", leader: null } : { kind: "ok", token: r.token, body: r.body, replayed: true });
        });
        return;
      case "replay":
        this.replay(start.record, req, idem.requestHash, reply);
        return;
      case "first": {
        // Held from the end of the write's synchronous part, as IdempotentWrites.run holds it once
        // write() returns its promise: the apply itself must still see the key free, to record its answer.
        const waiting: Array<(r: WriteReply) => void> = [];
        let answered = false;
        this.writeOnce(req, (r) => {
          answered = true;
          if (this.idemInflight.get(idem.key) === waiting) this.idemInflight.delete(idem.key);
          reply(r);
          for (const w of waiting) w(r);
        });
        if (!answered) this.idemInflight.set(idem.key, waiting);
        return;
      }
    }
  }

  private replay(rec: IdempotencyRecord, req: WriteRequest, requestHash: string, reply: (r: WriteReply) => void): void {
    const r = replayOf(rec, requestHash);
    if (isIdempotencyMismatch(r)) return reply({ kind: "refused", code: "mismatch", leader: null });
    const answer: WriteReply = { kind: "ok", token: r.token, body: r.body, replayed: true };
    if (r.dot === null) return reply(answer);
    this.ackGate(r.dot.origin as NodeId, r.dot.seq, req.ack, (ok, reason) => reply(ok ? answer : { kind: "unacked", reason }));
  }

  private writeOnce(req: WriteRequest, reply: (r: WriteReply) => void): void {
    if (!this.takesWrites()) return reply({ kind: "refused", code: "no_leader", leader: this.leader() });
    if (refusesWritesForClock(this.repl, this.mono(), this.wall())) return reply({ kind: "refused", code: "clock_skew", leader: null });
    const hlc = tick(this.hlc, this.wall());
    const state = loadState(this.storage, req.ns, req.key);
    const swept = req.ns === "kv" ? { swept: this.storage.getMeta("sweptVv") ?? {} } : {};
    const built = buildOp(req.ns, state as never, req.key, req.intent as never, { origin: this.id, seq: this.seq + 1, hlc, ...swept });
    if (isBuildRefusal(built)) return reply({ kind: "refused", code: "bad_request", leader: null });
    const op: Op = req.idem === null ? built : { ...built, idem: req.idem };
    this.host.monitor.writeTaken(this, this.epoch(), op);
    const outcome = applyOps(this.view(), [op]);
    if (outcome.ops[0] !== op) throw new InvariantViolation(`${this.id}: own op ${tokenOf(op)} was not applied`);
    if (req.idem !== null && !outcome.idempotency.some((r) => r.key === req.idem?.key)) {
      throw new InvariantViolation(`${this.id}: own op ${tokenOf(op)} recorded no answer for its Idempotency-Key`);
    }
    this.commitOutcome(outcome, false);
    const after = outcome.changes.find((c) => c.ns === op.ns && c.key === op.key)?.state;
    if (after === undefined) throw new InvariantViolation(`${this.id}: own op ${tokenOf(op)} changed no state`);
    const body = answerOf(op, after);
    this.afterSync(() => {
      this.ackGate(this.id, op.seq, req.ack, (ok, reason) => {
        if (ok && req.ack !== "local") this.host.monitor.regionAcked(this, this.id, op.seq);
        reply(ok ? { kind: "ok", token: tokenOf(op), body, replayed: false } : { kind: "unacked", reason });
      });
    });
  }

  /** Replicator.awaitAck: at once for ack=local or when already acked, else a wait in the machine. */
  private ackGate(origin: NodeId, seq: number, level: AckLevel, done: (ok: boolean, reason: string) => void): void {
    if (level === "local" || isAcked(this.repl, origin, seq, level)) return done(true, "");
    const id = this.nextWait++;
    this.waiters.set(id, done);
    this.replInput({ type: "await", id, origin, seq, level });
  }
}
