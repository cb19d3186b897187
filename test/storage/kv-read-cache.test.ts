// The kv read cache of the SQLite store: its bounds on its own, and inside the
// store, that a point read always returns what the table holds — after every
// commit, a rolled-back commit, eviction, a close and a reopen — checked
// against a second connection that reads the file directly.

import { decodeKvState } from "../../src/core/codec/kv-state.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import type { KvRegister } from "../../src/core/op.js";
import { KvReadCache } from "../../src/storage/kv-read-cache.js";
import type { KvRow } from "../../src/storage/port.js";
import { openSqliteStorage } from "../../src/storage/sqlite.js";
import { A, B, reg } from "./fixtures.js";

const root = mkdtempSync(join(tmpdir(), "geokv-kv-cache-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dbCount = 0;
function freshPath(): string {
  dbCount++;
  return join(root, `db-${dbCount}`, "geokv.sqlite");
}

const text = (r: KvRegister) => JSON.stringify(r);

describe("KvReadCache", () => {
  it("holds at most entriesMax keys, giving entries read since the last pass a second chance", () => {
    const c = new KvReadCache({ entriesMax: 2, textCharsMax: 1_000_000, entryTextCharsMax: 1_000_000 });
    c.put("a", text(reg("1")));
    c.put("b", text(reg("2")));
    // Every entry is new (so marked used): one pass clears all flags, then the oldest goes, never the newcomer.
    c.put("c", text(reg("3")));
    expect(c.size().entries).toBe(2);
    expect(c.get("a")).toBeUndefined();
    expect(c.get("c")).toEqual(reg("3"));
    // "b" and "c" were passed over; only "c" was read since, so "b" goes.
    c.put("d", text(reg("4")));
    expect(c.get("b")).toBeUndefined();
    // The same with the oldest entry read: "d" stays, the younger unread "e" goes.
    c.put("e", text(reg("5")));
    c.get("d");
    c.put("f", text(reg("6")));
    expect(c.get("d")).toEqual(reg("4"));
    expect(c.get("e")).toBeUndefined();
    expect(c.get("f")).toEqual(reg("6"));
    expect(c.size().entries).toBe(2);
  });

  it("bounds the text it holds, skips entries over the per-entry bound, and keeps its count exact", () => {
    const one = text(reg("1")).length;
    const c = new KvReadCache({ entriesMax: 100, textCharsMax: one * 2, entryTextCharsMax: one * 2 });
    c.put("a", text(reg("1")));
    c.put("b", text(reg("2")));
    expect(c.size()).toEqual({ entries: 2, textChars: one * 2 });
    c.put("c", text(reg("3")));
    expect(c.size()).toEqual({ entries: 2, textChars: one * 2 });
    // Replacing a key does not count it twice.
    c.put("c", text(reg("4")));
    expect(c.size()).toEqual({ entries: 2, textChars: one * 2 });
    // Too large for one entry: not cached, and an older copy of the key is dropped.
    const big = text(reg(JSON.stringify("x".repeat(one * 2))));
    expect(c.put("c", big)).toEqual(JSON.parse(big));
    expect(c.get("c")).toBeUndefined();
    expect(c.size().entries).toBe(1);
    c.delete("nope");
    c.clear();
    expect(c.size()).toEqual({ entries: 0, textChars: 0 });
  });

  it("caches nothing with entriesMax 0 and refuses bounds that are not integers", () => {
    const c = new KvReadCache({ entriesMax: 0, textCharsMax: 1000, entryTextCharsMax: 1000 });
    c.put("a", text(reg("1")));
    expect(c.get("a")).toBeUndefined();
    expect(() => new KvReadCache({ entriesMax: -1, textCharsMax: 1, entryTextCharsMax: 1 })).toThrow(RangeError);
    expect(() => new KvReadCache({ entriesMax: 1, textCharsMax: 0.5, entryTextCharsMax: 1 })).toThrow(RangeError);
  });

  it("evicts in O(1) hand steps per put over a long run of new keys (it was quadratic: a 943 ms stall)", () => {
    const c = new KvReadCache({ entriesMax: 50_000, textCharsMax: 64 * 1024 * 1024, entryTextCharsMax: 64 * 1024 });
    const one = text(reg("1"));
    const puts = 200_000;
    for (let i = 0; i < puts; i++) {
      c.put(`k${i}`, one);
      // A read of a recent key now and then, so second chances happen too.
      if (i % 7 === 0) c.get(`k${i - 3}`);
    }
    expect(c.size().entries).toBe(50_000);
    // Each put passes at most a few slots on average: every step clears a flag, evicts or skips a free slot.
    expect(c.evictionSteps() / puts).toBeLessThanOrEqual(3);
  });

  it("evicts exactly as the queue form of CLOCK does (new entries at the back, read ones moved back once)", () => {
    // The reference: a queue where a put appends a used entry, then the front
    // is evicted while over a bound, a used front being cleared and moved back.
    class QueueClock {
      readonly q = new Map<string, { chars: number; used: boolean }>();
      chars = 0;
      constructor(readonly max: number, readonly charsMax: number) {}
      put(k: string, chars: number): void {
        this.q.set(k, { chars, used: true });
        this.chars += chars;
        while (this.q.size > this.max || this.chars > this.charsMax) {
          const [fk, fe] = this.q.entries().next().value as [string, { chars: number; used: boolean }];
          this.q.delete(fk);
          if (fe.used) {
            fe.used = false;
            this.q.set(fk, fe);
          } else this.chars -= fe.chars;
        }
      }
      get(k: string): boolean {
        const e = this.q.get(k);
        if (e !== undefined) e.used = true;
        return e !== undefined;
      }
    }
    const step = fc.oneof(
      fc.record({ put: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ get: fc.integer({ min: 0, max: 60 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(step, { maxLength: 120 }), (max, steps) => {
        const payload = (n: number) => text(reg(JSON.stringify("x".repeat(n))));
        const charsMax = payload(40).length * 3;
        const c = new KvReadCache({ entriesMax: max, textCharsMax: charsMax, entryTextCharsMax: charsMax });
        const ref = new QueueClock(max, charsMax);
        let next = 0;
        for (const st of steps) {
          if ("put" in st) {
            // New keys only: a replaced key keeps its slot on the ring but moves to the back of the queue.
            const t = payload(st.put);
            c.put(`k${next}`, t);
            ref.put(`k${next}`, t.length);
            next++;
          } else {
            expect(c.get(`k${st.get}`) !== undefined).toBe(ref.get(`k${st.get}`));
          }
          expect(c.size()).toEqual({ entries: ref.q.size, textChars: ref.chars });
        }
        for (let i = 0; i < next; i++) expect(c.get(`k${i}`) !== undefined, `k${i}`).toBe(ref.q.has(`k${i}`));
      }),
      { numRuns: 300 },
    );
  });

  it("hands out frozen registers, so a caller cannot change what later readers get", () => {
    const c = new KvReadCache();
    c.put("a", text(reg("1")));
    const r = c.get("a") as KvRegister;
    expect(() => {
      (r.siblings as unknown as unknown[]).push(reg("2").siblings[0]);
    }).toThrow(TypeError);
    expect(() => {
      (r.siblings[0] as { valueJson: string | null }).valueJson = "2";
    }).toThrow(TypeError);
    expect(() => {
      (r.siblings[0]?.vv as Record<string, number>)[B] = 9;
    }).toThrow(TypeError);
    expect(c.get("a")).toEqual(reg("1"));
  });
});

/** What the file holds for `key`, read by a connection of its own (no cache). */
function tableKv(raw: Database.Database, key: string): KvRegister | undefined {
  const v = raw.prepare("SELECT state FROM kv WHERE key = ?").pluck().get(key) as string | undefined;
  return v === undefined ? undefined : decodeKvState(v);
}

describe("sqlite store with its kv read cache", () => {
  it("reads exactly what the table holds after random commits, overwrites, deletes and evictions", () => {
    const keys = ["a", "b", "c", "d", "é", "😀"];
    const row = fc.record({
      key: fc.constantFrom(...keys),
      value: fc.option(fc.integer().map(String), { nil: null }),
      seq: fc.integer({ min: 1, max: 1000 }),
      origin: fc.constantFrom(A, B),
    });
    // A step is a commit (one key may appear twice: the later row wins) or reads of every key.
    const step = fc.oneof(fc.array(row, { minLength: 1, maxLength: 4 }), fc.constant("read" as const));
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const path = freshPath();
        // A cache smaller than the key set, so evictions and refills happen all the time.
        const s = openSqliteStorage({ path, kvReadCache: { entriesMax: 3, textCharsMax: 1_000_000, entryTextCharsMax: 1_000_000 } });
        const raw = new Database(path, { readonly: true });
        try {
          for (const st of steps) {
            if (st !== "read") {
              const kv: KvRow[] = st.map((r) => ({ key: r.key, reg: reg(r.value, r.origin, r.seq), deleted: r.value === null }));
              s.commit({ kv });
            }
            for (const k of keys) expect(s.getKv(k), k).toEqual(tableKv(raw, k));
          }
        } finally {
          raw.close();
          s.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  it("keeps a key's cached register when a batch that rewrites it fails inside SQLite and rolls back", () => {
    const path = freshPath();
    const s = openSqliteStorage({ path });
    s.commit({ kv: [{ key: "k", reg: reg("1"), deleted: false }] });
    expect(s.getKv("k")).toEqual(reg("1"));
    // The kv row is written first, then the idempotency insert fails: the whole batch rolls back.
    const raw = new Database(path);
    raw.exec("CREATE TRIGGER fail_idem BEFORE INSERT ON idempotency BEGIN SELECT RAISE(ABORT, 'forced failure'); END;");
    expect(() => s.commit({
      kv: [{ key: "k", reg: reg("2", A, 2), deleted: false }, { key: "new", reg: reg("3"), deleted: false }],
      idempotency: [{ key: "i", requestHash: "h", status: 200, body: "{}", createdAtMs: 1 }],
    })).toThrow(/forced failure/);
    expect(s.getKv("k")).toEqual(reg("1"));
    expect(s.getKv("new")).toBeUndefined();
    expect(tableKv(raw, "k")).toEqual(reg("1"));
    raw.close();
    s.close();
  });

  it("starts empty on reopen: a change made to the file while it was closed is read back", () => {
    const path = freshPath();
    const s = openSqliteStorage({ path });
    s.commit({ kv: [{ key: "k", reg: reg("1"), deleted: false }] });
    expect(s.getKv("k")).toEqual(reg("1"));
    s.close();
    // Another process (a restore, say) rewrites the key while the store is closed.
    const raw = new Database(path);
    raw.prepare("UPDATE kv SET state = ? WHERE key = 'k'").run(JSON.stringify(reg("2", B, 7)));
    raw.close();
    const again = openSqliteStorage({ path });
    expect(again.getKv("k")).toEqual(reg("2", B, 7));
    again.close();
  });

  it("keeps stores apart: two files with the same key never read each other's register", () => {
    const s1 = openSqliteStorage({ path: freshPath() });
    const s2 = openSqliteStorage({ path: freshPath() });
    s1.commit({ kv: [{ key: "k", reg: reg("1"), deleted: false }] });
    s2.commit({ kv: [{ key: "k", reg: reg("2"), deleted: false }] });
    expect(s1.getKv("k")).toEqual(reg("1"));
    expect(s2.getKv("k")).toEqual(reg("2"));
    s1.close();
    s2.close();
  });

  it("throws on a read after close, cached key or not", () => {
    const s = openSqliteStorage({ path: freshPath() });
    s.commit({ kv: [{ key: "k", reg: reg("1"), deleted: false }] });
    expect(s.getKv("k")).toEqual(reg("1"));
    s.close();
    expect(() => s.getKv("k")).toThrow();
  });

  it("does not cache what the batch's caller still holds: changing a committed register object changes nothing", () => {
    const s = openSqliteStorage({ path: freshPath() });
    const mine = reg("1");
    s.commit({ kv: [{ key: "k", reg: mine, deleted: false }] });
    (mine.siblings[0] as { valueJson: string | null }).valueJson = "2";
    expect(s.getKv("k")).toEqual(reg("1"));
    s.close();
  });
});

