// A virtual network for the simulator: point-to-point links between node
// indices that drop, delay, duplicate and (through random delays) reorder
// messages, and that can be cut in one direction or both. Every random choice
// comes from the seeded generator it is given, so a run replays exactly.

import { mulberry32 } from "../../src/core/prng.js";

export { mulberry32 };

export interface LinkQuality {
  readonly dropRate: number;
  readonly dupRate: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
}

export interface InFlight<P> {
  readonly at: number;
  readonly seq: number;
  readonly from: number;
  readonly to: number;
  readonly payload: P;
}

/** Bound on messages in flight: a runaway sender fails the run instead of eating memory. */
export const IN_FLIGHT_MAX = 10_000;

export class Network<P> {
  private readonly heap: InFlight<P>[] = [];
  private readonly blocked = new Set<number>();
  private seq = 0;
  quality: LinkQuality;
  readonly stats = { sent: 0, dropped: 0, duplicated: 0 };

  constructor(
    private readonly rng: () => number,
    quality: LinkQuality,
  ) {
    this.quality = quality;
  }

  /** Queues `payload` from -> to, unless the link is cut or the message is lost. */
  send(now: number, from: number, to: number, payload: P): void {
    this.stats.sent++;
    if (this.isBlocked(from, to) || this.rng() < this.quality.dropRate) {
      this.stats.dropped++;
      return;
    }
    this.push(now, from, to, payload);
    if (this.rng() < this.quality.dupRate) {
      this.stats.duplicated++;
      this.push(now, from, to, payload);
    }
  }

  /** True when messages from -> to are cut. */
  isBlocked(from: number, to: number): boolean {
    return this.blocked.has(from * 1024 + to);
  }

  /** Cuts from -> to (one way). */
  block(from: number, to: number): void {
    this.blocked.add(from * 1024 + to);
  }

  /** Cuts every link between nodes of different groups, both ways (replaces earlier cuts). */
  partition(groupOf: readonly number[]): void {
    this.blocked.clear();
    for (let a = 0; a < groupOf.length; a++) {
      for (let b = 0; b < groupOf.length; b++) {
        if (groupOf[a] !== groupOf[b]) this.block(a, b);
      }
    }
  }

  /** Restores every link. */
  heal(): void {
    this.blocked.clear();
  }

  /** Delivery time of the next message, or Infinity. */
  nextAt(): number {
    return this.heap[0]?.at ?? Infinity;
  }

  /** Removes and returns the next message (earliest, then first sent). */
  pop(): InFlight<P> {
    const top = this.heap[0];
    if (top === undefined) throw new Error("network: pop from an empty queue");
    const last = this.heap.pop() as InFlight<P>;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  get inFlight(): number {
    return this.heap.length;
  }

  private push(now: number, from: number, to: number, payload: P): void {
    if (this.heap.length >= IN_FLIGHT_MAX) throw new Error(`network: more than ${IN_FLIGHT_MAX} messages in flight`);
    const { minDelayMs, maxDelayMs } = this.quality;
    const at = now + minDelayMs + Math.floor(this.rng() * (maxDelayMs - minDelayMs + 1));
    this.heap.push({ at, seq: this.seq++, from, to, payload });
    this.siftUp(this.heap.length - 1);
  }

  private less(i: number, j: number): boolean {
    const a = this.heap[i] as InFlight<P>;
    const b = this.heap[j] as InFlight<P>;
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const t = this.heap[i] as InFlight<P>;
    this.heap[i] = this.heap[j] as InFlight<P>;
    this.heap[j] = t;
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.heap.length && this.less(l, m)) m = l;
      if (r < this.heap.length && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
