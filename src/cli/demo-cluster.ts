// The cluster under `npm run demo`: finds out whether the configured nodes
// already answer, starts them with `geokv up` as a child when none does, finds
// the pid of one of its nodes (for the SIGKILL step), and stops only what it
// started. HTTP helpers with timeouts live here too, so demo.ts reads as the
// story it tells.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { StatusView } from "../api/types.js";
import type { ClusterConfig } from "../node/config.js";

/** One HTTP call's outcome; `body` is parsed JSON (or the text when it is not JSON). */
export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** Bounds every demo request: a node that hangs must not hang the demo. */
const REQUEST_TIMEOUT_MS = 5000;
/** How often the demo polls while it waits for something to happen. */
const POLL_MS = 25;
/** After SIGTERM, how long `geokv up` gets to stop its nodes (it allows them 5 s) before SIGKILL. */
const UP_STOP_GRACE_MS = 8000;

/** Calls `url` with an optional JSON body, bearer token and extra headers. */
export async function request(url: string, method = "GET", body?: unknown, token?: string, timeoutMs = REQUEST_TIMEOUT_MS, extra: Record<string, string> = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...extra };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { method, headers, signal: AbortSignal.timeout(timeoutMs), ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch {
    return { status: res.status, body: text };
  }
}

/** GET /status, or null when the node does not answer. */
export async function statusOf(url: string): Promise<StatusView | null> {
  const a = await request(`${url}/status`, "GET", undefined, undefined, 1000).catch(() => null);
  return a?.status === 200 ? (a.body as StatusView) : null;
}

/** Polls `check` until it returns a value other than null/undefined/false, or throws after `timeoutMs` naming `what`. */
export async function waitUntil<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => null);
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Which configured nodes answer /health right now. */
export async function answering(cluster: ClusterConfig): Promise<string[]> {
  const probes = await Promise.all(
    [...cluster.nodes.values()].map(async (n) => {
      const a = await request(`${n.url}/health`, "GET", undefined, undefined, 1000).catch(() => null);
      return a?.status === 200 ? String(n.id) : null;
    }),
  );
  return probes.filter((x): x is string => x !== null);
}

/** A `geokv up` this demo started. */
export interface StartedCluster {
  readonly pid: number;
  readonly logFile: string;
  /** SIGTERM to `geokv up` (it stops its nodes), SIGKILL after a grace period; resolves when it exited. */
  stop(): Promise<void>;
}

/** Starts `geokv up` on `regionsDir` with a fresh `dataDir`; its output goes to <dataDir>/up.log. */
export function startUp(regionsDir: string, dataDir: string): StartedCluster {
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(dataDir, "up.log");
  const out = openSync(logFile, "a");
  const main = fileURLToPath(new URL("./main.js", import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [main, "up", "--regions", regionsDir, "--data", dataDir], { stdio: ["ignore", out, out], env: process.env });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  if (child.pid === undefined) throw new Error(`could not start geokv up (see ${logFile})`);
  return {
    pid: child.pid,
    logFile,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const hard = setTimeout(() => child.kill("SIGKILL"), UP_STOP_GRACE_MS);
      await exited;
      clearTimeout(hard);
    },
  };
}

/** Parent pid and argv of every process /proc shows (Linux); empty elsewhere. */
function processTable(): Map<number, { ppid: number; argv: string[] }> {
  const table = new Map<number, { ppid: number; argv: string[] }>();
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return table;
  }
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      // "pid (comm) state ppid …": comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
      table.set(Number(e), { ppid, argv });
    } catch {
      // the process exited while we looked
    }
  }
  return table;
}

/**
 * The pid of node `nodeId` among the descendants of `rootPid` (the `geokv up`
 * this demo started), found by its `--node <id>` argument; null when there is
 * none (not Linux, or the node is not running).
 */
export function nodePid(rootPid: number, nodeId: string): number | null {
  const table = processTable();
  const isDescendant = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      const parent = table.get(p)?.ppid;
      if (parent === rootPid) return true;
      if (parent === undefined) return false;
      p = parent;
    }
    return false;
  };
  for (const [pid, { argv }] of table) {
    const i = argv.indexOf("--node");
    if (i >= 0 && argv[i + 1] === nodeId && isDescendant(pid)) return pid;
  }
  return null;
}
