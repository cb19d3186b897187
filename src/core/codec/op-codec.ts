// The binary form of ops, for the op log and the wire. Ops cross region links
// from peers we do not fully trust and are read back from disk after crashes,
// so the decoder treats every byte as hostile: it validates everything an op
// promises (op.ts) and answers a CodecError value instead of throwing. The
// encoding is canonical (minimal varints, sorted vectors, strict UTF-8): one
// op has exactly one encoding, so bytes can be compared and hashed.
//
// Layout, version 1 (varint = unsigned LEB128; string = varint byte length + UTF-8):
//   frame   = version:u8 (1)  kind:u8 (1 op, 2 batch)  payload
//   op      = body
//   batch   = count:varint  body*
//   body    = tag:u8  origin:string  seq:varint  hlc:8 bytes (hlcToBytes)  key:string
//             [idemKey:string  idemHash:string]  variant
//   tag     = ns (1 kv, 2 counters, 3 sets, 4 docs), plus 0x80 when the op carries
//             an Idempotency-Key (op.idem): then idemKey (1..256 bytes) and
//             idemHash (1..128 bytes) follow the key. An op without one encodes
//             exactly as before the flag existed, so older version-1 bytes still
//             decode; a decoder that predates the flag refuses the tag.
//   kv      = hasValue:u8 (0 tombstone, 1 value)  [valueJson:string]  vv
//   vv      = count:varint  (node:string  seq:varint)*   nodes strictly ascending, seqs >= 1
//   counters= delta:float64  pTotal:varint  nTotal:varint
//   sets    = count:varint member:string*  count:varint (member:string  count:varint tag:string*)*
//   docs    = update:varint length + bytes

import { isValidId, type NodeId } from "../ids.js";
import { MAX_KEY_BYTES, validateKey } from "../key.js";
import { IDEM_HASH_BYTES_MAX, IDEM_KEY_BYTES_MAX, idemProblem, type CounterOp, type DocOp, type KvOp, type Op, type OpIdem, type SetOp, type SetRemove } from "../op.js";
import { vvGet, type VersionVector } from "../version-vector.js";
import { ByteReader, ByteWriter, decodeWith, type CodecError } from "./bytes.js";

export { isCodecError, type CodecError } from "./bytes.js";

/** The format version written as the first byte of every frame. */
export const OP_CODEC_VERSION = 1;

const FRAME_OP = 1;
const FRAME_BATCH = 2;

const NS_KV = 1;
const NS_COUNTERS = 2;
const NS_SETS = 3;
const NS_DOCS = 4;
/** Set in the tag byte when the head carries an idempotency key and request hash. */
const TAG_IDEM = 0x80;

/** Node ids are at most 64 ASCII characters (ids.ts). */
const MAX_ID_BYTES = 64;
/** One vv entry is at least a 1-byte length, a 1-byte id and a 1-byte seq. */
const MIN_VV_ENTRY_BYTES = 3;
/** The smallest body: ns, origin (2), seq, hlc (8), key (2), an empty docs update (1). */
const MIN_OP_BYTES = 15;

/** The op as bytes: a version-1 frame holding one op. Throws on an op that breaks op.ts's invariants (a bug upstream). */
export function encodeOp(op: Op): Uint8Array {
  const w = new ByteWriter(64 + opPayloadHint(op));
  w.u8(OP_CODEC_VERSION);
  w.u8(FRAME_OP);
  writeOpBody(w, op);
  return w.finish();
}

/** Parses encodeOp's output from untrusted bytes; never throws. */
export function decodeOp(bytes: Uint8Array): Op | CodecError {
  return decodeWith(bytes, (r) => {
    readFrameHeader(r, FRAME_OP);
    return readOpBody(r);
  });
}

/** A batch of ops as one version-1 frame (order kept). */
export function encodeOps(ops: readonly Op[]): Uint8Array {
  let hint = 16;
  for (const op of ops) hint += 64 + opPayloadHint(op);
  const w = new ByteWriter(hint);
  w.u8(OP_CODEC_VERSION);
  w.u8(FRAME_BATCH);
  w.varint(ops.length);
  for (const op of ops) writeOpBody(w, op);
  return w.finish();
}

/** Parses encodeOps's output from untrusted bytes; never throws. */
export function decodeOps(bytes: Uint8Array): Op[] | CodecError {
  return decodeWith(bytes, (r) => {
    readFrameHeader(r, FRAME_BATCH);
    const n = r.count("op count", MIN_OP_BYTES);
    const ops: Op[] = [];
    for (let i = 0; i < n; i++) ops.push(readOpBody(r));
    return ops;
  });
}

function readFrameHeader(r: ByteReader, kind: number): void {
  const version = r.u8("format version");
  if (version !== OP_CODEC_VERSION) r.fail(`unknown format version ${version}`, 0);
  const got = r.u8("frame kind");
  if (got !== kind) r.fail(`frame kind ${got}, expected ${kind}`, 1);
}

// Sizing the writer up front avoids regrowing it for large values.
function opPayloadHint(op: Op): number {
  switch (op.ns) {
    case "kv": return idemHint(op) + op.key.length * 3 + (op.valueJson?.length ?? 0) * 3;
    case "docs": return idemHint(op) + op.key.length * 3 + op.update.length;
    default: return idemHint(op) + op.key.length * 3;
  }
}

function idemHint(op: Op): number {
  return op.idem === undefined ? 0 : 4 + (op.idem.key.length + op.idem.requestHash.length) * 3;
}

/** Writes one op's body (no frame header), for codecs that embed ops in larger frames. */
export function writeOpBody(w: ByteWriter, op: Op): void {
  if (!isValidId(op.origin)) throw new Error(`op origin is not a valid node id: ${JSON.stringify(op.origin)}`);
  if (!Number.isSafeInteger(op.seq) || op.seq < 1) throw new Error(`op seq must be an integer >= 1, got ${op.seq}`);
  const keyError = validateKey(op.key);
  if (keyError) throw new Error(`op key: ${keyError.reason}`);
  if (op.idem !== undefined) {
    const idemError = idemProblem(op.idem);
    if (idemError !== null) throw new Error(`op idem: ${idemError}`);
  }
  switch (op.ns) {
    case "kv": return writeKv(w, op);
    case "counters": return writeCounter(w, op);
    case "sets": return writeSet(w, op);
    case "docs": return writeDoc(w, op);
    default: {
      const never: never = op;
      throw new Error(`unknown namespace: ${JSON.stringify((never as Op).ns)}`);
    }
  }
}

function writeHead(w: ByteWriter, ns: number, op: Op): void {
  w.u8(op.idem === undefined ? ns : ns | TAG_IDEM);
  w.string(op.origin);
  w.varint(op.seq);
  w.hlc(op.hlc);
  w.string(op.key);
  if (op.idem !== undefined) {
    w.string(op.idem.key);
    w.string(op.idem.requestHash);
  }
}

function writeKv(w: ByteWriter, op: KvOp): void {
  if (vvGet(op.vv, op.origin) !== op.seq) throw new Error("kv op: vv[origin] must equal seq");
  if (op.valueJson !== null) JSON.parse(op.valueJson); // throws on a bug upstream, before peers refuse it
  writeHead(w, NS_KV, op);
  if (op.valueJson === null) w.u8(0);
  else {
    w.u8(1);
    w.string(op.valueJson);
  }
  writeVv(w, op.vv);
}

function writeCounter(w: ByteWriter, op: CounterOp): void {
  if (!Number.isSafeInteger(op.delta)) throw new Error(`counter delta must be a safe integer, got ${op.delta}`);
  if (op.delta > 0 && op.pTotal < op.delta) throw new Error("counter pTotal must include the delta");
  if (op.delta < 0 && op.nTotal < -op.delta) throw new Error("counter nTotal must include the delta");
  writeHead(w, NS_COUNTERS, op);
  w.float64(op.delta);
  w.varint(op.pTotal);
  w.varint(op.nTotal);
}

function writeSet(w: ByteWriter, op: SetOp): void {
  writeHead(w, NS_SETS, op);
  w.varint(op.add.length);
  for (const m of op.add) w.string(m);
  w.varint(op.remove.length);
  for (const rm of op.remove) {
    w.string(rm.member);
    w.varint(rm.tags.length);
    for (const t of rm.tags) w.string(t);
  }
}

function writeDoc(w: ByteWriter, op: DocOp): void {
  writeHead(w, NS_DOCS, op);
  w.bytes(op.update);
}

/**
 * Writes a version vector canonically: entries sorted by node id, zero
 * entries dropped (missing means 0), so equal vectors encode equally.
 */
export function writeVv(w: ByteWriter, vv: VersionVector): void {
  const nodes = Object.keys(vv).filter((k) => (vv[k] as number) !== 0).sort();
  w.varint(nodes.length);
  for (const node of nodes) {
    if (!isValidId(node)) throw new Error(`vv node is not a valid id: ${JSON.stringify(node)}`);
    w.string(node);
    w.varint(vv[node] as number);
  }
}

/** Reads writeVv's form, refusing duplicates, unsorted or invalid ids and zero seqs. Throws ReadFailure. */
export function readVv(r: ByteReader): VersionVector {
  const n = r.count("vv entry count", MIN_VV_ENTRY_BYTES);
  const vv: Record<string, number> = {};
  let prev: string | null = null;
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const node = readNodeId(r, "vv node");
    if (prev !== null && node <= prev) r.fail("vv nodes not strictly ascending", at);
    prev = node;
    const seqAt = r.pos;
    const seq = r.varint("vv seq");
    if (seq < 1) r.fail("vv seq must be >= 1", seqAt);
    vv[node] = seq;
  }
  return vv;
}

function readNodeId(r: ByteReader, what: string): NodeId {
  const at = r.pos;
  const s = r.string(what, 1, MAX_ID_BYTES);
  if (!isValidId(s)) r.fail(`${what} is not a valid node id`, at);
  return s as NodeId;
}

/** Reads one op body (no frame header), validating every field. Throws ReadFailure. */
export function readOpBody(r: ByteReader): Op {
  const tagAt = r.pos;
  const rawTag = r.u8("namespace");
  const tag = rawTag & ~TAG_IDEM;
  if (tag < NS_KV || tag > NS_DOCS) r.fail(`bad namespace tag ${rawTag}`, tagAt);
  const origin = readNodeId(r, "origin");
  const seqAt = r.pos;
  const seq = r.varint("seq");
  if (seq < 1) r.fail("seq must be >= 1", seqAt);
  const hlc = r.hlc("hlc");
  // Strict UTF-8 decoding already rules out lone surrogates; only length is left.
  const key = r.string("key", 1, MAX_KEY_BYTES);
  // The field is left out, not set to undefined, when absent: decoded ops
  // then look exactly like ops made without one.
  const head = (rawTag & TAG_IDEM) === 0 ? { origin, seq, hlc, key } : { origin, seq, hlc, key, idem: readIdem(r) };

  if (tag === NS_KV) {
    const flagAt = r.pos;
    const flag = r.u8("kv value flag");
    let valueJson: string | null = null;
    if (flag === 1) {
      const valueAt = r.pos;
      valueJson = r.string("kv value");
      if (!isJson(valueJson)) r.fail("kv value is not valid JSON", valueAt);
    } else if (flag !== 0) r.fail(`bad kv value flag ${flag}`, flagAt);
    const vvAt = r.pos;
    const vv = readVv(r);
    if (vv[origin] !== seq) r.fail("kv vv[origin] must equal seq", vvAt);
    return { ns: "kv", ...head, valueJson, vv } satisfies KvOp;
  }

  if (tag === NS_COUNTERS) {
    const deltaAt = r.pos;
    const delta = r.float64("counter delta");
    if (!Number.isSafeInteger(delta)) r.fail("counter delta is not a safe integer", deltaAt);
    const pAt = r.pos;
    const pTotal = r.varint("counter pTotal");
    const nAt = r.pos;
    const nTotal = r.varint("counter nTotal");
    // The totals include this op's own delta (op.ts), so a smaller total is a forged op.
    if (delta > 0 && pTotal < delta) r.fail("counter pTotal smaller than the delta", pAt);
    if (delta < 0 && nTotal < -delta) r.fail("counter nTotal smaller than the delta", nAt);
    return { ns: "counters", ...head, delta, pTotal, nTotal } satisfies CounterOp;
  }

  if (tag === NS_SETS) {
    const addCount = r.count("set add count", 1);
    const add: string[] = [];
    for (let i = 0; i < addCount; i++) add.push(r.string("set member"));
    const removeCount = r.count("set remove count", 2);
    const remove: SetRemove[] = [];
    for (let i = 0; i < removeCount; i++) {
      const member = r.string("set member");
      const tagCount = r.count("set tag count", 1);
      const tags: string[] = [];
      for (let j = 0; j < tagCount; j++) tags.push(r.string("set tag"));
      remove.push({ member, tags });
    }
    return { ns: "sets", ...head, add, remove } satisfies SetOp;
  }

  const update = r.bytes("docs update");
  return { ns: "docs", ...head, update } satisfies DocOp;
}

function readIdem(r: ByteReader): OpIdem {
  const key = r.string("idempotency key", 1, IDEM_KEY_BYTES_MAX);
  const requestHash = r.string("idempotency request hash", 1, IDEM_HASH_BYTES_MAX);
  return { key, requestHash };
}

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

// Re-exported so HTTP and storage validate keys by the same rule as the codec.
export { MAX_KEY_BYTES, validateKey };
