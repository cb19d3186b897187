// Test support: a geokv cluster whose nodes are real `geokv node` processes,
// one per Linux network namespace, so that partitions are made by the kernel
// (iptables DROP rules) instead of by the nodes' own /admin/faults.
//
// Layout, all of it inside namespaces this harness creates (the root
// namespace gets no link, bridge, address or route):
//
//   <p>-sw      the "switch": one bridge, br0, and the switch ends of the veths
//   <p>-<node>  one per node: lo, one veth to the switch, 10.77.0.<n>/24;
//               the node listens on http://10.77.0.<n>:7100 (its region-file
//               URL; a node listens on its URL's host by default)
//   <p>-cl      the client: a veth to the switch, 10.77.0.250, and the relay
//
// The test process cannot enter a namespace, so its HTTP calls go through a
// relay (netns-relay.mjs) that runs in the client namespace and listens on one
// unix socket per node in the run's temp folder; a unix socket is a file, so
// the test reaches it from the root namespace, and the relay pipes the bytes to
// the node. Partitions drop packets in the receiving node's INPUT chain; the
// client's address is never dropped, so the test sees every node even when the
// nodes do not see each other.
//
// <p> is "gk" + the test process's pid (5 base-36 digits) + a per-process
// cluster number, so parallel runs never collide and every name stays within
// the 15 characters of an interface name. Teardown (kill the processes this
// harness started, by pid, then delete its namespaces, which takes their
// veths with them) runs from close(), from process "exit", and from SIGINT and
// SIGTERM; a run killed with SIGKILL is swept by the next run, which removes
// namespaces whose prefix names a pid that is no longer alive.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { waitFor } from "./cluster-files.js";

const MAIN = resolve("dist/cli/main.js");
const RELAY = resolve("test/support/netns-relay.mjs");
const NODE_PORT = 7100;
const SUBNET = "10.77.0";
const CLIENT_HOST = 250;
/** One HTTP call through the relay; a stopped node answers nothing, and that is an outcome. */
const CALL_TIMEOUT_MS = 5000;
const START_TIMEOUT_MS = 30_000;
const PREFIX_PATTERN = /^gk([0-9a-z]{5})[0-9a-z](-|$)/;

/** A region of `nodes` nodes; ids are "<region>-<i>", the first ranked highest. */
export interface NetnsRegionSpec {
  readonly region: string;
  readonly nodes: number;
}

/**
 * An answer through the relay: status and body. The body is bytes (a Buffer)
 * when the node answered application/octet-stream (GET /docs), else parsed
 * JSON, or the text when it is not JSON (/metrics); any: tests read fields of
 * many shapes.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NetnsAnswer = { status: number; body: any; headers: Record<string, string | string[] | undefined> };

/** Which packets a cut drops: both ways, or only those from `from` to `to`. */
export type CutDirection = "both" | "one-way";

export interface NetnsCluster {
  /** The run's name prefix: every namespace of the run starts with it. */
  readonly prefix: string;
  readonly root: string;
  /** Node ids per region, highest priority first. */
  readonly regions: Map<string, string[]>;
  readonly nodes: readonly string[];
  /** Node id -> its address inside its namespace. */
  readonly ips: Map<string, string>;
  /** Starts (or restarts) a node in its namespace; resolves when /health answers. */
  start(node: string): Promise<void>;
  /** Sends `signal` (default SIGKILL) to a node this harness started and waits for its exit. */
  stop(node: string, signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP: the process keeps its sockets but runs nothing. */
  pause(node: string): void;
  /** SIGCONT after pause. */
  resume(node: string): void;
  running(node: string): boolean;
  /** Pids of every process this harness runs now (nodes and relay). */
  pids(): number[];
  /** Drops packets from every node of `from` to every node of `to` (and back, for "both"). */
  cut(from: readonly string[], to: readonly string[], direction?: CutDirection): void;
  /** Removes every DROP rule: all links heal. */
  heal(): void;
  /**
   * One HTTP call to a node through the client namespace; rejects after
   * `timeoutMs` (default 5 s) without an answer. A Uint8Array body (a Yjs
   * update) is sent as is, application/octet-stream; any other body as JSON.
   */
  call(node: string, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<NetnsAnswer>;
  /** Stops every process and deletes every namespace and the temp folder. */
  close(): Promise<void>;
}

export interface NetnsOptions {
  readonly env?: Record<string, string>;
}

interface Run {
  readonly namespaces: string[];
  readonly children: Set<ChildProcess>;
  root: string;
}

/** Every run of this process that is not torn down yet, for the exit and signal handlers. */
const liveRuns = new Set<Run>();
let clusterCount = 0;
let handlersInstalled = false;

function ip(args: readonly string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function inNs(ns: string, args: readonly string[]): void {
  execFileSync("ip", ["netns", "exec", ns, ...args], { stdio: ["ignore", "pipe", "pipe"] });
}

/** Namespace names on this machine (`ip netns list` prints "name (id: n)"). */
export function listNamespaces(): string[] {
  return ip(["netns", "list"]).split("\n").map((l) => l.split(" ")[0] ?? "").filter((n) => n !== "");
}

/** Link names in the root namespace. */
export function rootLinks(): string[] {
  return ip(["-o", "link", "show"]).split("\n").map((l) => l.split(": ")[1]?.split("@")[0] ?? "").filter((n) => n !== "");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Synchronous teardown, safe to run twice and from an exit handler: SIGKILL by pid, delete namespaces, remove files. */
function teardownSync(run: Run): void {
  for (const child of run.children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  for (const ns of run.namespaces) {
    try {
      ip(["netns", "del", ns]);
    } catch {
      // never created, or already deleted
    }
  }
  run.namespaces.length = 0;
  if (run.root !== "") rmSync(run.root, { recursive: true, force: true });
  run.root = "";
  liveRuns.delete(run);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => {
    for (const run of [...liveRuns]) teardownSync(run);
  });
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.on(signal, () => {
      for (const run of [...liveRuns]) teardownSync(run);
      process.exit(code);
    });
  }
}

/** Removes namespaces left by runs whose process died without cleaning up (SIGKILL). */
function sweepDeadRuns(): void {
  for (const ns of listNamespaces()) {
    const m = PREFIX_PATTERN.exec(ns);
    if (m === null || alive(parseInt(m[1] as string, 36))) continue;
    try {
      // Only processes inside that run's own namespaces, which only this harness creates.
      for (const pid of ip(["netns", "pids", ns]).split("\n").filter((s) => s !== "")) {
        if (alive(Number(pid))) process.kill(Number(pid), "SIGKILL");
      }
      ip(["netns", "del", ns]);
    } catch {
      // another run is sweeping it at the same moment, or a process is already gone
    }
  }
}

/** Creates the namespaces, the bridge, the region files and the relay, and starts every node. */
export async function startNetnsCluster(specs: readonly NetnsRegionSpec[], o: NetnsOptions = {}): Promise<NetnsCluster> {
  installHandlers();
  sweepDeadRuns();
  clusterCount += 1;
  const prefix = `gk${process.pid.toString(36).padStart(5, "0")}${(clusterCount % 36).toString(36)}`;
  const run: Run = { namespaces: [], children: new Set(), root: mkdtempSync(join(tmpdir(), "geokv-netns-")) };
  liveRuns.add(run);
  const root = run.root;
  try {
    return await build(prefix, run, root, specs, o);
  } catch (err) {
    teardownSync(run);
    throw err;
  }
}

async function build(prefix: string, run: Run, root: string, specs: readonly NetnsRegionSpec[], o: NetnsOptions): Promise<NetnsCluster> {
  const regionsDir = join(root, "regions");
  const dataDir = join(root, "data");
  const relayDir = join(root, "relay");
  const logsDir = join(root, "logs");
  for (const d of [regionsDir, dataDir, relayDir, logsDir]) mkdirSync(d);

  const sw = `${prefix}-sw`;
  ip(["netns", "add", sw]);
  run.namespaces.push(sw);
  inNs(sw, ["ip", "link", "add", "br0", "type", "bridge"]);
  inNs(sw, ["ip", "link", "set", "br0", "up"]);
  let links = 0;
  /** A namespace with lo up and one veth to the bridge carrying `addr`. */
  const attach = (ns: string, addr: string) => {
    links += 1;
    const inner = `${prefix}n${links}`;
    const outer = `${prefix}s${links}`;
    ip(["netns", "add", ns]);
    run.namespaces.push(ns);
    // Both ends are created directly in their namespaces: nothing passes through the root one.
    ip(["link", "add", inner, "netns", ns, "type", "veth", "peer", "name", outer, "netns", sw]);
    inNs(ns, ["ip", "link", "set", "lo", "up"]);
    inNs(ns, ["ip", "addr", "add", `${addr}/24`, "dev", inner]);
    inNs(ns, ["ip", "link", "set", inner, "up"]);
    inNs(sw, ["ip", "link", "set", outer, "master", "br0"]);
    inNs(sw, ["ip", "link", "set", outer, "up"]);
  };

  const regions = new Map<string, string[]>();
  const ips = new Map<string, string>();
  const nsOf = new Map<string, string>();
  let host = 0;
  for (const spec of specs) {
    const nodes = [];
    for (let i = 1; i <= spec.nodes; i++) {
      const id = `${spec.region}-${i}`;
      host += 1;
      const addr = `${SUBNET}.${host}`;
      ips.set(id, addr);
      nsOf.set(id, `${prefix}-${host}`);
      attach(`${prefix}-${host}`, addr);
      nodes.push({ id, url: `http://${addr}:${NODE_PORT}`, priority: spec.nodes - i + 1 });
    }
    regions.set(spec.region, nodes.map((n) => n.id));
    writeFileSync(join(regionsDir, `${spec.region}.json`), JSON.stringify({ region: spec.region, failover: "auto", preempt: false, nodes }, null, 2));
  }
  const allNodes = [...ips.keys()];
  const clientNs = `${prefix}-cl`;
  attach(clientNs, `${SUBNET}.${CLIENT_HOST}`);

  const spawnIn = (ns: string, args: readonly string[], env: NodeJS.ProcessEnv, log: string): ChildProcess => {
    // `ip netns exec` enters the namespace and execs the command: the child's pid is node's.
    const child = spawn("ip", ["netns", "exec", ns, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
    const out = createWriteStream(log, { flags: "a" });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    run.children.add(child);
    child.once("exit", () => run.children.delete(child));
    return child;
  };

  const relay = spawnIn(clientNs, [process.execPath, RELAY, relayDir, ...allNodes.map((n) => `${n}=${ips.get(n)}:${NODE_PORT}`)], process.env, join(logsDir, "relay.log"));
  await new Promise<void>((ok, fail) => {
    relay.stdout?.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) ok();
    });
    relay.once("exit", (code) => fail(new Error(`netns relay exited with ${code}; see ${join(logsDir, "relay.log")}`)));
  });

  const call = (node: string, method: string, path: string, body?: unknown, timeoutMs = CALL_TIMEOUT_MS): Promise<NetnsAnswer> =>
    new Promise((ok, fail) => {
      const binary = body instanceof Uint8Array;
      const payload = body === undefined ? undefined : binary ? body : JSON.stringify(body);
      const headers: Record<string, string> = { host: `${ips.get(node)}:${NODE_PORT}` };
      if (payload !== undefined) headers["content-type"] = binary ? "application/octet-stream" : "application/json";
      const req = request({ socketPath: join(relayDir, `${node}.sock`), method, path, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", fail);
        res.on("end", () => {
          const bytes = Buffer.concat(chunks);
          if (res.headers["content-type"]?.startsWith("application/octet-stream") === true) {
            ok({ status: res.statusCode ?? 0, body: bytes, headers: res.headers });
            return;
          }
          const text = bytes.toString();
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON (/metrics): keep the text
          }
          ok({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
        });
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${path} to ${node}: no answer in ${timeoutMs} ms`)));
      req.on("error", fail);
      req.end(payload);
    });

  const procs = new Map<string, ChildProcess>();
  const start = async (node: string) => {
    if (procs.has(node)) throw new Error(`${node} is already running`);
    const env = { ...process.env, GEOKV_LOG_LEVEL: "info", ...o.env };
    const child = spawnIn(nsOf.get(node) as string, [process.execPath, MAIN, "node", "--node", node, "--regions", regionsDir, "--data", dataDir], env, join(logsDir, `${node}.log`));
    procs.set(node, child);
    child.once("exit", () => {
      if (procs.get(node) === child) procs.delete(node);
    });
    await waitFor(`${node} /health`, async () => {
      if (child.exitCode !== null) throw new Error(`${node} exited with ${child.exitCode}; see ${join(logsDir, `${node}.log`)}`);
      return (await call(node, "GET", "/health")).status === 200;
    }, START_TIMEOUT_MS, 50);
  };

  const signal = (node: string, sig: NodeJS.Signals) => {
    const pid = procs.get(node)?.pid;
    if (pid === undefined) throw new Error(`${node} is not running`);
    process.kill(pid, sig);
  };

  const stop = async (node: string, sig: NodeJS.Signals = "SIGKILL") => {
    const child = procs.get(node);
    if (child === undefined) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    signal(node, sig);
    await exited;
  };

  const cut = (from: readonly string[], to: readonly string[], direction: CutDirection = "both") => {
    const drop = (src: readonly string[], dst: readonly string[]) => {
      const sources = src.map((n) => ips.get(n) as string).join(",");
      for (const n of dst) inNs(nsOf.get(n) as string, ["iptables", "-A", "INPUT", "-s", sources, "-j", "DROP"]);
    };
    drop(from, to);
    if (direction === "both") drop(to, from);
  };

  const heal = () => {
    for (const n of allNodes) inNs(nsOf.get(n) as string, ["iptables", "-F", "INPUT"]);
  };

  const close = async () => {
    const exits = [...run.children].map((c) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once("exit", () => r()))));
    for (const c of run.children) if (c.pid !== undefined) process.kill(c.pid, "SIGKILL");
    await Promise.all(exits);
    teardownSync(run);
  };

  const started = await Promise.allSettled(allNodes.map((n) => start(n)));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;

  return {
    prefix,
    root,
    regions,
    nodes: allNodes,
    ips,
    start,
    stop,
    pause: (n) => signal(n, "SIGSTOP"),
    resume: (n) => signal(n, "SIGCONT"),
    running: (n) => procs.has(n),
    pids: () => [...run.children].map((c) => c.pid).filter((p): p is number => p !== undefined),
    cut,
    heal,
    call,
    close,
  };
}

/** What a closed run may have left behind: namespaces with its prefix, root links with it, live pids. */
export function leftovers(prefix: string, pids: readonly number[]): string[] {
  return [
    ...listNamespaces().filter((n) => n.startsWith(prefix)).map((n) => `namespace ${n}`),
    ...rootLinks().filter((l) => l.startsWith(prefix)).map((l) => `link ${l}`),
    ...pids.filter(alive).map((p) => `process ${p}`),
  ];
}
