// Regression test for the pre-vote (DESIGN.md "No epoch without a majority"):
// a leader cut off from its own region, but not from the other regions, must
// keep its epoch however long it tries, so that the epoch the other regions
// fence this region with is always one a majority won. Without the pre-vote
// the isolated node proclaims a fresh epoch on every election timeout; the
// majority's new leader is then behind it, and on the heal the returning node
// unseats that leader.
//
// Each run: elect a leader (epoch E), isolate it for ISOLATION_MS of virtual
// time, and check after every step that its durable epoch stays E, that the
// majority's new leader (epoch > E) is the fence outside once it has pinged,
// and after the heal that this leader still leads and everyone follows it.
// A failure prints the seed and path, the case and the last events; replay it with
//   FC_SEED=<seed> FC_PATH=<path> npx vitest run test/sim/isolated-node.sim.test.ts -t "<test name>"
import fc from "fast-check";
import { describe, it } from "vitest";
import { epochOf, isActiveLeader, leaderOf } from "../../src/core/election.js";
import { fencingTokenOf, formatFencingToken, judgeBatch } from "../../src/core/fence.js";
import { REGION, type ClusterSim, type SimNode } from "./cluster-sim.js";
import { InvariantViolation } from "./invariants.js";
import { HEALTHY, LEADER_BOUND_MS, QUIET, TIMING, createSim, withTrace } from "./scenario.js";
import { yieldToEventLoop } from "../support/yield-loop.js";

/** How long the leader stays cut off: 20 election timeouts, room for many futile candidacies. */
const ISOLATION_MS = 10_000;
/** Bound on the first election of a fresh, healthy region. */
const FIRST_LEADER_BOUND_MS = LEADER_BOUND_MS;
/** A new leader has pinged the other regions at least once within this long of taking office (pings ride on ticks). */
const PING_LAG_MS = TIMING.heartbeatMs + TIMING.tickMs;
/** Latest isolation start drawn by the property, after the first leader. */
const ISOLATE_AFTER_MS_MAX = 3000;
/** Each run is ~20 s of virtual time; a few hundred runs cover the seeds and start times well. */
const PROPERTY_RUNS = 300;

interface IsolationCase {
  readonly size: 3 | 5;
  readonly seed: number;
  /** How long after the first leader took office the cut starts. */
  readonly isolateAfterMs: number;
}

/** What the cut produced: the majority's new leader, if any. */
interface CutWatch {
  newLeader: SimNode | null;
  newEpoch: number;
  electedAt: number;
}

/** One run; throws InvariantViolation with the case and the last events when a check fails. */
function runIsolation(c: IsolationCase): void {
  const sim = createSim({ priorities: new Array<number>(c.size).fill(0), failover: "auto", preempt: false, seed: c.seed });
  const header = `--- case\n${c.size} nodes (equal priorities), failover auto, no preempt, seed ${c.seed}, isolate the leader ${c.isolateAfterMs} ms after it took office, for ${ISOLATION_MS} ms`;
  withTrace(sim, header, () => playIsolation(sim, c));
}

async function simulateIsolation(c: IsolationCase): Promise<void> {
  runIsolation(c);
  // Yield between runs, as the other sims do, so the worker answers vitest's RPC.
  await yieldToEventLoop();
}

function playIsolation(sim: ClusterSim, c: IsolationCase): void {
  const firstAt = runUntilLeader(sim, FIRST_LEADER_BOUND_MS);
  sim.runUntil(Math.max(sim.now, firstAt + c.isolateAfterMs));
  const old = soleLeader(sim, "before the cut");
  const oldEpoch = epochOf(old.state!);
  const cutAt = sim.now;
  sim.isolate(old.index);
  const watch: CutWatch = { newLeader: null, newEpoch: 0, electedAt: 0 };
  sim.onStep = () => checkDuringCut(sim, old, oldEpoch, watch);
  sim.runUntil(cutAt + ISOLATION_MS);
  sim.onStep = null;
  checkEndOfCut(sim, old, oldEpoch, watch);
  sim.heal(HEALTHY);
  sim.runUntil(sim.now + LEADER_BOUND_MS);
  checkAfterHeal(sim, watch.newLeader!, watch.newEpoch);
}

/** Runs (a tick at a time) until a node is an active leader and returns when it took office; throws past `boundMs`. */
function runUntilLeader(sim: ClusterSim, boundMs: number): number {
  const deadline = sim.now + boundMs;
  let electedAt: number | null = null;
  sim.onStep = () => {
    if (electedAt === null && sim.activeLeaders().length > 0) electedAt = sim.now;
  };
  while (electedAt === null) {
    if (sim.now >= deadline) throw new InvariantViolation(`no leader within ${boundMs} ms of a healthy start`);
    sim.runUntil(Math.min(deadline, sim.now + TIMING.tickMs));
  }
  sim.onStep = null;
  return electedAt;
}

function soleLeader(sim: ClusterSim, when: string): SimNode {
  const leaders = sim.activeLeaders();
  if (leaders.length !== 1) throw new InvariantViolation(`${leaders.length} active leaders ${when}: ${leaders.map((n) => n.id).join(",") || "none"}`);
  return leaders[0] as SimNode;
}

/** After every step of the cut. */
function checkDuringCut(sim: ClusterSim, old: SimNode, oldEpoch: number, watch: CutWatch): void {
  // The pre-vote rule itself: no majority answers the isolated node, so it raises nothing.
  if (old.durable.epoch !== oldEpoch) {
    throw new InvariantViolation(`${old.id}, cut off from its region, raised its durable epoch from ${oldEpoch} to ${old.durable.epoch} at ${sim.now} ms: an epoch no majority accepted`);
  }
  if (watch.newLeader === null) {
    const elected = sim.activeLeaders().find((n) => n !== old && epochOf(n.state!) > oldEpoch);
    if (elected === undefined) return;
    Object.assign(watch, { newLeader: elected, newEpoch: epochOf(elected.state!), electedAt: sim.now });
  }
  checkNewLeaderFenced(sim, watch);
}

/** The majority's new leader holds office, the other regions accept its batches, and they know its epoch once it pinged. */
function checkNewLeaderFenced(sim: ClusterSim, watch: CutWatch): void {
  const leader = watch.newLeader as SimNode;
  if (leader.state === null || !isActiveLeader(leader.state) || epochOf(leader.state) !== watch.newEpoch) {
    throw new InvariantViolation(`${leader.id}, elected in epoch ${watch.newEpoch} at ${watch.electedAt} ms by the majority, lost office at ${sim.now} ms during the cut`);
  }
  const known = sim.outside.knownEpoch;
  const verdict = judgeBatch(formatFencingToken(fencingTokenOf(REGION, watch.newEpoch)), REGION, known);
  if (verdict.kind !== "accept") {
    throw new InvariantViolation(`the other regions would refuse ${leader.id}'s batches of epoch ${watch.newEpoch} (${verdict.kind}): they know epoch ${known}`);
  }
  if (sim.now >= watch.electedAt + PING_LAG_MS && known !== watch.newEpoch) {
    throw new InvariantViolation(`the other regions know epoch ${known} at ${sim.now} ms, not epoch ${watch.newEpoch} of ${leader.id}, leader since ${watch.electedAt} ms`);
  }
}

function checkEndOfCut(sim: ClusterSim, old: SimNode, oldEpoch: number, watch: CutWatch): void {
  if (watch.newLeader === null) throw new InvariantViolation(`the majority elected no leader above epoch ${oldEpoch} in ${ISOLATION_MS} ms without ${old.id}`);
  if (sim.outside.knownEpoch !== watch.newEpoch) {
    throw new InvariantViolation(`at the end of the cut the other regions know epoch ${sim.outside.knownEpoch}, not ${watch.newEpoch}`);
  }
}

/** One leader, the one the majority elected (without preempt nobody takes it back), and everyone follows it in its epoch. */
function checkAfterHeal(sim: ClusterSim, leader: SimNode, epoch: number): void {
  const now = soleLeader(sim, `${LEADER_BOUND_MS} ms after the heal`);
  if (now !== leader || epochOf(now.state!) !== epoch) {
    throw new InvariantViolation(`after the heal ${now.id} leads epoch ${epochOf(now.state!)}: the returning node unseated ${leader.id} of epoch ${epoch}`);
  }
  for (const n of sim.nodes) {
    if (leaderOf(n.state!) !== leader.id || epochOf(n.state!) !== epoch) {
      throw new InvariantViolation(`${n.id} follows ${leaderOf(n.state!) ?? "nobody"} in epoch ${epochOf(n.state!)}, not ${leader.id} in epoch ${epoch}`);
    }
  }
}

function caseArb(size: 3 | 5): fc.Arbitrary<IsolationCase> {
  return fc.record({ size: fc.constant(size), seed: fc.integer(), isolateAfterMs: fc.integer({ min: 0, max: ISOLATE_AFTER_MS_MAX }) });
}

describe("election simulation, a leader isolated from its region but not from the others", () => {
  it("3 nodes: the isolated leader keeps its epoch; the majority's new leader is the fence outside and keeps office after the heal", () => {
    runIsolation({ size: 3, seed: 1, isolateAfterMs: 1000 });
  });

  it("5 nodes: the isolated leader keeps its epoch; the majority's new leader is the fence outside and keeps office after the heal", () => {
    runIsolation({ size: 5, seed: 1, isolateAfterMs: 1000 });
  });

  it("3 nodes, any seed and isolation start: the same", async () => {
    await fc.assert(fc.asyncProperty(caseArb(3), simulateIsolation), { ...QUIET, numRuns: PROPERTY_RUNS });
  });

  it("5 nodes, any seed and isolation start: the same", async () => {
    await fc.assert(fc.asyncProperty(caseArb(5), simulateIsolation), { ...QUIET, numRuns: PROPERTY_RUNS });
  });
});
