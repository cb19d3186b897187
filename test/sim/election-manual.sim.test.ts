// Simulation of manual failover: the same fault schedules as the automatic
// suite, with operator promotes (refused when a leader is alive or the node is
// behind) instead of elections. Safety is checked at every step; after the
// heal the operator promotes the best-ranked node that agrees (after letting
// it pull what the others have), and that leader must then hold.
import fc from "fast-check";
import { describe, it } from "vitest";
import { QUIET, scenarioArb, simulate } from "./scenario.js";

describe("election simulation, manual failover", () => {
  it("3 nodes: safe under any fault schedule; an operator promote after the heal holds", async () => {
    await fc.assert(fc.asyncProperty(scenarioArb(3, "manual"), simulate), QUIET);
  });

  it("5 nodes: safe under any fault schedule; an operator promote after the heal holds", async () => {
    await fc.assert(fc.asyncProperty(scenarioArb(5, "manual"), simulate), QUIET);
  });
});
