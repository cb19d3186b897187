// Byte-level reader and writer for the binary codecs. The reader is the one
// place that touches untrusted bytes, so every read checks the remaining
// length first and every length or count is bounded by what is left: a
// hostile frame can make decoding fail, never allocate without bound or throw
// anything but ReadFailure.

import { hlcFromBytes, hlcToBytes, isValidHlc, type Hlc } from "../hlc.js";
import { isWellFormedString } from "../key.js";

/**
 * Why a read failed and where. Deliberately not an Error: it is always caught
 * by the codec and turned into a value, so paying for a stack trace on every
 * rejected frame would be waste.
 */
export class ReadFailure {
  constructor(readonly reason: string, readonly offset: number) {}
}

/** A frame that could not be decoded: why, and the byte offset where it went wrong. */
export interface CodecError {
  readonly type: "codec_error";
  readonly reason: string;
  readonly offset: number;
}

/** True when a decoder returned a CodecError rather than a value. */
export function isCodecError(x: unknown): x is CodecError {
  return typeof x === "object" && x !== null && (x as { type?: unknown }).type === "codec_error";
}

/**
 * Runs a decoder over untrusted bytes and turns a ReadFailure into a
 * CodecError value. Anything else it throws is a bug in the decoder and is
 * rethrown, so the fuzz tests see it instead of it hiding as a bad frame.
 */
export function decodeWith<T>(bytes: Uint8Array, read: (r: ByteReader) => T): T | CodecError {
  if (!(bytes instanceof Uint8Array)) return { type: "codec_error", reason: "input is not a Uint8Array", offset: 0 };
  try {
    const r = new ByteReader(bytes);
    const value = read(r);
    r.end();
    return value;
  } catch (e) {
    if (e instanceof ReadFailure) return { type: "codec_error", reason: e.reason, offset: e.offset };
    throw e;
  }
}

/** Varints stop at 8 bytes: 56 bits hold every safe integer (53 bits). */
const VARINT_MAX_BYTES = 8;

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error, not U+FFFD. ignoreBOM: keep a leading
// U+FEFF, which is data (the default would strip it and break round trips).
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Appends to a growing buffer; encoding trusted values, so misuse throws. */
export class ByteWriter {
  private buf: Uint8Array<ArrayBuffer>;
  private view: DataView;
  private pos = 0;

  constructor(initialBytes = 64) {
    this.buf = new Uint8Array(Math.max(8, initialBytes));
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** One byte, 0..255. */
  u8(b: number): void {
    if (!Number.isInteger(b) || b < 0 || b > 0xff) throw new Error(`u8 out of range: ${b}`);
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Unsigned LEB128 of a non-negative safe integer, in the fewest bytes. */
  varint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`varint needs a non-negative safe integer, got ${n}`);
    this.ensure(VARINT_MAX_BYTES);
    // Arithmetic, not bit operators: those truncate to 32 bits.
    let v = n;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  /** IEEE 754 double, big-endian: exact for every safe integer, and for -0. */
  float64(x: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, x);
    this.pos += 8;
  }

  /** Raw bytes with no length prefix. */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Varint length, then the bytes. */
  bytes(bytes: Uint8Array): void {
    this.varint(bytes.length);
    this.raw(bytes);
  }

  /** Varint byte length, then UTF-8. A lone surrogate throws: it has no UTF-8 form. */
  string(s: string): void {
    if (!isWellFormedString(s)) throw new Error("string has a lone surrogate and no UTF-8 form");
    this.bytes(utf8Encoder.encode(s));
  }

  /** 8 bytes via hlcToBytes (sorts bytewise like compareHlc). */
  hlc(h: Hlc): void {
    if (!isValidHlc(h)) throw new Error(`invalid HLC: ${JSON.stringify(h)}`);
    this.ensure(8);
    hlcToBytes(h, this.buf, this.pos);
    this.pos += 8;
  }

  /** A copy of exactly the bytes written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Reads untrusted bytes; every failure is a ReadFailure with its offset. */
export class ByteReader {
  private readonly view: DataView;
  pos = 0;

  constructor(private readonly input: Uint8Array) {
    this.view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.input.length - this.pos;
  }

  /** Throws a ReadFailure at `offset` (default: the current position). */
  fail(reason: string, offset = this.pos): never {
    throw new ReadFailure(reason, offset);
  }

  private need(n: number, what: string, offset = this.pos): void {
    if (n > this.remaining) this.fail(`truncated ${what}: need ${n} bytes, ${this.remaining} left`, offset);
  }

  /** One byte. */
  u8(what: string): number {
    this.need(1, what);
    return this.input[this.pos++] as number;
  }

  /** A minimal unsigned LEB128 safe integer (non-minimal forms are refused: one encoding per value). */
  varint(what: string): number {
    const start = this.pos;
    let value = 0;
    for (let i = 0; i < VARINT_MAX_BYTES; i++) {
      if (this.remaining < 1) this.fail(`truncated ${what}`, start);
      const b = this.input[this.pos++] as number;
      value += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) {
        if (b === 0 && i > 0) this.fail(`non-minimal varint in ${what}`, start);
        if (value > Number.MAX_SAFE_INTEGER) this.fail(`${what} exceeds 2^53-1`, start);
        return value;
      }
    }
    return this.fail(`varint too long in ${what}`, start);
  }

  /** A big-endian double. */
  float64(what: string): number {
    this.need(8, what);
    const x = this.view.getFloat64(this.pos);
    this.pos += 8;
    return x;
  }

  /**
   * A collection size, refused when even `minItemBytes` per item could not
   * fit in what is left: a hostile count cannot make us loop or allocate.
   */
  count(what: string, minItemBytes: number): number {
    const start = this.pos;
    const n = this.varint(what);
    if (n * minItemBytes > this.remaining) this.fail(`${what} of ${n} cannot fit in ${this.remaining} bytes`, start);
    return n;
  }

  /** Varint length then that many bytes (a copy: decoded values never alias the frame). */
  bytes(what: string): Uint8Array {
    const start = this.pos;
    const n = this.varint(`${what} length`);
    this.need(n, what, start);
    // new Uint8Array(view) copies; input.slice would alias when the input is a
    // Node Buffer (Buffer#slice is a view), pinning the whole frame in memory.
    const out = new Uint8Array(this.input.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  /** Varint byte length then strict UTF-8, with the byte length bounded to [minBytes, maxBytes]. */
  string(what: string, minBytes = 0, maxBytes = Infinity): string {
    const start = this.pos;
    const n = this.varint(`${what} length`);
    if (n < minBytes) this.fail(`${what} shorter than ${minBytes} bytes`, start);
    if (n > maxBytes) this.fail(`${what} longer than ${maxBytes} bytes`, start);
    this.need(n, what, start);
    const slice = this.input.subarray(this.pos, this.pos + n);
    let s: string;
    try {
      s = utf8Decoder.decode(slice);
    } catch {
      return this.fail(`${what} is not valid UTF-8`, this.pos);
    }
    this.pos += n;
    return s;
  }

  /** 8 bytes via hlcFromBytes. */
  hlc(what: string): Hlc {
    this.need(8, what);
    const h = hlcFromBytes(this.input, this.pos);
    if (!isValidHlc(h)) this.fail(`invalid ${what}`);
    this.pos += 8;
    return h;
  }

  /** Refuses trailing bytes: a frame is exactly its contents. */
  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} trailing bytes`);
  }
}
