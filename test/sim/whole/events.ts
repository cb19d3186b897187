// The simulator's agenda: callbacks due at virtual times, run earliest first
// and, at one time, in the order they were scheduled, so a run replays
// exactly from its seed.

interface Entry {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
}

export class Agenda {
  private readonly heap: Entry[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Runs `run` at virtual time `at`. */
  add(at: number, run: () => void): void {
    this.heap.push({ at, seq: this.seq++, run });
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Time of the next entry, or Infinity. */
  nextAt(): number {
    return this.heap[0]?.at ?? Infinity;
  }

  /** Removes and returns the next entry. */
  pop(): Entry {
    const top = this.heap[0];
    if (top === undefined) throw new Error("agenda: pop from an empty agenda");
    const last = this.heap.pop() as Entry;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.heap.length && this.less(l, m)) m = l;
        if (r < this.heap.length && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  private less(i: number, j: number): boolean {
    const a = this.heap[i] as Entry;
    const b = this.heap[j] as Entry;
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const t = this.heap[i] as Entry;
    this.heap[i] = this.heap[j] as Entry;
    this.heap[j] = t;
  }
}
