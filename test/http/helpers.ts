// Test support for the HTTP suites: one real node (SQLite file, HTTP server on
// a free loopback port) in a throwaway one-region cluster, and small fetch
// wrappers that return status, headers and the parsed body together, so each
// test reads as request -> expected answer.

import type { NodeId } from "../../src/core/ids.js";
import { isConfigError, loadCluster, formatConfigError } from "../../src/node/config.js";
import { startNode, type RunningNode } from "../../src/server.js";
import { formatSettingsError, isSettingsError, resolveSettings } from "../../src/node/settings.js";
import { makeTempCluster, waitFor, type TempCluster } from "../support/cluster-files.js";

/** A running single-node cluster and how to stop it. */
export interface TestNode {
  readonly url: string;
  readonly nodeId: string;
  readonly node: RunningNode;
  readonly tmp: TempCluster;
  /** Closes the node, then deletes its folder. */
  close(): Promise<void>;
}

export interface TestNodeOptions {
  /** CLI-style flags without "--", e.g. {"write-wait-ms": "200"}. */
  readonly flags?: Record<string, string>;
  /** Extra environment, e.g. GEOKV_CLIENT_TOKEN. */
  readonly env?: Record<string, string>;
}

const START_ATTEMPTS_MAX = 3;

/**
 * Starts one node of a fresh one-region, one-node cluster. A port picked by
 * freePort can be taken by another test worker before the node binds it, so a
 * failed bind is retried with a new cluster folder.
 */
export async function startTestNode(o: TestNodeOptions = {}): Promise<TestNode> {
  let lastErr: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS_MAX; attempt++) {
    const tmp = await makeTempCluster([{ region: "t", nodes: 1 }]);
    const cluster = loadCluster(tmp.regionsDir);
    if (isConfigError(cluster)) throw new Error(formatConfigError(cluster));
    const settings = resolveSettings(o.flags ?? {}, { GEOKV_LOG_LEVEL: "silent", ...o.env });
    if (isSettingsError(settings)) throw new Error(formatSettingsError(settings));
    const nodeId = "t-1";
    try {
      const node = await startNode({ cluster, nodeId: nodeId as NodeId, dataDir: tmp.dataDir, settings });
      const url = tmp.urls.get(nodeId) as string;
      await waitFor("the node to answer /health", async () => (await fetch(`${url}/health`)).status === 200, 10_000);
      // A one-node region elects itself after one election timeout; writes before that would wait for a leader.
      await waitFor("the node to lead its region (/ready)", async () => (await fetch(`${url}/ready`)).status === 200, 10_000);
      return {
        url,
        nodeId,
        node,
        tmp,
        close: async () => {
          await node.close();
          tmp.cleanup();
        },
      };
    } catch (err) {
      lastErr = err;
      tmp.cleanup();
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    }
  }
  throw lastErr;
}

/** A response with its body already read. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly bytes: Uint8Array;
  readonly text: string;
  /** The parsed JSON body; undefined when the body is not JSON. */
  readonly json: unknown;
}

/** What a request may carry. */
export interface Req {
  readonly headers?: Record<string, string>;
  readonly body?: RequestInit["body"];
}

/** Sends one request and reads the whole answer. */
export async function call(base: string, method: string, path: string, r: Req = {}): Promise<Answer> {
  const res = await fetch(base + path, {
    method,
    ...(r.headers === undefined ? {} : { headers: r.headers }),
    ...(r.body === undefined ? {} : { body: r.body, duplex: "half" }),
  } as RequestInit);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const text = Buffer.from(bytes).toString("utf8");
  let json: unknown;
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, bytes, text, json };
}

/** A request with a JSON body (Content-Type application/json). */
export function callJson(base: string, method: string, path: string, value: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return call(base, method, path, { headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(value) });
}

/** The path segment of a key: every reserved character, "/" included, percent-encoded. */
export function enc(key: string): string {
  return encodeURIComponent(key);
}

/** The error code of an error answer, or undefined when it is not the contract's error shape. */
export function errorCode(a: Answer): string | undefined {
  const body = a.json as { error?: { code?: unknown; message?: unknown } } | undefined;
  if (typeof body?.error?.code !== "string" || typeof body.error.message !== "string") return undefined;
  return body.error.code;
}

/** Every kv item, following `next` through all pages. */
export async function listAllKv(base: string, pageSize = 1000): Promise<Array<{ key: string; value: unknown; version: unknown }>> {
  const out: Array<{ key: string; value: unknown; version: unknown }> = [];
  let after: string | null = null;
  for (let pages = 0; pages < 10_000; pages++) {
    const q = new URLSearchParams({ limit: String(pageSize) });
    if (after !== null) q.set("after", after);
    const a = await call(base, "GET", `/kv?${q}`);
    if (a.status !== 200) throw new Error(`GET /kv answered ${a.status}: ${a.text}`);
    const page = a.json as { items: Array<{ key: string; value: unknown; version: unknown }>; next: string | null };
    out.push(...page.items);
    if (page.next === null) return out;
    after = page.next;
  }
  throw new Error("GET /kv paging did not end");
}

/** The version vector the node reports in /status. */
export async function statusVv(base: string): Promise<Record<string, number>> {
  const a = await call(base, "GET", "/status");
  if (a.status !== 200) throw new Error(`GET /status answered ${a.status}`);
  return (a.json as { vv: Record<string, number> }).vv;
}

/** One sample of a Prometheus metric (0 when absent), matched on name and exact label text. */
export function metricValue(text: string, name: string, labels = ""): number {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    if (sp < 0) continue;
    const series = line.slice(0, sp);
    if (series === (labels === "" ? name : `${name}{${labels}}`)) return Number(line.slice(sp + 1));
  }
  return 0;
}

/** Compares strings by their UTF-8 bytes (the order the API lists keys in). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
