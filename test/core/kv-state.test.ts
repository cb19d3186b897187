// The stored text of a kv register (src/core/codec/kv-state.ts): every
// register round-trips, the first form still decodes to the same register,
// the dot-only vector is left out, and text that is not a register is an
// error, never a register.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeKvState, encodeKvState, kvStateTexts } from "../../src/core/codec/kv-state.js";
import { asNodeId } from "../../src/core/ids.js";
import type { KvRegister, KvVersion } from "../../src/core/op.js";

const ids = ["a", "n-2", "us-east-1", "x"] as const;

const versionArb: fc.Arbitrary<KvVersion> = fc
  .record({
    origin: fc.constantFrom(...ids),
    seq: fc.integer({ min: 1, max: 2 ** 40 }),
    wallMs: fc.integer({ min: 0, max: 2 ** 47 }),
    logical: fc.integer({ min: 0, max: 65535 }),
    value: fc.option(fc.json(), { nil: null }),
    others: fc.dictionary(fc.constantFrom(...ids), fc.integer({ min: 1, max: 1_000_000 }), { maxKeys: 3 }),
  })
  .map((r) => ({
    valueJson: r.value,
    hlc: { wallMs: r.wallMs, logical: r.logical },
    origin: asNodeId(r.origin),
    seq: r.seq,
    vv: { ...r.others, [r.origin]: r.seq },
  }));

const registerArb: fc.Arbitrary<KvRegister> = fc.array(versionArb, { maxLength: 4 }).map((siblings) => ({ siblings }));

const v = (origin: string, seq: number, vv: Record<string, number>, valueJson: string | null = '"x"'): KvVersion => ({
  valueJson,
  hlc: { wallMs: 1_700_000_000_000, logical: 2 },
  origin: asNodeId(origin),
  seq,
  vv,
});

describe("kv register text", () => {
  it("round-trips every register, and reads the first form to the same register", () => {
    fc.assert(
      fc.property(registerArb, (reg) => {
        expect(decodeKvState(encodeKvState(reg))).toEqual(reg);
        expect(decodeKvState(JSON.stringify(reg))).toEqual(reg);
        expect(kvStateTexts(reg)).toEqual([encodeKvState(reg), JSON.stringify(reg)]);
      }),
    );
  });

  it("leaves a dot-only vector out and keeps any other", () => {
    expect(encodeKvState({ siblings: [v("a", 7, { a: 7 })] })).toBe('[[1700000000000,2,"a",7,"\\"x\\""]]');
    expect(encodeKvState({ siblings: [v("a", 7, { a: 7, b: 0 }, null)] })).toBe('[[1700000000000,2,"a",7,null]]');
    expect(encodeKvState({ siblings: [v("a", 7, { a: 7, b: 3 })] })).toBe('[[1700000000000,2,"a",7,"\\"x\\"",{"a":7,"b":3}]]');
  });

  it("is well under the first form for a 100-byte value", () => {
    const reg: KvRegister = { siblings: [v("us-east-1", 999_999, { "us-east-1": 999_999 }, JSON.stringify("v".repeat(98)))] };
    expect(JSON.stringify(reg).length - encodeKvState(reg).length).toBeGreaterThan(80);
  });

  it("refuses text that is not a register", () => {
    const bad = [
      "{not json",
      "1",
      "null",
      '{"value":1}',
      "[1]",
      "[[1,2,3]]",
      '[[1700000000000,2,"a",0,null]]', // seq 0
      '[[1700000000000,2,"a",1.5,null]]',
      '[[-1,2,"a",1,null]]', // hlc
      '[[1700000000000,2,"bad id!",1,null]]',
      '[[1700000000000,2,"__proto__",1,null]]',
      '[[1700000000000,2,"a",1,5]]', // value not a string
      '[[1700000000000,2,"a",1,null,{"a":2}]]', // vv does not hold its own dot
      '[[1700000000000,2,"a",1,null,{"a":1,"b":-1}]]',
      '[[1700000000000,2,"a",1,null,[1]]]',
      '[[1700000000000,2,"a",1,null,{"a":1},7]]',
      '{"siblings":[{"valueJson":null,"hlc":{"wallMs":1,"logical":0},"origin":"a","seq":1}]}', // no vv
      '{"siblings":[{"valueJson":null,"hlc":"x","origin":"a","seq":1,"vv":{"a":1}}]}',
      '{"siblings":[null]}',
    ];
    for (const text of bad) expect(() => decodeKvState(text), text).toThrow();
  });
});
