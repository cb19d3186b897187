// Simulation of automatic failover: fast-check draws fault schedules (crashes,
// restarts, stalls, partitions both ways and one way, nodes isolated from
// their region but not from the others, lossy, duplicating and reordering
// links, operator stepdowns and promotes) for 3- and 5-node regions, and every
// run checks the election's invariants at every step (one leader per epoch,
// only with a majority of durable votes, epochs never back, no acknowledged
// write lost, minority leaders step down within the lease, no suspicion for a
// silence a node slept through, the other regions never fence this one at an
// epoch no leader won), then after a heal that a leader comes within 10
// election timeouts and nothing moves after.
// A failure prints the seed and path, the shrunk schedule one fault per line
// and the last events of the run; replay it with
//   FC_SEED=<seed> FC_PATH=<path> npx vitest run test/sim -t "<test name>"
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QUIET, runScenario, scenarioArb, simulate } from "./scenario.js";

describe("election simulation, automatic failover", () => {
  it("3 nodes: safe under any fault schedule, live and stable after the heal", async () => {
    await fc.assert(fc.asyncProperty(scenarioArb(3, "auto"), simulate), QUIET);
  });

  it("5 nodes: safe under any fault schedule, live and stable after the heal", async () => {
    await fc.assert(fc.asyncProperty(scenarioArb(5, "auto"), simulate), QUIET);
  });

  it("replays a run exactly from its scenario (same seed, same schedule, same result)", () => {
    const sc = fc.sample(scenarioArb(5, "auto"), { numRuns: 1, seed: 42 })[0];
    if (sc === undefined) throw new Error("no sample");
    expect(runScenario(sc)).toEqual(runScenario(sc));
  });
});
