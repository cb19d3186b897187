// The peer protocol's frames and their binary codec. Every WebSocket message
// between two nodes is one frame: a type byte, then fields written with the
// core's ByteWriter (ops embed the op codec's bodies). Decoding validates all
// of it and returns a CodecError value for garbage, so one bad frame closes
// one link and never reaches the replica.

import { ByteReader, ByteWriter, decodeWith, isCodecError, type CodecError } from "../core/codec/bytes.js";
import { readOpBody, readVv, writeOpBody, writeVv } from "../core/codec/op-codec.js";
import { isValidHlc, type Hlc } from "../core/hlc.js";
import { isValidId } from "../core/ids.js";
import { MAX_KEY_BYTES, validateKey } from "../core/key.js";
import { IDEM_KEY_BYTES_MAX, type Op } from "../core/op.js";
import { SNAPSHOT_NAMESPACES, type SnapshotRow } from "../core/snapshot.js";
import type { VersionVector } from "../core/version-vector.js";

/**
 * Every op is encoded once: the body bytes of an op object are kept here the
 * first time it is encoded (or as they arrived, when it was decoded from a
 * peer), and every later frame that carries the same object, to any peer,
 * reuses them. Keyed weakly: an op no longer referenced (out of the runtime's
 * tail) takes its bytes with it. Ops are immutable, so the bytes stay right.
 */
const opBodies = new WeakMap<Op, Uint8Array>();

/** The encoded body of `op`, encoded at most once per op object. */
export function encodedOpBody(op: Op): Uint8Array {
  let body = opBodies.get(op);
  if (body === undefined) {
    const w = new ByteWriter(256);
    writeOpBody(w, op);
    body = w.finish();
    opBodies.set(op, body);
  }
  return body;
}

/** Bumped on any incompatible change; peers with another version are refused. */
export const PROTOCOL_VERSION = 4;
/** Nonces for the HMAC challenge-response. */
export const NONCE_BYTES = 16;
/** Ops per frame: bounds a frame's size and a receiver's single commit. */
export const FRAME_OPS_MAX = 512;
/** HMAC-SHA256 proofs; an empty proof means "no cluster secret here". */
export const PROOF_BYTES = 32;
const REASON_BYTES_MAX = 256;
const FENCE_BYTES_MAX = 160;
const WALL_MS_MAX = 2 ** 48;
const ROLE_NAMES = ["follower", "candidate", "leader"] as const;
export type PeerRole = (typeof ROLE_NAMES)[number];

/** What each side says about itself when a link opens. */
export interface Intro {
  readonly proto: number;
  readonly clusterId: string;
  readonly node: string;
  readonly region: string;
  readonly epoch: number;
  readonly vv: VersionVector;
  readonly nonce: Uint8Array;
}

/** Dialer -> acceptor: who I am, and a challenge for you. */
export interface HelloFrame extends Intro {
  readonly t: "hello";
}
/** Acceptor -> dialer: who I am, my proof over your nonce, my challenge. */
export interface WelcomeFrame extends Intro {
  readonly t: "welcome";
  readonly proof: Uint8Array;
}
/** Dialer -> acceptor: my proof over your nonce. */
export interface AuthFrame {
  readonly t: "auth";
  readonly proof: Uint8Array;
}
/** A batch of ops, carrying the sender's fencing token ("" when it is not a leader). */
export interface OpsFrame {
  readonly t: "ops";
  readonly batch: number;
  readonly fence: string;
  readonly ops: readonly Op[];
}
/** The receiver's node vector after it made a batch durable. */
export interface AckFrame {
  readonly t: "ack";
  readonly batch: number;
  readonly vv: VersionVector;
}
/**
 * A batch refused for a stale fencing token: the receiver knows `knownEpoch`
 * for the sender's region, above the batch's. Nothing of the batch was
 * applied; `vv` is what the receiver holds, so the sender can resync.
 */
export interface RefuseFrame {
  readonly t: "refuse";
  readonly batch: number;
  readonly knownEpoch: number;
  readonly vv: VersionVector;
}
/** Heartbeat and gossip: who I think leads my region, my clock and what I have. */
export interface PingFrame {
  readonly t: "ping";
  readonly wallMs: number;
  readonly hlc: Hlc;
  readonly role: PeerRole;
  readonly leader: string;
  readonly epoch: number;
  readonly vv: VersionVector;
}
/** Answer to a ping: echoes its wall time so the sender can measure round trips and skew. */
export interface PongFrame {
  readonly t: "pong";
  readonly echoWallMs: number;
  readonly wallMs: number;
  readonly vv: VersionVector;
}
/** An election-layer message, opaque here: the core's election machine defines its JSON. */
export interface ControlFrame {
  readonly t: "control";
  readonly json: string;
}

/**
 * Presence of a live document's clients (y-protocols awareness), relayed
 * between nodes and never stored. An empty update asks the receiver for the
 * states of its own clients in that room (a node whose first client joined).
 */
export interface PresenceFrame {
  readonly t: "presence";
  readonly room: string;
  readonly update: Uint8Array;
}

/**
 * A live document's batch of client updates, relayed to every node as it is
 * written (before it is durable), so their clients see it without waiting
 * for the op to be committed and replicated. The op follows; receivers
 * recognize it by its bytes and do not send it to their clients again.
 */
export interface LiveUpdateFrame {
  readonly t: "live-update";
  readonly room: string;
  readonly update: Uint8Array;
}

/** The start of a snapshot of the sender's state (core/snapshot.ts): what it covers. Rows follow, then the end. */
export interface SnapBeginFrame {
  readonly t: "snap-begin";
  readonly id: number;
  readonly vv: VersionVector;
  readonly sweptVv: VersionVector;
  readonly hlc: Hlc;
}
/** Rows of a snapshot, in the order they were read. */
export interface SnapRowsFrame {
  readonly t: "snap-rows";
  readonly id: number;
  readonly rows: readonly SnapshotRow[];
}
/** The end of a snapshot: how many rows it had, so a receiver that missed some does not install it. */
export interface SnapEndFrame {
  readonly t: "snap-end";
  readonly id: number;
  readonly rows: number;
}

export type Frame =
  | HelloFrame | WelcomeFrame | AuthFrame | OpsFrame | AckFrame | RefuseFrame | PingFrame | PongFrame | ControlFrame | PresenceFrame | LiveUpdateFrame
  | SnapBeginFrame | SnapRowsFrame | SnapEndFrame;

const T_HELLO = 1;
const T_WELCOME = 2;
const T_AUTH = 3;
const T_OPS = 4;
const T_ACK = 5;
const T_PING = 6;
const T_PONG = 7;
const T_CONTROL = 8;
const T_REFUSE = 9;
const T_PRESENCE = 10;
const T_LIVE_UPDATE = 11;
const T_SNAP_BEGIN = 12;
const T_SNAP_ROWS = 13;
const T_SNAP_END = 14;
/** Rows per snapshot frame. */
export const SNAP_ROWS_MAX = 1024;
/** A snapshot frame's rows stop growing past this many bytes (one larger row goes alone). */
export const SNAP_FRAME_BYTES = 1024 * 1024;
const CONTROL_JSON_BYTES_MAX = 64 * 1024;
/** A presence update is a room's client states: small, and never a value. */
export const PRESENCE_BYTES_MAX = 1024 * 1024;
/** A larger live update is not relayed: its clients get it with the replicated op. */
export const LIVE_UPDATE_BYTES_MAX = 1024 * 1024;

// The encoder refuses what the decoder would refuse, so a bug in this node
// throws here, at its cause, instead of closing a healthy link at the peer.
function checkIntro(f: Intro): void {
  const clusterBytes = Buffer.byteLength(f.clusterId);
  if (clusterBytes < 1 || clusterBytes > 64) throw new Error("cluster id must be 1 to 64 bytes");
  if (!isValidId(f.node)) throw new Error(`intro node is not a valid id: ${JSON.stringify(f.node)}`);
  if (!isValidId(f.region)) throw new Error(`intro region is not a valid id: ${JSON.stringify(f.region)}`);
  if (f.nonce.length !== NONCE_BYTES) throw new Error(`nonce must be ${NONCE_BYTES} bytes`);
}

function checkProof(proof: Uint8Array): void {
  if (proof.length !== 0 && proof.length !== PROOF_BYTES) throw new Error(`proof must be empty or ${PROOF_BYTES} bytes`);
}

function checkWallMs(v: number, what: string): void {
  if (!Number.isFinite(v) || v < 0 || v > WALL_MS_MAX) throw new Error(`${what} out of range: ${v}`);
}

function writeIntro(w: ByteWriter, f: Intro): void {
  checkIntro(f);
  w.varint(f.proto);
  w.string(f.clusterId);
  w.string(f.node);
  w.string(f.region);
  w.varint(f.epoch);
  writeVv(w, f.vv);
  w.bytes(f.nonce);
}

function readId(r: ByteReader, what: string): string {
  const at = r.pos;
  const s = r.string(what, 1, 64);
  if (!isValidId(s)) r.fail(`${what} is not a valid id`, at);
  return s;
}

function readIntro(r: ByteReader): Intro {
  const proto = r.varint("protocol version");
  const clusterId = r.string("cluster id", 1, 64);
  const node = readId(r, "node");
  const region = readId(r, "region");
  const epoch = r.varint("epoch");
  const vv = readVv(r);
  const at = r.pos;
  const nonce = r.bytes("nonce");
  if (nonce.length !== NONCE_BYTES) r.fail(`nonce must be ${NONCE_BYTES} bytes`, at);
  return { proto, clusterId, node, region, epoch, vv, nonce };
}

function readProof(r: ByteReader): Uint8Array {
  const at = r.pos;
  const proof = r.bytes("proof");
  if (proof.length !== 0 && proof.length !== PROOF_BYTES) r.fail(`proof must be empty or ${PROOF_BYTES} bytes`, at);
  return proof;
}

/** Encodes a frame (trusted input: throws on values that break the protocol's rules). */
export function encodeFrame(f: Frame): Uint8Array {
  const w = new ByteWriter(f.t === "ops" ? 256 * f.ops.length + 64 : 128);
  switch (f.t) {
    case "hello":
      w.u8(T_HELLO);
      writeIntro(w, f);
      break;
    case "welcome":
      w.u8(T_WELCOME);
      checkProof(f.proof);
      writeIntro(w, f);
      w.bytes(f.proof);
      break;
    case "auth":
      checkProof(f.proof);
      w.u8(T_AUTH);
      w.bytes(f.proof);
      break;
    case "ops":
      if (f.ops.length > FRAME_OPS_MAX) throw new Error(`ops frame holds at most ${FRAME_OPS_MAX} ops`);
      if (Buffer.byteLength(f.fence) > FENCE_BYTES_MAX) throw new Error(`fence longer than ${FENCE_BYTES_MAX} bytes`);
      w.u8(T_OPS);
      w.varint(f.batch);
      w.string(f.fence);
      w.varint(f.ops.length);
      for (const op of f.ops) w.raw(encodedOpBody(op));
      break;
    case "ack":
      w.u8(T_ACK);
      w.varint(f.batch);
      writeVv(w, f.vv);
      break;
    case "refuse":
      w.u8(T_REFUSE);
      w.varint(f.batch);
      w.varint(f.knownEpoch);
      writeVv(w, f.vv);
      break;
    case "ping":
      checkWallMs(f.wallMs, "ping wallMs");
      if (f.leader !== "" && !isValidId(f.leader)) throw new Error(`ping leader is not a valid id: ${JSON.stringify(f.leader)}`);
      if (!ROLE_NAMES.includes(f.role)) throw new Error(`unknown role ${JSON.stringify(f.role)}`);
      w.u8(T_PING);
      w.float64(f.wallMs);
      w.hlc(f.hlc);
      w.u8(ROLE_NAMES.indexOf(f.role));
      w.string(f.leader);
      w.varint(f.epoch);
      writeVv(w, f.vv);
      break;
    case "pong":
      checkWallMs(f.echoWallMs, "pong echoWallMs");
      checkWallMs(f.wallMs, "pong wallMs");
      w.u8(T_PONG);
      w.float64(f.echoWallMs);
      w.float64(f.wallMs);
      writeVv(w, f.vv);
      break;
    case "control": {
      const jsonBytes = Buffer.byteLength(f.json);
      if (jsonBytes < 2 || jsonBytes > CONTROL_JSON_BYTES_MAX) throw new Error(`control json must be 2 to ${CONTROL_JSON_BYTES_MAX} bytes`);
      w.u8(T_CONTROL);
      w.string(f.json);
      break;
    }
    case "snap-begin":
      w.u8(T_SNAP_BEGIN);
      w.varint(f.id);
      writeVv(w, f.vv);
      writeVv(w, f.sweptVv);
      w.hlc(f.hlc);
      break;
    case "snap-rows":
      if (f.rows.length > SNAP_ROWS_MAX) throw new Error(`snapshot frame holds at most ${SNAP_ROWS_MAX} rows`);
      w.u8(T_SNAP_ROWS);
      w.varint(f.id);
      w.varint(f.rows.length);
      for (const r of f.rows) {
        const problem = snapshotKeyProblem(r.ns, r.key);
        if (problem !== null) throw new Error(`snapshot row: ${problem}`);
        w.u8(SNAPSHOT_NAMESPACES.indexOf(r.ns) + 1);
        w.string(r.key);
        w.bytes(r.data);
      }
      break;
    case "snap-end":
      w.u8(T_SNAP_END);
      w.varint(f.id);
      w.varint(f.rows);
      break;
    case "presence":
    case "live-update": {
      const bad = validateKey(f.room);
      if (bad !== null) throw new Error(`${f.t} room: ${bad.reason}`);
      const max = f.t === "presence" ? PRESENCE_BYTES_MAX : LIVE_UPDATE_BYTES_MAX;
      if (f.update.length > max) throw new Error(`${f.t} update over ${max} bytes`);
      w.u8(f.t === "presence" ? T_PRESENCE : T_LIVE_UPDATE);
      w.string(f.room);
      w.bytes(f.update);
      break;
    }
    default: {
      const never: never = f;
      throw new Error(`unknown frame ${JSON.stringify(never)}`);
    }
  }
  return w.finish();
}

/** Why a snapshot row's key is not one its namespace can hold, or null. */
function snapshotKeyProblem(ns: SnapshotRow["ns"], key: string): string | null {
  if (ns === "idem") {
    const n = Buffer.byteLength(key);
    return n >= 1 && n <= IDEM_KEY_BYTES_MAX ? null : `idempotency key must be 1 to ${IDEM_KEY_BYTES_MAX} bytes`;
  }
  return validateKey(key)?.reason ?? null;
}

function readWallMs(r: ByteReader, what: string): number {
  const at = r.pos;
  const v = r.float64(what);
  if (!Number.isFinite(v) || v < 0 || v > WALL_MS_MAX) r.fail(`${what} out of range`, at);
  return v;
}

/** Decodes untrusted bytes into a frame, or a CodecError; never throws. */
export function decodeFrame(bytes: Uint8Array): Frame | CodecError {
  return decodeWith(bytes, (r: ByteReader): Frame => {
    const tAt = r.pos;
    const t = r.u8("frame type");
    switch (t) {
      case T_HELLO:
        return { t: "hello", ...readIntro(r) };
      case T_WELCOME: {
        const intro = readIntro(r);
        return { t: "welcome", ...intro, proof: readProof(r) };
      }
      case T_AUTH:
        return { t: "auth", proof: readProof(r) };
      case T_OPS: {
        const batch = r.varint("batch");
        const fence = r.string("fence", 0, FENCE_BYTES_MAX);
        const n = r.count("op count", 12);
        if (n > FRAME_OPS_MAX) r.fail(`more than ${FRAME_OPS_MAX} ops in one frame`);
        const ops: Op[] = [];
        for (let i = 0; i < n; i++) {
          const start = r.pos;
          const op = readOpBody(r);
          // Kept as received, so forwarding this op never encodes it again.
          opBodies.set(op, bytes.slice(start, r.pos));
          ops.push(op);
        }
        return { t: "ops", batch, fence, ops };
      }
      case T_ACK:
        return { t: "ack", batch: r.varint("batch"), vv: readVv(r) };
      case T_REFUSE:
        return { t: "refuse", batch: r.varint("batch"), knownEpoch: r.varint("known epoch"), vv: readVv(r) };
      case T_PING: {
        const wallMs = readWallMs(r, "wallMs");
        const hlcAt = r.pos;
        const hlc = r.hlc("hlc");
        if (!isValidHlc(hlc)) r.fail("invalid hlc", hlcAt);
        const roleAt = r.pos;
        const role = ROLE_NAMES[r.u8("role")];
        if (role === undefined) r.fail("unknown role", roleAt);
        const leader = r.string("leader", 0, 64);
        if (leader !== "" && !isValidId(leader)) r.fail("leader is not a valid id");
        return { t: "ping", wallMs, hlc, role, leader, epoch: r.varint("epoch"), vv: readVv(r) };
      }
      case T_PONG:
        return { t: "pong", echoWallMs: readWallMs(r, "echoWallMs"), wallMs: readWallMs(r, "wallMs"), vv: readVv(r) };
      case T_CONTROL:
        return { t: "control", json: r.string("control json", 2, CONTROL_JSON_BYTES_MAX) };
      case T_SNAP_BEGIN: {
        const id = r.varint("snapshot id");
        const vv = readVv(r);
        const sweptVv = readVv(r);
        const hlcAt = r.pos;
        const hlc = r.hlc("hlc");
        if (!isValidHlc(hlc)) r.fail("invalid hlc", hlcAt);
        return { t: "snap-begin", id, vv, sweptVv, hlc };
      }
      case T_SNAP_ROWS: {
        const id = r.varint("snapshot id");
        const n = r.count("snapshot row count", 3);
        if (n > SNAP_ROWS_MAX) r.fail(`more than ${SNAP_ROWS_MAX} rows in one snapshot frame`);
        const rows: SnapshotRow[] = [];
        for (let i = 0; i < n; i++) {
          const nsAt = r.pos;
          const ns = SNAPSHOT_NAMESPACES[r.u8("snapshot namespace") - 1];
          if (ns === undefined) r.fail("unknown snapshot namespace", nsAt);
          const keyAt = r.pos;
          const key = r.string("snapshot key", 0, Math.max(MAX_KEY_BYTES, IDEM_KEY_BYTES_MAX));
          const problem = snapshotKeyProblem(ns, key);
          if (problem !== null) r.fail(`snapshot key: ${problem}`, keyAt);
          rows.push({ ns, key, data: r.bytes("snapshot row data") });
        }
        return { t: "snap-rows", id, rows };
      }
      case T_SNAP_END:
        return { t: "snap-end", id: r.varint("snapshot id"), rows: r.varint("snapshot rows") };
      case T_PRESENCE:
      case T_LIVE_UPDATE: {
        const what = t === T_PRESENCE ? "presence" : "live-update";
        const roomAt = r.pos;
        const room = r.string(`${what} room`, 1, MAX_KEY_BYTES);
        const bad = validateKey(room);
        if (bad !== null) r.fail(`${what} room: ${bad.reason}`, roomAt);
        const updateAt = r.pos;
        const update = r.bytes(`${what} update`);
        const max = t === T_PRESENCE ? PRESENCE_BYTES_MAX : LIVE_UPDATE_BYTES_MAX;
        if (update.length > max) r.fail(`${what} update over ${max} bytes`, updateAt);
        return t === T_PRESENCE ? { t: "presence", room, update } : { t: "live-update", room, update };
      }
      default:
        return r.fail(`unknown frame type ${t}`, tAt);
    }
  });
}

/**
 * The protocol version a hello claims, read before full decoding: a peer that
 * speaks another version (whose hello may not parse as ours) gets a clear
 * "version not supported" refusal rather than "bad frame". Undefined when the
 * bytes do not start a hello.
 */
export function peekHelloProtocol(bytes: Uint8Array): number | undefined {
  if (bytes[0] !== T_HELLO) return undefined;
  const r = new ByteReader(bytes);
  try {
    r.u8("frame type");
    return r.varint("protocol version");
  } catch {
    return undefined;
  }
}

/** True for the frames that only the handshake may carry. */
export function isHandshakeFrame(f: Frame): f is HelloFrame | WelcomeFrame | AuthFrame {
  return f.t === "hello" || f.t === "welcome" || f.t === "auth";
}

/** A reason string safe for a WebSocket close frame (at most 123 bytes). */
export function closeReason(reason: string): string {
  let s = reason.slice(0, REASON_BYTES_MAX);
  while (Buffer.byteLength(s) > 123) s = s.slice(0, -1);
  // Never end on half a surrogate pair: it would go out as U+FFFD.
  if (/[\uD800-\uDBFF]$/.test(s)) s = s.slice(0, -1);
  return s;
}

export { isCodecError };
