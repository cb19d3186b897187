// The replication decisions of src/core/replication.ts: whom to push to, what
// to send within the window, resending after an ack that shows a gap, and when
// a write counts as acknowledged.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ClusterView, MemberConfig, PeerView } from "../../src/core/cluster-view.js";
import { asNodeId, asRegionId } from "../../src/core/ids.js";
import {
  allAcked,
  clockSkewed,
  highestRankedLeader,
  highestSeqs,
  inflightOps,
  markSent,
  medianOffsetMs,
  onAck,
  planSend,
  pushTargets,
  regionAcked,
  sendStateFrom,
  usableClockSample,
} from "../../src/core/replication/decisions.js";
import { planOpCount } from "../../src/core/replication-plan.js";
import type { VersionVector } from "../../src/core/version-vector.js";

const m = (node: string, region: string, priority: number): MemberConfig => ({ node: asNodeId(node), region: asRegionId(region), priority });
const MEMBERS = [m("a1", "A", 3), m("a2", "A", 2), m("a3", "A", 1), m("b1", "B", 2), m("b2", "B", 1), m("c1", "C", 1)];

function view(self: string, peers: Partial<Record<string, Partial<PeerView>>>): ClusterView {
  const map = new Map<string, PeerView>();
  for (const mem of MEMBERS) {
    if (mem.node === self) continue;
    const p = peers[mem.node];
    map.set(mem.node, { node: mem.node, region: mem.region, up: p !== undefined, vv: {}, role: "follower", epoch: 0, leader: "", ...p });
  }
  return { self: MEMBERS.find((x) => x.node === self) as MemberConfig, members: MEMBERS, peers: map };
}

describe("leadership before elections", () => {
  it("is the best-ranked reachable node of the region", () => {
    expect(highestRankedLeader(view("a2", { a1: {}, a3: {} }), "A")).toBe("a1");
    expect(highestRankedLeader(view("a2", { a3: {} }), "A")).toBe("a2");
    expect(highestRankedLeader(view("a3", {}), "A")).toBe("a3");
  });
  it("for another region prefers the node that claims to lead it", () => {
    expect(highestRankedLeader(view("a1", { b1: {}, b2: { role: "leader", epoch: 3 } }), "B")).toBe("b2");
    expect(highestRankedLeader(view("a1", { b1: {}, b2: {} }), "B")).toBe("b1");
    expect(highestRankedLeader(view("a1", {}), "B")).toBeNull();
  });
});

describe("push targets", () => {
  it("a leader feeds its followers and the other regions' leaders", () => {
    const v = view("a1", { a2: {}, a3: {}, b1: { role: "leader", epoch: 1 }, b2: {}, c1: { role: "leader", epoch: 1 } });
    expect(pushTargets(v, (r) => highestRankedLeader(v, r))).toEqual(["a2", "a3", "b1", "c1"]);
  });
  it("a follower pushes only to its leader", () => {
    const v = view("a2", { a1: {}, a3: {}, b1: {} });
    expect(pushTargets(v, (r) => highestRankedLeader(v, r))).toEqual(["a1"]);
  });
  it("skips peers that are down", () => {
    const v = view("a1", { a3: {} });
    expect(pushTargets(v, (r) => highestRankedLeader(v, r))).toEqual(["a3"]);
  });
});

describe("send window", () => {
  it("never has more than the window in flight and resends from a gap", () => {
    let s = sendStateFrom({ x: 2 });
    const local: VersionVector = { x: 100, y: 5 };
    const plan = planSend(s, local, 50);
    expect(planOpCount(plan)).toBe(50);
    const sent = markSent(s, { x: 52 });
    s = sent.state;
    expect(inflightOps(s)).toBe(50);
    expect(planOpCount(planSend(s, local, 50))).toBe(0);
    // The peer acked the batch but has only x:10 (it dropped ops past a gap).
    s = onAck(s, sent.batch, { x: 10 });
    expect(s.sent.x).toBe(10);
    expect(planSend(s, local, 50)[0]).toMatchObject({ origin: "x", fromSeq: 11 });
  });
  it("converges: repeated plan/send/ack reaches the local vector (property)", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom("x", "y", "z"), fc.integer({ min: 0, max: 300 })), fc.integer({ min: 1, max: 64 }), (local, windowOps) => {
        let s = sendStateFrom({});
        let peer: Record<string, number> = {};
        for (let round = 0; round < 2000; round++) {
          const plan = planSend(s, local, windowOps);
          if (plan.length === 0) break;
          const max: Record<string, number> = {};
          for (const r of plan) max[r.origin] = r.toSeq;
          const { state, batch } = markSent(s, max);
          peer = { ...peer, ...max };
          s = onAck(state, batch, peer);
        }
        for (const [k, v] of Object.entries(local)) expect(peer[k] ?? 0).toBe(v);
      }),
    );
  });
});

describe("acknowledgement", () => {
  it("region: a majority of the region including this node", () => {
    expect(regionAcked(view("a1", { a2: { vv: { a1: 5 } } }), asNodeId("a1"), 5, { a1: 5 })).toBe(true);
    expect(regionAcked(view("a1", { a2: { vv: { a1: 4 } }, a3: { vv: { a1: 4 } } }), asNodeId("a1"), 5, { a1: 5 })).toBe(false);
    expect(regionAcked(view("a1", { a2: { vv: { a1: 5 } }, a3: { vv: { a1: 5 } } }), asNodeId("a1"), 5, { a1: 4 })).toBe(true);
  });
  it("all: every other region's leader has it", () => {
    const v = view("a1", { b1: { role: "leader", epoch: 1, vv: { a1: 7 } }, c1: { role: "leader", epoch: 1, vv: { a1: 6 } } });
    expect(allAcked(v, asNodeId("a1"), 6, (r) => highestRankedLeader(v, r))).toBe(true);
    expect(allAcked(v, asNodeId("a1"), 7, (r) => highestRankedLeader(v, r))).toBe(false);
    const noC = view("a1", { b1: { role: "leader", epoch: 1, vv: { a1: 7 } } });
    expect(allAcked(noC, asNodeId("a1"), 1, (r) => highestRankedLeader(noC, r))).toBe(false);
  });
});

describe("clock skew", () => {
  it("refuses when the median offset is past the bound", () => {
    expect(clockSkewed([], 500)).toBe(false);
    expect(clockSkewed([10, -20, 30], 500)).toBe(false);
    expect(clockSkewed([600, 700, -10], 500)).toBe(true);
    expect(clockSkewed([-900, -800], 500)).toBe(true);
  });
  it("one bad clock of three: only the bad node is skewed, not the good ones it is far from", () => {
    // Offsets are (this node - peer). a and b agree; c is 20 s ahead of both.
    const a = [-5, -20_000]; // a measures b (near) and c (far)
    const b = [5, -19_995];
    const c = [20_000, 19_995];
    expect(clockSkewed(a, 500)).toBe(false);
    expect(clockSkewed(b, 500)).toBe(false);
    expect(clockSkewed(c, 500)).toBe(true);
    // The median of a's two offsets is 10 s: the rule it replaces flagged a good clock.
    expect(Math.abs(medianOffsetMs(a) as number)).toBeGreaterThan(500);
  });
  it("a clock found skewed is good again only well inside the bound, so one hovering at it does not flap", () => {
    expect(clockSkewed([510, 505], 500)).toBe(true);
    expect(clockSkewed([495, 490], 500)).toBe(false);
    expect(clockSkewed([495, 490], 500, true)).toBe(true);
    expect(clockSkewed([399, 390], 500, true)).toBe(false);
  });
  it("skewed means far from a strict majority of the peers measured", () => {
    expect(clockSkewed([600, 700, 10, 20], 500)).toBe(false); // 2 of 4: a tie is not a majority
    expect(clockSkewed([600, 700, 900, 20], 500)).toBe(true);
    expect(clockSkewed([501], 500)).toBe(true); // one peer: two clocks cannot tell who is wrong
    expect(clockSkewed([500], 500)).toBe(false);
  });
});

describe("sender knowledge and clock samples", () => {
  it("a batch's highest seq per origin is what its sender surely has", () => {
    expect(highestSeqs([{ origin: "x", seq: 3 }, { origin: "y", seq: 1 }, { origin: "x", seq: 5 }])).toEqual({ x: 5, y: 1 });
    expect(highestSeqs([])).toEqual({});
  });
  it("only quick round trips estimate a clock offset", () => {
    expect(usableClockSample(5, 500)).toBe(true);
    expect(usableClockSample(250, 500)).toBe(true);
    expect(usableClockSample(251, 500)).toBe(false);
  });
});
