// The simulator's agenda: callbacks due at virtual times, run earliest first
// and, at one time, in the order they were scheduled.

import { TimeHeap } from "../time-heap.js";

interface Entry {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
}

export class Agenda {
  private readonly heap = new TimeHeap<Entry>();
  private seq = 0;

  get size(): number {
    return this.heap.size;
  }

  /** Runs `run` at virtual time `at`. */
  add(at: number, run: () => void): void {
    this.heap.push({ at, seq: this.seq++, run });
  }

  /** Time of the next entry, or Infinity. */
  nextAt(): number {
    return this.heap.nextAt();
  }

  /** Removes and returns the next entry. */
  pop(): Entry {
    return this.heap.pop();
  }
}
