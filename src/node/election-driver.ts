// Runs the pure election machine (src/core/election) with real time: ticks
// it, feeds it control frames from region peers and the node's growing
// version vector, and carries out its outputs in the order that makes them
// safe: epoch and vote durable first, then the messages, then the role
// events (one log line per change, with its reason, and the metrics).

import type { Logger } from "pino";
import type { MemberConfig } from "../core/cluster-view.js";
import {
  epochOf,
  fencingToken,
  initElection,
  holdsLease,
  isActiveLeader,
  leaderOf,
  nextTimerMs,
  parseElectionMsg,
  phaseOf,
  roleOf,
  step,
  type ElectionInput,
  type ElectionState,
  type RoleEvent,
} from "../core/election.js";
import { formatFencingToken } from "../core/fence.js";
import type { NodeId } from "../core/ids.js";
import type { VersionVector } from "../core/version-vector.js";
import type { NodeMetrics } from "./metrics.js";
import type { Hub } from "../net/hub.js";
import type { Storage } from "../storage/port.js";

export interface ElectionDriverOptions {
  readonly self: MemberConfig;
  /** This region's members, this node included. */
  readonly members: readonly MemberConfig[];
  readonly failover: "auto" | "manual";
  readonly preempt: boolean;
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  readonly storage: Storage;
  readonly hub: Hub;
  readonly logger: Logger;
  readonly metrics: NodeMetrics;
  /** Called after every step whose role, leader or epoch changed. */
  readonly onChange: (e: RoleEvent) => void;
  /** Monotonic milliseconds (performance.now by default). */
  readonly now?: () => number;
  readonly random?: () => number;
}

/** The election of one node, driven by real timers. */
export class ElectionDriver {
  private state: ElectionState;
  private readonly o: ElectionDriverOptions;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly regionPeers: Set<string>;
  private timer: NodeJS.Timeout | undefined;
  /** A one-shot tick at the machine's next due timer, and when it fires. */
  private dueTimer: { handle: NodeJS.Timeout; atMs: number } | undefined;
  private stopped = false;

  constructor(o: ElectionDriverOptions) {
    this.o = o;
    this.now = o.now ?? (() => performance.now());
    this.random = o.random ?? Math.random;
    this.regionPeers = new Set(o.members.filter((m) => m.node !== o.self.node).map((m) => m.node));
    const epoch = o.storage.getMeta("epoch") ?? 0;
    const vote = o.storage.getMeta("votedFor") ?? null;
    this.state = initElection(
      { self: o.self, members: o.members, failover: o.failover, preempt: o.preempt, heartbeatMs: o.heartbeatMs, electionTimeoutMs: o.electionTimeoutMs },
      { epoch, vote: vote && vote.epoch <= epoch ? vote : null },
      o.storage.appliedVv(),
      this.now(),
      this.random(),
    );
    o.metrics.epoch.set(epoch);
  }

  /** Starts ticking at half the heartbeat period (the machine's recommendation). */
  start(): void {
    this.timer = setInterval(() => this.input({ type: "tick" }), Math.max(5, Math.floor(this.o.heartbeatMs / 2)));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.dueTimer) clearTimeout(this.dueTimer.handle);
  }

  /** A control frame from `peer`: parsed, checked to come from that peer, then stepped. */
  onControl(peer: NodeId, json: string): void {
    if (!this.regionPeers.has(peer)) return; // other regions never vote here
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch {
      this.o.logger.warn({ peer }, "election message is not JSON; dropped");
      return;
    }
    const parsed = parseElectionMsg(raw);
    if (!parsed.ok) {
      this.o.logger.warn({ peer, error: parsed.error }, "bad election message; dropped");
      return;
    }
    if (parsed.msg.from !== peer) {
      this.o.logger.warn({ peer, claimed: parsed.msg.from }, "election message claims another sender; dropped");
      return;
    }
    this.input({ type: "message", msg: parsed.msg });
  }

  /** The node's vector grew (commits): a pending leader may now be caught up. */
  onLocalVv(vv: VersionVector): void {
    this.input({ type: "local_vv", vv });
  }

  /** The replicator measured this node's clock as (no longer) skewed: the machine steps down or stands again. */
  onClockSkew(skewed: boolean): void {
    this.input({ type: "clock", skewed });
  }

  /** Operator stepdown; returns the refusal reason, or null when it stepped down. */
  stepdown(): string | null {
    return this.input({ type: "stepdown" }) ?? null;
  }

  /** Operator promote (manual failover); returns the refusal reason, or null when it proclaimed. */
  promote(bestReachableVv: VersionVector): string | null {
    return this.input({ type: "promote", bestReachableVv }) ?? null;
  }

  leader(): NodeId | null {
    return leaderOf(this.state);
  }
  /** Takes writes now: the active leader within its lease on the real clock (see holdsLease). */
  isActiveLeader(): boolean {
    return isActiveLeader(this.state) && holdsLease(this.state, this.now());
  }
  role(): "leader" | "follower" | "candidate" {
    return roleOf(this.state);
  }
  phase(): string {
    return phaseOf(this.state);
  }
  epoch(): number {
    return epochOf(this.state);
  }
  fencingToken(): string {
    return formatFencingToken(fencingToken(this.o.self.region, this.state));
  }

  private input(input: ElectionInput): string | undefined {
    const out = step(this.state, input, this.now(), this.random());
    if (out.persist) {
      // Durable before anything is sent: a vote or epoch that a peer has seen
      // must survive a crash, or a restarted node could vote twice.
      const meta: Record<string, unknown> = { epoch: out.persist.epoch };
      if (out.persist.vote) meta.votedFor = out.persist.vote;
      this.o.storage.commit({ meta });
      this.o.metrics.epoch.set(out.persist.epoch);
    }
    this.state = out.state;
    for (const { to, msg } of out.send) this.o.hub.send(to, { t: "control", json: JSON.stringify(msg) });
    for (const e of out.events) {
      if (e.role === "candidate" && e.leader === null) this.o.metrics.elections.inc();
      this.o.metrics.leaderChanges.inc();
      this.o.logger.info({ role: e.role, leader: e.leader, epoch: e.epoch, reason: e.reason }, `role ${e.role} (leader ${e.leader ?? "none"}, epoch ${e.epoch}): ${e.reason}`);
      this.o.onChange(e);
    }
    this.scheduleDue();
    return out.refused;
  }

  /**
   * Besides the periodic tick, one tick exactly when the machine's next timer
   * is due, so a suspicion or a deadline fires on time rather than up to half
   * a heartbeat late (that lateness is failover time).
   */
  private scheduleDue(): void {
    if (this.stopped || this.timer === undefined) return;
    const atMs = nextTimerMs(this.state);
    const delayMs = Math.ceil(atMs - this.now());
    // Overdue or waiting on a condition (a preemption whose leader went
    // quiet): the periodic tick covers it; a zero delay could spin.
    if (!Number.isFinite(atMs) || delayMs <= 0 || (this.dueTimer !== undefined && this.dueTimer.atMs <= atMs)) return;
    if (this.dueTimer) clearTimeout(this.dueTimer.handle);
    const handle = setTimeout(() => {
      this.dueTimer = undefined;
      this.input({ type: "tick" });
    }, delayMs);
    handle.unref();
    this.dueTimer = { handle, atMs };
  }
}
