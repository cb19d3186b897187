// A virtual network for the simulator: point-to-point links between node
// indices that drop, delay, duplicate and (through random delays) reorder
// messages, and that can be cut in one direction or both. Every random choice
// comes from the seeded generator it is given, so a run replays exactly.

import { mulberry32 } from "../../src/core/prng.js";
import { TimeHeap } from "./time-heap.js";

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
  private readonly heap = new TimeHeap<InFlight<P>>();
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
    return this.heap.nextAt();
  }

  /** Removes and returns the next message (earliest, then first sent). */
  pop(): InFlight<P> {
    return this.heap.pop();
  }

  get inFlight(): number {
    return this.heap.size;
  }

  private push(now: number, from: number, to: number, payload: P): void {
    if (this.heap.size >= IN_FLIGHT_MAX) throw new Error(`network: more than ${IN_FLIGHT_MAX} messages in flight`);
    const { minDelayMs, maxDelayMs } = this.quality;
    const at = now + minDelayMs + Math.floor(this.rng() * (maxDelayMs - minDelayMs + 1));
    this.heap.push({ at, seq: this.seq++, from, to, payload });
  }
}
