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

import { anyEntry, entryOfWireTag } from "../apply/table.js";
import type { OpHead } from "../apply/types.js";
import { isValidId } from "../ids.js";
import { MAX_KEY_BYTES, validateKey } from "../key.js";
import { IDEM_HASH_BYTES_MAX, IDEM_KEY_BYTES_MAX, idemProblem, type Op, type OpIdem } from "../op.js";
import { ByteReader, ByteWriter, decodeWith, type CodecError } from "./bytes.js";
import { readNodeId, readVv, writeVv } from "./vv-codec.js";

export { isCodecError, type CodecError } from "./bytes.js";
// Re-exported so frames keep one import for op bodies and vectors.
export { readVv, writeVv };

/** The format version written as the first byte of every frame. */
export const OP_CODEC_VERSION = 1;

const FRAME_OP = 1;
const FRAME_BATCH = 2;

/** Set in the tag byte when the head carries an idempotency key and request hash. */
const TAG_IDEM = 0x80;

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
  return idemHint(op) + op.key.length * 3 + anyEntry(op.ns).wireHint(op);
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
  const entry = anyEntry(op.ns);
  entry.checkWire(op);
  writeHead(w, entry.wireTag, op);
  entry.writeWire(w, op);
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

/** Reads one op body (no frame header), validating every field. Throws ReadFailure. */
export function readOpBody(r: ByteReader): Op {
  const tagAt = r.pos;
  const rawTag = r.u8("namespace");
  const entry = entryOfWireTag(rawTag & ~TAG_IDEM);
  if (entry === undefined) r.fail(`bad namespace tag ${rawTag}`, tagAt);
  const origin = readNodeId(r, "origin");
  const seqAt = r.pos;
  const seq = r.varint("seq");
  if (seq < 1) r.fail("seq must be >= 1", seqAt);
  const hlc = r.hlc("hlc");
  // Strict UTF-8 decoding already rules out lone surrogates; only length is left.
  const key = r.string("key", 1, MAX_KEY_BYTES);
  // The field is left out, not set to undefined, when absent: decoded ops
  // then look exactly like ops made without one.
  const head: OpHead = (rawTag & TAG_IDEM) === 0 ? { origin, seq, hlc, key } : { origin, seq, hlc, key, idem: readIdem(r) };
  return entry.readWire(r, head);
}

function readIdem(r: ByteReader): OpIdem {
  const key = r.string("idempotency key", 1, IDEM_KEY_BYTES_MAX);
  const requestHash = r.string("idempotency request hash", 1, IDEM_HASH_BYTES_MAX);
  return { key, requestHash };
}

// Re-exported so HTTP and storage validate keys by the same rule as the codec.
export { MAX_KEY_BYTES, validateKey };
