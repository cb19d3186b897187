// Fixed schedules that once failed a simulation suite, kept as they were
// found (the exact Scenario, not a fast-check seed, so that changes to the
// arbitraries cannot silently turn them into different runs). Each entry
// says what went wrong and which fix made it pass.
import { describe, expect, it } from "vitest";
import { runScenario, type Scenario } from "./scenario.js";

/**
 * Checker bug: n2 is cut off from the start (n2 -> n1 cut, n3 stalled), yet
 * takes office legitimately at 2005 ms: its coordinator, sent at 2000 ms just
 * before n2 -> n3 was cut, sat in stalled n3's socket buffer, and n3 accepted
 * on waking over the open n3 -> n2 link. Its lease runs from that acceptance
 * and it steps down by ~2500 ms, but the lease check counted from the cut-off
 * (0 ms) and reported it still leading 2005 ms after losing the majority.
 * Fixed by counting the lease from the latest of cut-off, wake and taking office.
 * Since the pre-vote a promote asks first and this schedule no longer gets
 * that far; it is kept as found.
 */
const LEASE_FROM_TAKING_OFFICE: Scenario = {
  priorities: [0, 0, 0],
  failover: "manual",
  preempt: false,
  seed: 0,
  faults: [
    { at: 0, kind: "oneway", from: 4, to: 0 },
    { at: 0, kind: "stall", node: 2, ms: 2002 },
    { at: 2000, kind: "promote", node: 4 },
    { at: 2001, kind: "oneway", from: 4, to: 2 },
  ],
};

/**
 * Checker bug, the same family (found while fixing the one above): n5 leads
 * epoch 1 from ~654 ms. At 990 ms n5 -> n1 and n5 -> n2 are cut; at 1000 ms
 * n4 and n3 stall, so n5 reaches a majority no more. n3 wakes at 1300 ms,
 * reachable both ways (still a minority with n5); n5 -> n4 is cut at 1370 ms,
 * and n4, waking at 1380 ms, answers the heartbeats (rounds up to ~1354 ms)
 * that waited in its buffer over the open n4 -> n5. With n3's fresh acks that
 * is a valid lease of 3 of 5 until ~1850 ms, but the check counted from the
 * cut-off (1000 ms) and failed at 1602 ms. Fixed by also counting from the
 * arrival of the latest of the leader's messages a stalled peer read on waking.
 */
const LEASE_FROM_BUFFERED_ROUND: Scenario = {
  priorities: [0, 0, 0, 0, 0],
  failover: "auto",
  preempt: false,
  seed: 1,
  faults: [
    { at: 990, kind: "oneway", from: 4, to: 0 },
    { at: 990, kind: "oneway", from: 4, to: 1 },
    { at: 1000, kind: "stall", node: 3, ms: 380 },
    { at: 1000, kind: "stall", node: 2, ms: 300 },
    { at: 1370, kind: "oneway", from: 4, to: 3 },
  ],
};

/**
 * Checker bug, found by the 20-run loop (seed 931151773): n1 follows n3
 * (epoch 2) and stalls from 3283 to 3581 ms with nothing changing meanwhile.
 * But n3 -> n2 was cut at 3023 ms, so n2, the best-ranked node, suspects n3
 * for real at 3625 ms and proclaims epoch 3; with preempt, n1 accepts it over
 * its live leader, as it should (n2 outranks n3). The stall guard took that for
 * n1 dropping n3 over a silence it slept through. Fixed by letting the guard
 * pass when the node follows, in a newer epoch, a node that outranks its old
 * leader under preempt.
 */
const PREEMPT_AFTER_A_STALL: Scenario = {
  priorities: [0, 3, 0],
  failover: "auto",
  preempt: true,
  seed: 1059467380,
  faults: [
    { at: 0, kind: "partition", groups: [0, 2, 2, 0, 0] },
    { at: 911, kind: "partition", groups: [1, 0, 1, 0, 0] },
    { at: 2921, kind: "partition", groups: [2, 2, 2, 0, 0] },
    { at: 3023, kind: "oneway", from: 2, to: 4 },
    { at: 3175, kind: "stall", node: 1, ms: 50 },
    { at: 3283, kind: "stall", node: 0, ms: 298 },
  ],
};

describe("election simulation, fixed regressions", () => {
  it("a leader that took office while cut off is held to a lease from taking office, not from the cut", () => {
    expect(() => runScenario(LEASE_FROM_TAKING_OFFICE)).not.toThrow();
  });

  it("a leader whose rounds sent while cut off come back from a stalled peer's buffer is held to a lease from those rounds", () => {
    expect(() => runScenario(LEASE_FROM_BUFFERED_ROUND)).not.toThrow();
  });

  it("a node that wakes to a higher-ranked node's takeover under preempt passes the stall guard", () => {
    expect(() => runScenario(PREEMPT_AFTER_A_STALL)).not.toThrow();
  });
});
