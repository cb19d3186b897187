// Parsing untrusted request parts at the edge: keys from the raw URL path,
// query numbers, JSON bodies, content types. Each returns a value or a
// NodeError, so handlers read top to bottom with no try/catch.

import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "hono";
import { validateKey } from "../core/key.js";
import { nodeError, type NodeError } from "../node/errors.js";
import { ACK_LEVELS, type AckLevel } from "../api/types.js";
import { closeAfterAnswer } from "./server-limits.js";

/** Checks a decoded key with the core's rule (src/core/key.ts), as the contract's invalid_key error. */
export function checkKey(key: string): NodeError | null {
  const problem = validateKey(key);
  return problem === null ? null : nodeError("invalid_key", problem.reason);
}

/**
 * The key in `/<ns>/<key>[/<suffix>]`, read from the raw (still encoded) path
 * so that an encoded "/" (%2F) stays inside the key instead of splitting it.
 */
export function keyFromPath(rawPath: string, ns: string, suffix?: string): string | NodeError {
  let rest = rawPath.slice(ns.length + 2);
  if (suffix !== undefined) {
    if (!rest.endsWith(`/${suffix}`)) return nodeError("not_found", "no such route");
    rest = rest.slice(0, -(suffix.length + 1));
  }
  if (rest.length === 0) return nodeError("invalid_key", "key is empty");
  if (rest.includes("/")) return nodeError("invalid_key", "a key's \"/\" must be URL-encoded as %2F");
  let key: string;
  try {
    key = decodeURIComponent(rest);
  } catch {
    return nodeError("invalid_key", "key is not valid URL-encoded UTF-8");
  }
  return checkKey(key) ?? key;
}

/** The Node request under @hono/node-server (its bindings are c.env); undefined elsewhere (app.request in tests). */
export function incomingOf(c: Context): IncomingMessage | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
}

/** HTTP whitespace that the Fetch standard strips from both ends of a header value. */
function isHttpWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/**
 * A request header, exactly as c.req.header gives it (every field of that
 * name, in order, joined with ", ", each value trimmed of HTTP whitespace),
 * read from Node's raw header list when there is one. c.req.header builds a
 * web Headers object from all the request's headers on first use, a cost
 * that showed in the profile of a GET (BENCHMARKS.md, HTTP notes). Node's own
 * parsed `headers` is no substitute: it drops repeated fields of some names
 * (Content-Type, Authorization) instead of joining them.
 */
export function requestHeader(c: Context, lowerName: string): string | undefined {
  const incoming = incomingOf(c);
  if (incoming === undefined) return c.req.header(lowerName);
  const raw = incoming.rawHeaders;
  let out: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== lowerName.length || name.toLowerCase() !== lowerName) continue;
    let v = raw[i + 1] as string;
    if (v.length > 0 && (isHttpWhitespace(v.charCodeAt(0)) || isHttpWhitespace(v.charCodeAt(v.length - 1)))) {
      let a = 0;
      let b = v.length;
      while (a < b && isHttpWhitespace(v.charCodeAt(a))) a++;
      while (b > a && isHttpWhitespace(v.charCodeAt(b - 1))) b--;
      v = v.slice(a, b);
    }
    out = out === undefined ? v : `${out}, ${v}`;
  }
  return out;
}

/** The raw path of the request (no query), still percent-encoded. */
export function rawPath(c: Context): string {
  const url = c.req.url;
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

/**
 * A query parameter decoded strictly ("+" is a space): hono's c.req.query
 * keeps an undecodable escape such as %FF as literal text, which would turn a
 * malformed prefix into a different, valid one. Undefined when absent.
 */
export function strictQuery(c: Context, name: string): string | undefined | NodeError {
  const url = c.req.url;
  const q = url.indexOf("?");
  if (q < 0) return undefined;
  const hash = url.indexOf("#", q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  const decode = (x: string): string | null => {
    try {
      return decodeURIComponent(x.replace(/\+/g, " "));
    } catch {
      return null;
    }
  };
  for (const part of query.split("&")) {
    const eq = part.indexOf("=");
    if (decode(eq < 0 ? part : part.slice(0, eq)) !== name) continue;
    const value = eq < 0 ? "" : decode(part.slice(eq + 1));
    return value ?? nodeError("bad_request", `${name} is not valid URL-encoded UTF-8`);
  }
  return undefined;
}

/** A non-negative integer query parameter with bounds, or its default. */
export function intQuery(c: Context, name: string, dflt: number, min: number, max: number): number | NodeError {
  const s = c.req.query(name);
  if (s === undefined || s === "") return dflt;
  if (!/^\d{1,9}$/.test(s)) return nodeError("bad_request", `${name} must be an integer from ${min} to ${max}`);
  const n = Number(s);
  if (n < min || n > max) return nodeError("bad_request", `${name} must be an integer from ${min} to ${max}`);
  return n;
}

/** `?ack=` (default region). */
export function ackQuery(c: Context): AckLevel | NodeError {
  const s = c.req.query("ack");
  if (s === undefined || s === "") return "region";
  if ((ACK_LEVELS as readonly string[]).includes(s)) return s as AckLevel;
  return nodeError("bad_request", `ack must be one of ${ACK_LEVELS.join(", ")}`);
}

function mediaType(c: Context): string | undefined {
  const ct = requestHeader(c, "content-type");
  return ct?.split(";")[0]?.trim().toLowerCase();
}

/** Refuses a body whose declared type is not `expected` (missing is allowed for JSON). */
export function checkContentType(c: Context, expected: "application/json" | "application/octet-stream"): NodeError | null {
  const mt = mediaType(c);
  if (mt === undefined && expected === "application/json") return null;
  if (mt === expected) return null;
  return nodeError("bad_request", `Content-Type must be ${expected}${mt ? `, not ${mt}` : ""}`);
}

/** The Node response under @hono/node-server; undefined elsewhere. */
function outgoingOf(c: Context): ServerResponse | undefined {
  return (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
}

/**
 * Reads the body as bytes, refusing it past `maxBytes`. A refused body is left
 * unread, and its connection closes after the answer (Connection: close) with a
 * lingering close (server-limits.ts), so the client reads its 413.
 */
export async function readBody(c: Context, maxBytes: number): Promise<Uint8Array | NodeError> {
  const declared = requestHeader(c, "content-length");
  if (declared !== undefined && Number(declared) > maxBytes) {
    closeAfterAnswer(outgoingOf(c));
    return nodeError("value_too_large", `body is ${declared} bytes; the limit is ${maxBytes}`);
  }
  const incoming = incomingOf(c);
  // Untouched so far (nobody read it through the web Request, as a forward
  // does with a clone): read it from Node's stream. c.req.raw.body builds a
  // web Request, an AbortController and two ReadableStreams per request,
  // which in the profile of a PUT cost more than the SQLite statements.
  if (incoming !== undefined && incoming.readableFlowing === null && !incoming.readableDidRead && !incoming.readableEnded) {
    const read = await readIncoming(incoming, maxBytes);
    if (!(read instanceof Uint8Array)) closeAfterAnswer(outgoingOf(c));
    return read;
  }
  const body = c.req.raw.body;
  if (!body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      closeAfterAnswer(outgoingOf(c));
      await reader.cancel().catch(() => undefined);
      return nodeError("value_too_large", `body is over the limit of ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return concatChunks(chunks, total);
}

/** The chunks as one array; a single chunk is returned as is unless `copy`. */
function concatChunks(chunks: readonly Uint8Array[], total: number, copy = false): Uint8Array {
  if (chunks.length === 1 && !copy) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let off = 0;
  for (const ch of chunks) {
    out.set(ch, off);
    off += ch.byteLength;
  }
  return out;
}

/**
 * The body from Node's request stream. Past `maxBytes` it stops reading and
 * pauses the stream: @hono/node-server drains what is left (within its own
 * bounds) once the answer is sent, as it does for a body read part way
 * through the web Request. A stream that fails or closes before its end
 * rejects, like the web reader does, and the request fails as it did before.
 */
function readIncoming(incoming: IncomingMessage, maxBytes: number): Promise<Uint8Array | NodeError> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const done = () => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
      incoming.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > maxBytes) {
        done();
        incoming.pause();
        resolve(nodeError("value_too_large", `body is over the limit of ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      // Always a copy: Node's chunks are views into the socket's read buffer,
      // and an op that keeps its bytes (a doc update in the replication tail)
      // would pin the whole buffer. The web reader copied them too.
      resolve(concatChunks(chunks, total, true));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onClose = () => {
      done();
      reject(new Error("the request was closed before its body ended"));
    };
    incoming.on("data", onData);
    incoming.once("end", onEnd);
    incoming.once("error", onError);
    incoming.once("close", onClose);
  });
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** Parses a JSON body; returns the parsed value and its compact text. */
export function parseJson(bytes: Uint8Array): { value: unknown; text: string } | NodeError {
  let src: string;
  try {
    src = strictDecoder.decode(bytes);
  } catch {
    return nodeError("bad_request", "body is not valid UTF-8");
  }
  if (src.trim().length === 0) return nodeError("bad_request", "body is empty; send a JSON value");
  try {
    // A number past the double range (1e400) parses as Infinity, which
    // JSON.stringify writes as null: refuse it rather than store a null.
    let nonFinite = false;
    const value: unknown = JSON.parse(src, (_key, v: unknown) => {
      if (typeof v === "number" && !Number.isFinite(v)) nonFinite = true;
      return v;
    });
    if (nonFinite) return nodeError("bad_request", "body has a number outside the range of a 64-bit float");
    return { value, text: JSON.stringify(value) };
  } catch (e) {
    return nodeError("bad_request", `body is not valid JSON: ${(e as Error).message}`);
  }
}

/** A digest of what makes two requests "the same" for Idempotency-Key. */
export function requestHash(method: string, path: string, body: Uint8Array | string): string {
  return createHash("sha256").update(method).update("\0").update(path).update("\0").update(body).digest("base64url");
}

/** True for a plain JSON object (not an array, not null). */
export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
