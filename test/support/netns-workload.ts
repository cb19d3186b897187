// Test support for the partition scenarios (test/netns): a writer per region
// that keeps writing to every namespace (kv, counters, sets, docs) of its
// region's leader through the client namespace while links are cut, the
// bookkeeping of what was acknowledged, and the end-of-scenario check: every
// node converged to the same state, no acknowledged write lost, none applied
// twice, how long convergence took and how many elections ran.

import * as Y from "yjs";
import type { NetnsAnswer, NetnsCluster } from "./netns.js";
import { waitFor } from "./cluster-files.js";

/**
 * Paces a writer: a small steady load, not a benchmark, on a two-core
 * machine. One iteration sends four writes and then waits this long: about
 * the request rate two writes and a 20 ms gap made.
 */
const WRITE_GAP_MS = 40;
const CONVERGE_TIMEOUT_MS = 45_000;
/** Doc updates' Yjs client ids: region index * this + iteration, unique in a run. */
const CLIENT_IDS_PER_REGION = 100_000_000;

/** The namespaces every writer writes to in each iteration. */
export type Namespace = "kv" | "counters" | "sets" | "docs";

/** One doc update: its Yjs client and the clock its insert ends at (the state vector entry that contains it). */
interface DocUpdate {
  readonly clientId: number;
  readonly clock: number;
}

/** What one region's writer saw. */
interface RegionLedger {
  /** Keys (unique, never rewritten) whose PUT answered 200. */
  readonly ackedKeys: string[];
  /** Counter increments answered 200, and those with no answer or a 5xx that may have applied. */
  ackedDeltas: number;
  unknownDeltas: number;
  /** Set members (unique) whose add answered 200, and those that may have applied. */
  readonly ackedMembers: string[];
  readonly unknownMembers: string[];
  /** Doc updates (one client each) answered 200, and those that may have applied. */
  readonly ackedUpdates: DocUpdate[];
  readonly unknownUpdates: DocUpdate[];
}

/** How a write ended, for the ledger. */
type Outcome = "acked" | "refused" | "unknown";

function outcomeOf(a: NetnsAnswer | null): Outcome {
  if (a?.status === 200) return "acked";
  // Only a 4xx is a certain "not applied"; a timeout or a 5xx after forwarding may have been.
  return a === null || a.status >= 500 ? "unknown" : "refused";
}

/** Acknowledged writes of each namespace in a ledger. */
const ACKED_IN: Record<Namespace, (l: RegionLedger) => number> = {
  kv: (l) => l.ackedKeys.length,
  counters: (l) => l.ackedDeltas,
  sets: (l) => l.ackedMembers.length,
  docs: (l) => l.ackedUpdates.length,
};
const NAMESPACES = Object.keys(ACKED_IN) as Namespace[];

/** Acknowledged writes of every namespace in a ledger. */
function ackedAll(l: RegionLedger): number {
  return NAMESPACES.reduce((sum, ns) => sum + ACKED_IN[ns](l), 0);
}

/** A Yjs update from a fresh doc of client `clientId` that inserts `text`. */
function docUpdate(clientId: number, text: string): { bytes: Uint8Array; update: DocUpdate } {
  const doc = new Y.Doc();
  doc.clientID = clientId;
  doc.getText("t").insert(0, text);
  const bytes = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return { bytes, update: { clientId, clock: text.length } };
}

/** The writers of one scenario. */
export interface Writers {
  /** Acknowledged writes of one namespace so far, per region. */
  acked(region: string, ns: Namespace): number;
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

/**
 * Starts one writer per region that writes, ack=local, to the region's leader
 * in every iteration: a unique-key PUT, a +1 increment, a unique set member
 * and a doc update of a client of its own.
 */
export function startWriters(c: NetnsCluster): Writers {
  const ledgers = new Map<string, RegionLedger>();
  let running = true;
  const loops = [...c.regions.keys()].map(async (region, regionIndex) => {
    const ledger: RegionLedger = { ackedKeys: [], ackedDeltas: 0, unknownDeltas: 0, ackedMembers: [], unknownMembers: [], ackedUpdates: [], unknownUpdates: [] };
    ledgers.set(region, ledger);
    let leader: string | null = null;
    for (let i = 1; running; i++) {
      await new Promise((r) => setTimeout(r, WRITE_GAP_MS));
      if (leader === null) {
        leader = await findLeader(c, region);
        if (leader === null) continue;
      }
      const write = async (method: string, path: string, body: unknown) => outcomeOf(await c.call(leader as string, method, path, body).catch(() => null));
      const key = `w-${region}-${i}`;
      const put = await write("PUT", `/kv/${key}?ack=local`, { i });
      if (put === "acked") ledger.ackedKeys.push(key);
      const inc = await write("POST", `/counters/c-${region}?ack=local`, { delta: 1 });
      if (inc === "acked") ledger.ackedDeltas += 1;
      else if (inc === "unknown") ledger.unknownDeltas += 1;
      const member = `m${i}`;
      const add = await write("POST", `/sets/s-${region}?ack=local`, { add: [member] });
      if (add === "acked") ledger.ackedMembers.push(member);
      else if (add === "unknown") ledger.unknownMembers.push(member);
      const doc = docUpdate(regionIndex * CLIENT_IDS_PER_REGION + i, `${region}:${i};`);
      const upd = await write("POST", `/docs/d-${region}/updates?ack=local`, doc.bytes);
      if (upd === "acked") ledger.ackedUpdates.push(doc.update);
      else if (upd === "unknown") ledger.unknownUpdates.push(doc.update);
      if ([put, inc, add, upd].some((o) => o !== "acked")) leader = null;
    }
  });
  return {
    ledgers,
    acked: (region, ns) => {
      const l = ledgers.get(region);
      return l === undefined ? 0 : ACKED_IN[ns](l);
    },
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * Waits until every region's writer got `n` more acknowledgements than it has
 * now in every namespace (n iterations at least); a timeout says how far each got.
 */
export async function writesFlow(c: NetnsCluster, w: Writers, n: number, timeoutMs = 20_000): Promise<void> {
  const base = [...c.regions.keys()].flatMap((r) => NAMESPACES.map((ns) => ({ r, ns, b: w.acked(r, ns) })));
  const what = `${n} more acknowledged writes in every namespace of every region`;
  try {
    await waitFor(what, () => base.every(({ r, ns, b }) => w.acked(r, ns) >= b + n), timeoutMs, 50);
  } catch (err) {
    const got = base.map(({ r, ns, b }) => `${r} ${ns} +${w.acked(r, ns) - b}`).join(", ");
    throw new Error(`${(err as Error).message} (got ${got})`, { cause: err });
  }
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

/** A node's members of a set, sorted. */
async function membersOf(c: NetnsCluster, node: string, key: string): Promise<string[]> {
  const a = await c.call(node, "GET", `/sets/${key}`);
  if (a.status !== 200) throw new Error(`${node} GET /sets/${key}: ${a.status}`);
  return [...(a.body.members as string[])].sort();
}

/** A node's doc, loaded into a Y.Doc: its text and its state vector (client id -> clock). */
async function docOf(c: NetnsCluster, node: string, key: string): Promise<{ text: string; sv: Map<number, number> }> {
  const a = await c.call(node, "GET", `/docs/${key}`);
  if (a.status !== 200 || !(a.body instanceof Uint8Array)) throw new Error(`${node} GET /docs/${key}: ${a.status}, not a Yjs update`);
  const doc = new Y.Doc();
  Y.applyUpdate(doc, a.body);
  const out = { text: doc.getText("t").toString(), sv: Y.decodeStateVector(Y.encodeStateVector(doc)) };
  doc.destroy();
  return out;
}

/** Throws unless `value` equals what the first node answered for the same thing. */
function checkSame(what: string, first: { node: string; value: string }, node: string, value: string): void {
  if (value !== first.value) throw new Error(`${node} differs from ${first.node} in ${what}: ${JSON.stringify(value).slice(0, 200)} vs ${JSON.stringify(first.value).slice(0, 200)}`);
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
 * acknowledged write on every node: a key, set member or doc update missing
 * anywhere is lost; a counter above its acknowledged plus unknown increments
 * counts the excess as duplicated, below its acknowledged ones as lost. It
 * throws, naming the node, when nodes answer different set members or doc
 * text, or when a node holds a member or doc update whose write was refused
 * (a 4xx: certainly not applied). `sinceMs` is when the last fault healed (the
 * convergence clock starts there).
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
    acked += ackedAll(ledger);
    // A write counts once however many nodes miss it: the worst node decides.
    const missing = new Set<string>();
    let counterLost = 0;
    let counterDuplicated = 0;
    const mayHold = { members: new Set([...ledger.ackedMembers, ...ledger.unknownMembers]), clients: new Set([...ledger.ackedUpdates, ...ledger.unknownUpdates].map((u) => u.clientId)) };
    let first: { node: string; members: string; text: string } | null = null;
    for (const n of c.nodes) {
      const keys = await keysOf(c, n, `w-${region}-`);
      for (const k of ledger.ackedKeys) if (!keys.has(k)) missing.add(`kv ${k}`);
      const value = Number((await c.call(n, "GET", `/counters/c-${region}`)).body.value);
      counterLost = Math.max(counterLost, ledger.ackedDeltas - value);
      counterDuplicated = Math.max(counterDuplicated, value - ledger.ackedDeltas - ledger.unknownDeltas);
      const members = await membersOf(c, n, `s-${region}`);
      const held = new Set(members);
      for (const m of ledger.ackedMembers) if (!held.has(m)) missing.add(`set ${m}`);
      const refusedMember = members.find((m) => !mayHold.members.has(m));
      if (refusedMember !== undefined) throw new Error(`${n} holds member ${refusedMember} of s-${region}, whose add was refused`);
      const doc = await docOf(c, n, `d-${region}`);
      for (const u of ledger.ackedUpdates) if ((doc.sv.get(u.clientId) ?? 0) < u.clock) missing.add(`doc client ${u.clientId}`);
      const refusedClient = [...doc.sv.keys()].find((id) => !mayHold.clients.has(id));
      if (refusedClient !== undefined) throw new Error(`${n} holds the update of client ${refusedClient} in d-${region}, which was refused`);
      first ??= { node: n, members: members.join(","), text: doc.text };
      checkSame(`the members of s-${region}`, { node: first.node, value: first.members }, n, members.join(","));
      checkSame(`the text of d-${region}`, { node: first.node, value: first.text }, n, doc.text);
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
