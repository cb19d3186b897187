// The dashboard's two bounded histories: the ring of role changes keeps the
// newest items in order however many are pushed, and the write rate counts
// ops in the second they were written (late ones included), drops what is
// older than its window, and reuses its slots as time moves on.
import { describe, expect, it } from "vitest";
import type { NodeId, RegionId } from "../../src/core/ids.js";
import type { Op } from "../../src/core/op.js";
import { RingBuffer } from "../../src/node/ring-buffer.js";
import { WRITE_RATE_WINDOW_S, WriteRate } from "../../src/node/write-rate.js";

/** A kv op of `origin` written at `wallMs` (only origin and hlc matter here). */
function opAt(origin: string, wallMs: number, seq = 1): Op {
  return { ns: "kv", origin: origin as NodeId, seq, hlc: { wallMs, logical: 0 }, key: "k", valueJson: "1", vv: { [origin]: seq } };
}

describe("RingBuffer", () => {
  it("keeps the newest items, newest first, within its capacity", () => {
    const r = new RingBuffer<number>(3);
    expect(r.newestFirst()).toEqual([]);
    r.push(1);
    r.push(2);
    expect(r.newestFirst()).toEqual([2, 1]);
    for (let i = 3; i <= 10; i++) r.push(i);
    expect(r.newestFirst()).toEqual([10, 9, 8]);
  });

  it("refuses a capacity that is not a positive integer", () => {
    expect(() => new RingBuffer(0)).toThrow(/positive integer/);
    expect(() => new RingBuffer(1.5)).toThrow(/positive integer/);
  });
});

describe("WriteRate", () => {
  const regionOf = (n: NodeId) => (n.startsWith("a-") ? ("a" as RegionId) : n.startsWith("b-") ? ("b" as RegionId) : undefined);
  const T = 1_800_000_000_000; // a whole second

  it("counts ops per region in the second they were written, complete seconds only", () => {
    const w = new WriteRate(["a", "b"] as RegionId[], regionOf);
    w.add([opAt("a-1", T - 2000), opAt("a-2", T - 1500), opAt("b-1", T - 1000), opAt("x-1", T - 1000)], T + 10);
    const s = w.series(T + 10);
    expect(s.regions.a).toHaveLength(WRITE_RATE_WINDOW_S);
    expect(s.fromS + WRITE_RATE_WINDOW_S - 1).toBe(T / 1000 - 1);
    expect(s.regions.a?.slice(-2)).toEqual([2, 0]);
    expect(s.regions.b?.slice(-2)).toEqual([0, 1]);
    // The current second is still filling: it shows once it is over.
    w.add([opAt("a-1", T + 5)], T + 10);
    expect(w.series(T + 10).regions.a?.at(-1)).toBe(0);
    expect(w.series(T + 1000).regions.a?.at(-1)).toBe(1);
  });

  it("counts a late op in its own second, an op from the future now, and drops ops older than the window", () => {
    const w = new WriteRate(["a"] as RegionId[], regionOf);
    w.add([opAt("a-1", T - 10_000), opAt("a-1", T + 60_000), opAt("a-1", T - (WRITE_RATE_WINDOW_S + 1) * 1000)], T + 500);
    const s = w.series(T + 1000).regions.a as number[];
    expect(s.at(-11)).toBe(1);
    expect(s.at(-1)).toBe(1);
    expect(s.reduce((x, y) => x + y, 0)).toBe(2);
  });

  it("forgets a second once the window has moved past it, though its slot is reused", () => {
    const w = new WriteRate(["a"] as RegionId[], regionOf);
    w.add([opAt("a-1", T)], T);
    const later = T + (WRITE_RATE_WINDOW_S + 1) * 1000;
    // One second earlier it was the oldest second shown.
    expect(w.series(later - 1000).regions.a?.[0]).toBe(1);
    expect((w.series(later).regions.a as number[]).reduce((x, y) => x + y, 0)).toBe(0);
    w.add([opAt("a-1", later), opAt("a-1", later)], later);
    expect(w.series(later + 1000).regions.a?.at(-1)).toBe(2);
  });
});
