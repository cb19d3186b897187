// The peer frame codec reads bytes from other nodes: every valid frame must
// round-trip exactly (with one encoding per frame), and anything else (random,
// truncated or damaged bytes) must come back as a codec error value, never a
// throw, since one bad frame may close one link and nothing more.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HLC_LOGICAL_MAX, HLC_WALL_MAX, type Hlc } from "../../src/core/hlc.js";
import type { NodeId } from "../../src/core/ids.js";
import type { CounterOp, DocOp, KvOp, Op, SetOp } from "../../src/core/op.js";
import type { VersionVector } from "../../src/core/version-vector.js";
import {
  FRAME_OPS_MAX,
  NONCE_BYTES,
  PROOF_BYTES,
  PROTOCOL_VERSION,
  SNAP_ROWS_MAX,
  closeReason,
  decodeFrame,
  encodeFrame,
  isCodecError,
  peekHelloProtocol,
  type Frame,
  type HelloFrame,
} from "../../src/net/frames.js";

// ---------------------------------------------------------------- generators

const idArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("us-east-1", "eu-west", "a", "Z9", "constructor", "n.1_x-y"),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
);
const nodeIdArb = idArb.map((s) => s as NodeId);
const seqArb = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const natArb = fc.oneof(fc.nat(1000), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const vvArb: fc.Arbitrary<VersionVector> = fc.dictionary(idArb, seqArb, { maxKeys: 5 });
const hlcArb: fc.Arbitrary<Hlc> = fc.record({ wallMs: fc.integer({ min: 0, max: HLC_WALL_MAX }), logical: fc.integer({ min: 0, max: HLC_LOGICAL_MAX }) });
const wallMsArb = fc.oneof(fc.integer({ min: 0, max: 2 ** 48 }), fc.double({ min: 0, max: 2 ** 48, noNaN: true }));
const keyArb = fc.string({ unit: "binary", minLength: 1, maxLength: 30 });
// Ops carry an Idempotency-Key when the client sent one; the field is absent otherwise.
const idemArb = fc.record({ key: fc.string({ unit: "binary", minLength: 1, maxLength: 30 }), requestHash: fc.string({ unit: "binary", minLength: 1, maxLength: 43 }) });
const headArb = fc.record({ origin: nodeIdArb, seq: seqArb, hlc: hlcArb, key: keyArb, idem: idemArb }, { requiredKeys: ["origin", "seq", "hlc", "key"] });

const kvArb: fc.Arbitrary<KvOp> = fc
  .record({ head: headArb, valueJson: fc.option(fc.json({ maxDepth: 2 }), { nil: null }), others: vvArb })
  .map(({ head, valueJson, others }) => ({ ns: "kv", ...head, valueJson, vv: { ...others, [head.origin]: head.seq } }));

const counterArb: fc.Arbitrary<CounterOp> = fc
  .record({ head: headArb, delta: fc.oneof(fc.integer({ min: -100, max: 100 }), fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER })), p: natArb, n: natArb })
  .map(({ head, delta, p, n }) => ({
    ns: "counters",
    ...head,
    delta,
    // The totals include the op's own delta (op.ts).
    pTotal: delta > 0 ? Math.max(p, delta) : p,
    nTotal: delta < 0 ? Math.max(n, -delta) : n,
  }));

const memberArb = fc.string({ unit: "binary", maxLength: 10 });
const setArb: fc.Arbitrary<SetOp> = fc
  .record({ head: headArb, add: fc.array(memberArb, { maxLength: 4 }), remove: fc.array(fc.record({ member: memberArb, tags: fc.array(fc.string({ maxLength: 12 }), { maxLength: 3 }) }), { maxLength: 3 }) })
  .map(({ head, add, remove }) => ({ ns: "sets", ...head, add, remove }));

const docArb: fc.Arbitrary<DocOp> = fc.record({ head: headArb, update: fc.uint8Array({ maxLength: 64 }) }).map(({ head, update }) => ({ ns: "docs", ...head, update }));

const opArb: fc.Arbitrary<Op> = fc.oneof(kvArb, counterArb, setArb, docArb);

const introArb = fc.record({
  proto: fc.oneof(fc.constant(PROTOCOL_VERSION), fc.nat(1000)),
  clusterId: fc.oneof(fc.constantFrom("geokv", "prod-1"), fc.string({ minLength: 1, maxLength: 16 })),
  node: idArb,
  region: idArb,
  epoch: natArb,
  vv: vvArb,
  nonce: fc.uint8Array({ minLength: NONCE_BYTES, maxLength: NONCE_BYTES }),
});
const proofArb = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: PROOF_BYTES, maxLength: PROOF_BYTES }));

const frameArbs: Record<Frame["t"], fc.Arbitrary<Frame>> = {
  hello: introArb.map((i): Frame => ({ t: "hello", ...i })),
  welcome: fc.record({ i: introArb, proof: proofArb }).map(({ i, proof }): Frame => ({ t: "welcome", ...i, proof })),
  auth: proofArb.map((proof): Frame => ({ t: "auth", proof })),
  ops: fc
    .record({ batch: natArb, fence: fc.oneof(fc.constantFrom("", "us-east:7"), fc.string({ maxLength: 40 })), ops: fc.array(opArb, { maxLength: 6 }) })
    .map((f): Frame => ({ t: "ops", ...f })),
  ack: fc.record({ batch: natArb, vv: vvArb }).map((f): Frame => ({ t: "ack", ...f })),
  refuse: fc.record({ batch: natArb, knownEpoch: natArb, vv: vvArb }).map((f): Frame => ({ t: "refuse", ...f })),
  ping: fc
    .record({ wallMs: wallMsArb, hlc: hlcArb, role: fc.constantFrom("follower" as const, "candidate" as const, "leader" as const), leader: fc.oneof(fc.constant(""), idArb), epoch: natArb, vv: vvArb })
    .map((f): Frame => ({ t: "ping", ...f })),
  pong: fc.record({ echoWallMs: wallMsArb, wallMs: wallMsArb, vv: vvArb }).map((f): Frame => ({ t: "pong", ...f })),
  control: fc.oneof(fc.json({ maxDepth: 2 }).filter((j) => j.length >= 2), fc.string({ minLength: 2, maxLength: 40 })).map((json): Frame => ({ t: "control", json })),
  presence: fc.record({ room: keyArb, update: fc.uint8Array({ maxLength: 64 }) }).map((f): Frame => ({ t: "presence", ...f })),
  "live-update": fc.record({ room: keyArb, update: fc.uint8Array({ maxLength: 64 }) }).map((f): Frame => ({ t: "live-update", ...f })),
  "snap-begin": fc.record({ id: natArb, vv: vvArb, sweptVv: vvArb, hlc: hlcArb }).map((f): Frame => ({ t: "snap-begin", ...f })),
  "snap-rows": fc
    .record({
      id: natArb,
      rows: fc.array(
        fc.oneof(
          fc.record({ ns: fc.constantFrom("kv" as const, "counters" as const, "sets" as const, "docs" as const), key: keyArb, data: fc.uint8Array({ maxLength: 64 }) }),
          fc.record({ ns: fc.constant("idem" as const), key: fc.string({ minLength: 1, maxLength: 40 }), data: fc.uint8Array({ maxLength: 64 }) }),
        ),
        { maxLength: 5 },
      ),
    })
    .map((f): Frame => ({ t: "snap-rows", ...f })),
  "snap-end": fc.record({ id: natArb, rows: natArb }).map((f): Frame => ({ t: "snap-end", ...f })),
};
const anyFrameArb = fc.oneof(...Object.values(frameArbs));

// ---------------------------------------------------------------- helpers

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Decodes untrusted bytes: either a well-formed codec error or a frame that re-encodes to exactly these bytes. */
function expectSafeDecode(bytes: Uint8Array): Frame | null {
  const r = decodeFrame(bytes);
  if (isCodecError(r)) {
    expect(r.reason.length).toBeGreaterThan(0);
    expect(r.offset).toBeGreaterThanOrEqual(0);
    expect(r.offset).toBeLessThanOrEqual(bytes.length);
    return null;
  }
  expect(sameBytes(encodeFrame(r), bytes)).toBe(true);
  return r;
}

// ---------------------------------------------------------------- properties

describe("frame codec", () => {
  for (const [t, arb] of Object.entries(frameArbs)) {
    it(`round-trips every ${t} frame with one encoding`, () => {
      fc.assert(
        fc.property(arb, (frame) => {
          const bytes = encodeFrame(frame);
          const back = decodeFrame(bytes);
          expect(isCodecError(back), JSON.stringify(back)).toBe(false);
          expect(back).toEqual(frame);
          expect(sameBytes(encodeFrame(back as Frame), bytes)).toBe(true);
        }),
      );
    });
  }

  it("never throws on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expectSafeDecode(bytes);
      }),
    );
  });

  it("never throws on random bytes behind a valid frame type", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.uint8Array({ maxLength: 200 }), (t, rest) => {
        expectSafeDecode(new Uint8Array([t, ...rest]));
      }),
    );
  });

  it("returns a codec error for every truncation of a valid frame", () => {
    fc.assert(
      fc.property(anyFrameArb, fc.nat(), (frame, cut) => {
        const bytes = encodeFrame(frame);
        const prefix = bytes.subarray(0, cut % bytes.length);
        expect(isCodecError(decodeFrame(prefix))).toBe(true);
      }),
    );
  });

  it("returns a codec error for every prefix of small frames", () => {
    fc.assert(
      fc.property(fc.oneof(frameArbs.hello, frameArbs.auth, frameArbs.ack, frameArbs.ping, frameArbs.pong), (frame) => {
        const bytes = encodeFrame(frame);
        for (let n = 0; n < bytes.length; n++) expect(isCodecError(decodeFrame(bytes.subarray(0, n)))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("refuses trailing bytes", () => {
    fc.assert(
      fc.property(anyFrameArb, fc.uint8Array({ minLength: 1, maxLength: 8 }), (frame, extra) => {
        const bytes = encodeFrame(frame);
        const r = decodeFrame(new Uint8Array([...bytes, ...extra]));
        expect(isCodecError(r)).toBe(true);
      }),
    );
  });

  it("never throws on damaged frames, and accepts only canonical ones", () => {
    fc.assert(
      fc.property(anyFrameArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (frame, at, xor) => {
        const bytes = encodeFrame(frame);
        const i = at % bytes.length;
        bytes[i] = (bytes[i] as number) ^ xor;
        expectSafeDecode(bytes);
      }),
    );
  });

  it("decodes a Buffer view inside a larger allocation", () => {
    const frame: Frame = { t: "ack", batch: 9, vv: { "us-east-1": 3 } };
    const bytes = encodeFrame(frame);
    const big = Buffer.alloc(bytes.length + 10);
    big.set(bytes, 5);
    expect(decodeFrame(big.subarray(5, 5 + bytes.length))).toEqual(frame);
  });

  it("refuses more than FRAME_OPS_MAX ops on both sides", () => {
    const op: DocOp = { ns: "docs", origin: "n1" as NodeId, seq: 1, hlc: { wallMs: 1, logical: 0 }, key: "k", update: new Uint8Array(0) };
    const ops = Array.from({ length: FRAME_OPS_MAX + 1 }, (_, i) => ({ ...op, seq: i + 1 }));
    expect(() => encodeFrame({ t: "ops", batch: 1, fence: "", ops })).toThrow(/at most/);
    const ok = encodeFrame({ t: "ops", batch: 1, fence: "", ops: ops.slice(0, FRAME_OPS_MAX) });
    expect(isCodecError(decodeFrame(ok))).toBe(false);
  });

  it("refuses to encode what a peer would refuse to decode", () => {
    const nonce = new Uint8Array(NONCE_BYTES);
    const hello = { t: "hello", proto: 1, clusterId: "c", node: "a", region: "r", epoch: 0, vv: {}, nonce } as const;
    expect(() => encodeFrame({ ...hello, node: "bad id" })).toThrow(/node/);
    expect(() => encodeFrame({ ...hello, clusterId: "" })).toThrow(/cluster/);
    expect(() => encodeFrame({ ...hello, nonce: new Uint8Array(3) })).toThrow(/nonce/);
    expect(() => encodeFrame({ t: "auth", proof: new Uint8Array(5) })).toThrow(/proof/);
    expect(() => encodeFrame({ t: "control", json: "x".repeat(64 * 1024 + 1) })).toThrow(/control/);
    expect(() => encodeFrame({ t: "pong", echoWallMs: -1, wallMs: 0, vv: {} })).toThrow(/range/);
    expect(() => encodeFrame({ t: "ping", wallMs: 0, hlc: { wallMs: 0, logical: 0 }, role: "leader", leader: "no way", epoch: 0, vv: {} })).toThrow(/leader/);
  });

  it("peeks the protocol version of a hello, whatever follows it", () => {
    fc.assert(
      fc.property(frameArbs.hello, (frame) => {
        expect(peekHelloProtocol(encodeFrame(frame))).toBe((frame as HelloFrame).proto);
      }),
    );
    expect(peekHelloProtocol(new Uint8Array([1, 2, 0xff, 0xff]))).toBe(2);
    expect(peekHelloProtocol(new Uint8Array([1]))).toBeUndefined();
    expect(peekHelloProtocol(encodeFrame({ t: "auth", proof: new Uint8Array(0) }))).toBeUndefined();
    expect(peekHelloProtocol(new Uint8Array(0))).toBeUndefined();
  });

  it("keeps close reasons within the 123 bytes a close frame allows", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 300 }), (s) => {
        const r = closeReason(s);
        expect(Buffer.byteLength(r)).toBeLessThanOrEqual(123);
        expect(s.startsWith(r)).toBe(true);
        expect(Buffer.from(r).toString("utf8")).toBe(r);
      }),
    );
  });
});

// ---------------------------------------------------------------- snapshot frames

const T_SNAP_ROWS = 13;

/** A minimal LEB128 varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    if (n < 0x80) return [...out, n];
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
}
const lengthPrefixed = (bytes: readonly number[] | Uint8Array): number[] => [...varint(bytes.length), ...bytes];
const utf8 = (s: string): number[] => [...Buffer.from(s, "utf8")];

/** A snap-rows frame written by hand: namespace tag, key bytes and data of each row (the count as given, or the rows'). */
function rawRows(rows: ReadonlyArray<{ tag: number; key: readonly number[]; data?: readonly number[] }>, count = rows.length): Uint8Array {
  const body = rows.flatMap((r) => [r.tag, ...lengthPrefixed(r.key), ...lengthPrefixed(r.data ?? [])]);
  return new Uint8Array([T_SNAP_ROWS, ...varint(7), ...varint(count), ...body]);
}

/** The decode of `bytes`, which must be a codec error whose reason matches `reason`. */
function expectCodecError(bytes: Uint8Array, reason: RegExp): void {
  const r = decodeFrame(bytes);
  expect(isCodecError(r), JSON.stringify(r)).toBe(true);
  if (isCodecError(r)) {
    expect(r.reason).toMatch(reason);
    expect(r.offset).toBeGreaterThanOrEqual(0);
    expect(r.offset).toBeLessThanOrEqual(bytes.length);
  }
}

describe("snapshot frame codec on garbage", () => {
  it("reads a hand-written frame as the encoder writes it (so the cases below damage one thing each)", () => {
    const bytes = rawRows([{ tag: 1, key: utf8("k"), data: [1, 2] }, { tag: 5, key: utf8("idem key"), data: [] }]);
    expect(decodeFrame(bytes)).toEqual({ t: "snap-rows", id: 7, rows: [{ ns: "kv", key: "k", data: new Uint8Array([1, 2]) }, { ns: "idem", key: "idem key", data: new Uint8Array(0) }] });
    expect([...encodeFrame(decodeFrame(bytes) as Frame)]).toEqual([...bytes]);
  });

  it("refuses a namespace tag no namespace has", () => {
    for (const tag of [0, 6, 7, 0x80, 0xff]) expectCodecError(rawRows([{ tag: 1, key: utf8("a") }, { tag, key: utf8("k") }]), /unknown snapshot namespace/);
  });

  it(`refuses more than SNAP_ROWS_MAX (${SNAP_ROWS_MAX}) rows on both sides, and takes exactly that many`, () => {
    const row = { tag: 2, key: utf8("c") };
    expectCodecError(rawRows(Array.from({ length: SNAP_ROWS_MAX + 1 }, () => row)), /more than 1024 rows/);
    const ok = decodeFrame(rawRows(Array.from({ length: SNAP_ROWS_MAX }, () => row)));
    expect(isCodecError(ok)).toBe(false);
    const rows = Array.from({ length: SNAP_ROWS_MAX + 1 }, (_, i) => ({ ns: "kv" as const, key: `k${i}`, data: new Uint8Array(0) }));
    expect(() => encodeFrame({ t: "snap-rows", id: 1, rows })).toThrow(/at most/);
  });

  it("refuses a row count the bytes left cannot hold, without allocating for it", () => {
    expectCodecError(rawRows([], Number.MAX_SAFE_INTEGER), /cannot fit/);
    expectCodecError(rawRows([{ tag: 1, key: utf8("k") }], 2), /cannot fit/);
  });

  it("refuses a key its namespace cannot hold, on both sides", () => {
    const cases: Array<{ tag: number; key: number[]; why: RegExp }> = [
      { tag: 1, key: [], why: /snapshot key/ },
      { tag: 3, key: utf8("x".repeat(1025)), why: /snapshot key/ },
      { tag: 4, key: [0xff, 0xfe], why: /not valid UTF-8/ },
      { tag: 2, key: [0xed, 0xa0, 0x80], why: /not valid UTF-8/ },
      { tag: 5, key: [], why: /idempotency key/ },
      { tag: 5, key: utf8("i".repeat(257)), why: /idempotency key/ },
      { tag: 1, key: utf8("x".repeat(1025 + 1024)), why: /longer than/ },
    ];
    for (const c of cases) expectCodecError(rawRows([{ tag: c.tag, key: c.key }]), c.why);
    expect(isCodecError(decodeFrame(rawRows([{ tag: 1, key: utf8("x".repeat(1024)) }, { tag: 5, key: utf8("i".repeat(256)) }])))).toBe(false);
    expect(() => encodeFrame({ t: "snap-rows", id: 1, rows: [{ ns: "kv", key: "", data: new Uint8Array(0) }] })).toThrow(/snapshot row/);
    expect(() => encodeFrame({ t: "snap-rows", id: 1, rows: [{ ns: "idem", key: "i".repeat(257), data: new Uint8Array(0) }] })).toThrow(/snapshot row/);
  });

  it("refuses data longer than the frame", () => {
    const bytes = rawRows([{ tag: 1, key: utf8("k"), data: [1, 2, 3] }]);
    expectCodecError(bytes.subarray(0, bytes.length - 1), /truncated/);
    const lying = new Uint8Array([...bytes.subarray(0, bytes.length - 4), ...varint(1_000_000), 1, 2, 3]);
    expectCodecError(lying, /truncated/);
  });

  it("returns a codec error for every prefix of a snapshot frame", () => {
    fc.assert(
      fc.property(fc.oneof(frameArbs["snap-begin"], frameArbs["snap-rows"], frameArbs["snap-end"]), (frame) => {
        const bytes = encodeFrame(frame);
        for (let n = 0; n < bytes.length; n++) expect(isCodecError(decodeFrame(bytes.subarray(0, n))), `prefix of ${n}`).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("never throws on random bytes behind a snapshot frame type", () => {
    fc.assert(
      fc.property(fc.integer({ min: 12, max: 14 }), fc.uint8Array({ maxLength: 200 }), (t, rest) => {
        expectSafeDecode(new Uint8Array([t, ...rest]));
      }),
    );
  });
});
