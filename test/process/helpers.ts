// Test support for suites that run the real `geokv` binary (dist/cli/main.js)
// as child processes: spawning with a clean environment, collecting output,
// waiting for exits with deadlines, killing only the children this file
// started (by pid), small HTTP helpers, and a read-only look at a node's
// SQLite file while the node is down.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { waitFor } from "../support/cluster-files.js";
import { mulberry32 } from "../../src/core/prng.js";

/** The built CLI; test/support/build-once.ts compiles it before the suites. */
export const CLI = join(import.meta.dirname, "../../dist/cli/main.js");

/** How long a one-shot CLI command may take (node start-up plus one request). */
const RUN_TIMEOUT_MS = 20_000;
/** Per-request bound, so a hung node fails the test instead of hanging it. */
const FETCH_TIMEOUT_MS = 5_000;

/** A child running the geokv CLI. */
export interface GeokvProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout/stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Settles when the process has exited (and been reaped). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
}

const running = new Set<GeokvProcess>();

/** The environment without the caller's GEOKV_* settings (a developer's token must not leak in). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("GEOKV_")) env[k] = v;
  return { ...env, GEOKV_LOG_LEVEL: "silent", ...extra };
}

/** Starts `node dist/cli/main.js ...args` (in `cwd`, default this process's); the child is tracked for killChildren(). */
export function spawnGeokv(args: readonly string[], env: Record<string, string> = {}, cwd?: string): GeokvProcess {
  const proc = spawn(process.execPath, [CLI, ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"], ...(cwd === undefined ? {} : { cwd }) });
  if (proc.pid === undefined) throw new Error(`could not spawn geokv ${args.join(" ")}`);
  let out = "";
  let err = "";
  let done = false;
  proc.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
  proc.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once("exit", (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  const child: GeokvProcess = { proc, pid: proc.pid, stdout: () => out, stderr: () => err, exited, hasExited: () => done };
  running.add(child);
  void exited.then(() => running.delete(child));
  return child;
}

/** Waits for `child` to exit, failing after `timeoutMs`; returns code and signal. */
export async function waitExit(
  child: GeokvProcess,
  timeoutMs = 10_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`pid ${child.pid} did not exit within ${timeoutMs} ms; stderr: ${child.stderr()}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a one-shot command to completion: exit code and output. */
export async function runGeokv(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawnGeokv(args, env);
  const r = await waitExit(child, RUN_TIMEOUT_MS);
  return { ...r, stdout: child.stdout(), stderr: child.stderr() };
}

/** SIGKILLs every child spawned by this module that is still running, by pid, and waits for them. */
export async function killChildren(): Promise<void> {
  const left = [...running];
  for (const c of left) {
    if (!c.hasExited()) c.proc.kill("SIGKILL");
  }
  await Promise.all(left.map((c) => waitExit(c, 10_000)));
}

/** Starts `geokv node` and waits until it answers /health. */
export async function startNodeProcess(
  nodeId: string,
  regionsDir: string,
  dataDir: string,
  url: string,
  env: Record<string, string> = {},
): Promise<GeokvProcess> {
  const child = spawnGeokv(["node", "--node", nodeId, "--regions", regionsDir, "--data", dataDir], env);
  await waitFor(
    `${nodeId} to answer /health at ${url}`,
    async () => {
      if (child.hasExited()) throw new Error(`node exited early: ${child.stderr()}`);
      return (await healthy(url)) || undefined;
    },
    15_000,
  );
  return child;
}

/** True when `url` answers GET /health with 200 right now. */
export async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** GET `url` and parse its JSON body; returns status too. */
export async function getJson<T = unknown>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  return { status: res.status, body: (await res.json()) as T };
}

/** A request with a JSON body; returns status and parsed JSON body. */
export async function sendJson<T = unknown>(method: string, url: string, body: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** Where a node started with `--data dataDir` keeps its database. */
export function dbPath(dataDir: string, nodeId: string): string {
  return join(dataDir, nodeId, "geokv.db");
}

/** What a read-only look at a (stopped) node's database finds. */
export interface DbInspection {
  readonly integrity: string;
  /** The persisted node vector (node_vv). */
  readonly appliedVv: Record<string, number>;
  /** Per origin, the highest seq s such that every op up to s is logged (or below the compaction floor). */
  readonly opLogVv: Record<string, number>;
  /** Logged ops per origin. */
  readonly opCount: Record<string, number>;
}

/**
 * Opens the database read-only, without checkpointing or otherwise touching
 * it, so what the restarted node must recover from stays as the crash left it.
 */
export function inspectDbReadonly(path: string): DbInspection {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma("integrity_check") as { integrity_check: string }[];
    const integrity = rows.map((r) => r.integrity_check).join("\n");
    const appliedVv: Record<string, number> = {};
    for (const r of db.prepare("SELECT origin, seq FROM node_vv").all() as { origin: string; seq: number }[]) {
      if (r.seq > 0) appliedVv[r.origin] = r.seq;
    }
    const floors = new Map<string, number>();
    for (const r of db.prepare("SELECT origin, seq FROM op_floor").all() as { origin: string; seq: number }[]) floors.set(r.origin, r.seq);
    const opLogVv: Record<string, number> = Object.fromEntries(floors);
    const opCount: Record<string, number> = {};
    const origins = db.prepare("SELECT DISTINCT origin FROM ops").pluck().all() as string[];
    const seqsOf = db.prepare("SELECT seq FROM ops WHERE origin = ? AND seq > ? ORDER BY seq").pluck();
    for (const origin of origins) {
      let top = floors.get(origin) ?? 0;
      const seqs = seqsOf.all(origin, top) as number[];
      opCount[origin] = seqs.length;
      for (const s of seqs) {
        if (s !== top + 1) break;
        top = s;
      }
      if (top > 0) opLogVv[origin] = top;
    }
    return { integrity, appliedVv, opLogVv, opCount };
  } finally {
    db.close();
  }
}

/** True when a process with this pid exists (signal 0 probes without sending). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Pids whose parent is `ppid` (Linux /proc); empty where /proc is missing. */
export function childPidsOf(ppid: number): number[] {
  if (!existsSync("/proc")) return [];
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parens, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === ppid) out.push(Number(name));
  }
  return out;
}

/** A seeded generator (mulberry32, src/core/prng.ts), so runs replay from their seed. */
export const seededRandom = mulberry32;
