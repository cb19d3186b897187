// Schedules for the whole-cluster simulator, and the run of one: fast-check
// generates the topology, the clocks, the client workloads of every region
// (every namespace, every ack level, retries with Idempotency-Key) and the
// fault schedule (link faults, partitions of every shape, crashes, pauses
// longer than a lease, clock jumps, and the leader that dies right after an
// idempotent write is durable). runSchedule plays it on a World, heals
// everything, lets the cluster go quiet and runs the final checks; every
// check after every event runs meanwhile. A failure throws with the trace.

import fc from "fast-check";
import { normalizeVv } from "../../../src/core/version-vector.js";
import { SNAPSHOT_INSTALL_TIMEOUTS } from "../../../src/core/replication/machine.js";
import { createCrashableStorage } from "../../../src/storage/memory-crash.js";
import type { MemoryDisk } from "../../../src/storage/memory.js";
import { InvariantViolation } from "../invariants.js";
import type { ClockModel, SimDisk, SimSettings, WriteRequest } from "./node.js";
import type { SnapshotCrashPhase } from "./snapshots.js";
import { docInsert, World, type ClientRequest, type LinkFault } from "./world.js";

export const SHAPES = ["symmetric", "one-way", "region-split", "leader-isolation", "bridge", "ring"] as const;
export type Shape = (typeof SHAPES)[number];

export type Fault =
  | { readonly kind: "crash"; readonly at: number; readonly node: number; readonly downMs: number }
  | { readonly kind: "pause"; readonly at: number; readonly node: number; readonly ms: number }
  | { readonly kind: "partition"; readonly at: number; readonly shape: Shape; readonly pick: number; readonly healAfterMs: number }
  | { readonly kind: "link"; readonly at: number; readonly from: number; readonly to: number; readonly fault: LinkFault; readonly ms: number }
  | { readonly kind: "clock-jump"; readonly at: number; readonly node: number; readonly deltaMs: number }
  /** The leader dies right after an idempotent counter write is durable, before any follower has it; `times` 2: so does the next leader with the retry. */
  | { readonly kind: "crash-after-write"; readonly at: number; readonly region: number; readonly downMs: number; readonly times: number }
  /** The leader stalls longer than its lease right after committing a write, and wakes believing it still leads. */
  | { readonly kind: "pause-leader-after-write"; readonly at: number; readonly region: number; readonly ms: number }
  /** The node crashes and restarts after downMs on an empty disk (a lost disk, or a new member under an old name). */
  | { readonly kind: "wipe"; readonly at: number; readonly node: number; readonly downMs: number }
  /** The next node a snapshot reaches crashes while it stages the rows, inside the install, or right after it. */
  | { readonly kind: "crash-in-snapshot"; readonly at: number; readonly phase: SnapshotCrashPhase; readonly downMs: number }
  /** The next snapshot stream is cut (sender and receiver apart, both ways) afterMs after it begins, and heals later. */
  | { readonly kind: "cut-snapshot"; readonly at: number; readonly afterMs: number; readonly healAfterMs: number }
  /** The leader is cut off from every node right after it commits its next write, for ms: the region elects another, which compacts past it. */
  | { readonly kind: "depose-leader-after-write"; readonly at: number; readonly region: number; readonly ms: number };

export interface RequestSpec {
  readonly ns: WriteRequest["ns"];
  readonly key: number;
  readonly n: number;
  readonly remove: boolean;
  readonly ack: WriteRequest["ack"];
  readonly idem: boolean;
  readonly thinkMs: number;
}

export interface Schedule {
  /** memberForgetMs and opLogRetainOps of this schedule (absent: SIM_SETTINGS's). */
  readonly memberForgetMs?: number;
  readonly opLogRetainOps?: number;
  readonly regions: readonly number[];
  readonly seed: number;
  readonly clocks: readonly ClockModel[];
  readonly clients: ReadonlyArray<{ readonly region: number; readonly startMs: number; readonly requests: readonly RequestSpec[] }>;
  readonly faults: readonly Fault[];
}

/** The settings every run uses: the node's defaults, and a small send window so catch-up is exercised. */
export const SIM_SETTINGS: SimSettings = {
  heartbeatMs: 100,
  electionTimeoutMs: 500,
  writeWaitMs: 3000,
  maxClockSkewMs: 500,
  sendWindowOps: 64,
  frameOpsMax: 16,
  stepOpsMax: 32,
  memberForgetMs: 3_600_000,
  // A short log and frequent small steps, so compaction runs throughout every schedule.
  opLogRetainOps: 8,
  compactEveryMs: 250,
  compactStepOps: 16,
};

/** Faults start within this window; at its end everything heals and clients stop starting requests. */
export const FAULT_PHASE_MS = 6000;
/** After the heal, every region must have a leader within this bound. */
export const LEADER_BOUND_MS = 15_000;
/** After the heal, the cluster must have converged within this. */
export const QUIET_DEADLINE_MS = 40_000;
/** Once converged, this long must pass with no election anywhere. */
export const STABLE_MS = 2000;

const MAX_NODES = 10;

const clockArb: fc.Arbitrary<ClockModel> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ offsetMs: 0, drift: 0 }) },
  { weight: 3, arbitrary: fc.record({ offsetMs: fc.integer({ min: -400, max: 400 }), drift: fc.double({ min: -2e-4, max: 2e-4, noNaN: true }) }) },
  // Beyond maxClockSkewMs: the node must refuse writes rather than win conflicts with it.
  { weight: 1, arbitrary: fc.record({ offsetMs: fc.constantFrom(-3000, -1500, 1500, 3000), drift: fc.constant(0) }) },
);

const requestArb: fc.Arbitrary<RequestSpec> = fc.record({
  ns: fc.constantFrom("kv", "counters", "counters", "sets", "docs"),
  key: fc.integer({ min: 0, max: 1 }),
  n: fc.integer({ min: 1, max: 5 }),
  remove: fc.boolean(),
  ack: fc.constantFrom("local", "region", "region", "all"),
  idem: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  thinkMs: fc.integer({ min: 0, max: 600 }),
});

const at = fc.integer({ min: 200, max: FAULT_PHASE_MS - 500 });
const nodeIx = fc.integer({ min: 0, max: 63 });

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({ kind: fc.constant("crash" as const), at, node: nodeIx, downMs: fc.integer({ min: 100, max: 3000 }) }),
  fc.record({ kind: fc.constant("pause" as const), at, node: nodeIx, ms: fc.integer({ min: 300, max: 2500 }) }),
  fc.record({ kind: fc.constant("partition" as const), at, shape: fc.constantFrom(...SHAPES), pick: fc.integer({ min: 0, max: 63 }), healAfterMs: fc.integer({ min: 200, max: 4000 }) }),
  fc.record({
    kind: fc.constant("link" as const),
    at,
    from: nodeIx,
    to: nodeIx,
    fault: fc.record({ drop: fc.double({ min: 0, max: 0.5, noNaN: true }), dup: fc.double({ min: 0, max: 0.3, noNaN: true }), extraDelayMs: fc.integer({ min: 0, max: 300 }), reorder: fc.boolean() }),
    ms: fc.integer({ min: 200, max: 4000 }),
  }),
  fc.record({ kind: fc.constant("clock-jump" as const), at, node: nodeIx, deltaMs: fc.integer({ min: -2000, max: 2000 }) }),
  fc.record({ kind: fc.constant("pause-leader-after-write" as const), at, region: fc.integer({ min: 0, max: 7 }), ms: fc.integer({ min: 1200, max: 3000 }) }),
  fc.record({ kind: fc.constant("crash-after-write" as const), at: fc.integer({ min: 0, max: FAULT_PHASE_MS - 1500 }), region: fc.integer({ min: 0, max: 7 }), downMs: fc.integer({ min: 500, max: 3000 }), times: fc.integer({ min: 1, max: 2 }) }),
);

/**
 * The faults that make nodes need snapshots, on top of faultArb's: lost
 * disks, crashes and cuts aimed at snapshots under way, and deposed leaders
 * with unreplicated writes. Their schedules forget a silent member within
 * seconds (memberForgetMs), so compaction passes a node that is down or cut
 * off, and it comes back to a snapshot.
 */
const snapshotFaultArb: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("wipe" as const), at, node: nodeIx, downMs: fc.integer({ min: 100, max: 2500 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("crash-in-snapshot" as const), at: fc.integer({ min: 0, max: FAULT_PHASE_MS - 1000 }), phase: fc.constantFrom("staging" as const, "installing" as const, "installed" as const), downMs: fc.integer({ min: 100, max: 2000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("cut-snapshot" as const), at: fc.integer({ min: 0, max: FAULT_PHASE_MS - 1000 }), afterMs: fc.integer({ min: 0, max: 20 }), healAfterMs: fc.integer({ min: 200, max: 3000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("depose-leader-after-write" as const), at: fc.integer({ min: 0, max: 2500 }), region: fc.integer({ min: 0, max: 7 }), ms: fc.integer({ min: 2500, max: 4000 }) }) },
);

/** Topologies: three regions of three, and regions of five and seven nodes. */
export const TOPOLOGIES: ReadonlyArray<readonly number[]> = [
  [3, 3, 3],
  [5, 3],
  [7, 3],
];

export function scheduleArb(topologies: ReadonlyArray<readonly number[]> = TOPOLOGIES): fc.Arbitrary<Schedule> {
  return fc.record({
    regions: fc.constantFrom(...topologies),
    seed: fc.integer({ min: 1, max: 0x7fffffff }),
    clocks: fc.array(clockArb, { minLength: MAX_NODES, maxLength: MAX_NODES }),
    clients: fc.array(
      fc.record({ region: fc.integer({ min: 0, max: 7 }), startMs: fc.integer({ min: 0, max: 1000 }), requests: fc.array(requestArb, { minLength: 1, maxLength: 14 }) }),
      { minLength: 2, maxLength: 6 },
    ),
    faults: fc.array(faultArb, { minLength: 0, maxLength: 7 }),
  });
}

/**
 * Schedules where nodes bootstrap from snapshots: scheduleArb's, plus one to
 * four snapshot faults, members forgotten after 1 to 2.5 s of silence, and a
 * log kept only two ops past the frontier.
 */
export function snapshotScheduleArb(topologies: ReadonlyArray<readonly number[]> = TOPOLOGIES): fc.Arbitrary<Schedule> {
  return fc
    .record({
      base: scheduleArb(topologies),
      memberForgetMs: fc.constantFrom(1000, 1500, 2500),
      snapshotFaults: fc.array(snapshotFaultArb, { minLength: 1, maxLength: 4 }),
      baseFaults: fc.integer({ min: 0, max: 4 }),
    })
    .map(({ base, memberForgetMs, snapshotFaults, baseFaults }) => ({
      memberForgetMs,
      // A log of two ops past the frontier: a node that lost its disk or was forgotten needs compacted ops almost always.
      opLogRetainOps: 2,
      ...base,
      faults: [...base.faults.slice(0, baseFaults), ...snapshotFaults].sort((a, b) => a.at - b.at),
    }));
}

/** The storage each simulated node gets: in memory, losing what is not synced on a crash. */
export function openSimDisk(disk: MemoryDisk | null): SimDisk {
  const c = createCrashableStorage(disk ?? undefined);
  return { storage: c.storage, sync: () => c.sync(), crash: () => c.crash(), durableVv: () => c.durableVv(), unsynced: () => c.unsyncedWrites };
}

export interface RunResult {
  readonly steps: number;
  readonly frames: number;
  readonly acked: number;
  readonly unknown: number;
  readonly elections: number;
  readonly leaderAfterHealMs: number;
  readonly convergedAfterHealMs: number;
  readonly crashes: number;
  /** Op-log rows and kv tombstones compaction removed, over every node. */
  readonly compactedOps: number;
  readonly droppedTombstones: number;
  /** kv rows whose stable versions were folded to their dots, over every node. */
  readonly foldedKv: number;
  /** Snapshots installed, over every node, and of them: on a node that had lost its disk, after a crash inside an earlier install, keeping own writes beyond the snapshot (a deposed leader's). */
  readonly installs: number;
  readonly installsAfterWipe: number;
  readonly installsAfterInstallCrash: number;
  readonly installsKeepingOwnWrites: number;
  /** Snapshots streamed whole (installed or not). */
  readonly snapshotsStreamed: number;
  /** Faults that hit: disks lost, crashes at a snapshot's receiver by phase, streams cut, leaders cut off after a write. */
  readonly wipes: number;
  readonly snapshotCrashes: { readonly staging: number; readonly installing: number; readonly installed: number };
  readonly snapshotCuts: number;
  readonly isolations: number;
  readonly pauses: number;
  /** Idempotency-Keys written more than once (copies at several leaders), and their most copies. */
  readonly keysWrittenTwice: number;
  readonly mostCopies: number;
}

/** Plays `s` and runs every check; throws an InvariantViolation (with the trace) on the first broken one. */
export function runSchedule(s: Schedule): RunResult {
  const settings: SimSettings = {
    ...SIM_SETTINGS,
    ...(s.memberForgetMs === undefined ? {} : { memberForgetMs: s.memberForgetMs }),
    ...(s.opLogRetainOps === undefined ? {} : { opLogRetainOps: s.opLogRetainOps }),
  };
  const w = new World({ regions: s.regions, seed: s.seed, settings, clocks: s.clocks, openDisk: openSimDisk });
  try {
    return play(w, s);
  } catch (err) {
    if (err instanceof Error) err.message = `${err.message}\n--- last events (virtual ms) ---\n${w.formatTrace()}`;
    throw err;
  }
}

function play(w: World, s: Schedule): RunResult {
  const keys = { counters: ["c0", "c1"], sets: ["s0", "s1"], docs: ["d0", "d1"] };
  let clientId = 0;
  s.clients.forEach((c, ci) => {
    const region = w.regionNames[c.region % w.regionNames.length] as string;
    const script: ClientRequest[] = c.requests.map((r, i) => toRequest(r, ci, i, 1000 + clientId++));
    w.addClient(region, script, c.startMs);
  });
  for (const f of s.faults) w.agenda.add(f.at, () => applyFault(w, f));
  w.runUntil(FAULT_PHASE_MS);
  w.healAll();
  const healedAt = w.now;
  const leaders = (): boolean => w.regionNames.every((r) => w.leaderOf(r) !== undefined);
  if (!w.runUntilCondition(leaders, healedAt + LEADER_BOUND_MS)) {
    const missing = w.regionNames.filter((r) => w.leaderOf(r) === undefined);
    throw new InvariantViolation(`no leader in ${missing.join(", ")} ${LEADER_BOUND_MS} ms after the heal`);
  }
  const leaderAfterHealMs = w.now - healedAt;
  const converged = (): boolean => {
    if (!w.clientsDone()) return false;
    const first = JSON.stringify(normalizeVv(w.nodes[0]?.storage.appliedVv() ?? {}));
    return w.nodes.every((n) => n.up && JSON.stringify(normalizeVv(n.storage.appliedVv())) === first);
  };
  // A snapshot lost on a link that stays up is sent again only after SNAPSHOT_INSTALL_TIMEOUTS election timeouts (machine.ts).
  const quietMs = QUIET_DEADLINE_MS + (s.memberForgetMs === undefined ? 0 : SNAPSHOT_INSTALL_TIMEOUTS * w.cfg.settings.electionTimeoutMs);
  if (!w.runUntilCondition(converged, healedAt + quietMs)) {
    const vvs = w.nodes.map((n) => `${n.id}: ${JSON.stringify(n.storage.appliedVv())}`).join("\n");
    throw new InvariantViolation(`not converged ${quietMs} ms after the heal (clients done: ${w.clientsDone()}):\n${vvs}`);
  }
  const convergedAfterHealMs = w.now - healedAt;
  const electionsBefore = w.monitor.activations.length;
  w.runUntil(w.now + STABLE_MS);
  if (w.monitor.activations.length !== electionsBefore) {
    const late = w.monitor.activations.slice(electionsBefore).map((a) => `${a.node}@${a.epoch}`);
    throw new InvariantViolation(`elections after the cluster converged and went quiet: ${late.join(", ")}`);
  }
  w.monitor.final(w.nodes, w.outcomes, keys);
  return {
    steps: w.stats.steps,
    frames: w.stats.frames,
    acked: w.outcomes.filter((o) => o.status === "acked").length,
    unknown: w.outcomes.filter((o) => o.status === "unknown").length,
    elections: w.monitor.activations.length,
    leaderAfterHealMs,
    convergedAfterHealMs,
    crashes: w.stats.crashes,
    compactedOps: w.nodes.reduce((n, x) => n + x.compactedOps, 0),
    droppedTombstones: w.nodes.reduce((n, x) => n + x.droppedTombstones, 0),
    foldedKv: w.nodes.reduce((n, x) => n + x.foldedKv, 0),
    ...installCounts(w),
    snapshotsStreamed: w.nodes.reduce((n, x) => n + x.snapshotsStreamed, 0),
    wipes: w.stats.wipes,
    snapshotCrashes: { ...w.stats.snapshotCrashes },
    snapshotCuts: w.stats.snapshotCuts,
    isolations: w.stats.isolations,
    pauses: w.stats.pauses,
    ...copiesOf(w),
  };
}

function installCounts(w: World): Pick<RunResult, "installs" | "installsAfterWipe" | "installsAfterInstallCrash" | "installsKeepingOwnWrites"> {
  const all = w.nodes.flatMap((n) => n.installRecords);
  return {
    installs: all.length,
    installsAfterWipe: all.filter((r) => Object.keys(r.before).length === 0).length,
    installsAfterInstallCrash: all.filter((r) => r.afterInstallCrash).length,
    installsKeepingOwnWrites: all.filter((r) => r.keptOwn > 0).length,
  };
}

/** How many Idempotency-Keys were written at more than one origin or seq, seen from the first node's op log. */
function copiesOf(w: World): { keysWrittenTwice: number; mostCopies: number } {
  const n = w.nodes[0];
  if (n === undefined) return { keysWrittenTwice: 0, mostCopies: 0 };
  const copies = new Map<string, number>();
  for (const [origin, seq] of Object.entries(n.storage.appliedVv())) {
    for (const op of n.storage.getOps(origin as never, 1, seq, seq)) if (op.idem !== undefined) copies.set(op.idem.key, (copies.get(op.idem.key) ?? 0) + 1);
  }
  const many = [...copies.values()].filter((c) => c > 1);
  return { keysWrittenTwice: many.length, mostCopies: Math.max(0, ...many) };
}

function toRequest(r: RequestSpec, client: number, i: number, docClient: number): ClientRequest {
  const key = String(r.key);
  const idem = r.idem ? { key: `idem-${client}-${i}`, requestHash: `hash-${client}-${i}` } : null;
  const base = { ack: r.ack, idem };
  const member = `m${r.n % 3}`;
  switch (r.ns) {
    case "kv":
      return { write: { ...base, ns: "kv", key: `k${key}`, intent: { valueJson: r.remove ? null : JSON.stringify(r.n) } }, thinkMs: r.thinkMs, delta: 0, update: null };
    case "counters": {
      const delta = r.remove ? -r.n : r.n;
      return { write: { ...base, ns: "counters", key: `c${key}`, intent: { delta } }, thinkMs: r.thinkMs, delta, update: null };
    }
    case "sets":
      return { write: { ...base, ns: "sets", key: `s${key}`, intent: r.remove ? { add: [], remove: [member] } : { add: [member], remove: [] } }, thinkMs: r.thinkMs, delta: 0, update: null };
    case "docs": {
      const update = docInsert(docClient, `x${docClient}`);
      return { write: { ...base, ns: "docs", key: `d${key}`, intent: { update } }, thinkMs: r.thinkMs, delta: 0, update };
    }
  }
}

function applyFault(w: World, f: Fault): void {
  switch (f.kind) {
    case "crash": {
      const n = w.node(f.node);
      w.crash(n);
      w.agenda.add(w.now + f.downMs, () => w.restart(n));
      return;
    }
    case "pause":
      w.pause(w.node(f.node), f.ms);
      return;
    case "clock-jump":
      w.jumpClock(w.node(f.node), f.deltaMs);
      return;
    case "link": {
      const a = w.node(f.from);
      const b = w.node(f.to);
      if (a === b) return;
      w.setLinkFault(a, b, f.fault);
      w.agenda.add(w.now + f.ms, () => w.setLinkFault(a, b, null));
      return;
    }
    case "partition": {
      const heal = partition(w, f.shape, f.pick);
      if (heal !== null) w.agenda.add(w.now + f.healAfterMs, heal);
      return;
    }
    case "pause-leader-after-write": {
      const region = w.regionNames[f.region % w.regionNames.length] as string;
      w.pauseAfterWrite.set(region, [...(w.pauseAfterWrite.get(region) ?? []), f.ms]);
      return;
    }
    case "crash-after-write": {
      const region = w.regionNames[f.region % w.regionNames.length] as string;
      w.crashAfterWrite.set(region, [...(w.crashAfterWrite.get(region) ?? []), { downMs: f.downMs, times: f.times, key: null }]);
      return;
    }
    case "wipe":
      w.wipe(w.node(f.node), f.downMs);
      return;
    case "crash-in-snapshot":
      w.crashInSnapshot.push({ phase: f.phase, downMs: f.downMs });
      return;
    case "cut-snapshot":
      w.cutSnapshot.push({ afterMs: f.afterMs, healAfterMs: f.healAfterMs });
      return;
    case "depose-leader-after-write": {
      const region = w.regionNames[f.region % w.regionNames.length] as string;
      w.isolateAfterWrite.set(region, [...(w.isolateAfterWrite.get(region) ?? []), f.ms]);
      return;
    }
  }
}

/** Cuts the links of one partition shape; returns its heal (null: the shape does not apply to this topology). */
function partition(w: World, shape: Shape, pick: number): (() => void) | null {
  const nodes = w.nodes;
  const pairs: Array<[(typeof nodes)[number], (typeof nodes)[number]]> = [];
  const across = (inA: (i: number) => boolean, bothWays = true): void => {
    for (const a of nodes) for (const b of nodes) if (inA(a.index) && !inA(b.index)) {
      pairs.push([a, b]);
      if (bothWays) pairs.push([b, a]);
    }
  };
  switch (shape) {
    case "symmetric": {
      // A random split of all nodes into two sides.
      const mask = (pick * 2654435761) >>> 0;
      across((i) => ((mask >>> i) & 1) === 1);
      break;
    }
    case "one-way": {
      // Region A's nodes cannot reach region B's; B still reaches A (and both reach a third region).
      const names = w.regionNames;
      const from = names[pick % names.length] as string;
      const to = names[(pick + 1 + (pick % Math.max(1, names.length - 1))) % names.length] as string;
      if (from === to) return null;
      for (const a of nodes) for (const b of nodes) if (a.region === from && b.region === to) pairs.push([a, b]);
      break;
    }
    case "region-split": {
      const region = w.regionNames[pick % w.regionNames.length] as string;
      across((i) => w.node(i).region === region);
      break;
    }
    case "leader-isolation": {
      const region = w.regionNames[pick % w.regionNames.length] as string;
      const leader = w.leaderOf(region);
      if (leader === undefined) return null;
      across((i) => i === leader.index);
      break;
    }
    case "bridge": {
      // Two sides that only one bridge node connects.
      const bridge = w.node(pick);
      const side = (i: number): boolean => i < nodes.length / 2;
      for (const a of nodes) for (const b of nodes) if (a !== bridge && b !== bridge && side(a.index) !== side(b.index)) pairs.push([a, b]);
      break;
    }
    case "ring": {
      // Each node reaches only its two neighbours in a ring of all nodes.
      const n = nodes.length;
      const off = pick % n;
      const pos = (i: number): number => (i + off) % n;
      for (const a of nodes) for (const b of nodes) {
        const d = Math.abs(pos(a.index) - pos(b.index));
        if (a !== b && d !== 1 && d !== n - 1) pairs.push([a, b]);
      }
      break;
    }
  }
  return w.cut(pairs, `${shape} (${pairs.length} directed links)`);
}
