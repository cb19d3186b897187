// Properties of the hybrid logical clock: it never goes back whatever the wall
// clock does, a receive is ordered after both the local and the remote event,
// its string and byte forms sort like compareHlc, and a remote clock too far
// ahead is refused with clock_skew.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  HLC_LOGICAL_MAX,
  HLC_WALL_MAX,
  HLC_ZERO,
  compareHlc,
  decodeHlc,
  encodeHlc,
  hlcFromBytes,
  hlcToBytes,
  isClockSkew,
  isSkewed,
  isValidHlc,
  observe,
  receive,
  skewMs,
  tick,
  type Hlc,
} from "../../src/core/hlc.js";

const sign = (n: number): number => (n > 0 ? 1 : n < 0 ? -1 : 0);

// Wall times well below HLC_WALL_MAX so a long run of events cannot overflow it.
const WALL_TOP = 2 ** 46;

/** Any valid timestamp, often with equal walls or a saturated logical counter (the interesting ties). */
const hlcArb: fc.Arbitrary<Hlc> = fc.oneof(
  fc.record({ wallMs: fc.integer({ min: 0, max: HLC_WALL_MAX }), logical: fc.integer({ min: 0, max: HLC_LOGICAL_MAX }) }),
  fc.record({ wallMs: fc.integer({ min: 0, max: 3 }), logical: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ wallMs: fc.integer({ min: 0, max: 3 }), logical: fc.constantFrom(0, 1, HLC_LOGICAL_MAX - 1, HLC_LOGICAL_MAX) }),
);

/** A timestamp in the range the monotonicity runs use. */
const nearHlcArb = (base: number): fc.Arbitrary<Hlc> =>
  fc.record({
    wallMs: fc.integer({ min: Math.max(0, base - 1000), max: base + 1000 }),
    logical: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom(HLC_LOGICAL_MAX - 1, HLC_LOGICAL_MAX)),
  });

type ClockEvent =
  | { readonly kind: "tick"; readonly nowStepMs: number }
  | { readonly kind: "receive"; readonly nowStepMs: number; readonly remote: Hlc; readonly maxSkewMs: number };

// Wall clock steps jump backwards as well as forwards (NTP corrections, VM migration).
const nowStepArb = fc.oneof(fc.integer({ min: -5000, max: 5000 }), fc.constant(0), fc.integer({ min: -3, max: 3 }));

const eventsArb = (base: number): fc.Arbitrary<ClockEvent[]> =>
  fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant("tick" as const), nowStepMs: nowStepArb }),
      fc.record({
        kind: fc.constant("receive" as const),
        nowStepMs: nowStepArb,
        remote: nearHlcArb(base),
        maxSkewMs: fc.oneof(fc.constant(Infinity), fc.integer({ min: 0, max: 2000 })),
      }),
    ),
    { maxLength: 60 },
  );

describe("hlc: monotonic", () => {
  it("tick and receive never go back, across wall clocks that jump backwards", () => {
    const runArb = fc
      .tuple(fc.integer({ min: 0, max: WALL_TOP }), fc.boolean())
      // Remote clocks are drawn near the starting wall time, so they interleave with ours.
      .chain(([base, fractional]) => fc.tuple(fc.constant(base), fc.constant(fractional), eventsArb(base)));
    fc.assert(
      fc.property(runArb, ([base, fractional, events]) => {
        let clock: Hlc = HLC_ZERO;
        let now = base + (fractional ? 0.75 : 0);
        for (const ev of events) {
          now = Math.max(0, now + ev.nowStepMs);
          const before = clock;
          if (ev.kind === "tick") {
            clock = tick(clock, now);
            expect(clock.wallMs).toBeGreaterThanOrEqual(Math.floor(now));
          } else {
            const r = receive(clock, ev.remote, now, ev.maxSkewMs);
            if (isClockSkew(r)) continue; // refused: the clock does not move
            clock = r;
            expect(compareHlc(clock, ev.remote)).toBeGreaterThan(0);
          }
          expect(compareHlc(clock, before)).toBeGreaterThan(0);
          expect(isValidHlc(clock)).toBe(true);
          // Stays close to wall time: at most one ms past the largest input (logical overflow).
          const top = Math.max(before.wallMs, Math.floor(now), ev.kind === "receive" ? ev.remote.wallMs : 0);
          expect(clock.wallMs).toBeLessThanOrEqual(top + 1);
        }
      }),
    );
  });

  it("a receive is ordered after both the local clock and the remote send", () => {
    fc.assert(
      fc.property(hlcArb, hlcArb, fc.integer({ min: 0, max: HLC_WALL_MAX - 1 }), (local, remote, now) => {
        fc.pre(local.wallMs < HLC_WALL_MAX && remote.wallMs < HLC_WALL_MAX);
        const r = receive(local, remote, now);
        expect(isClockSkew(r)).toBe(false);
        const h = r as Hlc;
        expect(compareHlc(h, local)).toBeGreaterThan(0);
        expect(compareHlc(h, remote)).toBeGreaterThan(0);
        expect(observe(local, remote, now)).toEqual(h);
      }),
    );
  });

  it("send happens-before receive along a message chain between three clocks", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ from: fc.nat(2), to: fc.nat(2), nowMs: fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 3, maxLength: 3 }) }), { maxLength: 40 }),
        (messages) => {
          const clocks: Hlc[] = [HLC_ZERO, HLC_ZERO, HLC_ZERO];
          for (const m of messages) {
            // Each node has its own (skewed, non-monotonic) wall clock.
            const sent = tick(clocks[m.from] as Hlc, m.nowMs[m.from] as number);
            clocks[m.from] = sent;
            const got = observe(clocks[m.to] as Hlc, sent, m.nowMs[m.to] as number);
            expect(compareHlc(got, sent)).toBeGreaterThan(0);
            clocks[m.to] = got;
          }
        },
      ),
    );
  });

  it("a saturated logical counter borrows a millisecond instead of wrapping", () => {
    const full: Hlc = { wallMs: 1000, logical: HLC_LOGICAL_MAX };
    expect(tick(full, 1000)).toEqual({ wallMs: 1001, logical: 0 });
    expect(tick(full, 999)).toEqual({ wallMs: 1001, logical: 0 });
    expect(receive(full, full, 1000)).toEqual({ wallMs: 1001, logical: 0 });
    expect(receive(HLC_ZERO, full, 1000)).toEqual({ wallMs: 1001, logical: 0 });
  });
});

describe("hlc: encodings", () => {
  it("encodeHlc strings sort exactly like compareHlc", () => {
    fc.assert(
      fc.property(hlcArb, hlcArb, (a, b) => {
        const sa = encodeHlc(a);
        const sb = encodeHlc(b);
        expect(sign(sa < sb ? -1 : sa > sb ? 1 : 0)).toBe(sign(compareHlc(a, b)));
      }),
    );
  });

  it("decodeHlc inverts encodeHlc", () => {
    fc.assert(
      fc.property(hlcArb, (h) => {
        expect(decodeHlc(encodeHlc(h))).toEqual(h);
      }),
    );
  });

  it("hlcToBytes round-trips, also at an offset inside a larger buffer", () => {
    fc.assert(
      fc.property(hlcArb, fc.nat(16), (h, offset) => {
        expect(hlcFromBytes(hlcToBytes(h))).toEqual(h);
        const buf = new Uint8Array(offset + 8 + 3).fill(0xee);
        hlcToBytes(h, buf, offset);
        expect(hlcFromBytes(buf, offset)).toEqual(h);
        // Neighbouring bytes are untouched.
        expect([...buf.subarray(0, offset), ...buf.subarray(offset + 8)].every((b) => b === 0xee)).toBe(true);
      }),
    );
  });

  it("hlcToBytes orders bytewise exactly like compareHlc", () => {
    fc.assert(
      fc.property(hlcArb, hlcArb, (a, b) => {
        const ba = hlcToBytes(a);
        const bb = hlcToBytes(b);
        let cmp = 0;
        for (let i = 0; i < 8 && cmp === 0; i++) cmp = (ba[i] as number) - (bb[i] as number);
        expect(sign(cmp)).toBe(sign(compareHlc(a, b)));
      }),
    );
  });

  it("decodeHlc accepts only the canonical form of a valid timestamp", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary", maxLength: 30 }),
          fc.stringMatching(/^\d{13,17}-\d{4,6}$/),
          hlcArb.map((h) => encodeHlc(h)).chain((s) => fc.nat(s.length).map((i) => s.slice(0, i) + s.slice(i + 1))),
        ),
        (s) => {
          const h = decodeHlc(s);
          if (h === null) return;
          expect(isValidHlc(h)).toBe(true);
          expect(encodeHlc(h)).toBe(s);
        },
      ),
    );
  });

  it("decodeHlc rejects junk", () => {
    const junk = [
      "", "0", "1-1", "000000000000000-0000", "000000000000000_00000", " 000000000000000-00000",
      "000000000000000-00000 ", "000000000000000-00000\n", "-00000000000000-00000", "00000000000000a-00000",
      "999999999999999-00000", // wall past 2^48 - 1
      "000000000000000-65536", // logical past 16 bits
      "000000000000000-99999", "٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠-٠٠٠٠٠", "1e14-0", "0000000000000000-00000",
    ];
    for (const s of junk) expect(decodeHlc(s), JSON.stringify(s)).toBeNull();
    expect(decodeHlc(encodeHlc({ wallMs: HLC_WALL_MAX, logical: HLC_LOGICAL_MAX }))).toEqual({ wallMs: HLC_WALL_MAX, logical: HLC_LOGICAL_MAX });
  });

  it("isValidHlc rejects out-of-range and non-integer parts", () => {
    const bad: Hlc[] = [
      { wallMs: -1, logical: 0 }, { wallMs: 0, logical: -1 }, { wallMs: 1.5, logical: 0 }, { wallMs: 0, logical: 0.5 },
      { wallMs: HLC_WALL_MAX + 1, logical: 0 }, { wallMs: 0, logical: HLC_LOGICAL_MAX + 1 }, { wallMs: NaN, logical: 0 },
      { wallMs: Infinity, logical: 0 },
    ];
    for (const h of bad) expect(isValidHlc(h), JSON.stringify(h)).toBe(false);
  });
});

describe("hlc: clock skew", () => {
  it("receive refuses a remote further ahead than maxSkewMs and accepts one within it", () => {
    fc.assert(
      fc.property(
        nearHlcArb(1_000_000),
        nearHlcArb(1_000_000),
        fc.integer({ min: 999_000, max: 1_001_000 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        fc.integer({ min: 0, max: 1500 }),
        (local, remote, nowWhole, frac, maxSkewMs) => {
          const now = nowWhole + frac;
          const r = receive(local, remote, now, maxSkewMs);
          const ahead = remote.wallMs - nowWhole;
          if (ahead > maxSkewMs) {
            expect(isClockSkew(r)).toBe(true);
            expect(r).toEqual({ type: "clock_skew", remote, nowMs: nowWhole, skewMs: ahead, maxSkewMs });
          } else {
            expect(isClockSkew(r)).toBe(false);
            expect(compareHlc(r as Hlc, remote)).toBeGreaterThan(0);
          }
        },
      ),
    );
  });

  it("the bound is inclusive: exactly maxSkewMs ahead is accepted, one more is refused", () => {
    const now = 10_000;
    expect(isClockSkew(receive(HLC_ZERO, { wallMs: now + 500, logical: 0 }, now, 500))).toBe(false);
    expect(isClockSkew(receive(HLC_ZERO, { wallMs: now + 501, logical: 0 }, now, 500))).toBe(true);
    // A remote far behind is an old op arriving late, not a fast clock: accepted.
    expect(isClockSkew(receive(HLC_ZERO, { wallMs: 0, logical: 0 }, now, 500))).toBe(false);
  });

  it("isSkewed measures distance in both directions", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 0, max: 2 ** 20 }), (remote, now, max) => {
        expect(skewMs(remote, now)).toBe(skewMs(now, remote));
        expect(isSkewed(remote, now, max)).toBe(Math.abs(remote - now) > max);
        expect(isSkewed(remote, now, max)).toBe(isSkewed(now, remote, max));
      }),
    );
  });
});
