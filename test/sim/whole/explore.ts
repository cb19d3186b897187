// One schedule per seed: the seed picks the schedule (through fast-check, so a
// failure shrinks to a minimal schedule) and replays it exactly. The tests,
// the `npm run sim` command line and campaigns all go through here.

import fc from "fast-check";
import { setMutation, type Mutation } from "../../../src/core/mutations.js";
import { runSchedule, scheduleArb, snapshotScheduleArb, type RunResult, type Schedule } from "./schedule.js";

/** Wall-clock bound on shrinking one failure. */
export const SHRINK_TIME_LIMIT_MS = 120_000;

export interface SeedResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly result?: RunResult;
  /** On failure: the error of the shrunk schedule, with its trace. */
  readonly error?: string;
  /** On failure: the minimal schedule fast-check shrank to. */
  readonly shrunk?: Schedule;
}

export interface ExploreOptions {
  readonly topologies?: ReadonlyArray<readonly number[]>;
  readonly mutation?: Mutation | null;
  /** Which schedules: the base ones (default), or the ones that add snapshot faults (snapshotScheduleArb). */
  readonly schedules?: "base" | "snapshots";
  /** Shrink a failure to a minimal schedule (slower; the CLI does, a mutation test need not). */
  readonly shrink?: boolean;
}

function arbOf(o: ExploreOptions): fc.Arbitrary<Schedule> {
  return o.schedules === "snapshots" ? snapshotScheduleArb(o.topologies) : scheduleArb(o.topologies);
}

/** The schedule of `seed` (of the base schedules, or of the snapshot ones). */
export function scheduleOf(seed: number, topologies?: ReadonlyArray<readonly number[]>, schedules: ExploreOptions["schedules"] = "base"): Schedule {
  const [s] = fc.sample(arbOf({ ...(topologies === undefined ? {} : { topologies }), schedules }), { seed, numRuns: 1 });
  return s as Schedule;
}

/** Runs the schedule of `seed` with every check; on failure, shrinks it when asked. */
export function runSeed(seed: number, o: ExploreOptions = {}): SeedResult {
  setMutation(o.mutation ?? null);
  try {
    let result: RunResult | undefined;
    try {
      result = runSchedule(scheduleOf(seed, o.topologies, o.schedules));
      return { seed, ok: true, result };
    } catch (err) {
      if (!o.shrink) return { seed, ok: false, error: String(err instanceof Error ? err.message : err) };
    }
    const details = fc.check(
      fc.property(arbOf(o), (s) => {
        runSchedule(s);
      }),
      // Shrinking replays the schedule hundreds of times: bounded, it reports the smallest found so far.
      { seed, numRuns: 1, interruptAfterTimeLimit: SHRINK_TIME_LIMIT_MS },
    );
    const shrunk = details.counterexample?.[0];
    let error = String(details.errorInstance instanceof Error ? details.errorInstance.message : details.errorInstance);
    if (shrunk !== undefined) {
      try {
        runSchedule(shrunk);
      } catch (err) {
        error = String(err instanceof Error ? err.message : err);
      }
    }
    return { seed, ok: false, error, ...(shrunk !== undefined ? { shrunk } : {}) };
  } finally {
    setMutation(null);
  }
}
