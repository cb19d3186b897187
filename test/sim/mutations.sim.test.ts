// The checker can fail: each test switches off one guard of the real code
// (src/core/mutations.ts) and the whole-cluster simulator must catch it
// within its CI budget of schedules, with the check that guard exists for.

import { describe, expect, it } from "vitest";
import type { Mutation } from "../../src/core/mutations.js";
import { yieldToEventLoop } from "../support/yield-loop.js";
import { runSeed } from "./whole/explore.js";

/** Schedules a mutation may take before the simulator catches it. */
const BUDGET = 150;

const cases: ReadonlyArray<{ mutation: Mutation; caughtBy: RegExp; schedules?: "snapshots" }> = [
  { mutation: "no-majority-acceptance", caughtBy: /took office in epoch \d+ of \S+ with \d+ durable votes/ },
  { mutation: "lww-by-wall-clock", caughtBy: /the HLC went back/ },
  { mutation: "no-vv-dedupe", caughtBy: /applied \S+ twice/ },
  { mutation: "no-fence-check", caughtBy: /under the stale fence/ },
  { mutation: "ack-before-durable", caughtBy: /at ack=region while only \d+ of \d+ nodes/ },
  { mutation: "compact-unstable", caughtBy: /compacted \S+ up to \d+ while \S+ holds only/ },
  // Only the snapshot schedules make nodes install snapshots (lost disks, members forgotten within seconds).
  { mutation: "install-keeps-covered", caughtBy: /resurrected kv \S+ in a snapshot install/, schedules: "snapshots" },
  { mutation: "fold-without-context", caughtBy: /replicas differ after the quiet period/ },
];

describe("mutation switches: every broken guard is caught", () => {
  for (const { mutation, caughtBy, schedules } of cases) {
    it(`${mutation} is caught within ${BUDGET} schedules`, async () => {
      for (let seed = 1; seed <= BUDGET; seed++) {
        await yieldToEventLoop();
        const r = runSeed(seed, { mutation, ...(schedules === undefined ? {} : { schedules }) });
        if (r.ok) continue;
        expect(r.error, `seed ${seed} failed, but not with the check for ${mutation}`).toMatch(caughtBy);
        // The same schedule passes with the guard in place: the mutation, not the schedule, broke it.
        expect(runSeed(seed, schedules === undefined ? {} : { schedules }).ok).toBe(true);
        return;
      }
      expect.fail(`${BUDGET} schedules ran with ${mutation} and no check failed`);
    }, 600_000);
  }
});
