// Runs a range of seeds and fails with the seed, the broken invariant and the
// replay command of the first schedule that breaks one.

import { expect } from "vitest";
import { yieldToEventLoop } from "../../support/yield-loop.js";
import { runSeed } from "./explore.js";
import type { RunResult } from "./schedule.js";

export async function expectSeedsPass(from: number, count: number, topologies: ReadonlyArray<readonly number[]>, schedules: "base" | "snapshots" = "base"): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (let seed = from; seed < from + count; seed++) {
    await yieldToEventLoop();
    const r = runSeed(seed, { topologies, schedules });
    if (!r.ok) {
      const topology = topologies.length === 1 ? ` --topology ${topologies[0]?.join(",")}` : "";
      const kind = schedules === "snapshots" ? " --snapshots" : "";
      expect.fail(`seed ${seed} broke an invariant; replay and shrink it with: npm run sim -- --seed ${seed}${topology}${kind}\n${r.error}`);
    }
    if (r.result !== undefined) results.push(r.result);
  }
  return results;
}
