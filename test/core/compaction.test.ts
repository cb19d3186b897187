// Causal stability and op-log compaction (src/core/compaction.ts): the
// frontier and the step planner against small models; a model cluster whose
// replicas compact at random moments from stale reports, where no op some
// member lacks is ever forgotten and every replica ends in the same state;
// and the replication machine, which streams nothing to a peer that needs
// ops below its compacted floor and says so once.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MemberConfig } from "../../src/core/cluster-view.js";
import { needsCompactedOps, planCompactionStep, pointwiseMin, stabilityFrontier, type CompactionInput } from "../../src/core/compaction.js";
import { asNodeId, asRegionId, type NodeId } from "../../src/core/ids.js";
import { initReplication, SNAPSHOT_INSTALL_TIMEOUTS, SNAPSHOTS_AT_ONCE, snapshotWanted, step } from "../../src/core/replication/machine.js";
import { stableVvOf, tombstoneHorizonOf } from "../../src/core/replication/stability.js";
import type { Leadership, ReplConfig, ReplInput, ReplOutput, ReplState } from "../../src/core/replication/types.js";
import { dominates, mergeVv, vvGet, type VersionVector } from "../../src/core/version-vector.js";

const ORIGINS = ["n1", "n2", "n3", "n4"] as const;

// Few origins and small seqs, so equal, ordered and concurrent vectors are all
// common. Explicit zeros appear, and (fast-check's default) null prototypes.
const vvArb = (max = 20): fc.Arbitrary<VersionVector> => fc.dictionary(fc.constantFrom(...ORIGINS), fc.nat({ max }), { maxKeys: ORIGINS.length });

/** The scalar model of a pointwise minimum: per origin, the least entry (0 when missing), zeros left out. */
function modelMin(vectors: readonly VersionVector[]): VersionVector {
  const out: Record<string, number> = {};
  for (const o of ORIGINS) {
    const m = Math.min(...vectors.map((v) => vvGet(v, o)));
    if (m > 0) out[o] = m;
  }
  return out;
}

/** The scalar model of the frontier: per origin, min(own, max(persisted, min(own, reports))). */
function modelFrontier(own: VersionVector, reported: readonly VersionVector[], persisted: VersionVector): VersionVector {
  const out: Record<string, number> = {};
  for (const o of ORIGINS) {
    const fresh = Math.min(vvGet(own, o), ...reported.map((r) => vvGet(r, o)));
    const f = Math.min(vvGet(own, o), Math.max(vvGet(persisted, o), fresh));
    if (f > 0) out[o] = f;
  }
  return out;
}

const sumOf = (xs: Iterable<number>): number => {
  let n = 0;
  for (const x of xs) n += x;
  return n;
};

describe("pointwiseMin", () => {
  it("is, per origin, the least entry over the vectors; an origin missing from any vector (or 0) is left out", () => {
    fc.assert(
      fc.property(fc.array(vvArb(), { minLength: 1, maxLength: 5 }), (vectors) => {
        const m = pointwiseMin(vectors);
        expect(m).toEqual(modelMin(vectors));
        for (const [o, seq] of Object.entries(m)) expect(seq, o).toBeGreaterThan(0);
        for (const v of vectors) expect(dominates(v, m)).toBe(true);
      }),
    );
  });

  it("needs at least one vector", () => {
    expect(() => pointwiseMin([])).toThrow(/at least one/);
  });
});

describe("stabilityFrontier", () => {
  const inputArb = fc.record({ own: vvArb(), reported: fc.array(vvArb(), { maxLength: 4 }), persisted: vvArb() });

  it("matches the per-origin model min(own, max(persisted, min(own, reports)))", () => {
    fc.assert(
      fc.property(inputArb, ({ own, reported, persisted }) => {
        expect(stabilityFrontier(own, reported, persisted)).toEqual(modelFrontier(own, reported, persisted));
      }),
    );
  });

  it("is never above this node's own vector, and never below min(own, persisted)", () => {
    fc.assert(
      fc.property(inputArb, ({ own, reported, persisted }) => {
        const f = stabilityFrontier(own, reported, persisted);
        expect(dominates(own, f), "own covers the frontier").toBe(true);
        for (const o of ORIGINS) expect(vvGet(f, o), o).toBeGreaterThanOrEqual(Math.min(vvGet(own, o), vvGet(persisted, o)));
      }),
    );
  });

  it("with nothing persisted, is the plain minimum of own and every report", () => {
    fc.assert(
      fc.property(inputArb, ({ own, reported }) => {
        expect(stabilityFrontier(own, reported, {})).toEqual(pointwiseMin([own, ...reported]));
      }),
    );
  });

  it("is monotone: a member's higher report, a higher own vector or a higher persisted one never lowers it", () => {
    fc.assert(
      fc.property(inputArb, vvArb(), fc.nat({ max: 5 }), ({ own, reported, persisted }, bump, which) => {
        const before = stabilityFrontier(own, reported, persisted);
        const i = which % (reported.length + 2);
        const after =
          i < reported.length
            ? stabilityFrontier(
                own,
                reported.map((r, j) => (j === i ? mergeVv(r, bump) : r)),
                persisted,
              )
            : i === reported.length
              ? stabilityFrontier(mergeVv(own, bump), reported, persisted)
              : stabilityFrontier(own, reported, mergeVv(persisted, bump));
        expect(dominates(after, before), `raising input ${i}`).toBe(true);
      }),
    );
  });

  it("a report from one more member that covers the frontier leaves it where it was", () => {
    fc.assert(
      fc.property(inputArb, vvArb(), ({ own, reported, persisted }, bump) => {
        const before = stabilityFrontier(own, reported, persisted);
        expect(stabilityFrontier(own, [...reported, mergeVv(before, bump)], persisted)).toEqual(before);
      }),
    );
  });
});

// ---- planCompactionStep ------------------------------------------------------

/**
 * Realistic step inputs: per origin a floor, a contiguous log above it
 * (logVv >= floor), and a frontier that may sit below the floor, inside the
 * log or past it; logOps counts the log's rows (plus, sometimes, a few more).
 */
const compactionArb: fc.Arbitrary<CompactionInput> = fc
  .record({
    per: fc.uniqueArray(
      fc.record({
        origin: fc.constantFrom(...ORIGINS),
        floor: fc.oneof(fc.constant(0), fc.nat({ max: 30 })),
        logged: fc.nat({ max: 30 }),
        // The frontier anywhere, or just around the floor (an origin that can give one or two ops).
        stable: fc.oneof(fc.constant(0), fc.nat({ max: 70 })),
        nearFloor: fc.option(fc.integer({ min: -1, max: 2 }), { nil: undefined }),
      }),
      { maxLength: 4, selector: (x) => x.origin },
    ),
    extraRows: fc.oneof(fc.constant(0), fc.nat({ max: 5 })),
    retainOps: fc.oneof(fc.nat({ max: 10 }), fc.nat({ max: 80 })),
    maxOps: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 100 })),
  })
  .map(({ per, extraRows, retainOps, maxOps }) => {
    const floor: Record<string, number> = {};
    const logVv: Record<string, number> = {};
    const stable: Record<string, number> = {};
    for (const p of per) {
      if (p.floor > 0) floor[p.origin] = p.floor;
      if (p.floor + p.logged > 0) logVv[p.origin] = p.floor + p.logged;
      const st = p.nearFloor === undefined ? p.stable : p.floor + p.nearFloor;
      if (st > 0) stable[p.origin] = st;
    }
    const logOps = sumOf(per.map((p) => p.logged)) + extraRows;
    return { logOps, retainOps, stable, floor, logVv, maxOps };
  });

/** Per origin, the ops a step could remove: from the floor up to min(stable, logVv). */
function removableOf(i: CompactionInput): Map<string, number> {
  const out = new Map<string, number>();
  for (const o of ORIGINS) {
    const n = Math.min(vvGet(i.stable, o), vvGet(i.logVv, o)) - vvGet(i.floor, o);
    if (n > 0) out.set(o, n);
  }
  return out;
}

const removedBy = (i: CompactionInput, target: VersionVector): number => sumOf(Object.entries(target).map(([o, seq]) => seq - vvGet(i.floor, o)));

describe("planCompactionStep", () => {
  it("plans nothing while the log is within retainOps", () => {
    fc.assert(
      fc.property(compactionArb, fc.nat({ max: 50 }), (i, slack) => {
        expect(planCompactionStep({ ...i, retainOps: i.logOps + slack })).toBeNull();
      }),
    );
  });

  it("moves every origin it names past its floor, and no further than the frontier or the contiguous log", () => {
    fc.assert(
      fc.property(compactionArb, (i) => {
        const t = planCompactionStep(i);
        if (t === null) return;
        expect(i.logOps).toBeGreaterThan(i.retainOps);
        for (const [o, seq] of Object.entries(t)) {
          expect(Number.isSafeInteger(seq), o).toBe(true);
          expect(seq, `${o} past its floor`).toBeGreaterThan(vvGet(i.floor, o));
          expect(seq, `${o} within the frontier`).toBeLessThanOrEqual(vvGet(i.stable, o));
          expect(seq, `${o} within the log`).toBeLessThanOrEqual(vvGet(i.logVv, o));
        }
      }),
    );
  });

  it("removes at most min(logOps - retainOps, maxOps), exactly that when enough stable ops exist, else all of them", () => {
    fc.assert(
      fc.property(compactionArb, (i) => {
        const t = planCompactionStep(i);
        const bound = Math.min(i.logOps - i.retainOps, i.maxOps);
        const available = sumOf(removableOf(i).values());
        if (bound <= 0 || available === 0) {
          expect(t).toBeNull();
          return;
        }
        expect(t).not.toBeNull();
        const removed = removedBy(i, t as VersionVector);
        expect(removed).toBeLessThanOrEqual(bound);
        expect(removed).toBe(Math.min(bound, available));
      }),
    );
  });

  it("never compacts an origin the frontier does not cover past its floor", () => {
    fc.assert(
      fc.property(compactionArb, (i) => {
        const t = planCompactionStep(i) ?? {};
        for (const o of Object.keys(t)) expect(removableOf(i).has(o), `${o} was not removable`).toBe(true);
      }),
    );
  });

  it("shares the budget in proportion to what each origin could give (at least its rounded-down share)", () => {
    fc.assert(
      fc.property(compactionArb, (i) => {
        const t = planCompactionStep(i);
        if (t === null) return;
        const removable = removableOf(i);
        const total = sumOf(removable.values());
        const budget = Math.min(i.logOps - i.retainOps, i.maxOps, total);
        for (const [o, n] of removable) expect(vvGet(t, o) === 0 ? 0 : vvGet(t, o) - vvGet(i.floor, o), o).toBeGreaterThanOrEqual(Math.floor((n * budget) / total));
      }),
    );
  });

  it("repeated steps end with the log within retainOps or nothing stable left past the floor", () => {
    fc.assert(
      fc.property(compactionArb, (start) => {
        let i = start;
        for (let steps = 0; ; steps++) {
          // Each step removes at least one op: the loop is bounded by the log.
          expect(steps).toBeLessThanOrEqual(start.logOps);
          const t = planCompactionStep(i);
          if (t === null) break;
          i = { ...i, logOps: i.logOps - removedBy(i, t), floor: mergeVv(i.floor, t) };
        }
        expect(i.logOps <= i.retainOps || removableOf(i).size === 0).toBe(true);
        expect(i.logOps).toBe(Math.max(Math.min(start.logOps, i.retainOps), start.logOps - sumOf(removableOf(start).values())));
      }),
    );
  });

  it("throws on a maxOps that is not a positive integer and on a retainOps that is not a non-negative one, whatever the log", () => {
    const base: CompactionInput = { logOps: 100, retainOps: 10, stable: { n1: 50 }, floor: {}, logVv: { n1: 100 }, maxOps: 10 };
    for (const logOps of [0, 100]) {
      for (const maxOps of [0, -1, 1.5, Number.NaN]) expect(() => planCompactionStep({ ...base, logOps, maxOps }), `maxOps ${maxOps}`).toThrow(/maxOps/);
      for (const retainOps of [-1, 1.5]) expect(() => planCompactionStep({ ...base, logOps, retainOps }), `retainOps ${retainOps}`).toThrow(/retainOps/);
    }
    expect(planCompactionStep(base)).toEqual({ n1: 10 });
  });
});

// ---- the core property, on a model cluster ----------------------------------

interface ModelOp {
  readonly origin: string;
  readonly seq: number;
  readonly key: string;
  /** Lamport time: last-writer-wins orders by (lamport, origin), whatever the delivery order. */
  readonly lamport: number;
  readonly value: number;
  readonly delta: number;
}

/** What a replica materializes from its ops: a last-writer-wins register and a counter per key. */
interface ModelState {
  readonly kv: Map<string, { lamport: number; origin: string; value: number }>;
  readonly counters: Map<string, number>;
}

interface Replica {
  readonly id: string;
  /** Durable, contiguous per origin. */
  vv: Record<string, number>;
  /** Per origin, the logged ops above the floor, seq ascending. */
  readonly log: Map<string, ModelOp[]>;
  floor: VersionVector;
  /** The persisted frontier. */
  persisted: VersionVector;
  /** The latest vector each other member reported (in memory: a restart forgets them). */
  reports: Map<string, VersionVector>;
  lamport: number;
  readonly state: ModelState;
}

type Cmd =
  | { readonly t: "write"; readonly r: number; readonly key: string; readonly value: number; readonly delta: number }
  /** `from` sends `to` up to `limit` ops it lacks, from its op log (ops it compacted cannot go). */
  | { readonly t: "sync"; readonly from: number; readonly to: number; readonly limit: number }
  /** `from` puts its durable vector on the wire to `to` (an ack, a ping): it arrives later, or never. */
  | { readonly t: "report"; readonly from: number; readonly to: number }
  | { readonly t: "deliver"; readonly i: number }
  | { readonly t: "compact"; readonly r: number; readonly retainOps: number; readonly maxOps: number }
  /** A process restart: reports and reports in flight to it are gone; the log, floor and persisted frontier stay. */
  | { readonly t: "restart"; readonly r: number };

const idx = fc.nat({ max: 3 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("write" as const), r: idx, key: fc.constantFrom("k1", "k2"), value: fc.nat({ max: 9 }), delta: fc.integer({ min: -3, max: 3 }) }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant("sync" as const), from: idx, to: idx, limit: fc.integer({ min: 1, max: 6 }) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("report" as const), from: idx, to: idx }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("deliver" as const), i: fc.nat({ max: 50 }) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("compact" as const), r: idx, retainOps: fc.nat({ max: 4 }), maxOps: fc.integer({ min: 1, max: 4 }) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("restart" as const), r: idx }), weight: 1 },
);

function emptyState(): ModelState {
  return { kv: new Map(), counters: new Map() };
}

function applyToState(s: ModelState, op: ModelOp): void {
  const cur = s.kv.get(op.key);
  if (cur === undefined || op.lamport > cur.lamport || (op.lamport === cur.lamport && op.origin > cur.origin)) s.kv.set(op.key, { lamport: op.lamport, origin: op.origin, value: op.value });
  s.counters.set(op.key, (s.counters.get(op.key) ?? 0) + op.delta);
}

const plainState = (s: ModelState) => ({ kv: Object.fromEntries(s.kv), counters: Object.fromEntries(s.counters) });

/** Plays a schedule; counts the ops compacted away. Asserts safety at every compaction, convergence at the end. */
function runCluster(n: number, cmds: readonly Cmd[]): number {
  const replicas: Replica[] = ORIGINS.slice(0, n).map((id) => ({ id, vv: {}, log: new Map(), floor: {}, persisted: {}, reports: new Map(), lamport: 0, state: emptyState() }));
  const at = (i: number): Replica => replicas[i % n] as Replica;
  const made: ModelOp[] = [];
  const wire: Array<{ from: string; to: Replica; vv: VersionVector }> = [];
  let compacted = 0;

  const take = (r: Replica, op: ModelOp): void => {
    expect(op.seq, `${r.id} takes ${op.origin}:${op.seq} in order`).toBe(vvGet(r.vv, op.origin) + 1);
    r.vv[op.origin] = op.seq;
    r.lamport = Math.max(r.lamport, op.lamport);
    const log = r.log.get(op.origin) ?? [];
    log.push(op);
    r.log.set(op.origin, log);
    applyToState(r.state, op);
  };

  const sync = (from: Replica, to: Replica, limit: number): void => {
    if (from === to) return;
    let left = limit;
    for (const o of ORIGINS) {
      const log = from.log.get(o) ?? [];
      while (left > 0 && vvGet(to.vv, o) < vvGet(from.vv, o)) {
        const next = log.find((op) => op.seq === vvGet(to.vv, o) + 1);
        if (next === undefined) break; // compacted away: only a snapshot could catch `to` up (the safety check below makes this unreachable)
        take(to, next);
        left--;
      }
    }
  };

  const compact = (r: Replica, retainOps: number, maxOps: number): void => {
    const reported = replicas.filter((m) => m !== r).map((m) => r.reports.get(m.id) ?? {});
    const stable = stabilityFrontier(r.vv, reported, r.persisted);
    for (const m of replicas) expect(dominates(m.vv, stable), `${r.id}'s frontier ${JSON.stringify(stable)} is held by ${m.id} (${JSON.stringify(m.vv)})`).toBe(true);
    r.persisted = stable;
    const logOps = sumOf([...r.log.values()].map((l) => l.length));
    const target = planCompactionStep({ logOps, retainOps, stable, floor: r.floor, logVv: r.vv, maxOps });
    if (target === null) return;
    for (const [o, seq] of Object.entries(target)) {
      for (const m of replicas) expect(seq, `${r.id} compacts ${o} to ${seq}, which ${m.id} lacks`).toBeLessThanOrEqual(vvGet(m.vv, o));
      const log = r.log.get(o) ?? [];
      const kept = log.filter((op) => op.seq > seq);
      compacted += log.length - kept.length;
      r.log.set(o, kept);
    }
    r.floor = mergeVv(r.floor, target);
    expect(sumOf([...r.log.values()].map((l) => l.length))).toBeGreaterThanOrEqual(Math.min(logOps, retainOps));
  };

  for (const c of cmds) {
    switch (c.t) {
      case "write": {
        const r = at(c.r);
        const op: ModelOp = { origin: r.id, seq: vvGet(r.vv, r.id) + 1, key: c.key, lamport: r.lamport + 1, value: c.value, delta: c.delta };
        made.push(op);
        take(r, op);
        break;
      }
      case "sync":
        sync(at(c.from), at(c.to), c.limit);
        break;
      case "report":
        if (at(c.from) !== at(c.to)) wire.push({ from: at(c.from).id, to: at(c.to), vv: { ...at(c.from).vv } });
        break;
      case "deliver": {
        if (wire.length === 0) break;
        const [m] = wire.splice(c.i % wire.length, 1) as [(typeof wire)[number]];
        m.to.reports.set(m.from, mergeVv(m.to.reports.get(m.from) ?? {}, m.vv));
        break;
      }
      case "compact":
        compact(at(c.r), c.retainOps, c.maxOps);
        break;
      case "restart": {
        const r = at(c.r);
        r.reports = new Map();
        for (let i = wire.length - 1; i >= 0; i--) if (wire[i]?.to === r) wire.splice(i, 1);
        break;
      }
      default:
        throw new Error(`unknown command ${JSON.stringify(c satisfies never)}`);
    }
  }

  // Quiet: fresh reports, a compaction each, and full syncs, until nothing moves.
  for (let round = 0; round < n + 2; round++) {
    for (const r of replicas) for (const m of replicas) if (m !== r) r.reports.set(m.id, mergeVv(r.reports.get(m.id) ?? {}, m.vv));
    for (const r of replicas) compact(r, 0, 3);
    for (const a of replicas) for (const b of replicas) sync(a, b, Number.POSITIVE_INFINITY);
  }
  const all = emptyState();
  const allVv: Record<string, number> = {};
  for (const op of made) {
    applyToState(all, op);
    allVv[op.origin] = op.seq;
  }
  for (const r of replicas) {
    expect(r.vv, `${r.id} holds every op`).toEqual(allVv);
    expect(plainState(r.state), `${r.id}'s state`).toEqual(plainState(all));
  }
  return compacted;
}

describe("compaction on a model cluster", () => {
  it("never removes an op some member lacks, and every replica ends in the same state whenever each compacted", () => {
    let compacted = 0;
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4 }), fc.array(cmdArb, { maxLength: 80 }), (n, cmds) => {
        compacted += runCluster(n, cmds);
      }),
    );
    // Not vacuous: the schedules did compact (most of the ops, in the quiet rounds).
    expect(compacted).toBeGreaterThan(1000);
  });
});

// ---- needsCompactedOps -------------------------------------------------------

describe("needsCompactedOps", () => {
  it("is true exactly when some origin of the floor is above the peer's vector", () => {
    fc.assert(
      fc.property(vvArb(6), vvArb(6), (peer, floor) => {
        expect(needsCompactedOps(peer, floor)).toBe(ORIGINS.some((o) => vvGet(peer, o) < vvGet(floor, o)));
      }),
    );
    expect(needsCompactedOps({}, {})).toBe(false);
    expect(needsCompactedOps({ n1: 5 }, { n1: 5 })).toBe(false);
    expect(needsCompactedOps({ n1: 4 }, { n1: 5 })).toBe(true);
    expect(needsCompactedOps({ n1: 9 }, { n1: 5, n2: 1 })).toBe(true);
    expect(needsCompactedOps({ n2: 3 }, { n1: 0 })).toBe(false);
  });
});

// ---- the replication machine --------------------------------------------------

const id = (s: string): NodeId => asNodeId(s);
const PAIR: MemberConfig[] = [
  { node: id("a-1"), region: asRegionId("a"), priority: 1 },
  { node: id("a-2"), region: asRegionId("a"), priority: 0 },
];

function config(self: string, members: readonly MemberConfig[], over: Partial<ReplConfig> = {}): ReplConfig {
  return {
    self: members.find((m) => m.node === self) as MemberConfig,
    members,
    heartbeatMs: 100,
    electionTimeoutMs: 500,
    maxClockSkewMs: 500,
    ackWaitMs: 3000,
    sendWindowOps: 1024,
    frameOpsMax: 512,
    stepOpsMax: 2048,
    memberForgetMs: 3_600_000,
    ...over,
  };
}

const LEADS: Leadership = { active: true, role: "leader", leader: id("a-1"), epoch: 3 };

/** One machine fed by hand; `now` is both the monotonic and the wall clock. */
class Node {
  s: ReplState;
  constructor(self: string, members: readonly MemberConfig[], vv: VersionVector = {}, over: Partial<ReplConfig> = {}) {
    this.s = initReplication(config(self, members, over), vv, 0, 0);
  }
  feed(now: number, input: ReplInput): ReplOutput {
    const out = step(this.s, input, now, now);
    this.s = out.state;
    return out;
  }
}

const opsOf = (out: ReplOutput): string[] => out.send.flatMap(({ to, frame: f }) => (f.t === "ops" ? [`${to} ops#${f.batch} ${f.fence} ${f.range.origin}:${f.range.fromSeq}-${f.range.toSeq}`] : []));
const warnsOf = (out: ReplOutput): string[] => out.events.filter((e) => e.level === "warn").map((e) => e.msg);
const snapshotsOf = (out: ReplOutput): string[] => out.send.flatMap(({ to, frame: f }) => (f.t === "snapshot" ? [`${to} snapshot#${f.id}`] : []));

describe("replication machine with a compacted op log", () => {
  /** a-1 leads region a, committed a-1:1-10 and compacted its log to a-1:5, before a-2's link comes up. */
  function compactedLeader(): Node {
    const n = new Node("a-1", PAIR);
    n.feed(1, { type: "leadership", leadership: LEADS });
    n.feed(2, { type: "committed", vv: { "a-1": 10 } });
    n.feed(3, { type: "compacted", floor: { "a-1": 5 } });
    return n;
  }

  for (const report of ["ping", "ack"] as const) {
    it(`streams no ops to a follower below the floor, asks for one snapshot, and streams past the floor once it reports (${report}) a vector covering it`, () => {
      const n = compactedLeader();
      const up = n.feed(4, { type: "link_up", peer: id("a-2"), vv: {}, epoch: 0 });
      expect(opsOf(up)).toEqual([]);
      expect(snapshotsOf(up)).toEqual(["a-2 snapshot#1"]);
      expect(up.events.map((e) => e.msg).join("\n")).toMatch(/compacted away: sending it a snapshot/);
      expect(n.s.peers.get(id("a-2"))?.needsCompacted).toBe(true);
      // Not again: not on a flush, a tick, a commit, nor a report still below the floor.
      const later: ReplOutput[] = [
        n.feed(5, { type: "flush" }),
        n.feed(100, { type: "tick" }),
        n.feed(150, { type: "committed", vv: { "a-1": 12 } }),
        n.feed(160, { type: "frame", peer: id("a-2"), frame: { t: "ping", wallMs: 160, role: "follower", leader: "a-1", epoch: 3, vv: { "a-1": 4 } } }),
        n.feed(200, { type: "tick" }),
        n.feed(205, { type: "flush" }),
      ];
      for (const out of later) {
        expect(opsOf(out)).toEqual([]);
        expect(snapshotsOf(out)).toEqual([]);
        expect(warnsOf(out)).toEqual([]);
      }
      const covered: ReplOutput =
        report === "ping"
          ? n.feed(210, { type: "frame", peer: id("a-2"), frame: { t: "ping", wallMs: 210, role: "follower", leader: "a-1", epoch: 3, vv: { "a-1": 5 } } })
          : n.feed(210, { type: "frame", peer: id("a-2"), frame: { t: "ack", batch: 0, vv: { "a-1": 5 } } });
      expect(opsOf(covered)).toEqual(["a-2 ops#1 a:3 a-1:6-12"]);
      expect(warnsOf(covered)).toEqual([]);
      expect(n.s.peers.get(id("a-2"))?.needsCompacted).toBe(false);
    });
  }

  it("a follower that holds the floor gets the ops after it at once, with no snapshot; a new episode gets one", () => {
    const n = compactedLeader();
    const up = n.feed(4, { type: "link_up", peer: id("a-2"), vv: { "a-1": 7 }, epoch: 0 });
    expect(opsOf(up)).toEqual(["a-2 ops#1 a:3 a-1:8-10"]);
    expect(snapshotsOf(up)).toEqual([]);
    expect(warnsOf(up)).toEqual([]);
    // The follower comes back empty (its disk replaced): below the floor again.
    n.feed(5, { type: "link_down", peer: id("a-2"), reason: "test" });
    const again = n.feed(6, { type: "link_up", peer: id("a-2"), vv: {}, epoch: 0 });
    expect(opsOf(again)).toEqual([]);
    expect(snapshotsOf(again)).toEqual(["a-2 snapshot#1"]);
  });

  it("a floor raised under a follower's feet stops the stream to it", () => {
    const n = new Node("a-1", PAIR);
    n.feed(1, { type: "leadership", leadership: LEADS });
    n.feed(2, { type: "link_up", peer: id("a-2"), vv: {}, epoch: 0 });
    expect(opsOf(n.feed(3, { type: "committed", vv: { "a-1": 4 } }))).toEqual(["a-2 ops#1 a:3 a-1:1-4"]);
    n.feed(4, { type: "frame", peer: id("a-2"), frame: { t: "ack", batch: 1, vv: { "a-1": 2 } } });
    // The floor passes what a-2 acked (the runtime would not do this; the machine still must not plan from below it).
    const out = n.feed(5, { type: "compacted", floor: { "a-1": 3 } });
    expect(snapshotsOf(out)).toEqual(["a-2 snapshot#1"]);
    expect(opsOf(n.feed(6, { type: "committed", vv: { "a-1": 8 } }))).toEqual([]);
  });
});

describe("snapshots from a compacted leader", () => {
  const TRIO: MemberConfig[] = [
    { node: id("a-1"), region: asRegionId("a"), priority: 2 },
    { node: id("a-2"), region: asRegionId("a"), priority: 1 },
    { node: id("a-3"), region: asRegionId("a"), priority: 0 },
  ];
  const A2 = id("a-2");
  const A3 = id("a-3");

  /** a-1 leads, committed a-1:1-10 and compacted its log to a-1:5, with no link up yet. */
  function leader(): Node {
    const n = new Node("a-1", TRIO);
    n.feed(1, { type: "leadership", leadership: LEADS });
    n.feed(2, { type: "committed", vv: { "a-1": 10 } });
    n.feed(3, { type: "compacted", floor: { "a-1": 5 } });
    return n;
  }
  const ping = (now: number, vv: VersionVector): ReplInput => ({
    type: "frame",
    peer: A2,
    frame: { t: "ping", wallMs: now, role: "follower", leader: "a-1", epoch: 3, vv },
  });

  it(`streams ${SNAPSHOTS_AT_ONCE} snapshot at a time: a second peer that needs one waits until the first went out`, () => {
    expect(SNAPSHOTS_AT_ONCE).toBe(1);
    const n = leader();
    expect(snapshotsOf(n.feed(4, { type: "link_up", peer: A2, vv: {}, epoch: 0 }))).toEqual(["a-2 snapshot#1"]);
    expect(snapshotsOf(n.feed(5, { type: "link_up", peer: A3, vv: {}, epoch: 0 }))).toEqual([]);
    expect(snapshotsOf(n.feed(6, { type: "flush" }))).toEqual([]);
    expect(n.s.peers.get(A3)?.snapshot).toBeNull();
    expect(n.s.peers.get(A3)?.needsCompacted).toBe(true);
    // The first went out whole: the second starts at once, and the first is not sent again.
    expect(snapshotsOf(n.feed(7, { type: "snapshot_sent", peer: A2, id: 1, ok: true }))).toEqual(["a-3 snapshot#2"]);
    expect(snapshotsOf(n.feed(8, { type: "flush" }))).toEqual([]);
  });

  it("a second peer also gets its snapshot once the first one's link goes down", () => {
    const n = leader();
    n.feed(4, { type: "link_up", peer: A2, vv: {}, epoch: 0 });
    n.feed(5, { type: "link_up", peer: A3, vv: {}, epoch: 0 });
    const down = n.feed(6, { type: "link_down", peer: A2, reason: "test" });
    expect(snapshotsOf(down)).toEqual(["a-3 snapshot#2"]);
    expect(n.s.peers.get(A2)?.snapshot).toBeNull();
    expect(snapshotWanted(n.s, A2, 1)).toBe(false);
    // a-2 back: it waits for a-3's, then gets a new one.
    expect(snapshotsOf(n.feed(7, { type: "link_up", peer: A2, vv: {}, epoch: 0 }))).toEqual([]);
    expect(snapshotsOf(n.feed(8, { type: "snapshot_sent", peer: A3, id: 2, ok: true }))).toEqual(["a-2 snapshot#3"]);
  });

  it("a snapshot that could not be sent is cleared, and the next plan asks again under a new id; a report for another id changes nothing", () => {
    const n = leader();
    n.feed(4, { type: "link_up", peer: A2, vv: {}, epoch: 0 });
    expect(snapshotsOf(n.feed(5, { type: "snapshot_sent", peer: A2, id: 7, ok: false, reason: "stray" }))).toEqual([]);
    expect(n.s.peers.get(A2)?.snapshot).toEqual({ id: 1, sentMs: null });
    const failed = n.feed(6, { type: "snapshot_sent", peer: A2, id: 1, ok: false, reason: "read failed" });
    expect(warnsOf(failed).join("\n")).toMatch(/could not be sent/);
    expect(snapshotsOf(failed)).toEqual(["a-2 snapshot#2"]);
    expect(snapshotWanted(n.s, A2, 1)).toBe(false);
    expect(snapshotWanted(n.s, A2, 2)).toBe(true);
  });

  it("a snapshot sent but not installed within SNAPSHOT_INSTALL_TIMEOUTS election timeouts is sent again, not earlier", () => {
    const n = leader();
    n.feed(4, { type: "link_up", peer: A2, vv: {}, epoch: 0 });
    n.feed(100, { type: "snapshot_sent", peer: A2, id: 1, ok: true });
    expect(n.s.peers.get(A2)?.snapshot).toEqual({ id: 1, sentMs: 100 });
    const waitMs = SNAPSHOT_INSTALL_TIMEOUTS * 500;
    const again: string[] = [];
    const warns: string[] = [];
    // The peer stays up (it pings, still below the floor) and time passes tick by tick.
    for (let now = 200; now <= 100 + waitMs + 200; now += 100) {
      const outs = [n.feed(now, { type: "tick" }), n.feed(now, ping(now, {}))];
      for (const out of outs) {
        for (const f of snapshotsOf(out)) again.push(`${now} ${f}`);
        warns.push(...warnsOf(out));
      }
    }
    expect(again).toEqual([`${100 + waitMs} a-2 snapshot#2`]);
    expect(warns.filter((w) => /not installed in time/.test(w))).toHaveLength(1);
    expect(snapshotWanted(n.s, A2, 2)).toBe(true);
  });

  it("snapshotWanted holds only while the snapshot streams on an up link", () => {
    const n = leader();
    expect(snapshotWanted(n.s, A2, 1)).toBe(false);
    n.feed(4, { type: "link_up", peer: A2, vv: {}, epoch: 0 });
    expect(snapshotWanted(n.s, A2, 1)).toBe(true);
    expect(snapshotWanted(n.s, A2, 2)).toBe(false);
    expect(snapshotWanted(n.s, A3, 1)).toBe(false);
    expect(snapshotWanted(n.s, id("nobody"), 1)).toBe(false);
    n.feed(5, { type: "snapshot_sent", peer: A2, id: 1, ok: true });
    expect(snapshotWanted(n.s, A2, 1)).toBe(false);
    n.feed(6, { type: "link_down", peer: A2, reason: "test" });
    n.feed(7, { type: "link_up", peer: A2, vv: {}, epoch: 0 });
    expect(snapshotWanted(n.s, A2, 2)).toBe(true);
    n.feed(8, { type: "link_down", peer: A2, reason: "test" });
    expect(snapshotWanted(n.s, A2, 2)).toBe(false);
  });

  it("a peer that installed (its report covers the floor) gets ops, and its snapshot is forgotten", () => {
    const n = leader();
    n.feed(4, { type: "link_up", peer: A2, vv: {}, epoch: 0 });
    n.feed(5, { type: "snapshot_sent", peer: A2, id: 1, ok: true });
    const out = n.feed(6, ping(6, { "a-1": 8 }));
    expect(opsOf(out)).toEqual(["a-2 ops#1 a:3 a-1:9-10"]);
    expect(n.s.peers.get(A2)?.snapshot).toBeNull();
    expect(n.s.peers.get(A2)?.needsCompacted).toBe(false);
  });
});

describe("forgetting silent members", () => {
  const TRIO: MemberConfig[] = [
    { node: id("a-1"), region: asRegionId("a"), priority: 2 },
    { node: id("a-2"), region: asRegionId("a"), priority: 1 },
    { node: id("a-3"), region: asRegionId("a"), priority: 0 },
  ];
  const A2 = id("a-2");
  const A3 = id("a-3");
  const FORGET_MS = 3000;
  const forgets = (out: ReplOutput): unknown[] => out.events.filter((e) => e.level === "warn" && /member-forget-ms/.test(e.msg)).map((e) => e.fields["peer"]);
  const backs = (out: ReplOutput): unknown[] => out.events.filter((e) => e.level === "info" && /forgotten member is back/.test(e.msg)).map((e) => e.fields["peer"]);
  const pingFrom = (peer: NodeId, now: number, vv: VersionVector): ReplInput => ({ type: "frame", peer, frame: { t: "ping", wallMs: now, role: "follower", leader: "a-1", epoch: 0, vv } });

  /** a-1 with a-1:1-10 committed; a-2 up and pinging every tick with `vv`; a-3 as the caller arranges. */
  function node(): Node {
    const n = new Node("a-1", TRIO, { "a-1": 10 }, { memberForgetMs: FORGET_MS });
    n.feed(50, { type: "link_up", peer: A2, vv: { "a-1": 10 }, epoch: 0 });
    return n;
  }
  /** Ticks every heartbeat from `from` to `to` (inclusive); a-2 pings each time; returns the forget events as `now peer`. */
  function run(n: Node, from: number, to: number, extra: (now: number) => ReplInput[] = () => []): string[] {
    const seen: string[] = [];
    for (let now = from; now <= to; now += 100) {
      for (const input of [{ type: "tick" } as ReplInput, pingFrom(A2, now, { "a-1": 10 }), ...extra(now)]) {
        for (const p of forgets(n.feed(now, input))) seen.push(`${now} ${String(p)}`);
      }
    }
    return seen;
  }

  it("forgets a member never heard once memberForgetMs passed since start, says so once, and the frontier and horizon stop waiting for it", () => {
    const n = node();
    expect(stableVvOf(n.s, {})).toEqual({});
    expect(tombstoneHorizonOf(n.s)).toBeNull();
    expect(run(n, 100, FORGET_MS)).toEqual([]);
    expect(n.s.peers.get(A3)?.forgotten).toBe(false);
    expect(run(n, FORGET_MS + 100, 3 * FORGET_MS)).toEqual([`${FORGET_MS + 100} a-3`]);
    expect(n.s.peers.get(A3)?.forgotten).toBe(true);
    expect(n.s.peers.get(A2)?.forgotten, "a member that is up is never forgotten").toBe(false);
    expect(stableVvOf(n.s, {})).toEqual({ "a-1": 10 });
    expect(tombstoneHorizonOf(n.s)).toEqual({ covered: { "a-1": 10 }, until: { "a-1": 10 } });
  });

  it("remembers a forgotten member when its link comes up again: it holds the frontier again, said once", () => {
    const n = node();
    run(n, 100, 2 * FORGET_MS);
    expect(n.s.peers.get(A3)?.forgotten).toBe(true);
    const up = n.feed(2 * FORGET_MS + 50, { type: "link_up", peer: A3, vv: { "a-1": 4 }, epoch: 0 });
    expect(backs(up)).toEqual([A3]);
    expect(n.s.peers.get(A3)?.forgotten).toBe(false);
    expect(stableVvOf(n.s, {})).toEqual({ "a-1": 4 });
    expect(tombstoneHorizonOf(n.s)?.covered).toEqual({ "a-1": 4 });
    expect(backs(n.feed(2 * FORGET_MS + 60, pingFrom(A3, 0, { "a-1": 4 })))).toEqual([]);
  });

  it("forgets a member silent on a link kept open, and remembers it at its next frame", () => {
    const n = node();
    n.feed(60, { type: "link_up", peer: A3, vv: { "a-1": 2 }, epoch: 0 });
    // a-3's connection lives (ws pongs) but a-3 says nothing: down, then forgotten past memberForgetMs since it was heard.
    const seen = run(n, 100, 2 * FORGET_MS, () => [{ type: "alive", peer: A3 }]);
    expect(seen).toEqual([`${FORGET_MS + 100} a-3`]);
    expect(n.s.peers.get(A3)?.linkUp).toBe(true);
    expect(stableVvOf(n.s, {})).toEqual({ "a-1": 10 });
    const back = n.feed(2 * FORGET_MS + 50, pingFrom(A3, 0, { "a-1": 3 }));
    expect(backs(back)).toEqual([A3]);
    expect(n.s.peers.get(A3)?.forgotten).toBe(false);
    expect(stableVvOf(n.s, {})).toEqual({ "a-1": 3 });
  });

  it("a forgotten member that returns below the floor gets a snapshot, and the log says it is because it was forgotten", () => {
    const n = node();
    n.feed(60, { type: "leadership", leadership: LEADS });
    n.feed(70, { type: "compacted", floor: { "a-1": 5 } });
    run(n, 100, 2 * FORGET_MS);
    expect(n.s.peers.get(A3)?.forgotten).toBe(true);
    const up = n.feed(2 * FORGET_MS + 50, { type: "link_up", peer: A3, vv: {}, epoch: 0 });
    expect(snapshotsOf(up)).toEqual(["a-3 snapshot#1"]);
    const why = up.events.find((e) => /sending it a snapshot/.test(e.msg))?.fields["why"];
    expect(why).toMatch(/member-forget-ms/);
  });

  it("never forgets a member that stays up, however long", () => {
    const n = node();
    n.feed(60, { type: "link_up", peer: A3, vv: { "a-1": 10 }, epoch: 0 });
    const seen = run(n, 100, 4 * FORGET_MS, (now) => [pingFrom(A3, now, { "a-1": 10 })]);
    expect(seen).toEqual([]);
    expect([...n.s.peers.values()].map((p) => p.forgotten)).toEqual([false, false]);
  });
});

describe("stableVvOf", () => {
  const QUAD: MemberConfig[] = ORIGINS.map((o, i) => ({ node: id(o), region: asRegionId(i < 2 ? "a" : "b"), priority: i % 2 === 0 ? 1 : 0 }));
  const peers = ORIGINS.slice(1);

  it("is the minimum of committedVv and every peer's reported vector (a peer never heard counts as {}), never below persisted except where committedVv caps it", () => {
    fc.assert(
      fc.property(
        vvArb(),
        fc.tuple(...peers.map(() => fc.option(fc.record({ intro: vvArb(), later: fc.option(vvArb(), { nil: undefined }) }), { nil: undefined }))),
        vvArb(),
        (committed, reports, persisted) => {
          const n = new Node("n1", QUAD, committed);
          const reported: VersionVector[] = [];
          let now = 0;
          reports.forEach((r, i) => {
            const peer = id(peers[i] as string);
            if (r === undefined) return void reported.push({});
            n.feed(++now, { type: "link_up", peer, vv: r.intro, epoch: 0 });
            if (r.later !== undefined) n.feed(++now, { type: "frame", peer, frame: { t: "ping", wallMs: now, role: "follower", leader: "", epoch: 0, vv: r.later } });
            reported.push(mergeVv(r.intro, r.later ?? {}));
          });
          const stable = stableVvOf(n.s, persisted);
          expect(stable).toEqual(modelFrontier(committed, reported, persisted));
          expect(dominates(committed, stable), "capped by committedVv").toBe(true);
          for (const o of ORIGINS) expect(vvGet(stable, o), o).toBeGreaterThanOrEqual(Math.min(vvGet(persisted, o), vvGet(committed, o)));
          if (Object.keys(persisted).length === 0) expect(stable).toEqual(pointwiseMin([committed, ...reported]));
        },
      ),
    );
  });

  it("a member never heard from holds the fresh frontier at zero; only persisted keeps it up", () => {
    const n = new Node("n1", QUAD, { n1: 9, n2: 4 });
    for (const p of ["n2", "n3"]) n.feed(1, { type: "link_up", peer: id(p), vv: { n1: 9, n2: 4 }, epoch: 0 });
    expect(stableVvOf(n.s, {})).toEqual({});
    expect(stableVvOf(n.s, { n1: 3, n2: 7 })).toEqual({ n1: 3, n2: 4 });
    n.feed(2, { type: "link_up", peer: id("n4"), vv: { n1: 6 }, epoch: 0 });
    expect(stableVvOf(n.s, {})).toEqual({ n1: 6 });
  });
});
