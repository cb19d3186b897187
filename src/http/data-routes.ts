// The data API of DESIGN.md: kv, counters, sets, docs and conflicts. Handlers
// parse and validate at the edge, call the DataService and render its answer;
// they make no decisions of their own.

import type { Context, Hono } from "hono";
import { parseCausalToken } from "../core/causal-token.js";
import { encodeHlc } from "../core/hlc.js";
import type { Conflict, Version } from "../core/op.js";
import { isNodeError, nodeError, type NodeError } from "../node/errors.js";
import type { DataService, KvRead, WriteAnswer, WriteMeta } from "../node/service.js";
import { sendError } from "./errors.js";
import { ackQuery, checkContentType, checkKey, intQuery, isObject, keyFromPath, parseJson, rawPath, readBody, requestHash, requestHeader, strictQuery } from "./parse.js";

export interface DataRouteOptions {
  readonly service: DataService;
  readonly maxValueBytes: number;
  /** How long a read with X-Geokv-Token waits for this node to catch up. */
  readonly tokenWaitMs: number;
}

const MAX_IDEMPOTENCY_KEY_BYTES = 256;
const MAX_SET_MEMBERS_PER_WRITE = 10_000;
const MAX_LIST_LIMIT = 1000;

/** Renders a version as {"hlc", "node"}. */
export function renderVersion(v: Version): { hlc: string; node: string } {
  return { hlc: encodeHlc(v.hlc), node: v.node };
}

function renderConflict(x: Conflict) {
  return { key: x.key, winner: renderVersion(x.winner), loser: renderVersion(x.loser), at: encodeHlc(x.at) };
}

/** kv reads are rendered by hand so a stored value's JSON text is sent as is. */
function kvItemJson(r: KvRead): string {
  return `{"key":${JSON.stringify(r.key)},"value":${r.valueJson},"version":${JSON.stringify(renderVersion(r.version))}}`;
}

function rawJson(c: Context, text: string): Response {
  return c.body(text, 200, { "Content-Type": "application/json" });
}

function writeMeta(c: Context, hashInput: Uint8Array | string): WriteMeta | NodeError {
  const ack = ackQuery(c);
  if (isNodeError(ack)) return ack;
  const idem = requestHeader(c, "idempotency-key");
  // Without a key nothing compares the hash: hashing every write for nothing was a few percent of a PUT.
  if (idem === undefined) return { ack, requestHash: "" };
  if (idem.length === 0 || Buffer.byteLength(idem) > MAX_IDEMPOTENCY_KEY_BYTES) {
    return nodeError("bad_request", `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_BYTES} bytes`);
  }
  return { ack, idempotencyKey: idem, requestHash: requestHash(c.req.method, rawPath(c), hashInput) };
}

function sendWrite(c: Context, a: WriteAnswer | NodeError): Response {
  if (isNodeError(a)) return sendError(c, a);
  // A Response with a plain header object, not c.header() + c.json(): hono
  // turns more than one header into a web Headers object, which
  // @hono/node-server then copies back into Node's, per write. Same headers
  // (lower case, as Headers writes them) and the same JSON text as c.json.
  const headers: Record<string, string> = { "content-type": "application/json", "x-geokv-token": a.token };
  if (a.replayed) headers["idempotent-replayed"] = "true";
  return new Response(JSON.stringify(a.body), { status: 200, headers });
}

/**
 * Waits for X-Geokv-Token before serving a request (read-your-writes; on a
 * write it also makes the write's context include the write the token names,
 * so it overwrites it causally instead of conflicting with it); null when the
 * request may go ahead.
 */
async function awaitCausalToken(c: Context, o: DataRouteOptions): Promise<NodeError | null> {
  const header = requestHeader(c, "x-geokv-token");
  if (header === undefined) return null;
  const token = parseCausalToken(header);
  if (token === null) return nodeError("bad_request", "X-Geokv-Token is not a token this API issued");
  const r = await o.service.awaitToken(token, o.tokenWaitMs);
  return r === true ? null : r;
}

/** Reads and parses a JSON body for a write, with the content-type and size checks. */
async function jsonBody(c: Context, o: DataRouteOptions): Promise<{ value: unknown; text: string; bytes: Uint8Array } | NodeError> {
  const ct = checkContentType(c, "application/json");
  if (ct) return ct;
  const bytes = await readBody(c, o.maxValueBytes);
  if (isNodeError(bytes)) return bytes;
  const parsed = parseJson(bytes);
  if (isNodeError(parsed)) return parsed;
  return { ...parsed, bytes };
}

function parseMembers(x: unknown, field: string): string[] | NodeError {
  if (x === undefined) return [];
  if (!Array.isArray(x)) return nodeError("bad_request", `${field} must be an array of strings`);
  if (x.length > MAX_SET_MEMBERS_PER_WRITE) return nodeError("bad_request", `${field} has more than ${MAX_SET_MEMBERS_PER_WRITE} members`);
  for (const m of x) {
    if (typeof m !== "string") return nodeError("bad_request", `${field} must be an array of strings`);
    if (!m.isWellFormed()) return nodeError("bad_request", `${field} has a member that is not valid UTF-8`);
  }
  return x as string[];
}

/** Mounts the data routes on `app`. */
export function mountDataRoutes(app: Hono, o: DataRouteOptions): void {
  const s = o.service;

  app.get("/kv", async (c) => {
    const limit = intQuery(c, "limit", 100, 1, MAX_LIST_LIMIT);
    if (isNodeError(limit)) return sendError(c, limit);
    const prefixParam = strictQuery(c, "prefix");
    if (isNodeError(prefixParam)) return sendError(c, prefixParam);
    const after = strictQuery(c, "after");
    if (isNodeError(after)) return sendError(c, after);
    const prefix = prefixParam ?? "";
    if (!prefix.isWellFormed() || (after !== undefined && !after.isWellFormed())) {
      return sendError(c, nodeError("bad_request", "prefix and after must be valid UTF-8"));
    }
    const waited = await awaitCausalToken(c, o);
    if (waited) return sendError(c, waited);
    const page = s.kvList(prefix, after === "" ? undefined : after, limit);
    return rawJson(c, `{"items":[${page.items.map(kvItemJson).join(",")}],"next":${JSON.stringify(page.next)}}`);
  });

  app.get("/kv/*", async (c) => {
    const key = keyFromPath(rawPath(c), "kv");
    if (isNodeError(key)) return sendError(c, key);
    const waited = await awaitCausalToken(c, o);
    if (waited) return sendError(c, waited);
    const r = s.kvGet(key);
    if (!r) return sendError(c, nodeError("not_found", `no value for key ${JSON.stringify(key)}`));
    return rawJson(c, kvItemJson(r));
  });

  app.put("/kv/*", async (c) => {
    const key = keyFromPath(rawPath(c), "kv");
    if (isNodeError(key)) return sendError(c, key);
    const body = await jsonBody(c, o);
    if (isNodeError(body)) return sendError(c, body);
    const meta = writeMeta(c, body.text);
    if (isNodeError(meta)) return sendError(c, meta);
    const waited = await awaitCausalToken(c, o);
    if (waited) return sendError(c, waited);
    return sendWrite(c, await s.kvPut(key, body.text, meta));
  });

  app.delete("/kv/*", async (c) => {
    const key = keyFromPath(rawPath(c), "kv");
    if (isNodeError(key)) return sendError(c, key);
    const meta = writeMeta(c, "");
    if (isNodeError(meta)) return sendError(c, meta);
    const waited = await awaitCausalToken(c, o);
    if (waited) return sendError(c, waited);
    return sendWrite(c, await s.kvDelete(key, meta));
  });

  app.get("/counters/*", async (c) => {
    const key = keyFromPath(rawPath(c), "counters");
    if (isNodeError(key)) return sendError(c, key);
    const waited = await awaitCausalToken(c, o);
    if (waited) return sendError(c, waited);
    return c.json({ key, value: s.counterGet(key) });
  });

  app.post("/counters/*", async (c) => {
    const key = keyFromPath(rawPath(c), "counters");
    if (isNodeError(key)) return sendError(c, key);
    const body = await jsonBody(c, o);
    if (isNodeError(body)) return sendError(c, body);
    if (!isObject(body.value) || !("delta" in body.value)) return sendError(c, nodeError("bad_request", 'body must be {"delta": integer}'));
    const delta = body.value.delta;
    if (typeof delta !== "number" || !Number.isSafeInteger(delta)) {
      return sendError(c, nodeError("bad_request", "delta must be an integer between -(2^53-1) and 2^53-1"));
    }
    const meta = writeMeta(c, body.text);
    if (isNodeError(meta)) return sendError(c, meta);
    const waited = await awaitCausalToken(c, o);
    if (waited) return sendError(c, waited);
    return sendWrite(c, await s.counterAdd(key, delta, meta));
  });

  app.get("/sets/*", async (c) => {
    const key = keyFromPath(rawPath(c), "sets");
    if (isNodeError(key)) return sendError(c, key);
    const waited = await awaitCausalToken(c, o);
    if (waited) return sendError(c, waited);
    return c.json({ key, members: s.setGet(key) });
  });

  app.post("/sets/*", async (c) => {
    const key = keyFromPath(rawPath(c), "sets");
    if (isNodeError(key)) return sendError(c, key);
    const body = await jsonBody(c, o);
    if (isNodeError(body)) return sendError(c, body);
    if (!isObject(body.value)) return sendError(c, nodeError("bad_request", 'body must be {"add": [strings], "remove": [strings]}'));
    const add = parseMembers(body.value.add, "add");
    if (isNodeError(add)) return sendError(c, add);
    const remove = parseMembers(body.value.remove, "remove");
    if (isNodeError(remove)) return sendError(c, remove);
    if (add.length === 0 && remove.length === 0) return sendError(c, nodeError("bad_request", "add or remove must name at least one member"));
    const meta = writeMeta(c, body.text);
    if (isNodeError(meta)) return sendError(c, meta);
    const waited = await awaitCausalToken(c, o);
    if (waited) return sendError(c, waited);
    return sendWrite(c, await s.setUpdate(key, add, remove, meta));
  });

  app.post("/docs/*", async (c) => {
    const key = keyFromPath(rawPath(c), "docs", "updates");
    if (isNodeError(key)) return sendError(c, key);
    const ct = checkContentType(c, "application/octet-stream");
    if (ct) return sendError(c, ct);
    const bytes = await readBody(c, o.maxValueBytes);
    if (isNodeError(bytes)) return sendError(c, bytes);
    if (bytes.byteLength === 0) return sendError(c, nodeError("bad_request", "body is empty; send a Yjs update"));
    const meta = writeMeta(c, bytes);
    if (isNodeError(meta)) return sendError(c, meta);
    const waited = await awaitCausalToken(c, o);
    if (waited) return sendError(c, waited);
    return sendWrite(c, await s.docUpdate(key, bytes, meta));
  });

  app.get("/docs/*", async (c) => {
    const key = keyFromPath(rawPath(c), "docs");
    if (isNodeError(key)) return sendError(c, key);
    const svParam = c.req.query("sv");
    let sv: Uint8Array | undefined;
    if (svParam !== undefined && svParam !== "") {
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(svParam)) return sendError(c, nodeError("bad_request", "sv must be a base64 state vector"));
      sv = new Uint8Array(Buffer.from(svParam, "base64"));
    }
    const waited = await awaitCausalToken(c, o);
    if (waited) return sendError(c, waited);
    const update = s.docGet(key, sv);
    if (isNodeError(update)) return sendError(c, update);
    return c.body(update as Uint8Array<ArrayBuffer>, 200, { "Content-Type": "application/octet-stream" });
  });

  app.get("/conflicts", (c) => {
    const limit = intQuery(c, "limit", 100, 1, MAX_LIST_LIMIT);
    if (isNodeError(limit)) return sendError(c, limit);
    return c.json({ items: s.conflicts(limit).map(renderConflict) });
  });
}

export { checkKey };
