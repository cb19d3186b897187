// Runs a range of seeds and fails with the seed, the broken invariant and the
// replay command of the first schedule that breaks one.

import { expect } from "vitest";
import { yieldToEventLoop } from "../../support/yield-loop.js";
import { runSeed } from "./explore.js";

export async function expectSeedsPass(from: number, count: number, topologies: ReadonlyArray<readonly number[]>): Promise<void> {
  for (let seed = from; seed < from + count; seed++) {
    await yieldToEventLoop();
    const r = runSeed(seed, { topologies });
    if (!r.ok) {
      const topology = topologies.length === 1 ? ` --topology ${topologies[0]?.join(",")}` : "";
      expect.fail(`seed ${seed} broke an invariant; replay and shrink it with: npm run sim -- --seed ${seed}${topology}\n${r.error}`);
    }
  }
}
