// Shared helpers for the benchmarks that run real processes: a private build,
// starting a geokv cluster or a bare hono baseline as child processes on
// loopback, driving them with autocannon or a keep-alive HTTP client, and
// making sure every process a bench started is killed (by its pid) and every
// temp folder removed, also when the bench fails or is interrupted.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { cpSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import autocannon from "autocannon";
import { freePort, makeTempCluster, waitFor, type TempCluster, type TempRegionSpec } from "../test/support/cluster-files.js";
import { mulberry32 } from "../src/core/prng.js";

export { freePort, waitFor };

// ---- settings --------------------------------------------------------------

/** A positive number from the environment, or `fallback`. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

/** Seconds each measured run lasts (BENCH_SECONDS, default 10). */
export function benchSeconds(fallback = 10): number {
  return envNumber("BENCH_SECONDS", fallback);
}

/** A full build takes ~10 s; past this something hangs. */
const BUILD_TIMEOUT_MS = 180_000;

/** A private build of geokv in a temp folder: what the bench's processes run. */
export interface Build {
  /** The CLI entry, `node <main> node --node ...`. */
  readonly main: string;
  /** What was built, for the notes: a commit, or the working tree. */
  readonly label: string;
  /** Imports a module of the build by its path under src/ with .js, e.g. "core/codec/op-codec.js". */
  importModule<T>(path: string): Promise<T>;
}

function git(args: string[]): string {
  return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/**
 * Compiles geokv into a temp folder and returns where it is. A private build,
 * not dist/: other work on the same checkout may rebuild dist/ (or leave it
 * half-built) while a bench's processes start. BENCH_REF=<git ref> builds
 * that commit instead of the working tree's src/ (which is the default).
 */
export function buildGeokv(): Build {
  const root = mkdtempSync(join(tmpdir(), "geokv-bench-build-"));
  onCleanup(() => rmSync(root, { recursive: true, force: true }));
  const ref = process.env.BENCH_REF;
  const files = ["src", "tsconfig.json", "tsconfig.build.json", "package.json"];
  let label: string;
  if (ref) {
    const tar = execFileSync("git", ["archive", "--format=tar", ref, ...files], { maxBuffer: 256 * 2 ** 20 });
    execFileSync("tar", ["-x", "-C", root], { input: tar });
    label = `commit ${git(["rev-parse", "--short", `${ref}^{commit}`])}`;
  } else {
    for (const f of files) cpSync(f, join(root, f), { recursive: true });
    const dirty = git(["status", "--porcelain", "--", "src"]) !== "";
    label = `working tree at ${git(["rev-parse", "--short", "HEAD"])}${dirty ? " with uncommitted changes in src/" : ""}`;
  }
  symlinkSync(resolve("node_modules"), join(root, "node_modules"), "dir");
  console.log(`building geokv (${label}) in ${root}`);
  try {
    execFileSync(resolve("node_modules/.bin/tsc"), ["-p", join(root, "tsconfig.build.json")], { stdio: ["ignore", "pipe", "pipe"], timeout: BUILD_TIMEOUT_MS, encoding: "utf8" });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`build of ${label} failed:\n${e.stdout ?? ""}${e.stderr ?? ""}${e.message}`);
  }
  return {
    main: join(root, "dist/cli/main.js"),
    label,
    importModule: async <T>(path: string) => (await import(pathToFileURL(join(root, "dist", path)).href)) as T,
  };
}

// ---- cleanup -----------------------------------------------------------------

const cleanups = new Set<() => Promise<void> | void>();
let signalsInstalled = false;

/** Registers `fn` to run at the end of the bench or on SIGINT/SIGTERM; returns its unregister. */
export function onCleanup(fn: () => Promise<void> | void): () => void {
  if (!signalsInstalled) {
    signalsInstalled = true;
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.once(sig, () => {
        console.error(`\n${sig}: stopping bench processes`);
        void runCleanups().finally(() => process.exit(130));
      });
    }
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** Runs every registered cleanup (newest first), once each. */
export async function runCleanups(): Promise<void> {
  const fns = [...cleanups].reverse();
  cleanups.clear();
  for (const fn of fns) {
    try {
      await fn();
    } catch (err) {
      console.error("cleanup failed:", err);
    }
  }
}

/** True once the bench body threw: teardowns then print what helps to see why (node logs). */
let failing = false;

/** Runs `body`, then every cleanup registered meanwhile, whether it threw or not. */
export async function withCleanup<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    failing = true;
    throw err;
  } finally {
    await runCleanups();
  }
}

/** The 1-minute load average, to say in the notes how busy the machine was. */
export function loadAverage(): string {
  return loadavg()[0]?.toFixed(1) ?? "?";
}

// ---- processes -----------------------------------------------------------------

/** A running geokv cluster of child processes. */
export interface GeokvCluster {
  readonly files: TempCluster;
  /** node id -> base URL */
  readonly urls: Map<string, string>;
  /** The pid of a node's process. */
  pid(node: string): number;
  /** What a node has logged so far (stdout and stderr; warn and above at GEOKV_LOG_LEVEL=warn). */
  log(node: string): string;
  /**
   * Stops `node` with SIGTERM (by pid; a clean close of its database) and
   * starts it again on the same data with `env` over the env it started
   * with; resolves when it answers /health. Its log goes on in the same file.
   */
  restart(node: string, env?: Record<string, string>): Promise<void>;
  /**
   * Starts a node listed in `deferred` (not started with the others) with
   * `env` over the cluster's; resolves when it answers /health. Its spawn is
   * the first thing this does, so a caller's clock read just before the call
   * is the spawn time (within a few ms).
   */
  start(node: string, env?: Record<string, string>): Promise<void>;
  /** Stops `node` with SIGTERM (by pid; a clean close of its database, SIGKILL past a grace); its data stays until close(). */
  stopNode(node: string): Promise<void>;
  /** Kills every node (SIGKILL, by pid; SIGTERM under BENCH_PROFILE_DIR); their data stays until close(). */
  stop(): Promise<void>;
  /** Stops every node as stop() does and removes the temp folder. */
  close(): Promise<void>;
}

/**
 * Starts every node of a temp cluster from `build` as a child process
 * (GEOKV_LOG_LEVEL=warn, logs in <temp>/logs); resolves when all answer
 * /health. Teardown is registered before the first spawn, so a node that
 * fails to start does not leave the others running. `nodeArgs` are node
 * flags for every process (before BENCH_NODE_ARGS's), e.g. "--inspect=127.0.0.1:0".
 * Nodes in `deferred` are in the region files but not started: start() starts one.
 */
export async function startGeokv(build: Build, specs: readonly TempRegionSpec[], env: Record<string, string> = {}, nodeArgs: readonly string[] = [], deferred: readonly string[] = []): Promise<GeokvCluster> {
  const profileDir = process.env.BENCH_PROFILE_DIR || undefined;
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  const files = await makeTempCluster(specs);
  const children = new Map<string, ChildProcess>();
  const logs = join(files.root, "logs");
  mkdirSync(logs);
  /** Children stopNode() stopped: not "died during the bench". */
  const stoppedOnPurpose = new Set<ChildProcess>();
  let stopping: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  const stop = () => (stopping ??= stopOnce());
  const close = () => (closing ??= closeOnce());
  const stopOnce = async () => {
    const died = [...children].filter(([, c]) => !stoppedOnPurpose.has(c) && (c.exitCode !== null || c.signalCode !== null)).map(([n, c]) => `${n} (exit ${c.exitCode ?? c.signalCode})`);
    await Promise.all([...children.values()].map((c) => (profileDir === undefined ? killChild(c) : terminateChild(c))));
    if (died.length > 0) console.error(`geokv nodes that died during the bench: ${died.join(", ")}`);
    if (failing || died.length > 0) {
      for (const node of children.keys()) {
        const text = readFileSync(join(logs, `${node}.log`), "utf8").trim();
        if (text !== "") console.error(`--- ${node} log (last 3000 chars) ---\n${text.slice(-3000)}`);
      }
    }
  };
  const closeOnce = async () => {
    await stop();
    files.cleanup();
  };
  onCleanup(close);
  // Extra node flags for every geokv process, e.g. BENCH_NODE_ARGS="--inspect". BENCH_PROFILE_DIR=DIR
  // adds --cpu-prof --cpu-prof-dir=DIR and stops the nodes with SIGTERM: a node writes its
  // profile only when it exits on its own (the CLI's SIGTERM handler), never when SIGKILLed.
  const allNodeArgs = [
    ...nodeArgs,
    ...(process.env.BENCH_NODE_ARGS ?? "").split(" ").filter((a) => a !== ""),
    ...(profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${resolve(profileDir)}`]),
  ];
  if (profileDir !== undefined) console.log(`BENCH_PROFILE_DIR: CPU profiles of every geokv node go to ${resolve(profileDir)}`);
  // Appends on a restart, so one file holds a node's whole life.
  const spawnNode = (node: string, nodeEnv: Record<string, string>) => {
    const log = createWriteStream(join(logs, `${node}.log`), { flags: "a" });
    const child = spawn(process.execPath, [...allNodeArgs, build.main, "node", "--node", node, "--regions", files.regionsDir, "--data", files.dataDir], {
      env: { ...process.env, GEOKV_LOG_LEVEL: "warn", ...nodeEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    children.set(node, child);
  };
  const healthy = (node: string) =>
    waitFor(`${node} /health`, async () => {
      const child = children.get(node) as ChildProcess;
      if (child.exitCode !== null) throw new Error(`${node} exited with ${child.exitCode}; its log: ${readFileSync(join(logs, `${node}.log`), "utf8").slice(0, 2000)}`);
      return (await fetch(`${files.urls.get(node) as string}/health`, { signal: AbortSignal.timeout(1000) })).ok;
    }, 20_000);
  for (const node of deferred) if (!files.urls.has(node)) throw new Error(`deferred node ${node} is not in the cluster's regions`);
  const first = [...files.urls.keys()].filter((n) => !deferred.includes(n));
  for (const node of first) spawnNode(node, env);
  await Promise.all(first.map(healthy));
  // A profile's file name carries its process's pid, not the node's name.
  if (profileDir !== undefined) console.log(`BENCH_PROFILE_DIR: pids ${[...children].map(([n, c]) => `${n}=${c.pid}`).join(", ")}`);
  const pid = (node: string) => {
    const p = children.get(node)?.pid;
    if (p === undefined) throw new Error(`no process for ${node}`);
    return p;
  };
  const log = (node: string) => {
    try {
      return readFileSync(join(logs, `${node}.log`), "utf8");
    } catch {
      return "";
    }
  };
  const restart = async (node: string, extra: Record<string, string> = {}) => {
    const child = children.get(node);
    if (!child) throw new Error(`no process for ${node}`);
    if (stopping) throw new Error(`cannot restart ${node}: the cluster is stopping`);
    await terminateChild(child);
    spawnNode(node, { ...env, ...extra });
    await healthy(node);
  };
  const start = async (node: string, extra: Record<string, string> = {}) => {
    if (!files.urls.has(node)) throw new Error(`no node ${node} in the cluster's regions`);
    const child = children.get(node);
    if (child !== undefined && child.exitCode === null && child.signalCode === null) throw new Error(`${node} is already running`);
    if (stopping) throw new Error(`cannot start ${node}: the cluster is stopping`);
    spawnNode(node, { ...env, ...extra });
    await healthy(node);
  };
  const stopNode = async (node: string) => {
    const child = children.get(node);
    if (!child) throw new Error(`no process for ${node}`);
    stoppedOnPurpose.add(child);
    await terminateChild(child);
  };
  return { files, urls: files.urls, pid, log, restart, start, stopNode, stop, close };
}

/** A child process this bench started, and how to stop it. */
export interface Child {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Sends SIGKILL to `child` (by its pid) and resolves when it has exited. */
export function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  process.kill(child.pid, "SIGKILL");
  return exited;
}

/** A node that has not exited this long after SIGTERM is stuck: it gets SIGKILL. */
const TERMINATE_GRACE_MS = 10_000;

/** Sends SIGTERM to `child` (by its pid), SIGKILL after TERMINATE_GRACE_MS; resolves when it has exited. */
export function terminateChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  process.kill(pid, "SIGTERM");
  const cut = setTimeout(() => {
    console.error(`pid ${pid} still running ${TERMINATE_GRACE_MS} ms after SIGTERM: SIGKILL (no profile from it)`);
    process.kill(pid, "SIGKILL");
  }, TERMINATE_GRACE_MS);
  return exited.finally(() => clearTimeout(cut));
}

/**
 * The baseline server: the least an HTTP JSON service on the same stack can
 * do. A hono app on @hono/node-server, no middleware, that reads a request's
 * body and answers a fixed JSON text (given in BASELINE_BODY) to GET and PUT
 * alike. Plain JavaScript run by plain node, like geokv's built dist/.
 */
const BASELINE_SOURCE = `
import { Hono } from "hono";
import { serve } from "@hono/node-server";
const body = process.env.BASELINE_BODY;
const app = new Hono();
app.get("/health", (c) => c.json({ ok: true }));
app.get("/kv/*", (c) => c.body(body, 200, { "Content-Type": "application/json" }));
app.put("/kv/*", async (c) => {
  await c.req.text();
  return c.body(body, 200, { "Content-Type": "application/json" });
});
serve({ fetch: app.fetch, hostname: "127.0.0.1", port: Number(process.env.BASELINE_PORT) });
`;

/** Starts the baseline hono server answering `body`; resolves when /health answers. */
export async function startBaseline(body: string): Promise<Child> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--input-type=module", "-e", BASELINE_SOURCE], {
    env: { ...process.env, BASELINE_BODY: body, BASELINE_PORT: String(port) },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const stop = () => killChild(child);
  onCleanup(stop);
  const url = `http://127.0.0.1:${port}`;
  await waitFor("baseline /health", async () => {
    if (child.exitCode !== null) throw new Error(`baseline exited with ${child.exitCode}`);
    return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })).ok;
  }, 15_000);
  return { url, pid: child.pid as number, stop };
}

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: 100 on Linux). */
let ticksPerSecond: number | undefined;

/** CPU time (user + system, ms) a process has used so far; undefined where /proc is not there. */
export function cpuMs(pid: number): number | undefined {
  try {
    ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

// ---- load ------------------------------------------------------------------------

/** What one autocannon run measured. */
export interface LoadResult {
  readonly requestsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ok: number;
  /** Connection errors and timeouts plus non-2xx answers. */
  readonly failed: number;
  readonly seconds: number;
}

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  readonly method: "GET" | "PUT" | "POST";
  /** The path (and query) of request number `i`. */
  readonly path: (i: number) => string;
  /** The body of request number `i`. */
  readonly body?: (i: number) => string;
  readonly headers?: Record<string, string>;
}

/** Runs autocannon against `url` for `seconds`; requests/s counts 2xx answers only. */
export async function load(o: LoadOptions): Promise<LoadResult> {
  let i = 0;
  const result = await autocannon({
    url: o.url,
    connections: o.connections,
    duration: o.seconds,
    timeout: 10,
    headers: o.headers ?? {},
    requests: [
      {
        method: o.method,
        setupRequest: (req) => {
          const n = i++;
          const next: autocannon.Request = { ...req, path: o.path(n) };
          if (o.body) next.body = o.body(n);
          return next;
        },
      },
    ],
  });
  const ok = result["2xx"];
  return {
    requestsPerSec: ok / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    ok,
    failed: result.errors + result.timeouts + result.non2xx,
    seconds: result.duration,
  };
}

/** A JSON text of exactly `bytes` bytes: {"v":"<tag><padding>"}. */
export function jsonValue(bytes: number, tag: string | number = ""): string {
  const head = `{"v":"${tag}`;
  const pad = bytes - head.length - 2;
  if (pad < 0) throw new Error(`a ${bytes}-byte value cannot hold tag ${tag}`);
  return `${head}${"x".repeat(pad)}"}`;
}

// ---- a keep-alive HTTP client --------------------------------------------------------

/** One HTTP answer, with the monotonic time (ms) it was fully received. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  readonly receivedMs: number;
}

/** A keep-alive HTTP/1.1 client for loopback: node:http with at most `sockets` connections per host. */
export class HttpClient {
  private readonly agent: Agent;

  constructor(sockets: number) {
    // `timeout` makes node's agent honour the server's Keep-Alive hint (it closes an idle socket a second
    // before the node would); without one it reuses sockets the node is closing, and those writes are reset.
    this.agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, timeout: 60_000 });
    onCleanup(() => this.agent.destroy());
  }

  /** Sends one request; rejects on a socket error or after `timeoutMs`. */
  send(method: string, url: string, body?: string, timeoutMs = 10_000): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const u = new URL(url);
      const headers: Record<string, string | number> = {};
      if (body !== undefined) {
        headers["content-type"] = "application/json";
        headers["content-length"] = Buffer.byteLength(body);
      }
      const req = httpRequest({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method, headers, agent: this.agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), receivedMs: performance.now() }));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  /** GET and parse JSON; throws on a non-2xx answer. */
  async json<T>(url: string): Promise<T> {
    const a = await this.get(url);
    if (a.status < 200 || a.status > 299) throw new Error(`GET ${url}: ${a.status} ${a.body.slice(0, 200)}`);
    return JSON.parse(a.body) as T;
  }

  /**
   * GET, retried once on a socket error: a keep-alive connection the server
   * closed as idle at the moment it was reused fails without the request
   * having been served, and a GET is safe to repeat.
   */
  async get(url: string): Promise<HttpAnswer> {
    try {
      return await this.send("GET", url);
    } catch {
      return this.send("GET", url);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

// ---- numbers ---------------------------------------------------------------------------

const METRIC_NUMBER = String.raw`([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)`;

/** The value of one series (name and labels exactly as exported) in a /metrics text; throws when it is not there. */
export function metricValue(body: string, series: string, url: string): number {
  const escaped = series.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const m = new RegExp(`^${escaped} ${METRIC_NUMBER}$`, "m").exec(body);
  if (!m) throw new Error(`${url}/metrics has no ${series}`);
  return Number(m[1]);
}

/** The p-th percentile (0..100) of `sorted` (ascending), nearest rank; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** "met" or "MISSED". */
export function verdict(met: boolean): string {
  return met ? "met" : "MISSED";
}

/** A deterministic PRNG (src/core/prng.ts): every run writes the same keys. */
export const prng = mulberry32;

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
