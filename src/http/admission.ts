// Admission of client requests at the door: the in-flight bound is counted
// and enforced on Node's own request event, before @hono/node-server builds a
// Request and before any middleware runs, and a shed request is answered with
// a prepared 503 straight onto Node's response. Shedding has to cost much
// less than serving: a node offered ten times what it can take spends most of
// its time refusing, and when a refusal costs nearly what a write does, the
// requests it has not yet refused wait in socket buffers and every answer,
// accepted or shed, comes late (bench/overload.ts: a shed answered through
// the whole app put the accepted writes' p50 at 7.5 s).

import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { NodeMetrics } from "../node/metrics.js";
import type { LoadShedder } from "../node/overload.js";
import { errorBody } from "./errors.js";

/**
 * Paths that are never shed and do not count as in flight: what operators,
 * load balancers and the region's leadership need from a node most when it is
 * overloaded (DESIGN.md, "Overload and clocks").
 */
const NEVER_SHED = /^\/(?:health|ready|status|metrics|openapi\.json)(?:[?#]|$)|^\/leadership\//;

/** True when a request for `url` (path and query) is never shed. */
export function neverShed(url: string): boolean {
  return NEVER_SHED.test(url);
}

/**
 * Wraps the app's request listener with the in-flight bound: a request that
 * would take the node past it is answered 503 overloaded with Retry-After and
 * Connection kept (its body, if any, is discarded by Node before the next
 * request on the connection is read).
 */
export function withAdmission(listener: RequestListener, shedder: LoadShedder, metrics: Pick<NodeMetrics, "inflightRequests">, nodeId: string): RequestListener {
  let inflight = 0;
  const done = () => {
    inflight--;
    metrics.inflightRequests.set(inflight);
  };
  return (req: IncomingMessage, res: ServerResponse) => {
    if (neverShed(req.url ?? "/")) return listener(req, res);
    const shed = shedder.check("inflightRequests", inflight);
    if (shed !== null) {
      const body = JSON.stringify(errorBody(shed.code, shed.message));
      res.writeHead(503, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "retry-after": String(shed.retryAfterS ?? 1),
        "x-geokv-node": nodeId,
      });
      res.end(body);
      return;
    }
    inflight++;
    metrics.inflightRequests.set(inflight);
    res.once("close", done);
    listener(req, res);
  };
}
