// Helpers of the failover benchmark (bench/failover.ts): a geokv region and a
// 3-member etcd cluster of child processes whose members can be SIGKILLed and
// restarted one by one (by pid), steady write loads that report every
// acknowledged write with who took it, the kill-measure-restart loop shared by
// both systems, and a reader of geokv's role-change log lines that splits a
// failover into detection, election and catch-up. Shared process plumbing
// (builds, cleanup, autocannon) stays in bench/support.ts.

import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { createClient, isGeokvError, type GeokvClient } from "../src/client/index.js";
import { makeTempCluster, type TempCluster } from "../test/support/cluster-files.js";
import { freePort, HttpClient, killChild, onCleanup, percentile, sleep, waitFor, type Build } from "./support.js";

// ---- acknowledged writes --------------------------------------------------------

/** One acknowledged write as the client saw it. */
export interface Ack {
  /** performance.now() when the answer was in the client's hands. */
  readonly atMs: number;
  /** Who took the write: geokv's token origin, etcd's answering member id. */
  readonly origin: string;
  /** etcd: the raft term in the answer's header; geokv: 0 (the origin says it all). */
  readonly term: number;
}

interface AckWaiter {
  readonly pred: (a: Ack) => boolean;
  readonly resolve: (a: Ack | null) => void;
}

/** Fan-out of acknowledged writes to whoever waits for one that matches. Keeps no history: bounded memory. */
export class AckStream {
  private readonly waiters = new Set<AckWaiter>();

  emit(a: Ack): void {
    for (const w of this.waiters) {
      if (w.pred(a)) {
        this.waiters.delete(w);
        w.resolve(a);
      }
    }
  }

  /** The first ack from now on that matches `pred`, or null after `timeoutMs`. Registers synchronously. */
  next(pred: (a: Ack) => boolean, timeoutMs: number): Promise<Ack | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        resolve(null);
      }, timeoutMs);
      const w: AckWaiter = {
        pred,
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
      };
      this.waiters.add(w);
    });
  }
}

/** Outcome counts of one kind of write. */
export interface WriteCounts {
  ok: number;
  failed: number;
  /** Failures by error code (and, for the first few, a message). */
  readonly codes: Map<string, number>;
  readonly samples: string[];
}

const FAILURE_SAMPLES_MAX = 5;

function newCounts(): WriteCounts {
  return { ok: 0, failed: 0, codes: new Map(), samples: [] };
}

function countFailure(c: WriteCounts, code: string, message: string): void {
  c.failed++;
  c.codes.set(code, (c.codes.get(code) ?? 0) + 1);
  if (c.samples.length < FAILURE_SAMPLES_MAX) c.samples.push(`${code}: ${message.slice(0, 300)}`);
}

/** "unavailable x3, no_leader x1" or "none". */
export function describeCodes(c: WriteCounts): string {
  if (c.failed === 0) return "none";
  return [...c.codes].map(([code, n]) => `${code} x${n}`).join(", ");
}

/** One attempt that did not succeed, as the client's transport saw it. */
export interface Refusal {
  readonly atMs: number;
  /** HTTP status, or 0 when no answer came (reset, refused, timed out). */
  readonly status: number;
  /** The Retry-After header, when the answer had one. */
  readonly retryAfter: string | null;
  /** The error message of a 503 answer. */
  readonly message?: string;
}

/** Bound on remembered refusals: the oldest go first. */
const REFUSALS_MAX = 50_000;

/** The client attempts that failed, newest last (bounded). */
export class RefusalLog {
  private readonly items: Refusal[] = [];

  add(r: Refusal): void {
    this.items.push(r);
    if (this.items.length > REFUSALS_MAX) this.items.splice(0, this.items.length - REFUSALS_MAX);
  }

  /** Refusals in [fromMs, toMs]. */
  between(fromMs: number, toMs: number): Refusal[] {
    return this.items.filter((r) => r.atMs >= fromMs && r.atMs <= toMs);
  }
}

/** A running write load: acks as they come, counts, and how to stop it. */
export interface WriteLoad {
  readonly acks: AckStream;
  /** Attempts that failed and were retried (or not): statuses and Retry-After. */
  readonly refusals: RefusalLog;
  readonly puts: WriteCounts;
  /** geokv only: counter increments (the exactly-once check). */
  readonly incrs: WriteCounts;
  /** Stops issuing writes and resolves when every loop has finished its call in flight. */
  stop(): Promise<void>;
}

/** The origin node of a geokv causal token "<origin>:<seq>". */
export function tokenOrigin(token: string | null): string {
  if (token === null) return "?";
  const at = token.lastIndexOf(":");
  return at > 0 ? token.slice(0, at) : "?";
}

/** Bound on one SDK call, retries included (the SDK's default). */
export const SDK_TIMEOUT_MS = 10_000;

/**
 * `loops` concurrent SDK loops, each with its own client configured with every
 * node URL: put a fresh key with ack=region, then increment `counterKey` by 1
 * with ack=region, until stopped. A call that throws after the SDK's retries
 * is a client-visible failure.
 */
export function startSdkLoad(urls: readonly string[], loops: number, counterKey: string): WriteLoad {
  const acks = new AckStream();
  const refusals = new RefusalLog();
  const puts = newCounts();
  const incrs = newCounts();
  let stopped = false;
  const clients: GeokvClient[] = [];
  // The SDK's own fetch, watched: every answer that is not a success is noted
  // with its Retry-After, so a slow failover can be traced to client backoff.
  const watched: typeof fetch = async (input, init) => {
    try {
      const res = await fetch(input, init);
      if (res.status >= 300) {
        const atMs = performance.now();
        let message: string | undefined;
        if (res.status === 503) {
          const text = await res.clone().text().catch(() => "");
          message = (/"message"\s*:\s*"([^"]*)"/.exec(text)?.[1] ?? text).slice(0, 200);
        }
        refusals.add({ atMs, status: res.status, retryAfter: res.headers.get("retry-after"), ...(message !== undefined ? { message } : {}) });
      }
      return res;
    } catch (err) {
      refusals.add({ atMs: performance.now(), status: 0, retryAfter: null });
      throw err;
    }
  };
  const one = async (loop: number) => {
    const client = createClient({ nodes: urls, timeoutMs: SDK_TIMEOUT_MS, fetch: watched });
    clients.push(client);
    for (let i = 0; !stopped; i++) {
      try {
        const r = await client.put(`fo-${loop}-${i}`, { loop, i }, { ack: "region" });
        puts.ok++;
        acks.emit({ atMs: performance.now(), origin: tokenOrigin(r.token), term: 0 });
      } catch (err) {
        if (!isGeokvError(err)) throw err;
        countFailure(puts, err.code, err.message);
      }
      if (stopped) break;
      try {
        await client.incr(counterKey, 1, { ack: "region" });
        incrs.ok++;
        // The client holds the token of its newest write: this increment's.
        acks.emit({ atMs: performance.now(), origin: tokenOrigin(client.causalToken()), term: 0 });
      } catch (err) {
        if (!isGeokvError(err)) throw err;
        countFailure(incrs, err.code, err.message);
      }
    }
  };
  const running = Array.from({ length: loops }, (_, i) => one(i));
  const stop = async () => {
    stopped = true;
    await Promise.all(running);
    for (const c of clients) c.close();
  };
  onCleanup(stop);
  return { acks, refusals, puts, incrs, stop };
}

// ---- geokv: one region of child processes -----------------------------------------

/** GET /status of a geokv node (the fields this bench reads). */
export interface GeokvStatus {
  readonly node: string;
  readonly role: "leader" | "follower" | "candidate";
  readonly leader: string | null;
  readonly epoch: number;
  readonly peers: readonly { node: string; state: "up" | "down"; lagOps?: number }[];
}

/** How long a node may take to answer /health after it is spawned. */
const NODE_START_TIMEOUT_MS = 30_000;
/** Followers further behind the leader than this are not "healthy" yet (catching up after a restart). */
const HEALTHY_LAG_OPS_MAX = 500;

/**
 * One geokv region of `nodes` nodes, each a child process of the private
 * build, with info-level logs (one line per role change) appended to
 * <temp>/logs/<node>.log across restarts.
 */
export class GeokvRegion {
  readonly nodes: readonly string[];
  readonly urls: Map<string, string>;
  private readonly children = new Map<string, ChildProcess>();
  private readonly http = new HttpClient(8);
  private readonly logsDir: string;

  private constructor(
    private readonly build: Build,
    private readonly files: TempCluster,
    private readonly args: readonly string[],
  ) {
    this.nodes = files.regions.values().next().value as string[];
    this.urls = files.urls;
    this.logsDir = join(files.root, "logs");
    mkdirSync(this.logsDir);
  }

  /** Writes the region file, starts every node and resolves when all answer /health. */
  static async start(build: Build, region: string, nodes: number, args: readonly string[]): Promise<GeokvRegion> {
    const files = await makeTempCluster([{ region, nodes }]);
    const r = new GeokvRegion(build, files, args);
    onCleanup(() => r.close());
    await Promise.all(r.nodes.map((n) => r.startNode(n)));
    return r;
  }

  logFile(node: string): string {
    return join(this.logsDir, `${node}.log`);
  }

  running(node: string): boolean {
    return this.children.has(node);
  }

  /** Spawns `node`; resolves when it answers /health. */
  async startNode(node: string): Promise<void> {
    if (this.children.has(node)) throw new Error(`${node} is already running`);
    const log = createWriteStream(this.logFile(node), { flags: "a" });
    const child = spawn(process.execPath, [this.build.main, "node", "--node", node, "--regions", this.files.regionsDir, "--data", this.files.dataDir, ...this.args], {
      env: { ...process.env, GEOKV_LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.children.set(node, child);
    child.once("exit", () => {
      if (this.children.get(node) === child) this.children.delete(node);
    });
    const url = this.urls.get(node) as string;
    await waitFor(`${node} /health`, async () => {
      if (child.exitCode !== null) throw new Error(`${node} exited with ${child.exitCode}; see ${this.logFile(node)}`);
      return (await this.http.send("GET", `${url}/health`, undefined, 1000)).status === 200;
    }, NODE_START_TIMEOUT_MS, 25);
  }

  /** SIGKILLs `node` by its pid; resolves when it has exited. */
  async kill(node: string): Promise<void> {
    const child = this.children.get(node);
    if (!child) throw new Error(`${node} is not running`);
    await killChild(child);
    this.children.delete(node);
  }

  /** GET /status of `node`; null when it does not answer. */
  async status(node: string): Promise<GeokvStatus | null> {
    if (!this.running(node)) return null;
    try {
      const a = await this.http.send("GET", `${this.urls.get(node)}/status`, undefined, 2000);
      return a.status === 200 ? (JSON.parse(a.body) as GeokvStatus) : null;
    } catch {
      return null;
    }
  }

  /** The one leader every running node agrees on (same leader, same epoch), or null. */
  async agreedLeader(): Promise<GeokvStatus | null> {
    const all = await Promise.all(this.nodes.filter((n) => this.running(n)).map((n) => this.status(n)));
    if (all.some((s) => s === null)) return null;
    const ss = all as GeokvStatus[];
    const leaders = ss.filter((s) => s.role === "leader");
    if (leaders.length !== 1) return null;
    const l = leaders[0] as GeokvStatus;
    return ss.every((s) => s.leader === l.node && s.epoch === l.epoch) ? l : null;
  }

  /** Every node runs, one agreed leader, every link up, every node /ready and followers close behind. */
  async healthy(): Promise<GeokvStatus | null> {
    if (!this.nodes.every((n) => this.running(n))) return null;
    const l = await this.agreedLeader();
    if (!l) return null;
    if (!l.peers.every((p) => p.state === "up" && (p.lagOps ?? 0) <= HEALTHY_LAG_OPS_MAX)) return null;
    for (const n of this.nodes) {
      const a = await this.http.send("GET", `${this.urls.get(n)}/ready`, undefined, 2000).catch(() => null);
      if (a?.status !== 200) return null;
    }
    return l;
  }

  /** geokv_elections_total, geokv_leader_changes_total and geokv_epoch of `node`. */
  async electionMetrics(node: string): Promise<{ elections: number; leaderChanges: number; epoch: number }> {
    const a = await this.http.get(`${this.urls.get(node)}/metrics`);
    const read = (name: string) => {
      const m = new RegExp(`^${name} (\\S+)$`, "m").exec(a.body);
      if (!m) throw new Error(`${node}/metrics has no ${name}`);
      return Number(m[1]);
    };
    return { elections: read("geokv_elections_total"), leaderChanges: read("geokv_leader_changes_total"), epoch: read("geokv_epoch") };
  }

  /** A counter's value as `node` has it. */
  async counter(node: string, key: string): Promise<number> {
    return (await this.http.json<{ value: number }>(`${this.urls.get(node)}/counters/${encodeURIComponent(key)}`)).value;
  }

  /**
   * Writes applied twice: ops of `ns`/`key` in `node`'s op log that carry the
   * same Idempotency-Key under different dots (origin:seq), with the origin's
   * wall clock (from the op's HLC). Read-only, beside the running node (WAL).
   */
  duplicateOps(node: string, ns: string, key: string): { idem: string; dots: { dot: string; wallMs: number }[] }[] {
    const db = new Database(join(this.files.dataDir, node, "geokv.db"), { readonly: true, fileMustExist: true });
    try {
      const rows = db
        .prepare("SELECT idem_key AS idem, origin, seq, hlc FROM ops WHERE ns = ? AND key = ? AND idem_key IN (SELECT idem_key FROM ops WHERE ns = ? AND key = ? AND idem_key IS NOT NULL GROUP BY idem_key HAVING count(*) > 1) ORDER BY idem_key, hlc")
        .all(ns, key, ns, key) as { idem: string; origin: string; seq: number; hlc: string }[];
      const out = new Map<string, { dot: string; wallMs: number }[]>();
      for (const r of rows) {
        const list = out.get(r.idem) ?? [];
        list.push({ dot: `${r.origin}:${r.seq}`, wallMs: Number(r.hlc.split("-")[0]) });
        out.set(r.idem, list);
      }
      return [...out].map(([idem, dots]) => ({ idem, dots }));
    } finally {
      db.close();
    }
  }

  /** Kills every node (by pid) and removes the temp folder. */
  async close(): Promise<void> {
    await Promise.all([...this.children.values()].map((c) => killChild(c)));
    this.children.clear();
    this.http.close();
    if (existsSync(this.files.root)) this.files.cleanup();
  }
}

/** One role-change line of a geokv node's log. */
export interface RoleLine {
  readonly node: string;
  /** Wall clock ms (pino's `time`). */
  readonly time: number;
  readonly role: string;
  readonly leader: string | null;
  readonly epoch: number;
  readonly reason: string;
}

/** The role-change lines of `node`'s log written at or after wall time `sinceMs`. */
export function roleLines(file: string, node: string, sinceMs: number): RoleLine[] {
  if (!existsSync(file)) return [];
  const out: RoleLine[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.includes('"role"')) continue;
    try {
      const o = JSON.parse(line) as { time?: number; role?: string; leader?: string | null; epoch?: number; reason?: string };
      if (typeof o.time !== "number" || typeof o.role !== "string" || o.time < sinceMs) continue;
      out.push({ node, time: o.time, role: o.role, leader: o.leader ?? null, epoch: o.epoch ?? 0, reason: o.reason ?? "" });
    } catch {
      // not a JSON log line (a crash trace): skip
    }
  }
  return out;
}

/** Where the time of one geokv failover went, in ms after the kill (from the survivors' logs). */
export interface FailoverPhases {
  /** First survivor suspects the leader (starts an election). */
  readonly detectMs: number | null;
  /** The new leader proclaims its epoch (COORDINATOR sent). */
  readonly proclaimMs: number | null;
  /** The new leader takes office: a majority accepted and it caught up. */
  readonly activeMs: number | null;
  /** Every survivor role line of the failover, for the slow cases. */
  readonly lines: readonly RoleLine[];
}

/** Splits a failover into phases from the survivors' role lines after wall time `killWallMs`. */
export function failoverPhases(region: GeokvRegion, survivors: readonly string[], newLeader: string, oldEpoch: number, killWallMs: number, untilWallMs: number): FailoverPhases {
  const lines = survivors
    .flatMap((n) => roleLines(region.logFile(n), n, killWallMs))
    .filter((l) => l.time <= untilWallMs)
    .sort((a, b) => a.time - b.time);
  const at = (l: RoleLine | undefined) => (l ? l.time - killWallMs : null);
  return {
    detectMs: at(lines.find((l) => l.role !== "follower" || l.leader === null)),
    proclaimMs: at(lines.find((l) => l.node === newLeader && l.role === "candidate" && l.epoch > oldEpoch)),
    activeMs: at(lines.find((l) => l.node === newLeader && l.role === "leader")),
    lines,
  };
}

// ---- etcd: a 3-member cluster of child processes -------------------------------------

/** `etcd` on the PATH, or undefined. */
export function etcdBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir !== "" && existsSync(join(dir, "etcd"))) return join(dir, "etcd");
  }
  return undefined;
}

interface EtcdMember {
  readonly name: string;
  readonly client: string;
  readonly peer: string;
  readonly dir: string;
  id: string | null;
}

/** POST /v3/maintenance/status through the JSON gateway (uint64s are decimal strings). */
interface EtcdStatus {
  readonly header?: { member_id?: string; raft_term?: string };
  readonly leader?: string;
  readonly raftTerm?: string;
  readonly version?: string;
}

/** A 3-member etcd cluster on loopback (temp data dirs, free ports) whose members can be killed and restarted. */
export class EtcdCluster {
  readonly members: EtcdMember[] = [];
  version = "";
  private readonly children = new Map<string, ChildProcess>();
  private readonly http = new HttpClient(8);
  private readonly root: string;
  private readonly initial: string;

  private constructor(
    private readonly bin: string,
    private readonly timing: { heartbeatMs: number; electionTimeoutMs: number },
    members: EtcdMember[],
    root: string,
  ) {
    this.members = members;
    this.root = root;
    this.initial = members.map((m) => `${m.name}=${m.peer}`).join(",");
  }

  /** Starts three members and resolves when every one is healthy and they agree on a leader. */
  static async start(bin: string, timing: { heartbeatMs: number; electionTimeoutMs: number }): Promise<EtcdCluster> {
    const root = mkdtempSync(join(tmpdir(), "geokv-bench-etcd-"));
    const members: EtcdMember[] = [];
    for (let i = 1; i <= 3; i++) {
      const name = `m${i}`;
      members.push({ name, client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}`, dir: join(root, name), id: null });
    }
    const c = new EtcdCluster(bin, timing, members, root);
    onCleanup(() => c.close());
    await Promise.all(members.map((m) => c.startMember(m.name, false)));
    await waitFor("etcd healthy", () => c.healthy(), 30_000, 100);
    return c;
  }

  logFile(name: string): string {
    return join(this.root, `${name}.log`);
  }

  running(name: string): boolean {
    return this.children.has(name);
  }

  /** Spawns member `name` (same data dir on a restart); with `wait`, resolves when it answers /health. */
  async startMember(name: string, wait = true): Promise<void> {
    const m = this.member(name);
    if (this.children.has(name)) throw new Error(`etcd ${name} is already running`);
    const log = createWriteStream(this.logFile(name), { flags: "a" });
    // prettier-ignore
    const child = spawn(this.bin, [
      "--name", m.name,
      "--data-dir", m.dir,
      "--listen-client-urls", m.client,
      "--advertise-client-urls", m.client,
      "--listen-peer-urls", m.peer,
      "--initial-advertise-peer-urls", m.peer,
      "--initial-cluster", this.initial,
      "--initial-cluster-state", "new",
      "--initial-cluster-token", "geokv-bench-failover",
      "--heartbeat-interval", String(this.timing.heartbeatMs),
      "--election-timeout", String(this.timing.electionTimeoutMs),
      "--logger", "zap",
      "--log-level", "info",
    ], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.children.set(name, child);
    child.once("exit", () => {
      if (this.children.get(name) === child) this.children.delete(name);
    });
    if (!wait) return;
    await waitFor(`etcd ${name} /health`, async () => {
      if (child.exitCode !== null) throw new Error(`etcd ${name} exited with ${child.exitCode}; see ${this.logFile(name)}`);
      return (await this.status(name)) !== null;
    }, NODE_START_TIMEOUT_MS, 25);
  }

  /** SIGKILLs member `name` by its pid; resolves when it has exited. */
  async kill(name: string): Promise<void> {
    const child = this.children.get(name);
    if (!child) throw new Error(`etcd ${name} is not running`);
    await killChild(child);
    this.children.delete(name);
  }

  /** The member's status (and learns its member id); null when it does not answer. */
  async status(name: string): Promise<EtcdStatus | null> {
    if (!this.running(name)) return null;
    const m = this.member(name);
    try {
      const a = await this.http.send("POST", `${m.client}/v3/maintenance/status`, "{}", 2000);
      if (a.status !== 200) return null;
      const s = JSON.parse(a.body) as EtcdStatus;
      if (s.header?.member_id) m.id = s.header.member_id;
      if (s.version) this.version = s.version;
      return s;
    } catch {
      return null;
    }
  }

  /** The leader every running member names, with its raft term; null when they disagree or none is known. */
  async agreedLeader(): Promise<{ name: string; term: number } | null> {
    const running = this.members.filter((m) => this.running(m.name));
    const all = await Promise.all(running.map((m) => this.status(m.name)));
    if (all.some((s) => s === null || !s.leader || s.leader === "0")) return null;
    const ss = all as EtcdStatus[];
    const leaderId = ss[0]?.leader;
    if (!ss.every((s) => s.leader === leaderId)) return null;
    const leader = this.members.find((m) => m.id === leaderId && this.running(m.name));
    if (!leader) return null;
    const ls = ss[running.indexOf(leader)];
    return { name: leader.name, term: Number(ls?.raftTerm ?? ls?.header?.raft_term ?? 0) };
  }

  /** Every member runs and answers GET /health with health "true", and they agree on a leader. */
  async healthy(): Promise<{ name: string; term: number } | null> {
    if (!this.members.every((m) => this.running(m.name))) return null;
    for (const m of this.members) {
      const a = await this.http.send("GET", `${m.client}/health`, undefined, 2000).catch(() => null);
      if (a?.status !== 200 || (JSON.parse(a.body) as { health?: string }).health !== "true") return null;
    }
    return this.agreedLeader();
  }

  /** Kills every member (by pid) and removes the temp folder. */
  async close(): Promise<void> {
    await Promise.all([...this.children.values()].map((c) => killChild(c)));
    this.children.clear();
    this.http.close();
    rmSync(this.root, { recursive: true, force: true });
  }

  private member(name: string): EtcdMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no etcd member ${name}`);
    return m;
  }
}

/** Where the time of one etcd failover went, in ms after the kill (from the survivors' raft log lines). */
export interface EtcdPhases {
  /** First survivor starts an election ("is starting a new election"). */
  readonly detectMs: number | null;
  /** A survivor "became leader". */
  readonly electedMs: number | null;
}

/** Splits an etcd failover into detection and election from the survivors' zap logs after wall time `killWallMs`. */
export function etcdPhases(cluster: EtcdCluster, survivors: readonly string[], killWallMs: number, untilWallMs: number): EtcdPhases {
  const lines: { time: number; msg: string }[] = [];
  for (const name of survivors) {
    const file = cluster.logFile(name);
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (!line.includes("raft")) continue;
      try {
        const o = JSON.parse(line) as { ts?: string; msg?: string };
        const time = o.ts ? Date.parse(o.ts) : Number.NaN;
        if (Number.isFinite(time) && time >= killWallMs && time <= untilWallMs && o.msg) lines.push({ time, msg: o.msg });
      } catch {
        // not a JSON line
      }
    }
  }
  lines.sort((a, b) => a.time - b.time);
  const at = (re: RegExp) => {
    const l = lines.find((x) => re.test(x.msg));
    return l ? l.time - killWallMs : null;
  };
  return { detectMs: at(/is starting a new election/), electedMs: at(/became leader at term/) };
}

/** The SDK's backoff (full jitter, 50 ms doubling to a 1 s cap), so both systems' clients retry alike. */
function jitterMs(attempt: number): number {
  return Math.floor(Math.random() * Math.min(1000, 50 * 2 ** Math.min(attempt, 20)));
}

/**
 * `loops` concurrent put loops against etcd's JSON gateway. Each client knows
 * every member, sticks with the last one that answered, and on an error (no
 * answer within `attemptMs`, or a non-200) moves on to the next member after
 * the SDK's backoff, within the SDK's 10 s deadline per put; a put that
 * misses it is a client-visible failure.
 */
export function startEtcdLoad(cluster: EtcdCluster, loops: number, attemptMs: number): WriteLoad {
  const acks = new AckStream();
  const refusals = new RefusalLog();
  const puts = newCounts();
  const http = new HttpClient(loops * cluster.members.length);
  const endpoints = cluster.members.map((m) => m.client);
  let stopped = false;
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const one = async (loop: number) => {
    let at = loop % endpoints.length;
    for (let i = 0; !stopped; i++) {
      const body = JSON.stringify({ key: b64(`fo-${loop}-${i}`), value: b64(JSON.stringify({ loop, i })) });
      const deadline = performance.now() + SDK_TIMEOUT_MS;
      let last = "";
      let done = false;
      for (let attempt = 0; attempt < 200 && !done; attempt++) {
        const left = deadline - performance.now();
        if (left <= 20) break;
        try {
          const a = await http.send("POST", `${endpoints[at]}/v3/kv/put`, body, Math.min(attemptMs, left));
          if (a.status === 200) {
            const h = (JSON.parse(a.body) as { header?: { member_id?: string; raft_term?: string } }).header;
            puts.ok++;
            acks.emit({ atMs: a.receivedMs, origin: h?.member_id ?? "?", term: Number(h?.raft_term ?? 0) });
            done = true;
            break;
          }
          last = `${a.status} ${a.body.slice(0, 200)}`;
          refusals.add({ atMs: a.receivedMs, status: a.status, retryAfter: null });
        } catch (err) {
          last = (err as Error).message;
          refusals.add({ atMs: performance.now(), status: 0, retryAfter: null });
        }
        at = (at + 1) % endpoints.length;
        await sleep(Math.min(jitterMs(attempt), Math.max(0, deadline - performance.now() - 20)));
      }
      if (!done) countFailure(puts, "unavailable", last);
    }
  };
  const running = Array.from({ length: loops }, (_, i) => one(i));
  const stop = async () => {
    stopped = true;
    await Promise.all(running);
    http.close();
  };
  onCleanup(stop);
  return { acks, refusals, puts, incrs: newCounts(), stop };
}

// ---- the kill loop ------------------------------------------------------------------------

/** What the kill loop needs of a system under test. */
export interface KillTarget {
  /** Resolves with the leader once the system is healthy (all members up, one agreed leader). */
  healthyLeader(): Promise<{ name: string; term: number } | null>;
  kill(name: string): Promise<void>;
  restart(name: string): Promise<void>;
  /** True for an ack that only a new leader (not `killed`) can have produced. */
  fromNewLeader(a: Ack, killed: { name: string; term: number }): boolean;
  /** Optional: what the survivors hold once the new leader took a write, before the killed member returns. */
  survivorsView?(killed: string): Promise<Record<string, number>>;
}

/** One kill: who died, when, and how long writes were unavailable. */
export interface KillResult {
  readonly killed: string;
  readonly term: number;
  /** Wall clock ms of the kill (to line up with logs). */
  readonly killWallMs: number;
  /** performance.now() of the kill (to line up with client events). */
  readonly t0Ms: number;
  /** Kill to the first ack from a new leader; null when none came within the bound. */
  readonly windowMs: number | null;
  readonly newOrigin: string | null;
  /** KillTarget.survivorsView's answer, taken before the restart. */
  readonly survivors: Record<string, number>;
}

/** No ack from a new leader this long after a kill counts as a failed failover. */
export const WINDOW_BOUND_MS = 20_000;
/** Bound on a restarted system becoming healthy again. */
const HEALTHY_TIMEOUT_MS = 60_000;
/** Steady load before each kill: acks from the current leader over at least this long. */
const STEADY_MS = 500;
/** Bound on kills skipped because leadership moved by itself before the kill. */
const SKIPS_MAX = 10;

/**
 * `kills` times: wait until healthy under load, SIGKILL the leader, time the
 * first write acknowledged by a new leader, restart the killed member.
 * `after` runs once the killed member is back (log analysis); bounded waits only.
 */
export async function killLoop(
  target: KillTarget,
  load: WriteLoad,
  kills: number,
  label: string,
  after: (r: KillResult, leaderBefore: { name: string; term: number }) => Promise<void> | void = () => undefined,
): Promise<KillResult[]> {
  const results: KillResult[] = [];
  let skips = 0;
  for (let k = 0; k < kills; k++) {
    const leader = await waitFor(`${label}: healthy before kill ${k + 1}`, () => target.healthyLeader(), HEALTHY_TIMEOUT_MS, 50);
    // Writes flow through this leader before it dies.
    const steadyFrom = performance.now();
    const flowing = await load.acks.next((a) => a.atMs >= steadyFrom + STEADY_MS, STEADY_MS + 10_000);
    if (!flowing) throw new Error(`${label}: no write acknowledged for 10 s before kill ${k + 1}`);
    const again = await target.healthyLeader();
    if (!again || again.name !== leader.name) {
      // Leadership moved on its own meanwhile: measure from a settled region.
      if (++skips > SKIPS_MAX) throw new Error(`${label}: the region kept falling out of health without a kill (${skips} times)`);
      console.log(`${label}: before kill ${k + 1} the region fell out of health (leader was ${leader.name}, now ${again?.name ?? "not agreed, or a follower lags or is not ready"}); settling again`);
      k--;
      continue;
    }
    const killed = { name: leader.name, term: again.term };
    const t0 = performance.now();
    const killWallMs = Date.now();
    const first = load.acks.next((a) => a.atMs >= t0 && target.fromNewLeader(a, killed), WINDOW_BOUND_MS);
    await target.kill(leader.name);
    const ack = await first;
    const survivors = target.survivorsView ? await target.survivorsView(leader.name) : {};
    const r: KillResult = { killed: leader.name, term: killed.term, killWallMs, t0Ms: t0, windowMs: ack ? ack.atMs - t0 : null, newOrigin: ack?.origin ?? null, survivors };
    console.log(`${label}: kill ${k + 1}/${kills} of ${leader.name}: ${r.windowMs === null ? `no write from a new leader within ${WINDOW_BOUND_MS} ms` : `${r.windowMs.toFixed(0)} ms`} (new: ${r.newOrigin ?? "none"})`);
    results.push(r);
    await target.restart(leader.name);
    await after(r, killed);
  }
  return results;
}

/** min / median / p90 / max of the windows (ms); a missing window counts as infinite. */
export function windowStats(rs: readonly KillResult[]): { min: number; median: number; p90: number; max: number; missing: number } {
  const ws = rs.map((r) => r.windowMs ?? Number.POSITIVE_INFINITY).sort((a, b) => a - b);
  return {
    min: ws[0] ?? Number.NaN,
    median: percentile(ws, 50),
    p90: percentile(ws, 90),
    max: ws[ws.length - 1] ?? Number.NaN,
    missing: rs.filter((r) => r.windowMs === null).length,
  };
}
