// The whole-cluster simulator in CI with larger regions: a region of five and
// one of seven nodes (each next to a region of three).

import { describe, it } from "vitest";
import { expectSeedsPass } from "./whole/expect-seeds.js";

describe("whole cluster with 5- and 7-node regions, on the real core", () => {
  for (let from = 1; from <= 100; from += 50) {
    it(`a 5-node and a 3-node region: seeds ${from}..${from + 49}`, async () => {
      await expectSeedsPass(from, 50, [[5, 3]]);
    }, 600_000);
    it(`a 7-node and a 3-node region: seeds ${from}..${from + 49}`, async () => {
      await expectSeedsPass(from, 50, [[7, 3]]);
    }, 600_000);
  }
});
