// The dashboard (GET / on every node, DESIGN.md HTTP API) and the routes its
// page calls: the static files, the live snapshot (/dashboard/state, and as
// Server-Sent Events /dashboard/events), and three controls that act on other
// nodes from this one — a browser cannot call another port without CORS, so
// this node calls them for it, passing the caller's Authorization header on:
//
//   POST /dashboard/partition {"region", "action": "cut"|"heal"}: every node of
//        the region blocks (or clears) the other regions via /admin/faults;
//   POST /dashboard/stepdown {"region"}: /leadership/stepdown on its leader;
//   GET  /dashboard/key/:key: the key as one node per region has it (its
//        leader as this node knows it), to watch a write arrive everywhere.
//
// The app's one auth guard covers them (route-needs.ts: admin for the first
// two, read on kv for the key view), as it covers the routes they call.

import type { Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { encodeHlc } from "../core/hlc.js";
import { isNodeError, nodeError } from "../node/errors.js";
import type { DashboardFeed, DashboardView } from "../node/dashboard-feed.js";
import { loadAssets } from "./dashboard-assets.js";
import { eventsHandler } from "./dashboard-events.js";
import { callNode } from "./dashboard-proxy.js";
import { renderVersion } from "./data-routes.js";
import { sendError } from "./errors.js";
import { isObject, keyFromPath, parseJson, rawPath, readBody } from "./parse.js";

/** No CDN, no inline script, no framing: the page loads only what this node serves. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";
const CONTROL_BODY_BYTES_MAX = 4096;

export interface DashboardRoutesOptions {
  readonly feed: DashboardFeed;
  /** Whether the controls must send the admin token, and reads the client token (the page asks for them). */
  readonly adminTokenRequired: boolean;
  readonly clientTokenRequired: boolean;
  /** Aborted when the node shuts down: event streams end. */
  readonly shutdown?: AbortSignal | undefined;
  /** How the controls call other nodes. */
  readonly fetch: typeof fetch;
}

/** The snapshot as the page reads it: versions in the API's {"hlc", "node"} form, and which tokens the controls need. */
function render(v: DashboardView, o: DashboardRoutesOptions) {
  const c = v.newestConflict;
  return {
    ...v,
    newestConflict: c === null ? null : { key: c.key, winner: renderVersion(c.winner), loser: renderVersion(c.loser), at: encodeHlc(c.at) },
    auth: { admin: o.adminTokenRequired, client: o.clientTokenRequired },
  };
}

/** Parses a control's JSON body into an object, or answers the error. */
async function controlBody(c: Context, usage: string): Promise<Record<string, unknown> | Response> {
  const bytes = await readBody(c, CONTROL_BODY_BYTES_MAX);
  if (isNodeError(bytes)) return sendError(c, bytes);
  const body = parseJson(bytes);
  if (isNodeError(body)) return sendError(c, body);
  return isObject(body.value) ? body.value : sendError(c, nodeError("bad_request", usage));
}

/** Mounts GET /, the assets, the snapshot, the event stream and the controls. */
export function mountDashboardRoutes(app: Hono, o: DashboardRoutesOptions): void {
  const snapshot = () => render(o.feed.view(), o);
  const asset = (c: Context, name: string) => {
    const a = loadAssets().get(name);
    if (a === undefined) return sendError(c, nodeError("not_found", `no dashboard asset ${name}`));
    return c.body(new Uint8Array(a.body), 200, { "content-type": a.contentType, "cache-control": "no-cache", "content-security-policy": CSP, "x-content-type-options": "nosniff" });
  };
  app.get("/", (c) => asset(c, "index.html"));
  app.get("/dashboard/assets/:name", (c) => asset(c, c.req.param("name")));
  app.get("/dashboard/state", (c) => c.json(snapshot()));
  app.get("/dashboard/events", eventsHandler({ snapshot: () => JSON.stringify(snapshot()), onChange: (l) => o.feed.onChange(l), shutdown: o.shutdown }));

  const regionOf = (c: Context, name: unknown) => {
    const r = o.feed.view().regions.find((x) => x.region === name);
    return r ?? sendError(c, nodeError("bad_request", `no region ${JSON.stringify(name)} in this cluster`));
  };

  app.post("/dashboard/partition", async (c) => {
    const usage = 'body must be {"region": "<region>", "action": "cut"|"heal"}';
    const body = await controlBody(c, usage);
    if (body instanceof Response) return body;
    if (body.action !== "cut" && body.action !== "heal") return sendError(c, nodeError("bad_request", usage));
    const region = regionOf(c, body.region);
    if (region instanceof Response) return region;
    const others = o.feed.view().regions.filter((r) => r.region !== region.region).map((r) => r.region);
    const fault = body.action === "cut" ? { block: others } : { clear: true };
    const nodes = await Promise.all(
      region.nodes.map(async (n) => {
        const r = await callNode(o.fetch, n.url, "/admin/faults", { method: "POST", body: fault, authorization: c.req.header("authorization") });
        return { node: n.id, ...r };
      }),
    );
    return c.json({ region: region.region, action: body.action, ok: nodes.every((n) => n.ok), nodes });
  });

  app.post("/dashboard/stepdown", async (c) => {
    const body = await controlBody(c, 'body must be {"region": "<region>"}');
    if (body instanceof Response) return body;
    const region = regionOf(c, body.region);
    if (region instanceof Response) return region;
    const leader = region.nodes.find((n) => n.id === region.leader);
    if (leader === undefined) return sendError(c, nodeError("no_leader", `${region.region} has no leader that ${o.feed.view().node} knows of`, 1));
    const r = await callNode(o.fetch, leader.url, "/leadership/stepdown", { method: "POST", authorization: c.req.header("authorization") });
    if ("error" in r) return sendError(c, nodeError("no_leader", r.error, 1));
    // The leader's own answer: 202 with who stepped down, or its refusal.
    return c.json(r.body, r.status as ContentfulStatusCode);
  });

  app.get("/dashboard/key/:key", async (c) => {
    const key = keyFromPath(rawPath(c), "dashboard/key");
    if (isNodeError(key)) return sendError(c, key);
    const path = `/kv/${encodeURIComponent(key)}`;
    const regions = await Promise.all(
      o.feed.view().regions.map(async (r) => {
        // Its leader is where a write lands first; without one, any node says what the region holds.
        const n = r.nodes.find((x) => x.id === r.leader) ?? r.nodes.find((x) => x.link !== "down") ?? r.nodes[0];
        if (n === undefined) return { region: r.region, node: null, ok: false, status: 0, error: "the region has no nodes" };
        return { region: r.region, node: n.id, ...(await callNode(o.fetch, n.url, path, { method: "GET", authorization: c.req.header("authorization") })) };
      }),
    );
    return c.json({ key, regions });
  });
}
