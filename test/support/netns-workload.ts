// Test support for the partition scenarios (test/netns): a writer per region
// that keeps writing to its region's leader through the client namespace
// while links are cut, the bookkeeping of what was acknowledged, and the
// end-of-scenario check: every node converged, no acknowledged write lost,
// none applied twice, how long convergence took and how many elections ran.

import type { NetnsCluster } from "./netns.js";
import { waitFor } from "./cluster-files.js";

/** Paces a writer: a small steady load, not a benchmark, on a two-core machine. */
const WRITE_GAP_MS = 20;
const CONVERGE_TIMEOUT_MS = 45_000;

/** What one region's writer saw. */
interface RegionLedger {
  /** Keys (unique, never rewritten) whose PUT answered 200. */
  readonly ackedKeys: string[];
  /** Counter increments answered 200, and those with no answer or a 5xx that may have applied. */
  ackedDeltas: number;
  unknownDeltas: number;
}

/** The writers of one scenario. */
export interface Writers {
  /** Acknowledged writes (PUTs and increments) so far, per region. */
  acked(region: string): number;
  /** Stops every writer and waits for its last request. */
  stop(): Promise<void>;
  readonly ledgers: Map<string, RegionLedger>;
}

/** The region's leader as some node of it reports itself, or null. */
export async function findLeader(c: NetnsCluster, region: string): Promise<string | null> {
  for (const n of c.regions.get(region) ?? []) {
    if (!c.running(n)) continue;
    const s = await c.call(n, "GET", "/status").catch(() => null);
    if (s?.status === 200 && s.body.role === "leader") return n;
  }
  return null;
}

/** Waits until every region has a leader that every running node of it names; returns them. */
export async function settledLeaders(c: NetnsCluster, timeoutMs = 30_000): Promise<Map<string, { node: string; epoch: number }>> {
  const out = new Map<string, { node: string; epoch: number }>();
  for (const [region, nodes] of c.regions) {
    const l = await waitFor(`a leader of ${region} that every node names`, async () => {
      const ss = await Promise.all(nodes.filter((n) => c.running(n)).map((n) => c.call(n, "GET", "/status")));
      const leaders = ss.filter((s) => s.body.role === "leader");
      if (leaders.length !== 1) return null;
      const l = leaders[0]?.body;
      return ss.every((s) => s.body.leader === l.node && s.body.epoch === l.epoch) ? { node: l.node as string, epoch: l.epoch as number } : null;
    }, timeoutMs, 100);
    out.set(region, l);
  }
  return out;
}

/** Starts one writer per region: unique-key PUTs and +1 increments, ack=local, to the region's leader. */
export function startWriters(c: NetnsCluster): Writers {
  const ledgers = new Map<string, RegionLedger>();
  let running = true;
  const loops = [...c.regions.keys()].map(async (region) => {
    const ledger: RegionLedger = { ackedKeys: [], ackedDeltas: 0, unknownDeltas: 0 };
    ledgers.set(region, ledger);
    let leader: string | null = null;
    for (let i = 1; running; i++) {
      await new Promise((r) => setTimeout(r, WRITE_GAP_MS));
      if (leader === null) {
        leader = await findLeader(c, region);
        if (leader === null) continue;
      }
      const key = `w-${region}-${i}`;
      const put = await c.call(leader, "PUT", `/kv/${key}?ack=local`, { i }).catch(() => null);
      if (put?.status === 200) ledger.ackedKeys.push(key);
      const inc = await c.call(leader, "POST", `/counters/c-${region}?ack=local`, { delta: 1 }).catch(() => null);
      if (inc?.status === 200) ledger.ackedDeltas += 1;
      // Only a 4xx is a certain "not applied"; a timeout or a 5xx after forwarding may have been.
      else if (inc === null || inc.status >= 500) ledger.unknownDeltas += 1;
      if (put?.status !== 200 || inc?.status !== 200) leader = null;
    }
  });
  return {
    ledgers,
    acked: (region) => {
      const l = ledgers.get(region);
      return l === undefined ? 0 : l.ackedKeys.length + l.ackedDeltas;
    },
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Waits until every region's writer got `n` more acknowledgements than it has now. */
export async function writesFlow(c: NetnsCluster, w: Writers, n: number, timeoutMs = 20_000): Promise<void> {
  const base = new Map([...c.regions.keys()].map((r) => [r, w.acked(r)]));
  await waitFor(`${n} more acknowledged writes in every region`, () => [...base].every(([r, b]) => w.acked(r) >= b + n), timeoutMs, 50);
}

/** geokv_elections_total of every running node. */
export async function elections(c: NetnsCluster): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const n of c.nodes.filter((x) => c.running(x))) {
    const m = await c.call(n, "GET", "/metrics");
    const line = String(m.body).split("\n").find((l) => l.startsWith("geokv_elections_total"));
    out.set(n, Number(line?.split(" ").pop() ?? 0));
  }
  return out;
}

/** Elections between two readings; a node restarted in between counts from zero. */
export function electionsBetween(before: Map<string, number>, after: Map<string, number>): number {
  let sum = 0;
  for (const [n, v] of after) sum += v >= (before.get(n) ?? 0) ? v - (before.get(n) ?? 0) : v;
  return sum;
}

/** Every key with `prefix` a node holds (paged). */
async function keysOf(c: NetnsCluster, node: string, prefix: string): Promise<Set<string>> {
  const keys = new Set<string>();
  let after = "";
  for (;;) {
    const page = await c.call(node, "GET", `/kv?prefix=${encodeURIComponent(prefix)}&limit=1000&after=${encodeURIComponent(after)}`);
    if (page.status !== 200) throw new Error(`${node} GET /kv: ${page.status}`);
    for (const it of page.body.items as { key: string }[]) keys.add(it.key);
    if (page.body.next === null) return keys;
    after = page.body.next as string;
  }
}

/** The outcome of a scenario, as its report line prints it. */
export interface Report {
  readonly acked: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly convergeMs: number;
  readonly elections: number;
}

/**
 * Waits until every node's version vector is the same, then checks every
 * acknowledged write on every node: a key missing anywhere is lost; a counter
 * above its acknowledged plus unknown increments counts the excess as
 * duplicated, below its acknowledged ones as lost. `sinceMs` is when the last
 * fault healed (the convergence clock starts there).
 */
export async function converge(c: NetnsCluster, w: Writers, sinceMs: number): Promise<Omit<Report, "elections">> {
  await waitFor("every node with the same version vector", async () => {
    const vvs = await Promise.all(c.nodes.map(async (n) => JSON.stringify(sortedVv((await c.call(n, "GET", "/status")).body.vv))));
    return vvs.every((v) => v === vvs[0]);
  }, CONVERGE_TIMEOUT_MS, 100);
  const convergeMs = Date.now() - sinceMs;
  let acked = 0;
  let lost = 0;
  let duplicated = 0;
  for (const [region, ledger] of w.ledgers) {
    acked += ledger.ackedKeys.length + ledger.ackedDeltas;
    // A write counts once however many nodes miss it: the worst node decides.
    const missing = new Set<string>();
    let counterLost = 0;
    let counterDuplicated = 0;
    for (const n of c.nodes) {
      const keys = await keysOf(c, n, `w-${region}-`);
      for (const k of ledger.ackedKeys) if (!keys.has(k)) missing.add(k);
      const value = Number((await c.call(n, "GET", `/counters/c-${region}`)).body.value);
      counterLost = Math.max(counterLost, ledger.ackedDeltas - value);
      counterDuplicated = Math.max(counterDuplicated, value - ledger.ackedDeltas - ledger.unknownDeltas);
    }
    lost += missing.size + counterLost;
    duplicated += counterDuplicated;
  }
  return { acked, lost, duplicated, convergeMs };
}

function sortedVv(vv: Record<string, number>): [string, number][] {
  return Object.entries(vv).filter(([, s]) => s > 0).sort(([a], [b]) => (a < b ? -1 : 1));
}

/** The one line a scenario prints. */
export function reportLine(scenario: string, r: Report): string {
  return `netns ${scenario}: acked=${r.acked} lost=${r.lost} duplicated=${r.duplicated} converge=${r.convergeMs}ms elections=${r.elections}`;
}
