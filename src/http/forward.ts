// Write forwarding: a follower passes client writes to its region's leader
// and relays the answer, so region-local clients can talk to any node. While
// the region has no leader, a write waits up to writeWaitMs for one and then
// gets 503 no_leader with Retry-After. A forwarded request is never forwarded
// again (X-Geokv-Forwarded), so two nodes with different views cannot bounce
// a request between them.

import type { Context, Next } from "hono";
import { nodeError } from "../node/errors.js";
import type { WriteRouter } from "../node/service.js";
import { sendError } from "./errors.js";
import { requestHeader } from "./parse.js";

import { FORWARDED_HEADER } from "../api/types.js";

export { FORWARDED_HEADER };
const PASS_HEADERS = ["content-type", "idempotency-key", "authorization", "x-request-id", "x-geokv-token"];
const WRITE_METHODS = new Set(["PUT", "POST", "DELETE"]);
const DATA_WRITE_PATH = /^\/(kv|counters|sets|docs)\//;

export interface ForwardOptions {
  readonly nodeId: string;
  readonly router: WriteRouter;
  readonly writeWaitMs: number;
  /**
   * The clock the wait is measured on: monotonic (default performance.now),
   * so a wall clock stepped back cannot hold a write past writeWaitMs, nor one
   * stepped forward cut its wait short.
   */
  readonly now?: () => number;
  /** How the leader is called (a CA-trusting fetch in a TLS cluster). */
  readonly fetch: typeof fetch;
  /**
   * True when this node already holds the answer for an Idempotency-Key. Such
   * a retry is answered here, not forwarded: the leader may not have the
   * original op yet and would apply it a second time.
   */
  readonly knowsIdempotencyKey?: (key: string) => boolean;
}

/** Middleware: forwards data writes to the leader when this node is not it. */
export function forwardWrites(o: ForwardOptions) {
  const now = o.now ?? (() => performance.now());
  return async (c: Context, next: Next): Promise<Response | void> => {
    if (!WRITE_METHODS.has(c.req.method) || !DATA_WRITE_PATH.test(c.req.path)) return next();
    const idem = requestHeader(c, "idempotency-key");
    if (idem !== undefined && o.knowsIdempotencyKey?.(idem)) return next();
    const deadline = now() + o.writeWaitMs;
    let body: Uint8Array | undefined;
    // Asked once, before the first wait for a leader: a write that was let wait is not shed halfway.
    let admitted = false;
    const wait = async (ms: number): Promise<Response | undefined> => {
      if (!admitted) {
        const shed = o.router.admitWait();
        if (shed !== null) return sendError(c, shed);
        admitted = true;
      }
      await o.router.changed(ms);
      return undefined;
    };
    for (;;) {
      const route = o.router.route();
      if (route.kind === "local") return next();
      if (route.kind === "refused") return sendError(c, route.error);
      if (route.kind === "forward" && c.req.header(FORWARDED_HEADER) === undefined) {
        // Read a clone: if this node becomes the leader while it waits, the
        // route handler below still needs the original body stream.
        body ??= c.req.method === "DELETE" ? new Uint8Array(0) : new Uint8Array(await c.req.raw.clone().arrayBuffer());
        const r = await relay(c, o.fetch, route.url, o.nodeId, body, deadline - now());
        if (r.kind === "answer") return r.response;
        // The leader we knew is unreachable. When the request surely did not
        // reach it (connection refused) or it carries an Idempotency-Key, it
        // is safe to wait here for the next leader instead of failing the
        // client at once: a dead leader is usually replaced within a second.
        const retryable = r.neverSent || idem !== undefined;
        if (!retryable || deadline - now() <= 0) {
          return sendError(c, nodeError("no_leader", `the leader at ${route.url} did not answer: ${r.error}`, 1));
        }
        const shed = await wait(Math.min(deadline - now(), 100));
        if (shed !== undefined) return shed;
        continue;
      }
      const left = deadline - now();
      if (left <= 0) {
        const why = route.kind === "none" ? route.reason : `the leader as ${o.nodeId} sees it is ${route.node}, and this request was already forwarded once`;
        return sendError(c, nodeError("no_leader", `no leader to take this write: ${why}`, 1));
      }
      const shed = await wait(Math.min(left, 100));
      if (shed !== undefined) return shed;
    }
  };
}

type RelayResult = { kind: "answer"; response: Response } | { kind: "failed"; error: string; neverSent: boolean };

async function relay(c: Context, fetch: typeof globalThis.fetch, leaderUrl: string, nodeId: string, body: Uint8Array, budgetMs: number): Promise<RelayResult> {
  const url = new URL(c.req.url);
  const target = `${leaderUrl}${url.pathname}${url.search}`;
  const headers: Record<string, string> = { [FORWARDED_HEADER]: nodeId };
  for (const h of PASS_HEADERS) {
    const v = c.req.header(h);
    if (v !== undefined) headers[h] = v;
  }
  let res: Response;
  try {
    res = await fetch(target, {
      method: c.req.method,
      headers,
      body: c.req.method === "DELETE" ? undefined : body,
      // AbortSignal.timeout takes whole milliseconds; the monotonic clock gives fractions.
      signal: AbortSignal.timeout(Math.ceil(Math.max(1000, budgetMs + 1000))),
    });
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code;
    return { kind: "failed", error: `${(err as Error).message}${code ? ` (${code})` : ""}`, neverSent: code === "ECONNREFUSED" };
  }
  const out = new Headers();
  for (const h of ["content-type", "x-geokv-token", "retry-after", "idempotent-replayed"]) {
    const v = res.headers.get(h);
    if (v !== null) out.set(h, v);
  }
  const leaderNode = res.headers.get("x-geokv-node");
  if (leaderNode !== null) out.set("X-Geokv-Leader", leaderNode);
  return { kind: "answer", response: new Response(await res.arrayBuffer(), { status: res.status, headers: out }) };
}
