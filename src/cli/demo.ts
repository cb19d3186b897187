#!/usr/bin/env node
// `npm run demo`: a narrated timeline on the local cluster, for a person to
// read while watching the dashboard. Writes in every region, a partition of
// one region, conflicting writes on both sides, the heal, convergence and the
// conflict record, then a leader SIGKILLed and the failover timed. It uses
// the running cluster when every configured node answers, and otherwise
// starts one with `geokv up` and stops it at the end (on Ctrl-C too).

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { StatusView } from "../api/types.js";
import { formatConfigError, isConfigError, loadCluster, type ClusterConfig, type ClusterNode } from "../node/config.js";
import { answering, nodePid, request, startUp, statusOf, waitUntil, type StartedCluster } from "./demo-cluster.js";

/** Bound of every wait for the cluster to do something (elect, replicate, converge). */
const STEP_WAIT_MS = 30_000;
/** Bound of a wait whose outcome is only narrated (links reported down or up). */
const LINK_WAIT_MS = 10_000;
/** Pause before retrying a write that met no leader. */
const WRITE_RETRY_MS = 100;

const HELP = `npm run demo [-- --regions DIR] [-- --data DIR] [-- --partition REGION]

A narrated tour of geokv on the local cluster: writes in every region, a
partition, conflicting writes, the heal, convergence and the conflict record,
and a leader SIGKILLed with the failover timed. If no node of the regions
config answers, the demo starts the cluster itself (geokv up, a fresh data
folder) and stops it at the end or on Ctrl-C.

  --regions DIR     cluster configuration (default: regions)
  --data DIR        data folder for the cluster the demo starts; emptied first (default: .geokv/demo)
  --partition R     the region to cut off (default: eu-west, else the second region)`;

const adminToken = process.env.GEOKV_ADMIN_TOKEN;
/** Set on Ctrl-C: the steps still running then fail as the cluster stops, and that is no news. */
let interrupted = false;
const clientToken = process.env.GEOKV_CLIENT_TOKEN;

function say(text = ""): void {
  process.stdout.write(`${text}\n`);
}

/** Step output; quiet once interrupted, when the steps still running only fail as the cluster stops. */
function heading(n: number, title: string): void {
  if (interrupted) return;
  say();
  say(`${n}. ${title}`);
}

function detail(text: string): void {
  if (interrupted) return;
  say(`   ${text}`);
}

function ms(started: number): number {
  return Math.round(performance.now() - started);
}

function show(v: unknown): string {
  return JSON.stringify(v);
}

function fail(message: string): never {
  throw new Error(message);
}

/** Leaders by region once every region has one whose region peers are all up. */
async function leaders(cluster: ClusterConfig): Promise<Map<string, StatusView>> {
  return waitUntil(
    "a leader in every region",
    async () => {
      const found = new Map<string, StatusView>();
      for (const r of cluster.regions) {
        for (const n of r.nodes) {
          const s = await statusOf(n.url);
          if (s?.role === "leader" && s.peers.filter((p) => p.region === r.region).every((p) => p.state === "up")) found.set(r.region, s);
        }
      }
      return found.size === cluster.regions.length ? found : null;
    },
    STEP_WAIT_MS,
  );
}

function nodeOf(cluster: ClusterConfig, id: string): ClusterNode {
  return [...cluster.nodes.values()].find((n) => n.id === id) ?? fail(`node ${id} is not in the configuration`);
}

let writeCount = 0;

/**
 * A data write through `node`, retried while the region has no leader (a
 * re-election on a busy machine) under one Idempotency-Key, so a retry is
 * never applied twice; fails the demo on any other error or after
 * STEP_WAIT_MS. The time is the whole call, retries included.
 */
async function write(node: ClusterNode, method: string, path: string, body: unknown): Promise<{ ms: number; body: unknown }> {
  const started = performance.now();
  const headers = { "idempotency-key": `${process.pid}-${Date.now().toString(36)}-${++writeCount}` };
  let last = "no answer";
  while (performance.now() - started < STEP_WAIT_MS) {
    const a = await request(`${node.url}${path}`, method, body, clientToken, undefined, headers).catch((err: unknown) => ({ status: 0, body: String(err) }));
    if (a.status >= 200 && a.status < 300) return { ms: ms(started), body: a.body };
    last = `${a.status} ${show(a.body)}`;
    if (a.status !== 0 && a.status !== 503) break;
    await new Promise((r) => setTimeout(r, WRITE_RETRY_MS));
  }
  return fail(`${method} ${path} on ${node.id} answered ${last}`);
}

async function readKv(node: ClusterNode, key: string): Promise<{ value: unknown; version: { hlc: string; node: string } } | null> {
  const a = await request(`${node.url}/kv/${encodeURIComponent(key)}`, "GET", undefined, clientToken).catch(() => null);
  return a?.status === 200 ? (a.body as { value: unknown; version: { hlc: string; node: string } }) : null;
}

async function readCounter(node: ClusterNode, key: string): Promise<number | null> {
  const a = await request(`${node.url}/counters/${encodeURIComponent(key)}`, "GET", undefined, clientToken).catch(() => null);
  return a?.status === 200 ? (a.body as { value: number }).value : null;
}

/** Waits until every node in `nodes` reads the same value for `key` (and, if given, `expect`); returns it. */
async function converged(nodes: readonly ClusterNode[], key: string, expect?: unknown): Promise<{ value: unknown; version: { hlc: string; node: string } }> {
  return waitUntil(
    `every node to read the same ${key}`,
    async () => {
      const reads = await Promise.all(nodes.map((n) => readKv(n, key)));
      const first = reads[0];
      if (first === null || first === undefined) return null;
      if (expect !== undefined && show(first.value) !== show(expect)) return null;
      return reads.every((r) => r !== null && show(r.value) === show(first.value) && r.version.hlc === first.version.hlc) ? first : null;
    },
    STEP_WAIT_MS,
  );
}

async function counterEverywhere(nodes: readonly ClusterNode[], key: string, value: number): Promise<void> {
  await waitUntil(`every node to count ${key} = ${value}`, async () => (await Promise.all(nodes.map((n) => readCounter(n, key)))).every((v) => v === value), STEP_WAIT_MS);
}

async function setFaults(nodes: readonly ClusterNode[], body: unknown): Promise<void> {
  for (const n of nodes) {
    const a = await request(`${n.url}/admin/faults`, "POST", body, adminToken);
    if (a.status !== 200) fail(`POST /admin/faults on ${n.id} answered ${a.status} ${show(a.body)}`);
  }
}

/** Waits until `leader` reports its links to other regions all `state`; the time, or null past LINK_WAIT_MS. */
async function linksAre(node: ClusterNode, state: "up" | "down"): Promise<number | null> {
  const started = performance.now();
  const ok = await waitUntil(
    `${node.id}'s links to other regions ${state}`,
    async () => {
      const s = await statusOf(node.url);
      const remote = s?.peers.filter((p) => p.region !== node.region) ?? [];
      return remote.length > 0 && remote.every((p) => p.state === state);
    },
    LINK_WAIT_MS,
  ).catch(() => null);
  return ok === null ? null : ms(started);
}

interface Demo {
  readonly cluster: ClusterConfig;
  readonly started: StartedCluster | null;
  /** Prefix of every key this run writes, so runs on a long-lived cluster do not meet. */
  readonly run: string;
  /** The dashboard URL the steps point at. */
  readonly dashboard: string;
  /** The region cut off in step 2, while it is cut off (cleanup heals it). */
  partitioned: ClusterNode[] | null;
}

async function stepWrites(d: Demo, lead: Map<string, StatusView>): Promise<number> {
  heading(1, "Writes in each region");
  const all = [...d.cluster.nodes.values()];
  let total = 0;
  for (const [i, r] of d.cluster.regions.entries()) {
    const via = nodeOf(d.cluster, lead.get(r.region)?.node ?? fail(`no leader in ${r.region}`));
    const key = `${d.run}-hello-${r.region}`;
    const value = `hello from ${r.region}`;
    const w = await write(via, "PUT", `/kv/${encodeURIComponent(key)}`, value);
    const c = await write(via, "POST", `/counters/${encodeURIComponent(`${d.run}-visits`)}`, { delta: i + 1 });
    total += i + 1;
    detail(`${r.region.padEnd(10)} kv ${key} = ${show(value)} (via ${via.id}, ${w.ms} ms); counter ${d.run}-visits +${i + 1} (${c.ms} ms)`);
  }
  const started = performance.now();
  for (const r of d.cluster.regions) await converged(all, `${d.run}-hello-${r.region}`);
  await counterEverywhere(all, `${d.run}-visits`, total);
  detail(`All ${all.length} nodes read the ${d.cluster.regions.length} keys and ${d.run}-visits = ${total}, ${ms(started)} ms after the last write.`);
  return total;
}

async function stepPartition(d: Demo, region: string, lead: Map<string, StatusView>): Promise<ClusterNode> {
  const others = d.cluster.regions.map((r) => r.region).filter((r) => r !== region);
  heading(2, `Partition ${region} from ${others.join(" and ")}`);
  const nodes = d.cluster.regions.find((r) => r.region === region)?.nodes ?? fail(`no region ${region}`);
  d.partitioned = [...nodes];
  await setFaults(nodes, { block: others });
  detail(`POST /admin/faults {"block": ${show(others)}} on ${nodes.map((n) => n.id).join(", ")}`);
  const leader = nodeOf(d.cluster, lead.get(region)?.node ?? fail(`no leader in ${region}`));
  const down = await linksAre(leader, "down");
  detail(
    down === null
      ? `${leader.id} still reports some links up after ${LINK_WAIT_MS} ms; the fault drops their traffic all the same.`
      : `${leader.id} (leader of ${region}) reports its links to the other regions down after ${down} ms. Both sides keep taking writes.`,
  );
  detail(`On the dashboard (${d.dashboard}) ${region}'s links show down.`);
  return leader;
}

async function stepConflict(d: Demo, inside: ClusterNode, outside: ClusterNode, visits: number): Promise<{ key: string; visits: number }> {
  heading(3, "Conflicting writes to one key, on both sides of the partition");
  const key = `${d.run}-color`;
  const a = `blue, written in ${outside.region}`;
  const b = `green, written in ${inside.region}`;
  const wa = await write(outside, "PUT", `/kv/${encodeURIComponent(key)}`, a);
  const wb = await write(inside, "PUT", `/kv/${encodeURIComponent(key)}`, b);
  detail(`${outside.region.padEnd(10)} kv ${key} = ${show(a)} (via ${outside.id}, ${wa.ms} ms)`);
  detail(`${inside.region.padEnd(10)} kv ${key} = ${show(b)} (via ${inside.id}, ${wb.ms} ms)`);
  await write(outside, "POST", `/counters/${encodeURIComponent(`${d.run}-visits`)}`, { delta: 10 });
  await write(inside, "POST", `/counters/${encodeURIComponent(`${d.run}-visits`)}`, { delta: 100 });
  detail(`counter ${d.run}-visits +10 in ${outside.region}, +100 in ${inside.region}`);
  const [ra, rb] = await Promise.all([readKv(outside, key), readKv(inside, key)]);
  const [ca, cb] = await Promise.all([readCounter(outside, `${d.run}-visits`), readCounter(inside, `${d.run}-visits`)]);
  detail(`Two histories now: ${outside.id} reads ${show(ra?.value)} and visits = ${ca}; ${inside.id} reads ${show(rb?.value)} and visits = ${cb}.`);
  return { key, visits: visits + 110 };
}

async function stepHeal(d: Demo, leader: ClusterNode): Promise<number> {
  heading(4, `Heal: reconnect ${leader.region}`);
  const nodes = d.partitioned ?? [];
  const started = performance.now();
  await setFaults(nodes, { clear: true });
  d.partitioned = null;
  detail(`POST /admin/faults {"clear": true} on ${nodes.map((n) => n.id).join(", ")}`);
  const up = await linksAre(leader, "up");
  detail(up === null ? `${leader.id} does not report every link up after ${LINK_WAIT_MS} ms yet.` : `${leader.id} reports every link up again after ${up} ms.`);
  return started;
}

async function stepConverge(d: Demo, key: string, visits: number, healedAt: number, outside: ClusterNode): Promise<void> {
  heading(5, "Convergence and the conflict record");
  const all = [...d.cluster.nodes.values()];
  const final = await converged(all, key);
  detail(`All ${all.length} nodes read ${key} = ${show(final.value)} ${ms(healedAt)} ms after the heal (the version written on ${final.version.node}, HLC ${final.version.hlc}).`);
  await counterEverywhere(all, `${d.run}-visits`, visits);
  detail(`All ${all.length} nodes read ${d.run}-visits = ${visits}: a counter merges both sides' increments, nothing is lost.`);
  type Conflict = { key: string; winner: { hlc: string; node: string }; loser: { hlc: string; node: string }; at: string };
  const record = await waitUntil(
    `the conflict on ${key} in ${outside.id}'s /conflicts`,
    async () => {
      const a = await request(`${outside.url}/conflicts?limit=100`, "GET", undefined, clientToken);
      return (a.body as { items?: Conflict[] }).items?.find((c) => c.key === key) ?? null;
    },
    STEP_WAIT_MS,
  );
  detail(`GET ${outside.url}/conflicts records it: key ${record.key}`);
  detail(`  winner: written on ${record.winner.node}, HLC ${record.winner.hlc}`);
  detail(`  loser:  written on ${record.loser.node}, HLC ${record.loser.hlc}`);
  detail("Neither write saw the other (concurrent version vectors), so the higher (HLC, node id) wins on every replica and the loss is recorded.");
}

async function stepFailover(d: Demo, skipRegion: string): Promise<void> {
  const candidates = d.cluster.regions.filter((r) => r.nodes.length >= 3);
  const region = candidates.find((r) => r.region !== skipRegion) ?? candidates[0];
  heading(6, `SIGKILL a leader${region ? ` (${region.region})` : ""}`);
  if (region === undefined) {
    detail("Skipped: no region has 3 or more nodes, and a region needs a majority left after it loses its leader.");
    return;
  }
  if (d.started === null) {
    detail("Skipped: the demo did not start this cluster, so it does not know which processes are its nodes, and it kills only what it started.");
    detail("Stop the cluster and run `npm run demo` again to see a failover timed.");
    return;
  }
  const lead = await leaders(d.cluster);
  const old = lead.get(region.region) ?? fail(`no leader in ${region.region}`);
  const pid = nodePid(d.started.pid, old.node);
  if (pid === null) {
    detail(`Skipped: no process of ${old.node} found under geokv up (pid ${d.started.pid}); finding it needs Linux's /proc.`);
    return;
  }
  const killedAt = performance.now();
  process.kill(pid, "SIGKILL");
  detail(`kill -9 ${pid}: ${old.node}, leader of ${region.region} at epoch ${old.epoch}`);
  const rest = region.nodes.filter((n) => n.id !== old.node);
  const next = await waitUntil(
    `a new leader in ${region.region}`,
    async () => {
      for (const n of rest) {
        const s = await statusOf(n.url);
        if (s?.role === "leader" && s.epoch > old.epoch) return { node: n, status: s };
      }
      return null;
    },
    STEP_WAIT_MS,
  );
  const electedMs = ms(killedAt);
  const key = `${d.run}-after-failover`;
  await write(next.node, "PUT", `/kv/${encodeURIComponent(key)}`, "written after the failover");
  const writeMs = ms(killedAt);
  detail(`${next.node.id} is leader of ${region.region} at epoch ${next.status.epoch}, ${electedMs} ms after the kill.`);
  detail(`It acknowledged a write (ack=region: durable on a majority of ${region.region}) ${writeMs} ms after the kill.`);
  detail(`Failover time: ${writeMs} ms. ${old.node} stays down until the demo stops the cluster (the dashboard shows it down).`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { regions: { type: "string" }, data: { type: "string" }, partition: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help === true) {
    say(HELP);
    return;
  }
  const regionsDir = resolve(values.regions ?? "regions");
  const dataDir = resolve(values.data ?? ".geokv/demo");
  const loaded = loadCluster(regionsDir);
  if (isConfigError(loaded)) fail(`bad configuration: ${formatConfigError(loaded)}`);
  const cluster = loaded;
  const regions: string[] = cluster.regions.map((r) => r.region);
  const partition = values.partition ?? (regions.includes("eu-west") ? "eu-west" : regions[1]);
  if (partition === undefined || !regions.includes(partition)) fail(`--partition must name one of ${regions.join(", ")} other than the only one (got ${show(partition)})`);
  const outsideRegion = cluster.regions.find((r) => r.region !== partition) ?? fail("the demo needs at least two regions");

  say(`geokv demo: ${cluster.regions.length} regions, ${cluster.nodes.size} nodes (${regionsDir})`);
  const up = await answering(cluster);
  let started: StartedCluster | null = null;
  if (up.length === cluster.nodes.size) {
    say("Every configured node answers: the demo uses the running cluster and leaves it running.");
  } else if (up.length > 0) {
    fail(`only ${up.length} of ${cluster.nodes.size} nodes answer (${up.join(", ")}): start the rest, or stop them all and let the demo start the cluster`);
  } else {
    started = startUp(regionsDir, dataDir);
    say(`No node answers: starting the cluster with geokv up (pid ${started.pid}; data in ${dataDir}, its log in ${started.logFile}).`);
  }
  const first = cluster.regions[0]?.nodes[0] ?? fail("no nodes");
  const d: Demo = { cluster, started, run: `demo-${Date.now().toString(36)}`, dashboard: `${first.url}/`, partitioned: null };

  let cleaning: Promise<void> | null = null;
  const cleanup = () => {
    cleaning ??= (async () => {
      if (d.partitioned !== null) await setFaults(d.partitioned, { clear: true }).catch(() => undefined);
      if (d.started !== null) {
        say(`Stopping the cluster the demo started (geokv up, pid ${d.started.pid})...`);
        await d.started.stop();
        say("Stopped.");
      }
    })();
    return cleaning;
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      interrupted = true;
      say(`\n${signal}: stopping.`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    const t0 = performance.now();
    const lead = await leaders(cluster);
    say(`Cluster ready in ${ms(t0)} ms. Leaders: ${[...lead.entries()].map(([r, s]) => `${r} ${s.node} (epoch ${s.epoch})`).join(", ")}.`);
    say(`Watch it live on the dashboard: ${d.dashboard}`);
    say(`Keys of this run start with ${d.run}-.`);

    const visits = await stepWrites(d, lead);
    const outside = nodeOf(cluster, lead.get(outsideRegion.region)?.node ?? fail(`no leader in ${outsideRegion.region}`));
    const inside = await stepPartition(d, partition, lead);
    const conflict = await stepConflict(d, inside, outside, visits);
    const healedAt = await stepHeal(d, inside);
    await stepConverge(d, conflict.key, conflict.visits, healedAt, outside);
    await stepFailover(d, partition);
    say();
    say(`Done in ${(ms(t0) / 1000).toFixed(1)} s.`);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  if (interrupted) return;
  process.stderr.write(`geokv demo: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
