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
  entriesMax: 50_000,
  textCharsMax: 64 * 1024 * 1024,
  entryTextCharsMax: 64 * 1024,
};

interface Entry {
  readonly reg: KvRegister;
  readonly textChars: number;
  /** Read since it was last passed over for eviction (the "second chance" of CLOCK). */
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
 * Keys to frozen registers, evicted in insertion order with a second chance
 * for entries read since their last pass (CLOCK): close to LRU, but a hit
 * only sets a flag instead of moving the entry.
 */
export class KvReadCache {
  private readonly entries = new Map<string, Entry>();
  private textChars = 0;

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
    // Marked used: a new entry gets one pass before it can be evicted, or a
    // cache full of read entries would evict the entry it just took in.
    this.entries.set(key, { reg, textChars: text.length, used: true });
    this.textChars += text.length;
    this.evict();
    return reg;
  }

  /** Forgets `key`. */
  delete(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    this.textChars -= e.textChars;
  }

  clear(): void {
    this.entries.clear();
    this.textChars = 0;
  }

  /** Entries and text held now (for tests). */
  size(): { entries: number; textChars: number } {
    return { entries: this.entries.size, textChars: this.textChars };
  }

  private evict(): void {
    // Each pass either evicts or clears one flag, so this ends within 2 x size steps.
    while (this.entries.size > this.o.entriesMax || this.textChars > this.o.textCharsMax) {
      const first = this.entries.entries().next();
      if (first.done === true) return;
      const [key, e] = first.value;
      this.entries.delete(key);
      if (e.used) {
        e.used = false;
        this.entries.set(key, e);
      } else {
        this.textChars -= e.textChars;
      }
    }
  }
}
