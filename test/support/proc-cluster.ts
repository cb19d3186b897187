// Test support: a real geokv cluster of child processes (the built CLI,
// `node dist/cli/main.js node ...`), one per node of a temp cluster, with
// helpers to call them, kill and restart nodes by pid, and wait for
// conditions with deadlines. Only processes this harness started are ever
// signalled.

import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeTempCluster, waitFor, type TempCluster, type TempRegionSpec } from "./cluster-files.js";

const MAIN = resolve("dist/cli/main.js");

export interface ProcCluster {
  readonly files: TempCluster;
  readonly urls: Map<string, string>;
  readonly regions: Map<string, string[]>;
  /** Starts (or restarts) a node, with `env` on top of the cluster's for this start only; resolves when /health answers. */
  start(node: string, env?: Record<string, string>): Promise<void>;
  /** SIGKILL (default) or SIGTERM a node this harness started; resolves when it exited. */
  stop(node: string, signal?: NodeJS.Signals): Promise<void>;
  running(node: string): boolean;
  /** Stops every node and removes the temp folder. */
  close(): Promise<void>;
  /** The log file of a node (stdout and stderr). */
  logFile(node: string): string;
  /** The fetch that reaches these nodes (one that trusts the test CA for https). */
  readonly fetch: typeof fetch;
}

export interface ProcClusterOptions {
  readonly env?: Record<string, string>;
  /** Per-node extra env (e.g. a wrong secret for one node). */
  readonly nodeEnv?: Record<string, Record<string, string>>;
  readonly args?: readonly string[];
  /** Nodes not started with the others (start them later with start()). */
  readonly deferred?: readonly string[];
  /** How to reach the nodes (default the global fetch; a CA-trusting one for https). */
  readonly fetch?: typeof fetch;
}

/** Creates region files for `specs` and starts every node. */
export async function startProcCluster(specs: readonly TempRegionSpec[], o: ProcClusterOptions = {}): Promise<ProcCluster> {
  const files = await makeTempCluster(specs);
  const procs = new Map<string, ChildProcess>();
  const logsDir = join(files.root, "logs");
  mkdirSync(logsDir, { recursive: true });

  const via = o.fetch ?? fetch;
  const start = async (node: string, env: Record<string, string> = {}) => {
    if (procs.has(node)) throw new Error(`${node} is already running`);
    const log = createWriteStream(join(logsDir, `${node}.log`), { flags: "a" });
    const child = spawn(process.execPath, [MAIN, "node", "--node", node, "--regions", files.regionsDir, "--data", files.dataDir, ...(o.args ?? [])], {
      env: { ...process.env, GEOKV_LOG_LEVEL: "info", ...o.env, ...(o.nodeEnv?.[node] ?? {}), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    procs.set(node, child);
    child.once("exit", () => {
      if (procs.get(node) === child) procs.delete(node);
    });
    const url = files.urls.get(node) as string;
    await waitFor(`${node} /health`, async () => {
      if (child.exitCode !== null) throw new Error(`${node} exited with ${child.exitCode}`);
      const r = await via(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      return r.ok;
    }, 20_000);
  };

  const stop = async (node: string, signal: NodeJS.Signals = "SIGKILL") => {
    const child = procs.get(node);
    if (!child) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill(signal);
    await exited;
    procs.delete(node);
  };

  const stopAll = async () => {
    await Promise.all([...procs.keys()].map((n) => stop(n, "SIGKILL")));
    files.cleanup();
  };
  // A node that fails to start (it exits, or is too slow on a busy machine)
  // fails the caller before it holds close(): stop the ones already running
  // here, or they outlive the test file and load the machine for the rest.
  const started = await Promise.allSettled([...files.urls.keys()].filter((n) => !(o.deferred ?? []).includes(n)).map((n) => start(n)));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) {
    await stopAll();
    throw failed.reason;
  }
  return {
    files,
    urls: files.urls,
    regions: files.regions,
    start,
    stop,
    running: (n) => procs.has(n),
    logFile: (n) => join(logsDir, `${n}.log`),
    close: stopAll,
    fetch: via,
  };
}

/** fetch + JSON with a timeout; returns status and body (any: tests read fields of many shapes). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function call(url: string, method = "GET", body?: unknown, headers: Record<string, string> = {}, via: typeof fetch = fetch): Promise<{ status: number; body: any; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...headers }, signal: AbortSignal.timeout(15_000) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await via(url, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (e.g. a doc update): keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/**
 * Waits until `region` has an active leader whose region peers are all up, and
 * names it and its followers. Which node wins the first election depends on
 * which process came up first (on a loaded machine any of them may), so tests
 * ask instead of assuming the best-ranked.
 */
export async function regionLeader(c: ProcCluster, region: string, timeoutMs = 20_000): Promise<{ leader: string; followers: string[] }> {
  const nodes = c.regions.get(region) ?? [];
  const leader = await waitFor(`a leader of ${region} with every follower up`, async () => {
    for (const n of nodes) {
      const s = await call(`${c.urls.get(n)}/status`, "GET", undefined, {}, c.fetch).catch(() => null);
      if (s?.body?.role === "leader" && s.body.peers.filter((p: { region: string }) => p.region === region).every((p: { state: string }) => p.state === "up")) return n;
    }
    return null;
  }, timeoutMs);
  return { leader, followers: nodes.filter((n) => n !== leader) };
}

/** The parts of GET /status the cluster tests read. */
export interface NodeStatus {
  node: string;
  role: string;
  leader: string | null;
  epoch: number;
  fencingToken: string;
  vv: Record<string, number>;
}

/** GET /status of each of `nodes`. */
export async function statuses(c: ProcCluster, nodes: readonly string[]): Promise<NodeStatus[]> {
  return Promise.all(nodes.map(async (n) => (await call(`${c.urls.get(n)}/status`, "GET", undefined, {}, c.fetch)).body as NodeStatus));
}

/** The one leader all `nodes` agree on (same leader, same epoch), or null. */
export async function agreedLeader(c: ProcCluster, nodes: readonly string[]): Promise<NodeStatus | null> {
  const s = await statuses(c, nodes);
  const leaders = s.filter((x) => x.role === "leader");
  if (leaders.length !== 1) return null;
  const l = leaders[0] as NodeStatus;
  return s.every((x) => x.leader === l.node && x.epoch === l.epoch) ? l : null;
}

export { waitFor };
