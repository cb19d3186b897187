// The whole-cluster simulator on the schedules that make nodes bootstrap
// from snapshots (snapshotScheduleArb): lost disks, crashes of a receiver
// while it stages rows, inside the install or right after it, streams cut by
// a partition, and a leader cut off right after a write while its region
// elects another that compacts past it. Every check of the base schedules
// holds, and those of snapshots: no kv version comes back that the
// snapshot's vector covers, none beyond it goes, own ops kept beyond a
// snapshot reach every node, no dot is reused, nothing acknowledged is lost
// unless every disk that held it was lost.

import { describe, expect, it } from "vitest";
import { runSeed } from "./whole/explore.js";
import { expectSeedsPass } from "./whole/expect-seeds.js";
import type { RunResult } from "./whole/schedule.js";

const FROM = 17;
const COUNT = 12;

describe("whole cluster with snapshots, on the real core", () => {
  it(`snapshot schedules of seeds ${FROM}..${FROM + COUNT - 1} keep every invariant, and install snapshots of every kind`, async () => {
    const results: RunResult[] = await expectSeedsPass(FROM, COUNT, [[3, 3, 3], [5, 3], [7, 3]], "snapshots");
    const sum = (f: (r: RunResult) => number): number => results.reduce((n, r) => n + f(r), 0);
    const withInstalls = results.filter((r) => r.installs > 0).length;
    const counts = {
      installs: sum((r) => r.installs),
      afterWipe: sum((r) => r.installsAfterWipe),
      afterInstallCrash: sum((r) => r.installsAfterInstallCrash),
      keepingOwnWrites: sum((r) => r.installsKeepingOwnWrites),
      crashesStaging: sum((r) => r.snapshotCrashes.staging),
      crashesInstalling: sum((r) => r.snapshotCrashes.installing),
      cuts: sum((r) => r.snapshotCuts),
    };
    // Most schedules install at least one snapshot, and the range holds each kind the schedules aim at.
    expect(withInstalls, JSON.stringify(counts)).toBeGreaterThan(COUNT / 2);
    expect(counts.afterWipe, "installs on a node that lost its disk").toBeGreaterThan(0);
    expect(counts.afterInstallCrash, "installs on a node that crashed inside an earlier install").toBeGreaterThan(0);
    expect(counts.keepingOwnWrites, "installs that kept a deposed leader's own writes beyond the snapshot").toBeGreaterThan(0);
    expect(counts.crashesInstalling, "crashes inside an install").toBeGreaterThan(0);
    expect(counts.cuts, "streams cut by a partition").toBeGreaterThan(0);
  }, 600_000);

  // Seed 35 of the snapshot schedules: a liveness bug of the snapshot rules, not fixed yet (it needs a
  // protocol change in src/node/snapshots.ts). r1-3 began streaming a snapshot to r1-1 and dropped it once
  // r1-1 had caught up from another one ("no longer wanted"); nothing tells the receiver, so r1-1 keeps
  // that stream as under way, and takesSnapshot refuses every other sender's snapshot while its link to
  // r1-3 is up. r1-1 needed r2-2's ops, which r2-2 had compacted: its region never converges. When this
  // test fails, the bug is fixed: make it a plain regression test.
  it("seed 35 (snapshots): a stream its sender dropped no longer blocks the receiver's other snapshots once it is idle (it did, for good)", () => {
    const r = runSeed(35, { schedules: "snapshots" });
    expect(r.ok, r.error).toBe(true);
  }, 120_000);
});
