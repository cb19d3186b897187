// The catch-up planner must send a peer exactly what it lacks: every op we
// have that it has not, nothing it already has, in bounded batches that, when
// the caller loops, cover everything and then stop.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { admit } from "../../src/core/apply/apply.js";
import type { NodeId } from "../../src/core/ids.js";
import type { DocOp, Op } from "../../src/core/op.js";
import { opsPeerLacks, planCatchUp, planOpCount, type CatchUpRange } from "../../src/core/replication-plan.js";
import { mergeVv, vvEquals, vvGet, vvLag, type VersionVector } from "../../src/core/version-vector.js";

const ORIGINS = ["n3", "a", "b", "us-east-1", "zz"] as const;

const vvArb: fc.Arbitrary<VersionVector> = fc.dictionary(fc.constantFrom(...ORIGINS), fc.integer({ min: 0, max: 12 }), { maxKeys: 5 });

/** The (origin, seq) pairs a plan names. */
function dotsOf(plan: readonly CatchUpRange[]): string[] {
  const out: string[] = [];
  for (const r of plan) for (let s = r.fromSeq; s <= r.toSeq; s++) out.push(`${r.origin}:${s}`);
  return out;
}

/** The model: every seq local has and the peer lacks. */
function lacking(local: VersionVector, peer: VersionVector): string[] {
  const out: string[] = [];
  for (const o of [...ORIGINS].sort()) for (let s = vvGet(peer, o) + 1; s <= vvGet(local, o); s++) out.push(`${o}:${s}`);
  return out;
}

/** What the peer's vector becomes once it has applied a plan (ranges start right above it). */
function advance(peer: VersionVector, plan: readonly CatchUpRange[]): VersionVector {
  let out = peer;
  for (const r of plan) {
    expect(r.fromSeq).toBe(vvGet(out, r.origin) + 1);
    out = mergeVv(out, { [r.origin]: r.toSeq });
  }
  return out;
}

const op = (origin: string, seq: number): DocOp => ({
  ns: "docs", origin: origin as NodeId, seq, hlc: { wallMs: seq, logical: 0 }, key: "k", update: new Uint8Array(0),
});

describe("planCatchUp", () => {
  it("covers exactly the seqs local has and the peer lacks, one ascending range per origin", () => {
    fc.assert(
      fc.property(vvArb, vvArb, (local, peer) => {
        const plan = planCatchUp(local, peer);
        expect(dotsOf(plan)).toEqual(lacking(local, peer));
        expect(planOpCount(plan)).toBe(vvLag(local, peer));
        const origins = plan.map((r) => r.origin);
        expect(origins).toEqual([...new Set(origins)].sort());
        for (const r of plan) expect(r.fromSeq).toBeLessThanOrEqual(r.toSeq);
        // Once applied, the peer has everything we have.
        expect(vvEquals(advance(peer, plan), mergeVv(local, peer))).toBe(true);
      }),
    );
  });

  it("is deterministic: the key order of the vectors does not matter", () => {
    fc.assert(
      fc.property(vvArb, vvArb, fc.integer({ min: 1, max: 20 }), (local, peer, maxOps) => {
        const reversed = Object.fromEntries(Object.entries(local).reverse());
        expect(planCatchUp(reversed, peer, maxOps)).toEqual(planCatchUp(local, peer, maxOps));
      }),
    );
  });

  it("is empty when the peer has everything", () => {
    fc.assert(
      fc.property(vvArb, vvArb, (local, extra) => {
        expect(planCatchUp(local, local)).toEqual([]);
        expect(planCatchUp(local, mergeVv(local, extra))).toEqual([]);
      }),
    );
  });

  it("with a cap, each plan holds at most maxOps and looping covers everything, then stops", () => {
    fc.assert(
      fc.property(vvArb, vvArb, fc.integer({ min: 1, max: 15 }), (local, peer0, maxOps) => {
        const total = vvLag(local, peer0);
        const seen: string[] = [];
        let peer = peer0;
        let rounds = 0;
        for (;;) {
          const plan = planCatchUp(local, peer, maxOps);
          if (plan.length === 0) break;
          const n = planOpCount(plan);
          // Full batches until the last: no round wastes the budget.
          expect(n).toBe(Math.min(maxOps, total - seen.length));
          seen.push(...dotsOf(plan));
          peer = advance(peer, plan);
          rounds++;
          expect(rounds).toBeLessThanOrEqual(total); // progress every round
        }
        expect(rounds).toBe(Math.ceil(total / maxOps));
        expect(seen).toEqual(lacking(local, peer0));
      }),
    );
  });

  it("refuses a cap that could never make progress", () => {
    for (const bad of [0, -1, 1.5, NaN, -Infinity]) expect(() => planCatchUp({ a: 2 }, {}, bad)).toThrow(/maxOps/);
    expect(planCatchUp({ a: 2 }, {}, Infinity)).toEqual([{ origin: "a", fromSeq: 1, toSeq: 2 }]);
  });
});

describe("opsPeerLacks", () => {
  it("keeps exactly the ops above the peer's vector, in the given order, from any iterable", () => {
    const logArb = fc.array(fc.record({ origin: fc.constantFrom(...ORIGINS), seq: fc.integer({ min: 1, max: 12 }) }), { maxLength: 40 });
    fc.assert(
      fc.property(vvArb, logArb, (peer, entries) => {
        const ops: Op[] = entries.map((e) => op(e.origin, e.seq));
        const expected = ops.filter((o) => o.seq > vvGet(peer, o.origin));
        expect(opsPeerLacks(peer, ops)).toEqual(expected);
        function* gen(): Generator<Op> {
          yield* ops;
        }
        expect(opsPeerLacks(peer, gen())).toEqual(expected);
        expect(opsPeerLacks(peer, new Set(ops))).toEqual(expected);
      }),
    );
  });

  it("agrees with the plan over a gap-free op log", () => {
    fc.assert(
      fc.property(vvArb, vvArb, (local, peer) => {
        const log: Op[] = [];
        for (const o of ORIGINS) for (let s = 1; s <= vvGet(local, o); s++) log.push(op(o, s));
        const viaFilter = opsPeerLacks(peer, log).map((o) => `${o.origin}:${o.seq}`).sort();
        expect(viaFilter).toEqual(dotsOf(planCatchUp(local, peer)).sort());
      }),
    );
  });
});

describe("catch-up end to end", () => {
  it("a peer that applies planned batches in any order, through the node's admission, ends with our vector merged into its own", () => {
    // Local and peer each applied some prefix; batches arrive shuffled within
    // each round. The peer takes only the next seq of each origin (what
    // applyOps admits); the rest is planned again in a later round.
    const arb = fc
      .tuple(vvArb, vvArb, fc.integer({ min: 1, max: 10 }))
      .chain(([local, peer, maxOps]) => fc.tuple(fc.constant(local), fc.constant(peer), fc.constant(maxOps), fc.infiniteStream(fc.nat())));
    fc.assert(
      fc.property(arb, ([local, peerStart, maxOps, randoms]) => {
        let peer: VersionVector = peerStart;
        const rnd = randoms[Symbol.iterator]();
        for (let round = 0; round < 1000; round++) {
          const plan = planCatchUp(local, peer, maxOps);
          if (plan.length === 0) break;
          const batch = dotsOf(plan);
          for (let i = batch.length - 1; i > 0; i--) {
            const j = (rnd.next().value as number) % (i + 1);
            [batch[i], batch[j]] = [batch[j] as string, batch[i] as string];
          }
          for (const d of batch) {
            const [origin, seq] = d.split(":") as [string, string];
            const dot = { origin: origin as NodeId, seq: Number(seq) };
            if (admit(peer, dot) === "next") peer = mergeVv(peer, { [origin]: dot.seq });
          }
        }
        expect(vvEquals(peer, mergeVv(local, peerStart))).toBe(true);
      }),
    );
  });
});
