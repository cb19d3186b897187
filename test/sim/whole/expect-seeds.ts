// Runs a range of seeds and fails with the seed, the broken invariant and the
// replay command of the first schedule that breaks one.

import { expect } from "vitest";
import { runSeed } from "./explore.js";

export function expectSeedsPass(from: number, count: number, topologies: ReadonlyArray<readonly number[]>): void {
  for (let seed = from; seed < from + count; seed++) {
    const r = runSeed(seed, { topologies });
    if (!r.ok) {
      const topology = topologies.length === 1 ? ` --topology ${topologies[0]?.join(",")}` : "";
      expect.fail(`seed ${seed} broke an invariant; replay and shrink it with: npm run sim -- --seed ${seed}${topology}\n${r.error}`);
    }
  }
}
