// Assembles a node's HTTP app: request ids and logs, X-Geokv-Node on every
// response, auth, metrics, the data and cluster routes, and JSON errors for
// unknown routes and for anything that throws (a bug must never crash the node
// or leak a stack trace to a client).

import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import { Hono, type Context } from "hono";
import type { Logger } from "pino";
import { nodeError } from "../node/errors.js";
import type { ClusterService, DataService, FaultService, LeadershipService, WriteRouter } from "../node/service.js";
import { mountClusterRoutes } from "./cluster-routes.js";
import { isNodeError } from "../node/errors.js";
import { isObject, parseJson, readBody, requestHeader } from "./parse.js";
import { forwardWrites } from "./forward.js";
import { answeredOverloaded, sendError } from "./errors.js";
import { authorize, guards, type AccessTokens } from "./access.js";
import { needOf } from "./route-needs.js";
import type { NodeMetrics } from "../node/metrics.js";
import { mountDataRoutes } from "./data-routes.js";
import { OPENAPI } from "./openapi.js";
import type { DashboardFeed } from "../node/dashboard-feed.js";
import { mountDashboardRoutes } from "./dashboard-routes.js";

export interface AppOptions {
  readonly nodeId: string;
  readonly service: DataService;
  readonly cluster: ClusterService;
  readonly metrics: NodeMetrics;
  readonly logger: Logger;
  readonly maxValueBytes: number;
  readonly tokenWaitMs: number;
  /** The client tokens and their grants (access.ts); absent or empty: every route is open. */
  readonly access?: AccessTokens | undefined;
  /** Routes client writes to the region leader; absent: this node takes every write. */
  readonly router?: WriteRouter;
  readonly writeWaitMs?: number;
  readonly faults?: FaultService;
  readonly leadership?: LeadershipService;
  /** The dashboard's data; absent, GET / and /dashboard/* are not served. */
  readonly dashboard?: DashboardFeed;
  /** Aborted when the node shuts down (ends long-lived answers such as the dashboard's event streams). */
  readonly shutdown?: AbortSignal;
  /** How this node calls other nodes (forwarded writes, stepdown relays, dashboard controls); default the global fetch. */
  readonly peerFetch?: typeof fetch;
}


const OPEN: AccessTokens = { entries: [] };

function bearer(c: Context): string | undefined {
  const h = requestHeader(c, "authorization");
  if (h === undefined) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h);
  return m ? (m[1] as string).trim() : "";
}

function logLine(reqId: string, method: string, path: string, status: number, ms: number) {
  return { reqId, method, path, status, ms: Math.round(ms * 100) / 100 };
}

/** Builds the hono app of one node. */
export function createApp(o: AppOptions): Hono {
  const app = new Hono();

  // Metric children bound once per (route, method, status), so a request
  // builds no label objects. (prom-client 15 still hashes the labels inside
  // each bound call: about 4% of a GET's busy time in the profile.) Routes
  // are hono's route patterns, so the map is as bounded as the labels are.
  const requestMetrics = new Map<string, { readonly requests: ReturnType<NodeMetrics["httpRequests"]["labels"]>; readonly duration: ReturnType<NodeMetrics["httpDuration"]["labels"]> }>();
  const metricsFor = (route: string, method: string, status: number) => {
    const id = `${route} ${method} ${status}`;
    let m = requestMetrics.get(id);
    if (m === undefined) {
      m = { requests: o.metrics.httpRequests.labels(route, method, String(status)), duration: o.metrics.httpDuration.labels(route, method) };
      requestMetrics.set(id, m);
    }
    return m;
  };

  app.use("*", async (c, next) => {
    const started = performance.now();
    const reqId = requestHeader(c, "x-request-id") ?? randomUUID();
    // On @hono/node-server the two headers go straight onto Node's response,
    // which merges them into whatever the route answers: setting them through
    // c.header() builds a web Headers object per request, and then every
    // answer takes @hono/node-server's slow path of copying Headers back into
    // Node's. No route answers its own X-Geokv-Node or X-Request-Id, so these
    // are never overridden. Lower case, as Headers would have written them.
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (outgoing !== undefined) {
      outgoing.setHeader("x-geokv-node", o.nodeId);
      outgoing.setHeader("x-request-id", reqId);
    }
    await next();
    if (outgoing === undefined) {
      // Not on Node (app.request): hono may have replaced the response, so set them on the final one.
      c.res.headers.set("X-Geokv-Node", o.nodeId);
      c.res.headers.set("X-Request-Id", reqId);
    }
    const route = c.req.routePath || "unmatched";
    const status = c.res.status;
    const method = c.req.method;
    const ms = performance.now() - started;
    const m = metricsFor(route, method, status);
    m.requests.inc();
    m.duration.observe(ms / 1000);
    // The log line is built only when it will be written (debug is off in production).
    // A shed answer is counted and summarized by the shedder instead: one line per shed would flood the log exactly when the node is busiest.
    if (status >= 500 && !answeredOverloaded(c)) o.logger.warn(logLine(reqId, method, c.req.path, status, ms), "request failed");
    else if (o.logger.isLevelEnabled("debug")) o.logger.debug(logLine(reqId, method, c.req.path, status, ms), "request");
  });

  // One guard for every route family (route-needs.ts); it runs before a write is forwarded, so a refused one changes nothing anywhere.
  const access = o.access ?? OPEN;
  app.use("*", async (c, next) => {
    const need = needOf(c.req.method, c.req.path);
    const refused = need === null ? null : authorize(access, bearer(c), need);
    if (refused !== null) return sendError(c, nodeError(refused.code, refused.message));
    return next();
  });

  const peerFetch = o.peerFetch ?? fetch;
  if (o.router) {
    const knows = o.service.knowsIdempotencyKey?.bind(o.service);
    app.use("*", forwardWrites({ nodeId: o.nodeId, router: o.router, writeWaitMs: o.writeWaitMs ?? 3000, fetch: peerFetch, ...(knows ? { knowsIdempotencyKey: knows } : {}) }));
  }

  mountDataRoutes(app, { service: o.service, maxValueBytes: o.maxValueBytes, tokenWaitMs: o.tokenWaitMs });

  app.get("/status", (c) => c.json(o.cluster.status()));
  app.get("/health", (c) => c.json({ ok: true, node: o.nodeId }));
  app.get("/ready", (c) => {
    const r = o.cluster.ready();
    return r.ready ? c.json({ ready: true }) : c.json({ ready: false, reason: r.reason }, 503);
  });
  app.get("/metrics", async (c) => {
    const text = await o.metrics.registry.metrics();
    return c.body(text, 200, { "Content-Type": o.metrics.registry.contentType });
  });
  app.get("/openapi.json", (c) => c.json(OPENAPI));
  // The live documents' endpoint only speaks WebSocket (the upgrade never reaches hono).
  app.get("/yjs/*", (c) => sendError(c, nodeError("bad_request", "GET /yjs/<room> is a WebSocket endpoint (the y-websocket protocol); connect with Upgrade: websocket")));

  if (o.leadership) mountClusterRoutes(app, o.nodeId, o.leadership, peerFetch);
  if (o.dashboard) mountDashboardRoutes(app, { feed: o.dashboard, adminTokenRequired: guards(access, "admin"), clientTokenRequired: guards(access, "read"), shutdown: o.shutdown, fetch: peerFetch });

  app.post("/admin/compact", async (c) => {
    if (!o.cluster.compact) return sendError(c, nodeError("not_found", "compaction is not available on this node"));
    return c.json(await o.cluster.compact());
  });

  app.post("/admin/faults", async (c) => {
    if (!o.faults) return sendError(c, nodeError("not_found", "fault injection is not available on this node"));
    const bytes = await readBody(c, 64 * 1024);
    if (isNodeError(bytes)) return sendError(c, bytes);
    const body = parseJson(bytes);
    if (isNodeError(body)) return sendError(c, body);
    const v = body.value;
    const usage = 'body must be {"block": [region or node ids], "direction": "both"|"in"|"out"} or {"clear": true}';
    if (!isObject(v)) return sendError(c, nodeError("bad_request", usage));
    if (v.clear === true) return c.json(o.faults.clear());
    const block = v.block;
    const direction = v.direction ?? "both";
    if (!Array.isArray(block) || block.some((b) => typeof b !== "string" || b.length === 0 || b.length > 64)) return sendError(c, nodeError("bad_request", usage));
    if (direction !== "both" && direction !== "in" && direction !== "out") return sendError(c, nodeError("bad_request", usage));
    return c.json(o.faults.block(block as string[], direction));
  });

  app.notFound((c) => sendError(c, nodeError("not_found", `no route for ${c.req.method} ${c.req.path}`)));
  app.onError((err, c) => {
    o.logger.error({ err, method: c.req.method, path: c.req.path }, "unhandled error in request");
    return sendError(c, nodeError("internal", "internal error; the node logged the details"));
  });
  return app;
}
