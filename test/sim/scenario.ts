// Fault schedules for the election simulator and the checks of one run.
// fast-check draws a Scenario (region shape, policy, seed, timed faults); a
// run plays the faults, then heals everything and checks liveness: a leader
// within 10 election timeouts, then a stable period with no epoch change.
// Safety invariants are checked at every step by the cluster itself.

import fc from "fast-check";
import { compareRank } from "../../src/core/cluster-view.js";
import { epochOf, leaderOf } from "../../src/core/election.js";
import { ClusterSim, type SimNode } from "./cluster-sim.js";
import { InvariantViolation } from "./invariants.js";
import type { LinkQuality } from "./network.js";
import { yieldToEventLoop } from "../support/yield-loop.js";

export type Fault =
  | { readonly kind: "crash"; readonly node: number }
  | { readonly kind: "restart"; readonly node: number }
  | { readonly kind: "stall"; readonly node: number; readonly ms: number }
  /** Group id per node; nodes in different groups cannot talk. */
  | { readonly kind: "partition"; readonly groups: readonly number[] }
  | { readonly kind: "oneway"; readonly from: number; readonly to: number }
  /** Cut off from every other member both ways, still linked to the other regions. */
  | { readonly kind: "isolate"; readonly node: number }
  | { readonly kind: "heal" }
  | { readonly kind: "links"; readonly dropRate: number; readonly dupRate: number; readonly maxDelayMs: number }
  /** Operator stepdown sent to a node (refused unless it leads). */
  | { readonly kind: "stepdown"; readonly node: number }
  /** Operator promote sent to a node (refused when unsafe). */
  | { readonly kind: "promote"; readonly node: number };

export type TimedFault = Fault & { readonly at: number };

export interface Scenario {
  /** One priority per node (n1, n2, ...); ties are broken by id. */
  readonly priorities: readonly number[];
  readonly failover: "auto" | "manual";
  readonly preempt: boolean;
  readonly seed: number;
  readonly faults: readonly TimedFault[];
}

export const TIMING = { heartbeatMs: 100, electionTimeoutMs: 500, tickMs: 50 } as const;
/** How long faults are injected. */
export const FAULT_PHASE_MS = 4000;
/** After the heal, a leader must exist within this bound. */
export const LEADER_BOUND_MS = 10 * TIMING.electionTimeoutMs;
/** Then nothing may change for this long (no election storm). */
export const STABLE_MS = 2000;
export const HEALTHY: LinkQuality = { dropRate: 0, dupRate: 0, minDelayMs: 1, maxDelayMs: 10 };
/** Chance that an active leader writes one op on a tick. */
export const WRITE_RATE = 0.3;

const nodeArb = fc.nat({ max: 4 });

export const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("crash" as const), node: nodeArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("restart" as const), node: nodeArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("stall" as const),
      node: nodeArb,
      // Hiccups around the stall threshold (2 heartbeats) as often as long stalls.
      ms: fc.oneof(fc.integer({ min: 50, max: 300 }), fc.integer({ min: 300, max: 2500 })),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("partition" as const), groups: fc.array(fc.nat({ max: 2 }), { minLength: 5, maxLength: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("oneway" as const), from: nodeArb, to: nodeArb }) },
  // Rare: a partition already isolates single nodes; this one also keeps earlier cuts.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("isolate" as const), node: nodeArb }) },
  { weight: 1, arbitrary: fc.constant({ kind: "heal" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("links" as const),
      dropRate: fc.constantFrom(0, 0.05, 0.2, 0.5),
      dupRate: fc.constantFrom(0, 0.1, 0.3),
      maxDelayMs: fc.constantFrom(10, 60, 250),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("stepdown" as const), node: nodeArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("promote" as const), node: nodeArb }) },
);

const timedFaultArb: fc.Arbitrary<TimedFault> = fc
  .tuple(fc.integer({ min: 0, max: FAULT_PHASE_MS }), faultArb)
  .map(([at, f]) => ({ at, ...f }));

/** A region of `size` nodes under a random schedule of up to 24 faults. */
export function scenarioArb(size: 3 | 5, failover: "auto" | "manual"): fc.Arbitrary<Scenario> {
  return fc.record({
    priorities: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: size, maxLength: size }),
    failover: fc.constant(failover),
    preempt: fc.boolean(),
    seed: fc.integer(),
    faults: fc.array(timedFaultArb, { maxLength: 24, size: "max" }).map((fs) => [...fs].sort((a, b) => a.at - b.at)),
  });
}

/** One line per fault, with node names: what a shrunk counterexample prints. */
export function formatScenario(sc: Scenario): string {
  const size = sc.priorities.length;
  const name = (i: number): string => `n${(i % size) + 1}`;
  const lines = sc.faults.map((f) => {
    const at = `${String(f.at).padStart(5)} ms`;
    switch (f.kind) {
      case "crash":
      case "restart":
      case "stepdown":
      case "promote":
      case "isolate":
        return `${at} ${f.kind} ${name(f.node)}`;
      case "stall":
        return `${at} stall ${name(f.node)} for ${f.ms} ms`;
      case "partition":
        return `${at} partition ${f.groups.slice(0, size).map((g, i) => `${name(i)}:${g}`).join(" ")}`;
      case "oneway":
        return `${at} cut ${name(f.from)} -> ${name(f.to)}`;
      case "heal":
        return `${at} heal`;
      case "links":
        return `${at} links drop=${f.dropRate} dup=${f.dupRate} delay<=${f.maxDelayMs} ms`;
    }
  });
  return [`region ${sc.priorities.map((p, i) => `${name(i)}(prio ${p})`).join(" ")}, failover ${sc.failover}, preempt ${sc.preempt}, seed ${sc.seed}`, ...lines].join("\n");
}

/**
 * fast-check parameters for the simulation suites. The seed, path and shrunk
 * schedule are printed either way; verbose 1 would also list every
 * intermediate failure of the shrink, burying the run's own report (the
 * schedule one fault per line and the last events) under pages of JSON.
 */
export const QUIET = { verbose: 0 } as const;

/**
 * One run as an async property body that yields to the event loop afterwards:
 * a thousand runs take seconds, and a test worker that never yields misses
 * vitest's RPC deadlines on a busy machine.
 */
export async function simulate(sc: Scenario): Promise<void> {
  runScenario(sc);
  await yieldToEventLoop();
}

export interface RunReport {
  readonly leaderAfterHealMs: number;
  readonly leaderships: number;
  readonly messages: number;
}

/** A region shaped like `sc` on the suites' timing, healthy links and write rate. */
export function createSim(sc: Pick<Scenario, "priorities" | "failover" | "preempt" | "seed">): ClusterSim {
  return new ClusterSim({
    priorities: sc.priorities,
    failover: sc.failover,
    preempt: sc.preempt,
    ...TIMING,
    seed: sc.seed,
    writeRate: WRITE_RATE,
    quality: HEALTHY,
  });
}

/**
 * Runs `body`; an error comes back as an InvariantViolation that also says
 * what was run (`header`) and the run's last events, so that a shrunk
 * counterexample reads without a replay.
 */
export function withTrace<T>(sim: ClusterSim, header: string, body: () => T): T {
  try {
    return body();
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    const err = new InvariantViolation(`${e.message}\n${header}\n--- last events (virtual ms)\n${sim.formatTrace()}`);
    err.stack = `${err.message}\n${e.stack ?? ""}`;
    throw err;
  }
}

/** Plays a scenario; throws InvariantViolation (with schedule and trace) when an invariant breaks. */
export function runScenario(sc: Scenario): RunReport {
  const sim = createSim(sc);
  return withTrace(sim, `--- schedule\n${formatScenario(sc)}`, () => play(sim, sc));
}

function play(sim: ClusterSim, sc: Scenario): RunReport {
  const size = sim.size;
  for (const f of sc.faults) {
    sim.runUntil(f.at);
    applyFault(sim, f, size);
  }
  sim.runUntil(FAULT_PHASE_MS);

  // Heal: links restored, every node running.
  const healAt = sim.now;
  sim.heal(HEALTHY);
  sim.wakeAll();
  for (let i = 0; i < size; i++) sim.restart(i);

  let leaderAt: number | null = null;
  const stableFrom = healAt + LEADER_BOUND_MS;
  let stable: { leader: SimNode; epochs: number[] } | null = null;
  sim.onStep = () => {
    const leaders = sim.activeLeaders();
    if (leaderAt === null && leaders.length > 0) leaderAt = sim.now;
    if (stable === null) return;
    // No election storm: once stable, no epoch moves and the leader stays.
    if (leaders.length !== 1 || leaders[0] !== stable.leader) {
      throw new InvariantViolation(`leadership changed during the stable period: now ${leaders.map((n) => n.id).join(",") || "none"}`);
    }
    sim.nodes.forEach((n, i) => {
      if (n.state !== null && epochOf(n.state) !== stable?.epochs[i]) throw new InvariantViolation(`${n.id} changed epoch during the stable period`);
    });
  };

  // Manual failover: the operator promotes the best-ranked node that agrees,
  // after letting it pull what the others have, once per election timeout.
  const byRank = [...sim.nodes].sort((a, b) => compareRank(a.cfg.self, b.cfg.self));
  for (let t = healAt + TIMING.electionTimeoutMs; t <= stableFrom; t += TIMING.electionTimeoutMs) {
    sim.runUntil(t);
    if (sc.failover === "manual" && sim.activeLeaders().length === 0 && !sim.anyPending()) {
      for (const n of byRank) if (sim.promote(n.index, true) === undefined) break;
    }
  }
  sim.runUntil(stableFrom);
  if (leaderAt === null) throw new InvariantViolation(`no leader ${LEADER_BOUND_MS} ms after the heal`);
  const leaders = sim.activeLeaders();
  if (leaders.length !== 1) throw new InvariantViolation(`${leaders.length} active leaders ${LEADER_BOUND_MS} ms after the heal`);
  const leader = leaders[0] as SimNode;
  stable = { leader, epochs: sim.nodes.map((n) => (n.state === null ? -1 : epochOf(n.state))) };
  sim.runUntil(stableFrom + STABLE_MS);

  // Converged: everyone follows that leader in its epoch.
  const epoch = epochOf(leader.state!);
  for (const n of sim.nodes) {
    if (leaderOf(n.state!) !== leader.id || epochOf(n.state!) !== epoch) {
      throw new InvariantViolation(`${n.id} follows ${leaderOf(n.state!) ?? "nobody"} in epoch ${epochOf(n.state!)}, not ${leader.id} in epoch ${epoch}`);
    }
  }
  if (sc.failover === "auto" && sc.preempt && leader !== byRank[0]) {
    throw new InvariantViolation(`with preempt, ${leader.id} leads instead of the best-ranked ${byRank[0]?.id}`);
  }
  sim.safety.checkAcknowledgedWritesKept();
  return { leaderAfterHealMs: (leaderAt as number) - healAt, leaderships: sim.safety.leaderships, messages: sim.net.stats.sent };
}

function applyFault(sim: ClusterSim, f: Fault, size: number): void {
  switch (f.kind) {
    case "crash":
      return sim.crash(f.node % size);
    case "restart":
      return sim.restart(f.node % size);
    case "stall":
      return sim.stall(f.node % size, f.ms);
    case "partition":
      return sim.partition(f.groups);
    case "oneway":
      return sim.oneWay(f.from % size, f.to % size);
    case "isolate":
      return sim.isolate(f.node % size);
    case "heal":
      return sim.heal(sim.net.quality);
    case "links":
      return sim.setQuality({ ...HEALTHY, dropRate: f.dropRate, dupRate: f.dupRate, maxDelayMs: f.maxDelayMs });
    case "stepdown":
      sim.stepdown(f.node % size);
      return;
    case "promote":
      sim.promote(f.node % size, false);
      return;
  }
}
