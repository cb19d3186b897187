// `npm run demo` end to end, as a user runs it from a clean state: no cluster
// answers, so the demo starts one with `geokv up` on a temp regions config
// (3 regions: 3 + 2 + 1 nodes, the fewest that still show a partition of a
// multi-node region and a failover with a majority left), narrates every
// step, and stops what it started; on Ctrl-C as well. Default timings: on a
// busy two-core machine shorter election timeouts only make leaders flap.

import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeTempCluster, waitFor, type TempCluster } from "../support/cluster-files.js";

const DEMO = resolve("dist/cli/demo.js");
/** The whole demo takes ~40 s on a loaded machine; the bound is for a hang. */
const DEMO_TIMEOUT_MS = 240_000;

interface DemoRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the demo on `c`; `onStdout` may signal it. Kills it at DEMO_TIMEOUT_MS. */
function runDemo(c: TempCluster, onStdout?: (soFar: string, pid: number) => void): Promise<DemoRun> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [DEMO, "--regions", c.regionsDir, "--data", join(c.root, "demo-data")], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), DEMO_TIMEOUT_MS);
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
      onStdout?.(stdout, child.pid as number);
    });
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

/** Pids of processes whose command line names `root` (only the ones this test started can). */
function processesUnder(root: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      if (readFileSync(`/proc/${e}/cmdline`, "utf8").includes(root)) pids.push(Number(e));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

let cluster: TempCluster | null = null;

afterEach(async () => {
  const c = cluster;
  cluster = null;
  if (c === null) return;
  // A failed run must not leave nodes loading the machine for later suites.
  for (const pid of processesUnder(c.root)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  c.cleanup();
});

async function noneLeft(c: TempCluster): Promise<void> {
  await waitFor("every process of the demo's cluster to exit", () => processesUnder(c.root).length === 0, 15_000);
  const answers = await Promise.all([...c.urls.values()].map((u) => fetch(`${u}/health`, { signal: AbortSignal.timeout(500) }).then(() => true, () => false)));
  expect(answers.every((a) => !a)).toBe(true);
}

describe("npm run demo", () => {
  it("starts the cluster, narrates every step with numbers, times a failover and stops the cluster", async () => {
    const c = (cluster = await makeTempCluster([{ region: "us-east", nodes: 3 }, { region: "eu-west", nodes: 2 }, { region: "ap-south", nodes: 1 }]));
    const run = await runDemo(c);
    expect(run.stderr, run.stdout).toBe("");
    expect(run.code, run.stdout).toBe(0);
    const out = run.stdout;
    expect(out).toMatch(/No node answers: starting the cluster with geokv up/);
    expect(out).toMatch(/Watch it live on the dashboard: http:\/\/127\.0\.0\.1:\d+\//);
    expect(out).toMatch(/\n1\. Writes in each region\n/);
    expect(out).toMatch(/All 6 nodes read the 3 keys and demo-\w+-visits = 6/);
    expect(out).toMatch(/\n2\. Partition eu-west from ap-south and us-east\n/);
    expect(out).toMatch(/\n3\. Conflicting writes to one key, on both sides of the partition\n/);
    expect(out).toMatch(/\n4\. Heal: reconnect eu-west\n/);
    expect(out).toMatch(/\n5\. Convergence and the conflict record\n/);
    expect(out).toMatch(/All 6 nodes read demo-\w+-visits = 116/);
    expect(out).toMatch(/records it: key demo-\w+-color\n\s+winner: written on (eu-west|ap-south)-\d, HLC \S+\n\s+loser: +written on (eu-west|ap-south)-\d/);
    expect(out).toMatch(/\n6\. SIGKILL a leader \(us-east\)\n\s+kill -9 \d+: us-east-\d, leader of us-east/);
    expect(out).toMatch(/Failover time: \d+ ms\./);
    expect(out).toMatch(/Stopped\.\n$/);
    await noneLeft(c);
  }, DEMO_TIMEOUT_MS + 30_000);

  it("Ctrl-C stops the cluster it started", async () => {
    const c = (cluster = await makeTempCluster([{ region: "us-east", nodes: 1 }, { region: "eu-west", nodes: 1 }]));
    let sent = false;
    const run = await runDemo(c, (soFar, pid) => {
      if (!sent && soFar.includes("1. Writes in each region")) {
        sent = true;
        process.kill(pid, "SIGINT");
      }
    });
    expect(sent, run.stdout + run.stderr).toBe(true);
    expect(run.code, run.stdout + run.stderr).toBe(130);
    expect(run.stdout).toMatch(/SIGINT: stopping\.\nStopping the cluster the demo started \(geokv up, pid \d+\)\.\.\.\nStopped\.\n/);
    await noneLeft(c);
  }, DEMO_TIMEOUT_MS);
});
