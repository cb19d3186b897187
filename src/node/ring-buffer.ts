// A fixed-capacity buffer that keeps the newest items: the dashboard's recent
// role changes must stay bounded however long a node runs or however often
// its region flaps, and dropping the oldest is what a person reading "the
// last changes" expects.

/** Keeps the newest `capacity` items pushed; older ones are overwritten. */
export class RingBuffer<T> {
  private readonly slots: (T | undefined)[];
  /** Where the next push goes. */
  private head = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`ring buffer capacity must be a positive integer, got ${capacity}`);
    this.slots = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    this.slots[this.head] = item;
    this.head = (this.head + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** The items, newest first. */
  newestFirst(): T[] {
    const out: T[] = [];
    for (let i = 1; i <= this.size; i++) out.push(this.slots[(this.head - i + this.capacity) % this.capacity] as T);
    return out;
  }
}
