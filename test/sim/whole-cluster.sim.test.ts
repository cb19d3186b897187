// The whole-cluster simulator in CI: three regions of three nodes, each
// schedule from its seed (test/sim/whole). A failure names its seed and the
// command that replays it; `npm run sim -- --seed N` also shrinks it.

import { describe, expect, it } from "vitest";
import { runSeed } from "./whole/explore.js";
import { expectSeedsPass } from "./whole/expect-seeds.js";

describe("whole cluster, 3 regions x 3 nodes, on the real core", () => {
  for (let from = 1; from <= 300; from += 50) {
    it(`schedules of seeds ${from}..${from + 49} keep every invariant`, async () => {
      await expectSeedsPass(from, 50, [[3, 3, 3]]);
    }, 600_000);
  }

  it("a schedule replays exactly from its seed", () => {
    const a = runSeed(7, { topologies: [[3, 3, 3]] });
    const b = runSeed(7, { topologies: [[3, 3, 3]] });
    expect(a.ok).toBe(true);
    expect(b.result).toEqual(a.result);
  }, 60_000);
});
