// A seeded pseudo-random generator. The core takes randomness as an input;
// tests, the simulator and benchmarks need a stream of it that replays from a
// printed seed, and this is the one place that produces it.

/** mulberry32: a tiny seeded generator of numbers in [0, 1), good enough for schedules and jitter. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
