// A deterministic cluster of one region: N copies of the real election
// machine (src/core/election.ts) on a virtual clock, talking through the
// virtual network as JSON (parsed with the real wire parser), with crashes
// (durable epoch, vote and version vector survive; the rest is lost),
// restarts and process stalls (the node runs nothing; what arrives waits in
// its socket buffer). A small model of replication rides along so the
// version-vector rule can be checked: the active leader writes, heartbeats
// carry its vector to the followers that accept them, and acceptors push
// theirs to the coordinator they accept (a separate transfer that the network
// may lose or delay, so a coordinator may wait to catch up). An observer
// stands for the other regions (outside.ts): every running node pings it, and
// it keeps this region's fence with the real core rule.

import type { MemberConfig } from "../../src/core/cluster-view.js";
import { compareRank, majority } from "../../src/core/cluster-view.js";
import {
  epochOf,
  initElection,
  isActiveLeader,
  leaderOf,
  parseElectionMsg,
  phaseOf,
  roleOf,
  step,
  type Durable,
  type ElectionConfig,
  type ElectionInput,
  type ElectionMsg,
  type ElectionState,
} from "../../src/core/election.js";
import { asNodeId, asRegionId, type NodeId } from "../../src/core/ids.js";
import { mergeVv, vvEquals, vvGet, vvWith, type VersionVector } from "../../src/core/version-vector.js";
import { SafetyRecord, InvariantViolation } from "./invariants.js";
import { Network, mulberry32, type InFlight, type LinkQuality } from "./network.js";
import { OutsideObserver } from "./outside.js";

export interface SimConfig {
  readonly priorities: readonly number[];
  readonly failover: "auto" | "manual";
  readonly preempt: boolean;
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  /** How often the simulated runtime ticks each node. */
  readonly tickMs: number;
  readonly seed: number;
  /** Chance that an active leader writes one op on a tick. */
  readonly writeRate: number;
  readonly quality: LinkQuality;
}

type Payload =
  /** An election message as JSON; a heartbeat carries the leader's vector (the op stream rides with it). */
  | { readonly kind: "election"; readonly json: string; readonly repl: VersionVector | null }
  /** An acceptor pushing its ops to the coordinator it accepted: a separate transfer, lost or late on its own. */
  | { readonly kind: "push"; readonly epoch: number; readonly vv: VersionVector };

export interface SimNode {
  readonly index: number;
  readonly id: NodeId;
  readonly cfg: ElectionConfig;
  /** null while crashed. */
  state: ElectionState | null;
  durable: Durable;
  vv: VersionVector;
  stalledUntil: number | null;
  inbox: InFlight<Payload>[];
  nextTickAt: number;
  /** Last restart or wake from a stall. */
  awakeSince: number;
  /** When it last became an active leader (-Infinity: never); its lease runs from then at the earliest. */
  tookOfficeAt: number;
  /**
   * Latest arrival, in a stalled peer's socket buffer, of a message from this
   * node that the peer then read on waking (-Infinity: none). The peer
   * answers it late, so a round sent while cut off can still come back
   * confirmed over a link that is open one way.
   */
  bufferedReadAt: number;
  /** Its link to the other regions; no fault cuts it yet. */
  outsideLinkUp: boolean;
  /** When its runtime pings the other regions next. */
  nextPingAt: number;
  /** Set from a stall's start to the first tick after its wake when the stall guard can be checked. */
  stallGuard: StallGuard | null;
}

interface StallGuard {
  readonly leader: NodeId;
  readonly epoch: number;
  readonly since: number;
  readonly topologyVersion: number;
}

/** Bound on what a stalled node's socket buffer holds. */
const INBOX_MAX = 5000;
/** Bound on trace lines kept for a failure report. */
const TRACE_LINES = 150;

export const REGION = asRegionId("sim");

export class ClusterSim {
  now = 0;
  readonly nodes: SimNode[];
  readonly net: Network<Payload>;
  readonly safety: SafetyRecord;
  readonly outside = new OutsideObserver();
  readonly rng: () => number;
  /** Called after every step of any node (scenario monitors). */
  onStep: ((node: SimNode) => void) | null = null;
  private readonly cutOffSince: Array<number | null>;
  /** Bumped by every change of links, link quality or running nodes. */
  private topologyVersion = 0;
  /** Members reachable at some point since cutOffSince (the node itself included). */
  private readonly cutOffWith: Array<Set<number>>;
  private readonly trace: Array<() => string> = [];
  readonly leaseBoundMs: number;

  constructor(readonly cfg: SimConfig) {
    this.rng = mulberry32(cfg.seed);
    this.net = new Network(this.rng, cfg.quality);
    const members: MemberConfig[] = cfg.priorities.map((priority, i) => ({ node: asNodeId(`n${i + 1}`), region: REGION, priority }));
    this.safety = new SafetyRecord(members.length);
    this.cutOffSince = members.map(() => null);
    this.cutOffWith = members.map(() => new Set<number>());
    // A leader cut off from the majority stops within one election timeout of
    // its last confirmed round, give or take the tick that notices.
    this.leaseBoundMs = cfg.electionTimeoutMs + 2 * cfg.tickMs;
    this.nodes = members.map((self, index) => {
      const ecfg: ElectionConfig = {
        self,
        members,
        failover: cfg.failover,
        preempt: cfg.preempt,
        heartbeatMs: cfg.heartbeatMs,
        electionTimeoutMs: cfg.electionTimeoutMs,
      };
      const durable: Durable = { epoch: 0, vote: null };
      const node: SimNode = {
        index,
        id: self.node,
        cfg: ecfg,
        state: initElection(ecfg, durable, {}, 0, this.rng()),
        durable,
        vv: {},
        stalledUntil: null,
        inbox: [],
        nextTickAt: Math.floor(this.rng() * cfg.tickMs),
        awakeSince: 0,
        tookOfficeAt: -Infinity,
        bufferedReadAt: -Infinity,
        outsideLinkUp: true,
        nextPingAt: 0,
        stallGuard: null,
      };
      return node;
    });
  }

  get size(): number {
    return this.nodes.length;
  }

  /** Runs every delivery, wake and tick due up to `untilMs`, in time order (ties: wake, delivery, tick; then by index). */
  runUntil(untilMs: number): void {
    if (untilMs < this.now) throw new Error(`sim: time would go back from ${this.now} to ${untilMs}`);
    for (;;) {
      let at = this.net.nextAt();
      let kind: "deliver" | "wake" | "tick" = "deliver";
      let who = -1;
      for (const n of this.nodes) {
        if (n.state === null) continue;
        if (n.stalledUntil !== null) {
          if (n.stalledUntil < at || (n.stalledUntil === at && kind !== "wake")) [at, kind, who] = [n.stalledUntil, "wake", n.index];
        } else if (n.nextTickAt < at) {
          [at, kind, who] = [n.nextTickAt, "tick", n.index];
        }
      }
      if (at > untilMs) break;
      this.now = at;
      if (kind === "deliver") this.deliver(this.net.pop());
      else if (kind === "wake") this.wake(this.nodes[who] as SimNode);
      else this.tick(this.nodes[who] as SimNode);
    }
    this.now = untilMs;
  }

  // ---- faults and operator actions -------------------------------------

  crash(i: number): void {
    const n = this.node(i);
    if (n.state === null) return;
    n.state = null;
    n.stalledUntil = null;
    n.stallGuard = null;
    n.inbox = [];
    this.note(() => `crash ${n.id}`);
    this.refreshConnectivity();
  }

  restart(i: number): void {
    const n = this.node(i);
    if (n.state !== null) return;
    // A restart keeps what is on disk (epoch, vote, ops and so the vv) and loses the rest.
    n.state = initElection(n.cfg, n.durable, n.vv, this.now, this.rng());
    n.nextTickAt = this.now + this.cfg.tickMs;
    n.awakeSince = this.now;
    this.safety.afterStep(this.now, n.id, false, n.state, null, n.durable, n.vv);
    const epoch = n.durable.epoch;
    this.note(() => `restart ${n.id} at epoch ${epoch}`);
    this.refreshConnectivity();
  }

  stall(i: number, ms: number): void {
    const n = this.node(i);
    if (n.state === null) return;
    const first = n.stalledUntil === null;
    n.stalledUntil = Math.max(n.stalledUntil ?? 0, this.now + ms);
    this.note(() => `stall ${n.id} for ${ms} ms`);
    this.refreshConnectivity();
    if (first) n.stallGuard = this.stallGuardFor(n);
  }

  /**
   * The stall guard is checkable when the node follows an active leader that
   * is running (not itself stalled: that silence is real) over clean, fast
   * links in both directions, and may not preempt it: then, if nothing changes
   * while it sleeps, it must still follow that leader when it wakes.
   */
  private stallGuardFor(n: SimNode): StallGuard | null {
    const s = n.state as ElectionState;
    const leaderId = leaderOf(s);
    const leader = this.nodes.find((x) => x.id === leaderId);
    const q = this.net.quality;
    if (leader === undefined || leader === n || !this.running(leader) || !isActiveLeader(leader.state as ElectionState)) return null;
    if (this.cfg.preempt && compareRank(n.cfg.self, leader.cfg.self) < 0) return null;
    if (epochOf(leader.state as ElectionState) !== epochOf(s) || q.dropRate > 0 || q.maxDelayMs > 60) return null;
    if (this.net.isBlocked(n.index, leader.index) || this.net.isBlocked(leader.index, n.index)) return null;
    return { leader: leader.id, epoch: epochOf(s), since: this.now, topologyVersion: this.topologyVersion };
  }

  wakeAll(): void {
    for (const n of this.nodes) if (n.stalledUntil !== null) this.wake(n);
  }

  partition(groupOf: readonly number[]): void {
    this.net.partition(groupOf.slice(0, this.size));
    this.note(() => `partition ${groupOf.slice(0, this.size).join(",")}`);
    this.refreshConnectivity();
  }

  /** Cuts node i off from every other member, both ways; its link to the other regions stays up. */
  isolate(i: number): void {
    const n = this.node(i);
    for (const m of this.nodes) {
      if (m === n) continue;
      this.net.block(n.index, m.index);
      this.net.block(m.index, n.index);
    }
    this.note(() => `isolate ${n.id}`);
    this.refreshConnectivity();
  }

  oneWay(from: number, to: number): void {
    if (from === to) return;
    this.net.block(from, to);
    this.note(() => `cut ${this.node(from).id} -> ${this.node(to).id}`);
    this.refreshConnectivity();
  }

  heal(quality: LinkQuality): void {
    this.net.heal();
    this.net.quality = quality;
    this.note(() => "heal");
    this.refreshConnectivity();
  }

  setQuality(quality: LinkQuality): void {
    this.net.quality = quality;
    this.topologyVersion++;
    this.note(() => `links ${JSON.stringify(quality)}`);
  }

  /** Operator stepdown at node i; returns the refusal, if any. */
  stepdown(i: number): string | undefined {
    const n = this.node(i);
    if (n.state === null || n.stalledUntil !== null) return "node not running";
    const refused = this.apply(n, { type: "stepdown" });
    this.note(() => `stepdown ${n.id}: ${refused ?? "accepted"}`);
    return refused;
  }

  /** Node i's clock became (or stopped being) skewed from its peers', as its replication measured. */
  clock(i: number, skewed: boolean): void {
    const n = this.node(i);
    if (n.state === null || n.stalledUntil !== null) return;
    this.apply(n, { type: "clock", skewed });
    this.note(() => `clock ${n.id}: ${skewed ? "skewed" : "good"}`);
  }

  /**
   * Operator promote at node i with the merge of the reachable members'
   * vectors. With `sync`, the runtime first pulls what it lacks from them.
   */
  promote(i: number, sync: boolean): string | undefined {
    const n = this.node(i);
    if (n.state === null || n.stalledUntil !== null) return "node not running";
    let best = n.vv;
    for (const m of this.nodes) {
      if (m !== n && this.running(m) && !this.net.isBlocked(n.index, m.index) && !this.net.isBlocked(m.index, n.index)) best = mergeVv(best, m.vv);
    }
    if (sync) this.grow(n, best);
    const refused = this.apply(n, { type: "promote", bestReachableVv: best });
    this.note(() => `promote ${n.id}: ${refused ?? "accepted"}`);
    return refused;
  }

  // ---- views ------------------------------------------------------------

  node(i: number): SimNode {
    const n = this.nodes[i];
    if (n === undefined) throw new Error(`sim: no node ${i}`);
    return n;
  }

  running(n: SimNode): boolean {
    return n.state !== null && n.stalledUntil === null;
  }

  /** Nodes that are active leaders right now (crashed nodes are not). */
  activeLeaders(): SimNode[] {
    return this.nodes.filter((n) => n.state !== null && isActiveLeader(n.state));
  }

  /** True while some node runs a candidacy that may still end in office (a pre-vote or a pending coordinator). */
  anyPending(): boolean {
    return this.nodes.some((n) => n.state !== null && isPendingPhase(phaseOf(n.state)));
  }

  /** The last trace lines, oldest first: faults, role changes, messages. */
  formatTrace(): string {
    return this.trace.map((f) => f()).join("\n");
  }

  note(line: () => string): void {
    const at = this.now;
    this.trace.push(() => `${String(at).padStart(6)} ms  ${line()}`);
    if (this.trace.length > TRACE_LINES) this.trace.shift();
  }

  // ---- mechanics --------------------------------------------------------

  private deliver(m: InFlight<Payload>): void {
    const n = this.node(m.to);
    if (n.state === null) return; // crashed: lost
    if (this.net.isBlocked(m.from, m.to)) return; // cut while in flight
    if (n.stalledUntil !== null) {
      if (n.inbox.length < INBOX_MAX) n.inbox.push(m);
      return;
    }
    this.receive(n, m);
  }

  private receive(n: SimNode, m: InFlight<Payload>): void {
    const p = m.payload;
    if (p.kind === "push") {
      // The coordinator takes the acceptor's ops while it holds that epoch (pending or in office).
      const s = n.state as ElectionState;
      const mine = epochOf(s) === p.epoch && (phaseOf(s) === "leader_pending" || isActiveLeader(s));
      if (mine) this.grow(n, p.vv);
      return;
    }
    const parsed = parseElectionMsg(JSON.parse(p.json));
    if (!parsed.ok) throw new InvariantViolation(`${n.id}: a machine sent an unparseable message: ${parsed.error}`);
    const msg = parsed.msg;
    const state = n.state as ElectionState;
    if (msg.type === "heartbeat_ack" && isActiveLeader(state) && epochOf(state) === msg.epoch) {
      this.safety.onAck(n.id, msg.epoch, msg.from, msg.vv, n.vv);
    }
    // Routine heartbeats would crowd everything else out of the trace.
    if (msg.type !== "heartbeat" && msg.type !== "heartbeat_ack") this.note(() => `${msg.from} -> ${n.id} ${describe(msg)}`);
    this.apply(n, { type: "message", msg });
    const after = n.state as ElectionState;
    // The op stream is fenced like the heartbeat it rides with: applied only by
    // a follower of the sender in the sender's epoch.
    if (p.repl !== null && msg.type === "heartbeat" && leaderOf(after) === msg.from && epochOf(after) === msg.epoch) this.grow(n, p.repl);
  }

  /** Applies ops up to `vv` and tells the machine. */
  private grow(n: SimNode, vv: VersionVector): void {
    const merged = mergeVv(n.vv, vv);
    if (vvEquals(merged, n.vv)) return;
    n.vv = merged;
    this.apply(n, { type: "local_vv", vv: merged });
  }

  private tick(n: SimNode): void {
    n.nextTickAt += this.cfg.tickMs;
    this.apply(n, { type: "tick" });
    this.checkStallGuard(n);
    const s = n.state as ElectionState;
    if (isActiveLeader(s) && this.rng() < this.cfg.writeRate) {
      n.vv = vvWith(n.vv, n.id, vvGet(n.vv, n.id) + 1);
      this.apply(n, { type: "local_vv", vv: n.vv });
    }
    this.pingOutside(n);
  }

  /**
   * The runtime's ping to the other regions, every heartbeatMs on the same
   * event loop as its ticks (so a stalled node sends none). Delivered at once:
   * a delay would only change when the other regions learn, not what.
   */
  private pingOutside(n: SimNode): void {
    if (!n.outsideLinkUp || this.now < n.nextPingAt) return;
    n.nextPingAt = this.now + this.cfg.heartbeatMs;
    const s = n.state as ElectionState;
    this.outside.ping(this.now, n.id, roleOf(s), epochOf(s));
  }

  private wake(n: SimNode): void {
    const guard = n.stallGuard;
    const unchanged = this.topologyVersion === guard?.topologyVersion;
    n.stalledUntil = null;
    n.stallGuard = null;
    n.awakeSince = this.now;
    this.note(() => `wake ${n.id}`);
    this.refreshConnectivity();
    // Node's event loop runs overdue timers before it reads sockets: the tick
    // comes first, then what arrived during the stall.
    n.nextTickAt = this.now;
    this.tick(n);
    const inbox = n.inbox;
    n.inbox = [];
    for (const m of inbox) {
      const sender = this.node(m.from);
      sender.bufferedReadAt = Math.max(sender.bufferedReadAt, m.at);
      this.receive(n, m);
    }
    // Checked at the next tick, once the node had a chance to read its buffer.
    if (guard !== null && unchanged) n.stallGuard = { ...guard, topologyVersion: this.topologyVersion };
  }

  /**
   * Stall guard, checked at the first tick after a wake: if nothing changed
   * while it slept and its leader still leads, the node still follows it, or
   * it follows a higher-ranked node that took over under preempt.
   */
  private checkStallGuard(n: SimNode): void {
    const guard = n.stallGuard;
    if (guard === null || n.stalledUntil !== null) return;
    n.stallGuard = null;
    if (guard.topologyVersion !== this.topologyVersion) return;
    const leader = this.nodes.find((x) => x.id === guard.leader) as SimNode;
    const s = n.state as ElectionState;
    if (leader.state === null || !isActiveLeader(leader.state) || epochOf(leader.state) !== guard.epoch) return;
    if (leaderOf(s) === guard.leader || this.preemptedBy(s, leader)) return;
    throw new InvariantViolation(`${n.id} dropped leader ${guard.leader} for a silence it slept through (stalled since ${guard.since} ms)`);
  }

  /**
   * True when state `s` follows, in a newer epoch, a node that outranks
   * `leader`, and preempt is on: the one case in which a node accepts a
   * coordinator over a live leader. Such a takeover may already be under way
   * when the node falls asleep (the higher-ranked node lost the leader over a
   * cut made earlier), so it says nothing about the silence the node slept through.
   */
  private preemptedBy(s: ElectionState, leader: SimNode): boolean {
    const current = this.nodes.find((x) => x.id === leaderOf(s));
    if (!this.cfg.preempt || current === undefined || epochOf(s) <= epochOf(leader.state as ElectionState)) return false;
    return compareRank(current.cfg.self, leader.cfg.self) < 0;
  }

  /** One step of node n: persist, then send (the runtime's order), then check. */
  private apply(n: SimNode, input: ElectionInput): string | undefined {
    const before = n.state as ElectionState;
    const wasActive = isActiveLeader(before);
    const out = step(before, input, this.now, this.rng());
    if (out.persist !== null) n.durable = out.persist;
    n.state = out.state;
    this.safety.afterStep(this.now, n.id, wasActive, out.state, out, n.durable, n.vv);
    if (!wasActive && isActiveLeader(out.state)) n.tookOfficeAt = this.now;
    if (isActiveLeader(out.state)) this.outside.recordWon(epochOf(out.state));
    this.outside.check();
    for (const { to, msg } of out.send) {
      const target = this.nodes.findIndex((x) => x.id === to);
      if (target < 0 || target === n.index) throw new InvariantViolation(`${n.id} sent to ${to}`);
      this.net.send(this.now, n.index, target, { kind: "election", json: JSON.stringify(msg), repl: msg.type === "heartbeat" ? n.vv : null });
      if (msg.type === "accept") this.net.send(this.now, n.index, target, { kind: "push", epoch: msg.epoch, vv: n.vv });
    }
    for (const e of out.events) this.note(() => `${n.id} ${e.role} leader=${e.leader ?? "-"} epoch=${e.epoch}: ${e.reason}`);
    if (out.refused !== undefined) this.note(() => `${n.id} refused: ${out.refused}`);
    this.checkLease(n);
    if (isActiveLeader(out.state)) this.checkConcurrentLeaders();
    this.onStep?.(n);
    return out.refused;
  }

  /**
   * Two nodes may be active at one instant only in different epochs, and then
   * the older one can no longer gather a majority: fewer than a majority of
   * nodes (on disk, crashed ones included) are still at or below its epoch.
   */
  private checkConcurrentLeaders(): void {
    const leaders = this.activeLeaders();
    if (leaders.length < 2) return;
    const epochs = leaders.map((l) => epochOf(l.state as ElectionState));
    if (new Set(epochs).size !== epochs.length) throw new InvariantViolation(`active at once in one epoch: ${leaders.map((l) => l.id).join(", ")}`);
    const oldest = Math.min(...epochs);
    const stillThere = this.nodes.filter((x) => x.durable.epoch <= oldest).length;
    if (stillThere >= majority(this.size)) {
      throw new InvariantViolation(`${leaders.map((l) => `${l.id}@${epochOf(l.state as ElectionState)}`).join(", ")} active at once, and ${stillThere} nodes could still confirm epoch ${oldest}`);
    }
  }

  /**
   * A leader cut off from a majority must have stepped down within the lease
   * bound, counted from the latest of: the cut-off; its own wake (its lease
   * runs on its awake clock); its taking office; and the arrival of the
   * latest of its messages that a stalled peer read on waking. The last two
   * because a round it sends while cut off can still be confirmed: it waits
   * in a stalled peer's socket buffer, and the peer answers on waking over a
   * link still open one way. So a node may take office while cut off, or keep
   * a lease, on such a confirmation, and its lease runs from that round.
   */
  private checkLease(n: SimNode): void {
    const since = this.cutOffSince[n.index];
    if (since === null || since === undefined || n.state === null || !isActiveLeader(n.state)) return;
    const from = Math.max(since, n.awakeSince, n.tookOfficeAt, n.bufferedReadAt);
    if (this.now - from > this.leaseBoundMs) {
      throw new InvariantViolation(`${n.id} still leads epoch ${epochOf(n.state)} ${this.now - from} ms after losing the majority (bound ${this.leaseBoundMs} ms)`);
    }
  }

  /**
   * Tracks, per node, since when the members it could talk with both ways
   * (all of them, over the whole window) were fewer than a majority. The
   * union matters: confirmations gathered from two different minorities
   * within one lease add up to a majority, and that is a valid lease.
   */
  private refreshConnectivity(): void {
    this.topologyVersion++;
    const need = majority(this.size);
    for (const n of this.nodes) {
      const reach = new Set<number>([n.index]);
      for (const m of this.nodes) {
        if (m !== n && this.running(m) && !this.net.isBlocked(n.index, m.index) && !this.net.isBlocked(m.index, n.index)) reach.add(m.index);
      }
      const union = this.cutOffWith[n.index] as Set<number>;
      if (reach.size >= need) {
        this.cutOffSince[n.index] = null;
        union.clear();
        continue;
      }
      for (const m of reach) union.add(m);
      if (this.cutOffSince[n.index] === null || union.size >= need) {
        // A new window starts now (conservatively late when the sides only overlap).
        this.cutOffSince[n.index] = this.now;
        union.clear();
        for (const m of reach) union.add(m);
      }
    }
  }
}

/**
 * Phases of a candidacy that may still end in office. Compared as strings so
 * that this holds whichever phases the machine has ("prevoting" comes with the
 * pre-vote); an unknown phase counts as not pending.
 */
function isPendingPhase(phase: string): boolean {
  return phase === "leader_pending" || phase === "prevoting";
}

function describe(msg: ElectionMsg): string {
  switch (msg.type) {
    case "alive":
      return `alive(e${msg.epoch}, leader ${msg.leader})`;
    case "reject":
      return `reject(e${msg.epoch}, ${msg.code}: ${msg.reason})`;
    case "coordinator":
    case "accept":
    case "heartbeat_ack":
      return `${msg.type}(e${msg.epoch}, vv ${JSON.stringify(msg.vv)})`;
    default:
      return `${msg.type}(e${msg.epoch})`;
  }
}
