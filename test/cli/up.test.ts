// `geokv up` (what `npm start` runs) as a user runs it: the built CLI in a
// temp working directory on a temp cluster of free loopback ports. What it
// prints (the table, the dashboard URL, the leaders line, a line for a
// stepdown, a partition and its heal, no raw JSON), where the logs go
// (.geokv/logs/<node>.log of the working directory), --verbose, and that no
// node outlives it: SIGINT, SIGTERM and SIGHUP stop every child, and a
// SIGKILLed `geokv up` takes its children with it (their parent-death check),
// and a signal to `npm start` alone reaches `geokv up` (the script execs it).
// Small clusters (3 or 4 single-core-friendly nodes), so the machine's other
// work is not starved.

import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeTempCluster, waitFor, type TempCluster, type TempRegionSpec } from "../support/cluster-files.js";
import { childPidsOf, healthy, killChildren, pidAlive, sendJson, spawnGeokv, waitExit, type GeokvProcess } from "../process/helpers.js";

/** Start-up of every node on a loaded two-core machine. */
const START_MS = 90_000;
/** A role change or link change shows in the output within this (poll 250 ms, failure detection ~1 s, slow machine). */
const EVENT_MS = 30_000;
/** The parent-death check stops a node well within this. */
const ORPHAN_EXIT_MS = 10_000;

const clusters: TempCluster[] = [];
/** Grandchildren (the nodes) of every `geokv up` started here, so none outlives a failed test. */
const nodePids: number[] = [];

afterEach(async () => {
  await killChildren();
  // Normally already gone (the up stopped them, or their parent-death check
  // did when killChildren SIGKILLed it): only a failure leaves one behind.
  for (const pid of nodePids.splice(0)) if (running(pid)) process.kill(pid, "SIGKILL");
  for (const c of clusters.splice(0)) c.cleanup();
});

/** Alive and not a zombie: an orphan's exit is reaped by whoever adopts it, perhaps late. */
function running(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

interface Up {
  readonly cluster: TempCluster;
  readonly up: GeokvProcess;
  readonly nodes: number[];
}

/** Runs `geokv up` in the cluster's temp folder (so .geokv/ lands there) and waits until every node answers. */
async function startUp(specs: readonly TempRegionSpec[], args: readonly string[] = []): Promise<Up> {
  const cluster = await makeTempCluster(specs);
  clusters.push(cluster);
  // GEOKV_LOG_LEVEL: the helpers silence node logs by default; these tests read them.
  const up = spawnGeokv(["up", "--regions", cluster.regionsDir, ...args], { GEOKV_LOG_LEVEL: "info" }, cluster.root);
  await waitFor(
    "every node to answer /health",
    async () => {
      if (up.hasExited()) throw new Error(`geokv up exited: ${up.stdout()}${up.stderr()}`);
      const all = await Promise.all([...cluster.urls.values()].map((u) => healthy(u)));
      return all.every(Boolean);
    },
    START_MS,
    100,
  );
  const nodes = childPidsOf(up.pid);
  nodePids.push(...nodes);
  expect(nodes, "one child process per node").toHaveLength(cluster.urls.size);
  return { cluster, up, nodes };
}

/** Waits until `up` has printed a line matching `re` after character `from`; returns where that line ends. */
async function printed(up: GeokvProcess, re: RegExp, from = 0, timeoutMs = EVENT_MS): Promise<number> {
  return waitFor(
    `geokv up to print ${re}`,
    () => {
      if (up.hasExited()) throw new Error(`geokv up exited: ${up.stdout()}${up.stderr()}`);
      const rest = up.stdout().slice(from);
      const m = re.exec(rest);
      if (!m) return 0;
      const eol = rest.indexOf("\n", m.index);
      return from + (eol < 0 ? rest.length : eol + 1);
    },
    timeoutMs,
    50,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n--- stdout so far:\n${up.stdout()}`);
  });
}

async function eastLeader(c: TempCluster): Promise<string> {
  return waitFor("a leader of east", async () => {
    for (const n of c.regions.get("east") ?? []) {
      const s = await fetch(`${c.urls.get(n)}/status`, { signal: AbortSignal.timeout(2000) }).then((r) => r.json() as Promise<{ role: string }>);
      if (s.role === "leader") return n;
    }
    return null;
  }, EVENT_MS);
}

/** Expects the nodes gone: exited, not merely signalled. */
async function expectAllGone(pids: readonly number[], timeoutMs: number): Promise<void> {
  await waitFor(`nodes ${pids.join(", ")} to exit`, () => pids.every((p) => !running(p)), timeoutMs, 50);
}

describe("geokv up: what it prints and where the logs go", () => {
  it("table, dashboard URL, leaders line, a stepdown, a partition and its heal; logs in .geokv/logs; SIGINT stops every node", async () => {
    const { cluster: c, up, nodes } = await startUp([
      { region: "east", nodes: 2 },
      { region: "south", nodes: 1 },
      { region: "west", nodes: 1 },
    ]);
    for (const [id, u] of c.urls) expect(up.stdout(), id).toMatch(new RegExp(`${id}\\s+${u.replace(/\./g, "\\.")}\\s+\\.geokv/logs/${id}\\.log`));
    // Regions in file-name order: east's first node is the first node.
    expect(up.stdout()).toContain(`Dashboard: ${c.urls.get("east-1")}/\n`);

    let at = await printed(up, /^\d\d:\d\d:\d\d 3 leaders in \d+\.\d s: east east-\d \(epoch \d+\), south south-1 \(epoch \d+\), west west-1 \(epoch \d+\)$/m, 0, START_MS);

    const leader = await eastLeader(c);
    const res = await sendJson("POST", `${c.urls.get(leader)}/leadership/stepdown`, {});
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    at = await printed(up, new RegExp(`^\\d\\d:\\d\\d:\\d\\d ${leader} stepped down as leader of east`, "m"), at);
    await printed(up, /^\d\d:\d\d:\d\d east-\d is now leader of east \(epoch \d+\): \S/m, at);

    const west = c.urls.get("west-1") as string;
    expect((await sendJson("POST", `${west}/admin/faults`, { block: ["east", "south"] })).status).toBe(200);
    at = await printed(up, /^\d\d:\d\d:\d\d west cut off from east, south$/m, at);
    expect((await sendJson("POST", `${west}/admin/faults`, { clear: true })).status).toBe(200);
    at = await printed(up, /^\d\d:\d\d:\d\d links healed$/m, at);

    // The logs went to the files, not to the terminal.
    expect(up.stdout()).not.toContain('"level"');
    for (const id of c.urls.keys()) {
      const log = join(c.root, ".geokv", "logs", `${id}.log`);
      expect(existsSync(log), log).toBe(true);
      expect(readFileSync(log, "utf8"), log).toContain('"msg":"node serving"');
    }

    up.proc.kill("SIGINT");
    const exit = await waitExit(up, 30_000);
    expect(exit.code, up.stderr()).toBe(0);
    expect(up.stdout()).toMatch(/SIGINT: stopping 4 nodes\n.*every node stopped\n$/);
    await expectAllGone(nodes, 1_000);
  });
});

describe("geokv up: no node outlives it", () => {
  const three: TempRegionSpec[] = [
    { region: "a", nodes: 1 },
    { region: "b", nodes: 1 },
    { region: "c", nodes: 1 },
  ];

  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    it(`${signal} stops every node, then geokv up exits 0${signal === "SIGTERM" ? " (with --verbose: the logs pretty-printed)" : ""}`, async () => {
      const verbose = signal === "SIGTERM";
      const { up, nodes } = await startUp(three, verbose ? ["--verbose"] : []);
      if (verbose) {
        await printed(up, /^\d\d:\d\d:\d\d\.\d{3} a-1\s+INFO\s+node serving url=http:\/\/127\.0\.0\.1:\d+/m, 0, START_MS);
        expect(up.stdout()).not.toContain('"level"');
      }
      up.proc.kill(signal);
      const exit = await waitExit(up, 30_000);
      expect(exit.code, up.stderr()).toBe(0);
      expect(up.stdout()).toContain(`${signal}: stopping 3 nodes`);
      await expectAllGone(nodes, 1_000);
    });
  }

  it("SIGTERM to npm alone (npm start) stops every node", async () => {
    const c = await makeTempCluster(three);
    clusters.push(c);
    const root = join(import.meta.dirname, "../..");
    const npm = spawn("npm", ["start", "--", "--regions", c.regionsDir, "--data", c.dataDir], { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, GEOKV_LOG_LEVEL: "info" } });
    let out = "";
    npm.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    npm.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    const npmExited = new Promise<void>((r) => npm.once("exit", () => r()));
    let nodes: number[] = [];
    try {
      await waitFor(
        "every node to answer /health",
        async () => {
          if (npm.exitCode !== null) throw new Error(`npm start exited: ${out}`);
          return (await Promise.all([...c.urls.values()].map((u) => healthy(u)))).every(Boolean);
        },
        START_MS,
        100,
      );
      // npm -> geokv up (the shell exec'd it) -> the nodes.
      const ups = childPidsOf(npm.pid as number);
      expect(ups, out).toHaveLength(1);
      nodes = childPidsOf(ups[0] as number);
      nodePids.push(...ups, ...nodes);
      expect(nodes).toHaveLength(3);
      npm.kill("SIGTERM");
      await expectAllGone([...ups, ...nodes], 30_000);
      expect(out).toContain("SIGTERM: stopping 3 nodes");
    } finally {
      if (npm.exitCode === null && npm.signalCode === null) npm.kill("SIGKILL");
      await npmExited;
    }
  });

  it("SIGKILL of geokv up: every node stops on its own within seconds, cleanly", async () => {
    const { cluster: c, up, nodes } = await startUp(three);
    up.proc.kill("SIGKILL");
    await waitExit(up, 10_000);
    await expectAllGone(nodes, ORPHAN_EXIT_MS);
    for (const id of c.urls.keys()) {
      const log = readFileSync(join(c.root, ".geokv", "logs", `${id}.log`), "utf8");
      expect(log, id).toContain('"cause":"parent exited"');
      expect(log, id).toContain('"msg":"node stopped"');
    }
  });
});
