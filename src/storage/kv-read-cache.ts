// A bounded in-memory copy of recently used kv registers, so that a hot read
// is a Map lookup instead of a SQLite point query plus a JSON.parse: in the
// profile of GET /kv under the HTTP bench load, that query was the largest
// cost of geokv's own (BENCHMARKS.md, HTTP notes). The SQLite store owns it
// and updates it after every transaction that wrote kv rows, with a copy of
// exactly what it wrote; the store is the only writer of its file (the data
// directory lock), so nothing changes the table behind the cache's back, and
// a fresh store (a restart) starts with an empty cache. Entries are frozen:
// a caller that tried to change a register it read would change what every
// later reader gets, so that throws instead.

import { decodeKvState } from "../core/codec/kv-state.js";
import type { KvRegister } from "../core/op.js";

/** Bounds of a read cache. Sizes count the stored JSON text, in UTF-16 code units. */
export interface KvReadCacheOptions {
  /** At most this many keys; 0 turns the cache off. */
  readonly entriesMax: number;
  /** At most this much stored text over all entries. */
  readonly textCharsMax: number;
  /** A register whose text is longer than this is never cached (one large value must not flush the rest). */
  readonly entryTextCharsMax: number;
}

export const KV_READ_CACHE_DEFAULTS: KvReadCacheOptions = {
  // 20,000 keys: every key of the HTTP bench's GET load; at 50,000 a node holding a million keys passed its RSS budget.
  entriesMax: 20_000,
  textCharsMax: 64 * 1024 * 1024,
  entryTextCharsMax: 64 * 1024,
};

interface Entry {
  readonly key: string;
  readonly reg: KvRegister;
  readonly textChars: number;
  /** Its place on the ring. */
  readonly slot: number;
  /** Read since the hand last passed it (the "second chance" of CLOCK). */
  used: boolean;
}

/** Freezes a JSON-parsed value and everything in it. */
function deepFreeze<T>(x: T): T {
  if (typeof x === "object" && x !== null) {
    for (const v of Object.values(x)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
}

/**
 * Keys to frozen registers, evicted by CLOCK: the entries sit in a ring of
 * slots that a hand walks; an entry read since the hand last passed it gets a
 * second chance (its flag is cleared), any other is evicted. Close to LRU,
 * but a hit only sets a flag, and each eviction costs O(1) amortized. (An
 * earlier version used the Map's insertion order as the queue, deleting and
 * re-inserting at the front; a V8 Map keeps deleted entries as holes until it
 * rehashes, and each fresh iterator skips them all, so a pass over a full
 * cache was quadratic: a 943 ms event-loop stall in the storage bench.)
 */
export class KvReadCache {
  private readonly entries = new Map<string, Entry>();
  /** The ring: an entry's slot, or undefined for a free slot. Grows to at most entriesMax. */
  private readonly slots: (Entry | undefined)[] = [];
  /** Free slot indices below slots.length. */
  private readonly free: number[] = [];
  private hand = 0;
  private textChars = 0;
  /** Slots the hand has visited, over the cache's life (for tests: the cost of eviction). */
  private handSteps = 0;

  constructor(private readonly o: KvReadCacheOptions = KV_READ_CACHE_DEFAULTS) {
    for (const [k, v] of Object.entries(o)) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`kv read cache: ${k} must be a non-negative integer, got ${v}`);
    }
  }

  /** The cached register of `key`, or undefined when it is not cached (not: when it does not exist). */
  get(key: string): KvRegister | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    e.used = true;
    return e.reg;
  }

  /**
   * Caches the register stored as `text` and returns it (frozen). `parsed`
   * is decodeKvState(text) when the caller has it already. Too large: the key
   * is dropped from the cache and the parsed register returned unfrozen.
   */
  put(key: string, text: string, parsed: KvRegister = decodeKvState(text)): KvRegister {
    this.delete(key);
    if (this.o.entriesMax === 0 || text.length > this.o.entryTextCharsMax || text.length > this.o.textCharsMax) return parsed;
    const reg = deepFreeze(parsed);
    const passed = this.evictFor(text.length);
    // Taken from the free list: after an eviction, the slot the hand just
    // left, so the newcomer is the last the hand reaches. Marked used unless
    // the hand went all the way round during this put (it would have passed
    // the newcomer too): a new entry gets one pass before it can be evicted,
    // or a cache full of read entries would evict the entry it just took in.
    const slot = this.free.pop() ?? this.slots.length;
    const e: Entry = { key, reg, textChars: text.length, slot, used: !passed };
    this.slots[slot] = e;
    this.entries.set(key, e);
    this.textChars += text.length;
    return reg;
  }

  /** Forgets `key`. */
  delete(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.remove(e);
  }

  clear(): void {
    this.entries.clear();
    this.slots.length = 0;
    this.free.length = 0;
    this.hand = 0;
    this.textChars = 0;
  }

  /** Entries and text held now (for tests). */
  size(): { entries: number; textChars: number } {
    return { entries: this.entries.size, textChars: this.textChars };
  }

  /** Slots the eviction hand has visited since the cache was made (for tests). */
  evictionSteps(): number {
    return this.handSteps;
  }

  private remove(e: Entry): void {
    this.entries.delete(e.key);
    this.slots[e.slot] = undefined;
    this.free.push(e.slot);
    this.textChars -= e.textChars;
  }

  /**
   * Evicts until one more entry of `chars` fits both bounds. True when the
   * hand visited more entries than the cache held when it began: it went all
   * the way round.
   */
  private evictFor(chars: number): boolean {
    const held = this.entries.size;
    let visits = 0;
    // Each step evicts, clears a flag or passes a free slot; flags are only
    // set by reads and puts, so this ends within 2 x slots.length steps of
    // the last one, and over a run of puts costs O(1) steps per put.
    while (this.entries.size > 0 && (this.entries.size + 1 > this.o.entriesMax || this.textChars + chars > this.o.textCharsMax)) {
      if (this.hand >= this.slots.length) this.hand = 0;
      const e = this.slots[this.hand];
      this.hand++;
      this.handSteps++;
      if (e === undefined) continue;
      visits++;
      if (e.used) e.used = false;
      else this.remove(e);
    }
    return visits > held;
  }
}
