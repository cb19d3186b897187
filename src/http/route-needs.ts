// Which scope each route family needs, in one table, so the app's guard and
// the live documents' endpoint read the same rules: data routes need read
// (GET, HEAD) or write (anything else) on their namespace; /admin/*,
// /leadership/* and the dashboard's controls need admin; /metrics needs a
// token that reads (open when no token is set at all); the dashboard's key
// view reads kv. Routes not listed (/health, /ready, /status, /openapi.json,
// /fence-token/validate, the dashboard page and its live snapshot) are open:
// probes and the cluster's own tooling call them without a token.

import type { Namespace } from "../core/op.js";
import type { Need } from "./access.js";

interface Family {
  /** A path prefix: the path itself, or the path followed by "/". */
  readonly prefix: string;
  readonly need: (method: string) => Need;
}

const isRead = (method: string) => method === "GET" || method === "HEAD";
const data = (namespace: Namespace) => (method: string): Need => ({ scope: isRead(method) ? "read" : "write", namespace });
const admin = (): Need => ({ scope: "admin", namespace: null });

const FAMILIES: readonly Family[] = [
  { prefix: "/kv", need: data("kv") },
  { prefix: "/counters", need: data("counters") },
  { prefix: "/sets", need: data("sets") },
  { prefix: "/docs", need: data("docs") },
  // Conflicts are between kv versions.
  { prefix: "/conflicts", need: data("kv") },
  { prefix: "/yjs", need: data("docs") },
  { prefix: "/metrics", need: () => ({ scope: "metrics", namespace: null }) },
  { prefix: "/admin", need: admin },
  { prefix: "/leadership", need: admin },
  // The dashboard's controls call /admin/faults and /leadership/stepdown on other nodes.
  { prefix: "/dashboard/partition", need: admin },
  { prefix: "/dashboard/stepdown", need: admin },
  // The dashboard's key view reads a kv key from one node per region.
  { prefix: "/dashboard/key", need: () => ({ scope: "read", namespace: "kv" }) },
];

function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** What a request to `path` with `method` needs, or null for an open route. */
export function needOf(method: string, path: string): Need | null {
  const f = FAMILIES.find((x) => under(path, x.prefix));
  return f === undefined ? null : f.need(method);
}
