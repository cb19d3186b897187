// The op codec reads bytes from peers and from disk: it must round-trip every
// valid op exactly, have one encoding per op, and answer a codec_error value
// (never throw) for anything else, however the bytes were damaged or forged.
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteWriter } from "../../src/core/codec/bytes.js";
import {
  MAX_KEY_BYTES,
  OP_CODEC_VERSION,
  decodeOp,
  decodeOps,
  encodeOp,
  encodeOps,
  isCodecError,
  type CodecError,
} from "../../src/core/codec/op-codec.js";
import { HLC_LOGICAL_MAX, HLC_WALL_MAX, type Hlc } from "../../src/core/hlc.js";
import type { NodeId } from "../../src/core/ids.js";
import { isWellFormedString, utf8ByteLength, validateKey } from "../../src/core/key.js";
import { IDEM_HASH_BYTES_MAX, IDEM_KEY_BYTES_MAX, type CounterOp, type DocOp, type KvOp, type Op, type OpIdem, type SetOp } from "../../src/core/op.js";
import type { VersionVector } from "../../src/core/version-vector.js";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

// ---------------------------------------------------------------- generators

const nodeIdArb: fc.Arbitrary<NodeId> = fc
  .oneof(
    fc.constantFrom("us-east-1", "eu-west-2", "ap-south-3", "a", "Z9", "constructor"),
    fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
  )
  .map((s) => s as NodeId);

const seqArb = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));

const hlcArb: fc.Arbitrary<Hlc> = fc.record({
  wallMs: fc.oneof(fc.integer({ min: 0, max: HLC_WALL_MAX }), fc.constantFrom(0, HLC_WALL_MAX)),
  logical: fc.integer({ min: 0, max: HLC_LOGICAL_MAX }),
});

// Keys: any code points (astral, BOM, NUL), plus ones at the byte limit.
const keyArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
  fc.constantFrom("\uFEFF", "\uFEFFkey", "\u0000", "😀", "a".repeat(MAX_KEY_BYTES), "é".repeat(MAX_KEY_BYTES / 2), "😀".repeat(MAX_KEY_BYTES / 4)),
);

const memberArb = fc.oneof(fc.string({ unit: "binary", maxLength: 12 }), fc.constantFrom("", "\uFEFF", "x"));

// Idempotency keys and request hashes: any code points, and ones at the byte limits.
const idemArb: fc.Arbitrary<OpIdem> = fc.record({
  key: fc.oneof(
    fc.string({ unit: "binary", minLength: 1, maxLength: 20 }),
    fc.constantFrom("a".repeat(IDEM_KEY_BYTES_MAX), "é".repeat(IDEM_KEY_BYTES_MAX / 2), "😀".repeat(IDEM_KEY_BYTES_MAX / 4), "\uFEFF", "\u0000"),
  ),
  requestHash: fc.oneof(
    fc.constantFrom("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg", "h".repeat(IDEM_HASH_BYTES_MAX), "😀".repeat(IDEM_HASH_BYTES_MAX / 4)),
    fc.string({ unit: "binary", minLength: 1, maxLength: 20 }),
  ),
});

// The idem field is left out (not undefined) when absent, as decoded ops have it.
const headArb = fc.record({ origin: nodeIdArb, seq: seqArb, hlc: hlcArb, key: keyArb, idem: idemArb }, { requiredKeys: ["origin", "seq", "hlc", "key"] });

const kvArb: fc.Arbitrary<KvOp> = fc
  .record({
    head: headArb,
    valueJson: fc.option(fc.oneof(fc.json({ maxDepth: 2 }), fc.constantFrom('"\uFEFF"', "null", '"😀"', "[]", "{}")), { nil: null }),
    others: fc.dictionary(nodeIdArb, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { maxKeys: 4 }),
  })
  .map(({ head, valueJson, others }) => {
    const vv: VersionVector = { ...others, [head.origin]: head.seq };
    return { ns: "kv", ...head, valueJson, vv };
  });

const counterArb: fc.Arbitrary<CounterOp> = fc
  .record({
    head: headArb,
    delta: fc.oneof(fc.integer({ min: -100, max: 100 }), fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, -1, 0)),
    p: fc.oneof(fc.nat(1000), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    n: fc.oneof(fc.nat(1000), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  })
  .map(({ head, delta, p, n }) => ({
    ns: "counters",
    ...head,
    delta,
    // The totals include the op's own delta (op.ts).
    pTotal: delta > 0 ? Math.max(p, delta) : p,
    nTotal: delta < 0 ? Math.max(n, -delta) : n,
  }));

const setArb: fc.Arbitrary<SetOp> = fc
  .record({
    head: headArb,
    add: fc.array(memberArb, { maxLength: 6 }),
    remove: fc.array(fc.record({ member: memberArb, tags: fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }) }), { maxLength: 4 }),
  })
  .map(({ head, add, remove }) => ({ ns: "sets", ...head, add, remove }));

const smallDocArb: fc.Arbitrary<DocOp> = fc
  .record({ head: headArb, update: fc.uint8Array({ maxLength: 64 }) })
  .map(({ head, update }) => ({ ns: "docs", ...head, update }));

// Large updates without drawing every byte from the generator (that would be slow).
const largeDocArb: fc.Arbitrary<DocOp> = fc
  .record({ head: headArb, size: fc.integer({ min: 0, max: 300_000 }), seed: fc.nat(255) })
  .map(({ head, size, seed }) => {
    const update = new Uint8Array(size);
    for (let i = 0; i < size; i++) update[i] = (i * 31 + seed) & 0xff;
    return { ns: "docs", ...head, update };
  });

const smallOpArb: fc.Arbitrary<Op> = fc.oneof(kvArb, counterArb, setArb, smallDocArb);

// Ops that stay small, so a property can try every prefix or every byte.
const compactHeadArb = fc.record({
  origin: nodeIdArb.filter((s) => s.length <= 12),
  seq: seqArb,
  hlc: hlcArb,
  key: fc.string({ unit: "binary", minLength: 1, maxLength: 8 }),
  idem: fc.record({ key: fc.string({ unit: "binary", minLength: 1, maxLength: 6 }), requestHash: fc.string({ unit: "binary", minLength: 1, maxLength: 6 }) }),
}, { requiredKeys: ["origin", "seq", "hlc", "key"] });
const compactOpArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ head: compactHeadArb, valueJson: fc.option(fc.json({ maxDepth: 1 }), { nil: null }), other: fc.option(nodeIdArb.filter((s) => s.length <= 8)) }).map(
    ({ head, valueJson, other }): KvOp => ({ ns: "kv", ...head, valueJson, vv: { ...(other === null ? {} : { [other]: 7 }), [head.origin]: head.seq } }),
  ),
  fc.record({ head: compactHeadArb, delta: fc.integer({ min: -1000, max: 1000 }), p: fc.nat(2000), n: fc.nat(2000) }).map(
    ({ head, delta, p, n }): CounterOp => ({ ns: "counters", ...head, delta, pTotal: delta > 0 ? Math.max(p, delta) : p, nTotal: delta < 0 ? Math.max(n, -delta) : n }),
  ),
  fc.record({ head: compactHeadArb, add: fc.array(memberArb, { maxLength: 3 }), remove: fc.array(fc.record({ member: memberArb, tags: fc.array(fc.string({ maxLength: 8 }), { maxLength: 2 }) }), { maxLength: 2 }) }).map(
    ({ head, add, remove }): SetOp => ({ ns: "sets", ...head, add, remove }),
  ),
  fc.record({ head: compactHeadArb, update: fc.uint8Array({ maxLength: 16 }) }).map(({ head, update }): DocOp => ({ ns: "docs", ...head, update })),
);

// ---------------------------------------------------------------- helpers

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Decodes untrusted bytes; null when the outcome is acceptable (a well-formed
 * codec_error, or an op that re-encodes to exactly these bytes), else what is
 * wrong. A throw propagates and fails the test.
 */
function decodeProblem(bytes: Uint8Array): string | null {
  const r = decodeOp(bytes);
  if (isCodecError(r)) {
    const ok = typeof r.reason === "string" && r.reason.length > 0 && Number.isInteger(r.offset) && r.offset >= 0 && r.offset <= bytes.length;
    return ok ? null : `malformed error ${JSON.stringify(r)}`;
  }
  // One encoding per op: whatever decodes re-encodes to the same bytes.
  return sameBytes(encodeOp(r), bytes) ? null : `accepted bytes that do not re-encode identically: ${JSON.stringify(r)}`;
}

function decodeChecked(bytes: Uint8Array): void {
  expect(decodeProblem(bytes)).toBeNull();
}

function decodeBatchChecked(bytes: Uint8Array): Op[] | CodecError {
  const r = decodeOps(bytes);
  if (isCodecError(r)) expect(r.offset).toBeLessThanOrEqual(bytes.length);
  else expect(sameBytes(encodeOps(r), bytes)).toBe(true);
  return r;
}

function expectError(bytes: Uint8Array, reason: RegExp): CodecError {
  const r = decodeOp(bytes);
  expect(isCodecError(r), `expected a codec_error matching ${reason}, got ${JSON.stringify(r)}`).toBe(true);
  expect((r as CodecError).reason).toMatch(reason);
  return r as CodecError;
}

const build = (fn: (w: ByteWriter) => void): Uint8Array => {
  const w = new ByteWriter();
  fn(w);
  return w.finish();
};

interface HeadFields {
  version?: number;
  kind?: number;
  ns?: number;
  origin?: Uint8Array;
  seq?: number;
  key?: Uint8Array;
  /** Idempotency key and request hash bytes, written after the key (set the 0x80 tag bit yourself). */
  idem?: [Uint8Array, Uint8Array];
}

const HLC_BYTES: Hlc = { wallMs: 1_763_812_345_678, logical: 3 };

/** A hand-built op frame header, each field overridable with hostile bytes. */
function head(w: ByteWriter, f: HeadFields = {}): void {
  w.u8(f.version ?? OP_CODEC_VERSION);
  w.u8(f.kind ?? 1);
  w.u8(f.ns ?? 1);
  w.bytes(f.origin ?? utf8("n1"));
  w.varint(f.seq ?? 1);
  w.hlc(HLC_BYTES);
  w.bytes(f.key ?? utf8("k"));
  if (f.idem) {
    w.bytes(f.idem[0]);
    w.bytes(f.idem[1]);
  }
}

/** A kv body after the head: value flag, value, vv entries as given. */
function kvTail(w: ByteWriter, value: Uint8Array | null, vv: Array<[string, number]> = [["n1", 1]]): void {
  if (value === null) w.u8(0);
  else {
    w.u8(1);
    w.bytes(value);
  }
  w.varint(vv.length);
  for (const [node, seq] of vv) {
    w.string(node);
    w.varint(seq);
  }
}

// ---------------------------------------------------------------- round trips

describe("op codec: round trip", () => {
  it("kv ops (values, tombstones, unicode keys, vectors)", () => {
    fc.assert(fc.property(kvArb, (op) => {
      expect(decodeOp(encodeOp(op))).toEqual(op);
    }));
  });

  it("counter ops, including negative and extreme deltas, exactly", () => {
    fc.assert(
      fc.property(counterArb, (op) => {
        const back = decodeOp(encodeOp(op)) as CounterOp;
        expect(back).toEqual(op);
        expect(Object.is(back.delta, op.delta)).toBe(true);
      }),
    );
  });

  it("set ops, including empty add and remove lists", () => {
    fc.assert(fc.property(setArb, (op) => {
      expect(decodeOp(encodeOp(op))).toEqual(op);
    }));
    const empty: SetOp = { ns: "sets", origin: "n1" as NodeId, seq: 1, hlc: HLC_BYTES, key: "s", add: [], remove: [] };
    expect(decodeOp(encodeOp(empty))).toEqual(empty);
  });

  it("docs ops, small and large updates", () => {
    fc.assert(
      fc.property(fc.oneof({ arbitrary: smallDocArb, weight: 3 }, { arbitrary: largeDocArb, weight: 1 }), (op) => {
        const back = decodeOp(encodeOp(op)) as DocOp;
        // Bytes compared directly: a deep toEqual over 300 KB per run is far too slow.
        expect(back.update).toBeInstanceOf(Uint8Array);
        expect(sameBytes(back.update, op.update)).toBe(true);
        expect({ ...back, update: null }).toEqual({ ...op, update: null });
      }),
    );
  });

  it("batches of any ops, order kept", () => {
    fc.assert(
      fc.property(fc.array(smallOpArb, { maxLength: 8 }), (ops) => {
        expect(decodeOps(encodeOps(ops))).toEqual(ops);
      }),
    );
    expect(decodeOps(encodeOps([]))).toEqual([]);
  });

  it("ops with an idempotency key, in every namespace, alone and in batches", () => {
    const withIdem = smallOpArb.chain((op) => idemArb.map((idem): Op => ({ ...op, idem })));
    fc.assert(fc.property(withIdem, (op) => {
      const back = decodeOp(encodeOp(op));
      expect(back).toEqual(op);
      expect((back as Op).idem).toEqual(op.idem);
    }));
    fc.assert(fc.property(fc.array(fc.oneof(withIdem, smallOpArb), { maxLength: 6 }), (ops) => {
      expect(decodeOps(encodeOps(ops))).toEqual(ops);
    }));
  });

  it("an op without an idempotency key has no idem field after decoding", () => {
    const op: CounterOp = { ns: "counters", origin: "n1" as NodeId, seq: 1, hlc: HLC_BYTES, key: "c", delta: 5, pTotal: 5, nTotal: 0 };
    const back = decodeOp(encodeOp(op)) as CounterOp;
    expect("idem" in back).toBe(false);
    // An explicit undefined encodes like an absent field.
    expect(sameBytes(encodeOp({ ...op, idem: undefined }), encodeOp(op))).toBe(true);
  });

  it("keeps the version-1 layout for ops without an idempotency key, and flags ops with one in the tag byte", () => {
    const op: KvOp = { ns: "kv", origin: "n1" as NodeId, seq: 1, hlc: HLC_BYTES, key: "k", valueJson: "1", vv: { n1: 1 } };
    // Bytes written by hand exactly as before the flag existed.
    const v1 = build((w) => { head(w); kvTail(w, utf8("1")); });
    expect(sameBytes(encodeOp(op), v1)).toBe(true);
    expect(decodeOp(v1)).toEqual(op);
    const flagged = build((w) => { head(w, { ns: 0x81, idem: [utf8("retry-1"), utf8("h")] }); kvTail(w, utf8("1")); });
    const withIdem: KvOp = { ...op, idem: { key: "retry-1", requestHash: "h" } };
    expect(sameBytes(encodeOp(withIdem), flagged)).toBe(true);
    expect(decodeOp(flagged)).toEqual(withIdem);
  });

  it("a leading BOM is data, not stripped", () => {
    const op: SetOp = { ns: "sets", origin: "n1" as NodeId, seq: 2, hlc: HLC_BYTES, key: "\uFEFF", add: ["\uFEFFm"], remove: [] };
    expect(decodeOp(encodeOp(op))).toEqual(op);
  });

  it("decoding from a Node Buffer or an offset view works, and the result does not alias the input", () => {
    fc.assert(
      fc.property(smallDocArb, fc.nat(7), (op, pad) => {
        const bytes = encodeOp(op);
        const big = new Uint8Array(pad + bytes.length + 3);
        big.set(bytes, pad);
        const view = big.subarray(pad, pad + bytes.length);
        expect(decodeOp(view)).toEqual(op);
        const buf = Buffer.from(view);
        const back = decodeOp(buf) as DocOp;
        expect(back).toEqual(op);
        buf.fill(0);
        expect(back.update).toEqual(op.update);
        expect(back.update.buffer).not.toBe(buf.buffer);
      }),
    );
  });

  it("zero vv entries are dropped (missing means 0) and the encoding is canonical", () => {
    const op: KvOp = { ns: "kv", origin: "n1" as NodeId, seq: 3, hlc: HLC_BYTES, key: "k", valueJson: "1", vv: { z: 0, n1: 3, b: 2 } };
    const back = decodeOp(encodeOp(op)) as KvOp;
    expect(back.vv).toEqual({ b: 2, n1: 3 });
    // Key order of the vector does not change the bytes.
    expect(sameBytes(encodeOp({ ...op, vv: { n1: 3, b: 2 } }), encodeOp({ ...op, vv: { b: 2, n1: 3 } }))).toBe(true);
  });
});

// ---------------------------------------------------------------- hostile input

describe("op codec: untrusted bytes", () => {
  it("random bytes never throw: a valid op or a codec_error", () => {
    const prefixed = (prefix: number[]) => fc.uint8Array({ maxLength: 120 }).map((b) => new Uint8Array([...prefix, ...b]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), prefixed([1, 1]), prefixed([1, 1, 1]), prefixed([1, 1, 2]), prefixed([1, 1, 3, 1, 0x61]), prefixed([1, 1, 0x82, 2, 0x6e, 0x31]), prefixed([1, 2])), (bytes) => {
        decodeChecked(bytes);
        decodeBatchChecked(bytes);
      }),
    );
  });

  it("every truncation of a valid encoding is a codec_error", () => {
    fc.assert(
      fc.property(compactOpArb, (op) => {
        const bytes = encodeOp(op);
        // Collected, then asserted once: an expect per prefix dominates the run time.
        const accepted: number[] = [];
        for (let n = 0; n < bytes.length; n++) if (!isCodecError(decodeOp(bytes.subarray(0, n)))) accepted.push(n);
        expect(accepted, `prefix lengths of ${bytes.length} accepted`).toEqual([]);
      }),
    );
  });

  it("every truncation of a batch is a codec_error", () => {
    fc.assert(
      fc.property(fc.array(compactOpArb, { minLength: 1, maxLength: 2 }), (ops) => {
        const bytes = encodeOps(ops);
        const accepted: number[] = [];
        for (let n = 0; n < bytes.length; n++) if (!isCodecError(decodeOps(bytes.subarray(0, n)))) accepted.push(n);
        expect(accepted, `prefix lengths of ${bytes.length} accepted`).toEqual([]);
      }),
    );
  });

  it("trailing bytes are a codec_error", () => {
    fc.assert(
      fc.property(compactOpArb, fc.uint8Array({ minLength: 1, maxLength: 4 }), (op, extra) => {
        const bytes = encodeOp(op);
        const r = expectError(new Uint8Array([...bytes, ...extra]), /trailing/);
        expect(r.offset).toBe(bytes.length);
      }),
    );
  });

  it("single-byte mutations never throw, and anything still accepted is canonical", () => {
    fc.assert(
      fc.property(compactOpArb, fc.nat(), fc.nat(255), (op, at, value) => {
        const bytes = encodeOp(op);
        const mutated = bytes.slice();
        mutated[at % bytes.length] = value;
        decodeChecked(mutated);
      }),
    );
  });

  it("every single-byte mutation of a valid op, exhaustively for one op of each namespace", () => {
    const ops: Op[] = [
      { ns: "kv", origin: "n1" as NodeId, seq: 300, hlc: HLC_BYTES, key: "ké", valueJson: '{"a":[1,"x"]}', vv: { a: 1, n1: 300 } },
      { ns: "counters", origin: "n1" as NodeId, seq: 2, hlc: HLC_BYTES, key: "c", delta: -5, pTotal: 10, nTotal: 5 },
      { ns: "sets", origin: "n1" as NodeId, seq: 2, hlc: HLC_BYTES, key: "s", add: ["x", "😀"], remove: [{ member: "y", tags: ["n1:1:0"] }] },
      { ns: "docs", origin: "n1" as NodeId, seq: 2, hlc: HLC_BYTES, key: "d", update: new Uint8Array([1, 2, 3]) },
      { ns: "counters", origin: "n1" as NodeId, seq: 3, hlc: HLC_BYTES, key: "c", delta: 5, pTotal: 15, nTotal: 5, idem: { key: "ré", requestHash: "h1" } },
    ];
    const problems: string[] = [];
    for (const op of ops) {
      const bytes = encodeOp(op);
      for (let i = 0; i < bytes.length; i++) {
        for (let v = 0; v < 256; v++) {
          const mutated = bytes.slice();
          mutated[i] = v;
          const p = decodeProblem(mutated);
          if (p !== null) problems.push(`${op.ns} byte ${i} = ${v}: ${p}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("refuses an unknown format version, whatever follows", () => {
    const op: DocOp = { ns: "docs", origin: "n1" as NodeId, seq: 1, hlc: HLC_BYTES, key: "d", update: new Uint8Array([9]) };
    const bytes = encodeOp(op);
    bytes[0] = 99;
    expect(expectError(bytes, /version 99/).offset).toBe(0);
    expect(expectError(new Uint8Array([0]), /version 0/).offset).toBe(0);
    expect(isCodecError(decodeOps(new Uint8Array([99, 2, 0])))).toBe(true);
    expectError(new Uint8Array([]), /truncated/);
  });

  it("refuses a batch frame as an op and an op frame as a batch", () => {
    const op: DocOp = { ns: "docs", origin: "n1" as NodeId, seq: 1, hlc: HLC_BYTES, key: "d", update: new Uint8Array([]) };
    expectError(encodeOps([op]), /frame kind/);
    expect(isCodecError(decodeOps(encodeOp(op)))).toBe(true);
  });

  it("refuses huge declared lengths and counts without allocating", () => {
    const huge = Number.MAX_SAFE_INTEGER;
    // A key, a value, a docs update and an origin that claim more bytes than exist.
    expectError(build((w) => { head(w, { key: new Uint8Array(0) }); }).subarray(0, 0), /truncated/);
    expectError(build((w) => { w.u8(1); w.u8(1); w.u8(1); w.varint(huge); }), /origin longer than 64/);
    expectError(build((w) => { head(w, {}); w.u8(1); w.varint(huge); }), /truncated kv value/);
    expectError(build((w) => { head(w, { ns: 4 }); w.varint(2 ** 40); w.raw(new Uint8Array(10)); }), /truncated docs update/);
    expectError(build((w) => { w.u8(1); w.u8(1); w.u8(1); w.string("n1"); w.varint(1); w.hlc(HLC_BYTES); w.varint(huge); }), /key longer than 1024/);
    // Counts: vv entries, set members, batch size.
    expectError(build((w) => { head(w, {}); w.u8(0); w.varint(huge); }), /vv entry count .* cannot fit/);
    expectError(build((w) => { head(w, { ns: 3 }); w.varint(1_000_000); w.raw(new Uint8Array(100)); }), /set add count .* cannot fit/);
    expectError(build((w) => { head(w, { ns: 3 }); w.varint(0); w.varint(2 ** 31); }), /set remove count .* cannot fit/);
    const batch = decodeOps(build((w) => { w.u8(1); w.u8(2); w.varint(huge); w.raw(new Uint8Array(64)); }));
    expect(isCodecError(batch) && batch.reason).toMatch(/op count .* cannot fit/);
  });

  it("refuses invalid UTF-8 in keys, values, members and tags", () => {
    const invalid = [
      new Uint8Array([0xff]),
      new Uint8Array([0xc0, 0x80]), // overlong NUL
      new Uint8Array([0xed, 0xa0, 0x80]), // a UTF-16 surrogate encoded as UTF-8 (CESU-8)
      new Uint8Array([0xe2, 0x82]), // cut short
      new Uint8Array([0xf4, 0x90, 0x80, 0x80]), // past U+10FFFF
    ];
    for (const bad of invalid) {
      expectError(build((w) => { head(w, { key: bad }); kvTail(w, utf8("1")); }), /key is not valid UTF-8/);
      expectError(build((w) => { head(w, { origin: bad }); kvTail(w, utf8("1")); }), /origin is not valid UTF-8/);
      expectError(build((w) => { head(w); kvTail(w, new Uint8Array([0x22, ...bad, 0x22])); }), /kv value is not valid UTF-8/);
      expectError(build((w) => { head(w, { ns: 3 }); w.varint(1); w.bytes(bad); w.varint(0); }), /set member is not valid UTF-8/);
      expectError(build((w) => { head(w, { ns: 3 }); w.varint(0); w.varint(1); w.string("m"); w.varint(1); w.bytes(bad); }), /set tag is not valid UTF-8/);
    }
  });

  it("refuses bad namespace tags, seqs, node ids and keys", () => {
    for (const ns of [0, 5, 255]) expect(expectError(build((w) => { head(w, { ns }); }), /bad namespace tag/).offset).toBe(2);
    expectError(build((w) => { head(w, { seq: 0 }); kvTail(w, utf8("1"), [["n1", 0]]); }), /seq must be >= 1/);
    for (const origin of ["", "-n1", ".", "n 1", "ü", "a".repeat(65)]) {
      expectError(build((w) => { head(w, { origin: utf8(origin) }); kvTail(w, utf8("1"), [[origin, 1]]); }), /origin/);
    }
    expectError(build((w) => { head(w, { key: new Uint8Array(0) }); kvTail(w, utf8("1")); }), /key shorter than 1/);
    expectError(build((w) => { head(w, { key: utf8("k".repeat(MAX_KEY_BYTES + 1)) }); kvTail(w, utf8("1")); }), /key longer than 1024/);
    // Exactly at the limit is fine.
    const ok = decodeOp(build((w) => { head(w, { key: utf8("é".repeat(MAX_KEY_BYTES / 2)) }); kvTail(w, utf8("1")); }));
    expect(isCodecError(ok)).toBe(false);
  });

  it("refuses idempotency keys and request hashes out of bounds or not UTF-8, and a flag on no namespace", () => {
    const withIdem = (key: Uint8Array, hash: Uint8Array) => build((w) => { head(w, { ns: 0x82, idem: [key, hash] }); w.float64(1); w.varint(1); w.varint(0); });
    expectError(withIdem(new Uint8Array(0), utf8("h")), /idempotency key shorter than 1/);
    expectError(withIdem(utf8("k".repeat(IDEM_KEY_BYTES_MAX + 1)), utf8("h")), /idempotency key longer than 256/);
    expectError(withIdem(utf8("k"), new Uint8Array(0)), /idempotency request hash shorter than 1/);
    expectError(withIdem(utf8("k"), utf8("h".repeat(IDEM_HASH_BYTES_MAX + 1))), /idempotency request hash longer than 128/);
    for (const bad of [new Uint8Array([0xff]), new Uint8Array([0xc0, 0x80]), new Uint8Array([0xed, 0xa0, 0x80])]) {
      expectError(withIdem(bad, utf8("h")), /idempotency key is not valid UTF-8/);
      expectError(withIdem(utf8("k"), bad), /idempotency request hash is not valid UTF-8/);
    }
    // Exactly at the limits is fine.
    const atLimits = decodeOp(withIdem(utf8("é".repeat(IDEM_KEY_BYTES_MAX / 2)), utf8("h".repeat(IDEM_HASH_BYTES_MAX))));
    expect(atLimits).toMatchObject({ ns: "counters", idem: { key: "é".repeat(IDEM_KEY_BYTES_MAX / 2), requestHash: "h".repeat(IDEM_HASH_BYTES_MAX) } });
    // The flag without a namespace, or on an unknown one, is a bad tag.
    for (const ns of [0x80, 0x85, 0xff]) expect(expectError(build((w) => { head(w, { ns, idem: [utf8("k"), utf8("h")] }); }), /bad namespace tag/).offset).toBe(2);
    // The flag promises the two fields: without them the rest is misread and refused.
    expectError(build((w) => { head(w, { ns: 0x84 }); w.bytes(new Uint8Array(0)); }), /idempotency key shorter than 1/);
  });

  it("refuses kv values that are not JSON and broken version vectors", () => {
    for (const v of ["", "{", "undefined", "NaN", "'x'", "[1,]", "01"]) {
      expectError(build((w) => { head(w); kvTail(w, utf8(v)); }), /not valid JSON/);
    }
    expectError(build((w) => { head(w); w.u8(2); }), /bad kv value flag/);
    expectError(build((w) => { head(w, { seq: 2 }); kvTail(w, null, [["n1", 1]]); }), /vv\[origin\] must equal seq/);
    expectError(build((w) => { head(w); kvTail(w, null, []); }), /vv\[origin\] must equal seq/);
    expectError(build((w) => { head(w); kvTail(w, null, [["n1", 1], ["n1", 1]]); }), /strictly ascending/);
    expectError(build((w) => { head(w); kvTail(w, null, [["n1", 1], ["a", 1]]); }), /strictly ascending/);
    expectError(build((w) => { head(w); kvTail(w, null, [["a", 0], ["n1", 1]]); }), /vv seq must be >= 1/);
    expectError(build((w) => { head(w); kvTail(w, null, [["__proto__", 1], ["n1", 1]]); }), /not a valid node id/);
  });

  it("refuses counter deltas that are not safe integers and totals that do not include the delta", () => {
    const counter = (delta: number, p: number, n: number) => build((w) => { head(w, { ns: 2 }); w.float64(delta); w.varint(p); w.varint(n); });
    for (const d of [0.5, -1.5, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53)]) expectError(counter(d, 2 ** 52, 2 ** 52), /delta is not a safe integer/);
    expectError(counter(5, 4, 0), /pTotal smaller/);
    expectError(counter(-5, 0, 4), /nTotal smaller/);
    expect(decodeOp(counter(-5, 0, 5))).toMatchObject({ ns: "counters", delta: -5, pTotal: 0, nTotal: 5 });
  });

  it("refuses non-minimal, overlong and unsafe varints", () => {
    // seq 1 written as 0x81 0x00 (two bytes for a one-byte value).
    const nonMinimal = build((w) => { w.u8(1); w.u8(1); w.u8(1); w.string("n1"); w.raw(new Uint8Array([0x81, 0x00])); });
    expectError(nonMinimal, /non-minimal varint in seq/);
    const overlong = build((w) => { w.u8(1); w.u8(1); w.u8(1); w.string("n1"); w.raw(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])); });
    expectError(overlong, /varint too long/);
    const unsafe = build((w) => { w.u8(1); w.u8(1); w.u8(1); w.string("n1"); w.raw(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10])); });
    expectError(unsafe, /exceeds 2\^53-1/);
  });

  it("isCodecError tells errors from values", () => {
    expect(isCodecError({ type: "codec_error", reason: "x", offset: 0 })).toBe(true);
    for (const x of [null, undefined, 0, "codec_error", [], {}, { type: "kv" }]) expect(isCodecError(x)).toBe(false);
    expect(isCodecError(decodeOps(encodeOps([])))).toBe(false);
  });
});

// ---------------------------------------------------------------- the encoder refuses bugs

describe("op codec: the encoder refuses ops that break op.ts's invariants", () => {
  const base: KvOp = { ns: "kv", origin: "n1" as NodeId, seq: 1, hlc: HLC_BYTES, key: "k", valueJson: "1", vv: { n1: 1 } };
  it.each([
    ["bad origin", { ...base, origin: "-x" as NodeId, vv: { "-x": 1 } }],
    ["seq 0", { ...base, seq: 0, vv: { n1: 0 } }],
    ["fractional seq", { ...base, seq: 1.5, vv: { n1: 1.5 } }],
    ["empty key", { ...base, key: "" }],
    ["key over 1024 bytes", { ...base, key: "é".repeat(513) }],
    ["lone surrogate key", { ...base, key: "\ud800" }],
    ["vv without own dot", { ...base, vv: {} }],
    ["invalid JSON", { ...base, valueJson: "{" }],
    ["negative vv entry", { ...base, vv: { n1: 1, a: -1 } }],
    ["lone surrogate member", { ns: "sets", origin: "n1", seq: 1, hlc: HLC_BYTES, key: "s", add: ["\udc00"], remove: [] }],
    ["fractional delta", { ns: "counters", origin: "n1", seq: 1, hlc: HLC_BYTES, key: "c", delta: 0.5, pTotal: 1, nTotal: 0 }],
    ["pTotal below delta", { ns: "counters", origin: "n1", seq: 1, hlc: HLC_BYTES, key: "c", delta: 3, pTotal: 1, nTotal: 0 }],
    ["invalid hlc", { ...base, hlc: { wallMs: -1, logical: 0 } }],
    ["empty idempotency key", { ...base, idem: { key: "", requestHash: "h" } }],
    ["idempotency key over 256 bytes", { ...base, idem: { key: "é".repeat(129), requestHash: "h" } }],
    ["lone surrogate idempotency key", { ...base, idem: { key: "\ud800", requestHash: "h" } }],
    ["empty request hash", { ...base, idem: { key: "k", requestHash: "" } }],
    ["request hash over 128 bytes", { ...base, idem: { key: "k", requestHash: "h".repeat(129) } }],
  ] as Array<[string, Op]>)("%s", (_name, op) => {
    expect(() => encodeOp(op)).toThrow();
  });
});

// ---------------------------------------------------------------- keys

describe("validateKey", () => {
  it("counts UTF-8 bytes exactly and refuses lone surrogates", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 50 }), (s) => {
        expect(utf8ByteLength(s)).toBe(utf8(s).length);
        expect(isWellFormedString(s)).toBe(true);
      }),
    );
    // Any string of UTF-16 code units: well-formed exactly when it survives a UTF-8 round trip.
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0xd7f0, max: 0xe010 }), fc.nat(0xffff)), { maxLength: 8 }), (units) => {
        const s = String.fromCharCode(...units);
        const survives = new TextDecoder().decode(utf8(s)) === s;
        expect(isWellFormedString(s)).toBe(survives);
        expect(validateKey(s) === null).toBe(s.length > 0 && survives && utf8(s).length <= MAX_KEY_BYTES);
      }),
    );
  });

  it("accepts 1 to 1024 bytes and says why otherwise", () => {
    for (const ok of ["a", "a".repeat(1024), "é".repeat(512), "😀".repeat(256), "€".repeat(341) + "a", "\u0000", "\uFEFF"]) {
      expect(validateKey(ok), ok.slice(0, 10)).toBeNull();
    }
    expect(validateKey("")).toEqual({ type: "invalid_key", reason: expect.stringMatching(/empty/) });
    for (const long of ["a".repeat(1025), "é".repeat(512) + "a", "😀".repeat(256) + "a", "€".repeat(342)]) {
      expect(validateKey(long)).toEqual({ type: "invalid_key", reason: expect.stringMatching(/1024/) });
    }
    for (const bad of ["\ud800", "\udc00", "a\ud800b", "\ud800\ud800", "\udc00\ud800", "x\ud83d"]) {
      expect(validateKey(bad)).toEqual({ type: "invalid_key", reason: expect.stringMatching(/UTF-8/) });
    }
  });
});
