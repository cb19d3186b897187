// The geokv SDK: the data API of DESIGN.md as typed async calls against one
// region's nodes. Callers get values and GeokvErrors; which node to ask,
// retries, idempotency keys and causal tokens are the transport's business
// (transport.ts), so every call here is only "build the request, read the
// answer".

import type { StatusView, AckLevel } from "../api/types.js";
import { DEFAULT_BACKOFF } from "./backoff.js";
import { contractError, errorFromAnswer, GeokvError } from "./errors.js";
import { createHttpsFetch } from "./https-fetch.js";
import { Transport, type Answer, type RequestSpec } from "./transport.js";

/** Any value JSON can carry: what a kv key holds. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A kv version: the writer's hybrid logical clock and node. */
export interface Version {
  readonly hlc: string;
  readonly node: string;
}

/** A kv value with its version. */
export interface KvEntry {
  readonly key: string;
  readonly value: JsonValue;
  readonly version: Version;
}

/** One page of GET /kv; pass `next` back as `after` for the next page. */
export interface KvPage {
  readonly items: KvEntry[];
  readonly next: string | null;
}

/** A recorded conflict: two concurrent kv versions and which one won. */
export interface ConflictEntry {
  readonly key: string;
  readonly winner: Version;
  readonly loser: Version;
  readonly at: string;
}

/** Options every write takes. */
export interface WriteOptions {
  /** How durable the write must be before it is acknowledged; the server's default is "region". */
  readonly ack?: AckLevel;
}

/** What a write answers: the causal token (also held by the client for its next reads). */
export interface WriteResult {
  readonly token: string;
}

export interface ClientOptions {
  /** Base URLs of one region's nodes; the first is asked first until another answers. */
  readonly nodes: readonly string[];
  /** Deadline of one call, retries included (default 10000). */
  readonly timeoutMs?: number;
  /** Bound on one attempt (default max(5000, timeoutMs / 2)); the call's deadline still wins. */
  readonly attemptTimeoutMs?: number;
  /** The data API token (GEOKV_CLIENT_TOKEN), sent as `Authorization: Bearer`. */
  readonly token?: string;
  /** A causal token to start from, e.g. another client's `causalToken()`, so this one reads its writes. */
  readonly causalToken?: string;
  /** [0, 1) source for backoff jitter (default Math.random). */
  readonly random?: () => number;
  /** The fetch to use (default the global one, which keeps connections alive). */
  readonly fetch?: typeof fetch;
  /** PEM of the CA that https:// nodes' certificates chain to, when it is not in the system store (ignored with `fetch`). */
  readonly ca?: string | Uint8Array;
}

/** A client for one region of a geokv cluster. */
export interface GeokvClient {
  /** The value under `key` with its version; null when there is none (never written or deleted). */
  get(key: string): Promise<{ value: JsonValue; version: Version } | null>;
  /** Stores `value` under `key`. */
  put(key: string, value: JsonValue, opts?: WriteOptions): Promise<{ version: Version; token: string }>;
  /** Deletes `key` (a tombstone; deleting a missing key succeeds). */
  del(key: string, opts?: WriteOptions): Promise<WriteResult>;
  /** kv entries in key byte order, `after` exclusive. */
  list(opts?: { prefix?: string; after?: string; limit?: number }): Promise<KvPage>;
  /** Adds `delta` (may be negative) to a counter; resolves with its new value. */
  incr(key: string, delta: number, opts?: WriteOptions): Promise<number>;
  /** A counter's value (0 when never written). */
  counter(key: string): Promise<number>;
  /** Adds members to a set; resolves with its members after the write. */
  setAdd(key: string, members: readonly string[], opts?: WriteOptions): Promise<string[]>;
  /** Removes the members this replica has seen; resolves with the members after the write. */
  setRemove(key: string, members: readonly string[], opts?: WriteOptions): Promise<string[]>;
  /** A set's members, sorted (empty when never written). */
  members(key: string): Promise<string[]>;
  /** Applies a Yjs update to a doc. */
  docUpdate(key: string, update: Uint8Array, opts?: WriteOptions): Promise<WriteResult>;
  /** The Yjs update that brings a doc at `stateVector` up to date (the whole doc without it). */
  docGet(key: string, stateVector?: Uint8Array): Promise<Uint8Array>;
  /** Recorded kv conflicts, newest first. */
  conflicts(limit?: number): Promise<ConflictEntry[]>;
  /** GET /status of the node this client currently talks to. */
  status(): Promise<StatusView>;
  /** The newest causal token this client holds; hand it to another client to carry read-your-writes over. */
  causalToken(): string | null;
  /** The region leader as last reported by a node; null until a write or forward names it. */
  leader(): string | null;
  /** Aborts calls under way (they fail with "unavailable") and refuses new ones. */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** Above the server's own waits (writeWaitMs, default 3000, plus a forward) so a slow but live answer is not cut off. */
const ATTEMPT_TIMEOUT_MS_MIN = 5_000;

function localError(code: "bad_request" | "invalid_key", message: string): GeokvError {
  return new GeokvError({ code, message, status: null, node: null });
}

function malformed(a: Answer, what: string): GeokvError {
  return new GeokvError({ code: "internal", message: `malformed answer from ${a.node}: ${what}`, status: a.status, node: a.node });
}

/** encodeURIComponent, with a string that is not valid UTF-8 (lone surrogate) as a typed error. */
function encode(text: string, code: "bad_request" | "invalid_key", what: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    throw localError(code, `${what} is not valid UTF-8 (it holds a lone surrogate)`);
  }
}

function keyPath(ns: "kv" | "counters" | "sets" | "docs", key: string, suffix = ""): string {
  return `/${ns}/${encode(key, "invalid_key", "key")}${suffix}`;
}

function ackQuery(opts: WriteOptions | undefined): string {
  return opts?.ack === undefined ? "" : `?ack=${encodeURIComponent(opts.ack)}`;
}

function jsonText(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw localError("bad_request", `value cannot be sent as JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw localError("bad_request", `value cannot be sent as JSON (${typeof value})`);
  return text;
}

function objectOf(a: Answer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(a.body));
  } catch {
    throw malformed(a, "body is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw malformed(a, "body is not a JSON object");
  return parsed as Record<string, unknown>;
}

function isVersion(x: unknown): x is Version {
  return typeof x === "object" && x !== null && typeof (x as Version).hlc === "string" && typeof (x as Version).node === "string";
}

function isStringArray(x: unknown): x is string[] {
  return Array.isArray(x) && x.every((m) => typeof m === "string");
}

function versionOf(a: Answer, x: unknown, where: string): Version {
  if (!isVersion(x)) throw malformed(a, `${where} is not a version`);
  return { hlc: x.hlc, node: x.node };
}

function tokenOf(a: Answer, body: Record<string, unknown>): string {
  const t = a.headers.get("x-geokv-token") ?? body.token;
  if (typeof t !== "string" || t === "") throw malformed(a, "write answer has no token");
  return t;
}

function numberOf(a: Answer, body: Record<string, unknown>): number {
  if (typeof body.value !== "number") throw malformed(a, "value is not a number");
  return body.value;
}

function membersOf(a: Answer, body: Record<string, unknown>): string[] {
  if (!isStringArray(body.members)) throw malformed(a, "members is not an array of strings");
  return body.members;
}

function entryOf(a: Answer, x: unknown): KvEntry {
  if (typeof x !== "object" || x === null) throw malformed(a, "item is not an object");
  const o = x as Record<string, unknown>;
  if (typeof o.key !== "string" || !("value" in o)) throw malformed(a, "item lacks key or value");
  return { key: o.key, value: o.value as JsonValue, version: versionOf(a, o.version, "version") };
}

/** Creates a client for one region's nodes. */
export function createClient(o: ClientOptions): GeokvClient {
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const t = new Transport({
    nodes: o.nodes,
    timeoutMs,
    attemptTimeoutMs: o.attemptTimeoutMs ?? Math.max(ATTEMPT_TIMEOUT_MS_MIN, Math.ceil(timeoutMs / 2)),
    authToken: o.token,
    causalToken: o.causalToken,
    random: o.random ?? Math.random,
    fetch: o.fetch ?? (o.ca === undefined ? globalThis.fetch : createHttpsFetch({ ca: Buffer.from(o.ca) })),
    backoff: DEFAULT_BACKOFF,
  });

  const read = (path: string, passStatuses?: readonly number[]): Promise<Answer> => {
    const spec: RequestSpec = { method: "GET", path, write: false, causal: true, ...(passStatuses ? { passStatuses } : {}) };
    return t.request(spec);
  };
  const writeJson = (method: "PUT" | "POST", path: string, body: unknown): Promise<Answer> =>
    t.request({ method, path, body: jsonText(body), contentType: "application/json", write: true, causal: true });
  const setWrite = async (key: string, field: "add" | "remove", members: readonly string[], opts?: WriteOptions): Promise<string[]> => {
    const a = await writeJson("POST", keyPath("sets", key) + ackQuery(opts), { [field]: members });
    return membersOf(a, objectOf(a));
  };

  return {
    async get(key) {
      const a = await read(keyPath("kv", key), [404]);
      if (a.status === 404) {
        // Only the contract's not_found means "no value"; a proxy's 404 page is an error.
        const text = new TextDecoder().decode(a.body);
        if (contractError(text).code !== "not_found") throw errorFromAnswer(a.status, text, a.node);
        return null;
      }
      const body = objectOf(a);
      if (!("value" in body)) throw malformed(a, "no value");
      return { value: body.value as JsonValue, version: versionOf(a, body.version, "version") };
    },
    async put(key, value, opts) {
      const a = await writeJson("PUT", keyPath("kv", key) + ackQuery(opts), value);
      const body = objectOf(a);
      return { version: versionOf(a, body.version, "version"), token: tokenOf(a, body) };
    },
    async del(key, opts) {
      const a = await t.request({ method: "DELETE", path: keyPath("kv", key) + ackQuery(opts), write: true, causal: true });
      return { token: tokenOf(a, objectOf(a)) };
    },
    async list(opts = {}) {
      const q: string[] = [];
      if (opts.prefix !== undefined) q.push(`prefix=${encode(opts.prefix, "bad_request", "prefix")}`);
      if (opts.after !== undefined) q.push(`after=${encode(opts.after, "bad_request", "after")}`);
      if (opts.limit !== undefined) q.push(`limit=${encodeURIComponent(String(opts.limit))}`);
      const a = await read(`/kv${q.length > 0 ? `?${q.join("&")}` : ""}`);
      const body = objectOf(a);
      if (!Array.isArray(body.items)) throw malformed(a, "items is not an array");
      const next = body.next;
      if (next !== null && typeof next !== "string") throw malformed(a, "next is neither a key nor null");
      return { items: body.items.map((x) => entryOf(a, x)), next };
    },
    async incr(key, delta, opts) {
      const a = await writeJson("POST", keyPath("counters", key) + ackQuery(opts), { delta });
      return numberOf(a, objectOf(a));
    },
    async counter(key) {
      const a = await read(keyPath("counters", key));
      return numberOf(a, objectOf(a));
    },
    setAdd: (key, members, opts) => setWrite(key, "add", members, opts),
    setRemove: (key, members, opts) => setWrite(key, "remove", members, opts),
    async members(key) {
      const a = await read(keyPath("sets", key));
      return membersOf(a, objectOf(a));
    },
    async docUpdate(key, update, opts) {
      const a = await t.request({
        method: "POST",
        path: keyPath("docs", key, "/updates") + ackQuery(opts),
        body: update,
        contentType: "application/octet-stream",
        write: true,
        causal: true,
      });
      return { token: tokenOf(a, objectOf(a)) };
    },
    async docGet(key, stateVector) {
      const sv = stateVector === undefined ? "" : `?sv=${Buffer.from(stateVector).toString("base64url")}`;
      const a = await read(keyPath("docs", key) + sv);
      return a.body;
    },
    async conflicts(limit) {
      const a = await read(`/conflicts${limit === undefined ? "" : `?limit=${encodeURIComponent(String(limit))}`}`);
      const body = objectOf(a);
      if (!Array.isArray(body.items)) throw malformed(a, "items is not an array");
      return body.items.map((x: unknown): ConflictEntry => {
        const c = (typeof x === "object" && x !== null ? x : {}) as Record<string, unknown>;
        if (typeof c.key !== "string" || typeof c.at !== "string") throw malformed(a, "conflict lacks key or at");
        return { key: c.key, winner: versionOf(a, c.winner, "winner"), loser: versionOf(a, c.loser, "loser"), at: c.at };
      });
    },
    async status() {
      const a = await t.request({ method: "GET", path: "/status", write: false, causal: false });
      const body = objectOf(a);
      if (typeof body.node !== "string" || typeof body.region !== "string") throw malformed(a, "status lacks node or region");
      return body as unknown as StatusView;
    },
    causalToken: () => t.causalToken(),
    leader: () => t.leader(),
    close: () => t.close(),
  };
}
