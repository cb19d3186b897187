// Bootstrap from a snapshot on real processes (issue 13, tests 2 and 3).
// us-east has four nodes, eu-west one, each a child process with its own
// SQLite file, started with a short op-log retention and a short
// --member-forget-ms, so a member that is absent stops holding compaction
// back within seconds and the log really forgets the ops it would need.
//
// 2. us-east-4 is listed in the configuration but not started. Writes,
//    overwrites and deletes go in, the others compact past it, and only then
//    does it start, on an empty data dir: it must become a follower that
//    matches its leader exactly, with the deleted keys 404, and keep up with
//    writes after it.
// 3. A follower is killed; more keys are written and deleted (keys it holds
//    live), the others compact past it and sweep the tombstones; it restarts
//    on its old data dir: it bootstraps, and nothing deleted comes back.
// Then the region's leader loses its data dir (killed, dir removed, started
//    again empty): the region goes on under another leader, and the emptied
//    node bootstraps like a new member; nothing acknowledged is lost.

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";

const RETAIN_OPS = 100;
const FORGET_MS = 2_000;
const KEYS = 600;
const IN_FLIGHT = 16;
const CONVERGE_MS = 45_000;
const TEST_TIMEOUT_MS = 180_000;
const US = "us-east";
const NEW_MEMBER = "us-east-4";

type Vv = Record<string, number>;

let c: ProcCluster;
const logOf = (node: string) => readFileSync(c.logFile(node), "utf8");
const url = (node: string) => c.urls.get(node) as string;
const running = () => [...c.urls.keys()].filter((n) => c.running(n));

/** What every node must serve: live kv values, deleted keys, counters, sets. */
const expectedKv = new Map<string, unknown>();
const deleted = new Set<string>();
const expectedCounters = new Map<string, number>();
const expectedSets = new Map<string, string[]>();
const key = (i: number) => `bk-${String(i).padStart(4, "0")}`;

async function ok(method: string, target: string, body?: unknown) {
  const r = await call(target, method, body);
  if (r.status !== 200) throw new Error(`${method} ${target}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A write that must be answered 200; no_leader (a region electing) is retried under the same Idempotency-Key. */
let writeSeq = 0;
async function write(method: string, target: string, body?: unknown): Promise<void> {
  const idem = `bootstrap-${++writeSeq}`;
  for (let attempt = 1; ; attempt++) {
    const r = await call(target, method, body, { "idempotency-key": idem });
    if (r.status === 200) return;
    if (r.status === 503 && attempt < 20) {
      await new Promise((res) => setTimeout(res, 100 * attempt));
      continue;
    }
    throw new Error(`${method} ${target}: ${r.status} ${JSON.stringify(r.body)}`);
  }
}

async function eachLimited<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(IN_FLIGHT, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** The running us-east node that is the active leader. */
async function usLeader(): Promise<string> {
  return waitFor(`a leader of ${US}`, async () => {
    for (const n of running().filter((x) => x.startsWith(US))) {
      const s = await call(`${url(n)}/status`).catch(() => null);
      if (s?.body?.role === "leader") return n;
    }
    return null;
  }, 30_000);
}

const vvText = (vv: Vv) => JSON.stringify(Object.entries(vv).filter(([, s]) => s > 0).sort(([a], [b]) => (a < b ? -1 : 1)));

/** Waits until every node of `nodes` reports the same vector; returns it. */
async function converged(nodes: readonly string[]): Promise<Vv> {
  return waitFor(`${nodes.join(", ")} hold the same vector`, async () => {
    const s = await Promise.all(nodes.map((n) => ok("GET", `${url(n)}/status`)));
    const first = vvText(s[0].vv);
    if (s.every((x) => vvText(x.vv) === first)) return s[0].vv as Vv;
    throw new Error(s.map((x) => `${x.node}=${vvText(x.vv)}`).join(" "));
  }, CONVERGE_MS);
}

async function listKv(node: string): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for (let after = ""; ; ) {
    const r = await ok("GET", `${url(node)}/kv?prefix=bk-&limit=1000&after=${encodeURIComponent(after)}`);
    for (const item of r.items as { key: string; value: unknown }[]) out.set(item.key, item.value);
    if (r.next === null) return out;
    after = r.next as string;
  }
}

/** Differences between what `node` serves and what is expected (empty lists when it matches). */
async function diff(node: string) {
  const listed = await listKv(node);
  const missing = [...expectedKv.keys()].filter((k) => !listed.has(k));
  const extra = [...listed.keys()].filter((k) => !expectedKv.has(k));
  const wrong = [...expectedKv].filter(([k, v]) => listed.has(k) && JSON.stringify(listed.get(k)) !== JSON.stringify(v)).map(([k]) => k);
  const resurrected: string[] = [];
  await eachLimited([...deleted], async (k) => {
    const r = await call(`${url(node)}/kv/${k}`);
    if (r.status !== 404) resurrected.push(`${k}: ${r.status}`);
  });
  const counters: Record<string, number> = {};
  for (const k of expectedCounters.keys()) counters[k] = (await ok("GET", `${url(node)}/counters/${k}`)).value;
  const sets: Record<string, string[]> = {};
  for (const k of expectedSets.keys()) sets[k] = (await ok("GET", `${url(node)}/sets/${k}`)).members;
  return { node, missing: missing.slice(0, 5), extra: extra.slice(0, 5), wrong: wrong.slice(0, 5), resurrected: resurrected.slice(0, 5), counters, sets };
}

const expectedDiff = (node: string) => ({
  node,
  missing: [],
  extra: [],
  wrong: [],
  resurrected: [],
  counters: Object.fromEntries(expectedCounters),
  sets: Object.fromEntries(expectedSets),
});

/** Tombstones `node` dropped so far, by its own account: background passes and forced ones log each pass that dropped any. */
function droppedTombstones(node: string): number {
  let n = 0;
  for (const line of logOf(node).split("\n")) {
    if (!line.includes('"compacted the op log"')) continue;
    n += (JSON.parse(line) as { droppedTombstones?: number }).droppedTombstones ?? 0;
  }
  return n;
}

/** Compacts every running node until `done` holds for the leader's /status.storage and the tombstones it dropped so far. */
async function compactUntil(what: string, leader: string, done: (storage: { compactedVv: Vv; opLogOps: number }, dropped: number) => boolean): Promise<void> {
  const droppedBefore = droppedTombstones(leader);
  await waitFor(what, async () => {
    await Promise.all(running().map((n) => ok("POST", `${url(n)}/admin/compact`)));
    const s = await ok("GET", `${url(leader)}/status`);
    const dropped = droppedTombstones(leader) - droppedBefore;
    if (done(s.storage, dropped)) return true;
    throw new Error(`${leader}: storage ${JSON.stringify(s.storage)}, tombstones dropped ${dropped}`);
  }, 40_000);
}


beforeAll(async () => {
  c = await startProcCluster([{ region: US, nodes: 4 }, { region: "eu-west", nodes: 1 }], {
    env: { GEOKV_OP_LOG_RETAIN_OPS: String(RETAIN_OPS), GEOKV_MEMBER_FORGET_MS: String(FORGET_MS) },
    deferred: [NEW_MEMBER],
  });
}, 60_000);

afterAll(async () => {
  await c?.close();
});

describe("bootstrap from a snapshot (real processes)", () => {
  it("a new member started with an empty data dir after its peers compacted past it becomes a follower that matches its leader exactly", async () => {
    const leader = await usLeader();
    const keys = Array.from({ length: KEYS }, (_, i) => i);
    for (let round = 0; round < 2; round++) await eachLimited(keys, (i) => write("PUT", `${url(leader)}/kv/${key(i)}`, { i, round }));
    const gone = keys.filter((i) => i % 5 === 0);
    await eachLimited(gone, (i) => write("DELETE", `${url(leader)}/kv/${key(i)}`));
    for (const i of keys) {
      if (i % 5 === 0) deleted.add(key(i));
      else expectedKv.set(key(i), { i, round: 1 });
    }
    for (let j = 0; j < 5; j++) {
      for (let k = 0; k < 4; k++) await write("POST", `${url(k % 2 === 0 ? leader : "eu-west-1")}/counters/bc-${j}`, { delta: j + 1 });
      expectedCounters.set(`bc-${j}`, 4 * (j + 1));
      await write("POST", `${url("eu-west-1")}/sets/bs-${j}`, { add: ["a", "b", `m${j}`] });
      await write("POST", `${url("eu-west-1")}/sets/bs-${j}`, { remove: ["b"] });
      expectedSets.set(`bs-${j}`, ["a", `m${j}`].sort());
    }
    await converged(running());
    // The absent member is forgotten after FORGET_MS: then the log forgets what it would need.
    await compactUntil("the op log compacted past the absent member", leader, (st) => (st.compactedVv[leader] ?? 0) > 0 && st.opLogOps <= RETAIN_OPS + 50);

    await c.start(NEW_MEMBER);
    const vv = await converged([...running()]);
    expect(vv[leader]).toBeGreaterThan(0);
    expect(await diff(NEW_MEMBER)).toEqual(expectedDiff(NEW_MEMBER));
    expect(await diff(leader)).toEqual(expectedDiff(leader));
    expect(logOf(NEW_MEMBER)).toMatch(/snapshot installed/);
    expect(logOf(leader)).toMatch(/sending it a snapshot/);
    // A ready follower: /ready answers, and writes after the snapshot reach it as ops.
    await waitFor(`${NEW_MEMBER} /ready`, async () => (await call(`${url(NEW_MEMBER)}/ready`)).status === 200, 20_000);
    const after = Array.from({ length: 40 }, (_, i) => KEYS + i);
    await eachLimited(after, (i) => write("PUT", `${url(leader)}/kv/${key(i)}`, { i, after: true }));
    for (const i of after) expectedKv.set(key(i), { i, after: true });
    await converged(running());
    expect(await diff(NEW_MEMBER)).toEqual(expectedDiff(NEW_MEMBER));
  }, TEST_TIMEOUT_MS);

  it("a follower killed while its peers write, delete, compact and sweep past it bootstraps on restart, and nothing deleted comes back", async () => {
    const leader = await usLeader();
    const follower = running().filter((n) => n.startsWith(US) && n !== leader && n !== NEW_MEMBER)[0] as string;
    const before = (await ok("GET", `${url(follower)}/status`)).vv as Vv;
    await c.stop(follower);
    // Keys the follower holds live are deleted now; others are overwritten, and new ones written.
    const live = [...expectedKv.keys()];
    const toDelete = live.filter((_, i) => i % 4 === 0);
    const toOverwrite = live.filter((_, i) => i % 4 === 1);
    await eachLimited(toDelete, (k) => write("DELETE", `${url(leader)}/kv/${k}`));
    await eachLimited(toOverwrite, (k) => write("PUT", `${url(leader)}/kv/${k}`, { k, again: true }));
    for (const k of toDelete) {
      expectedKv.delete(k);
      deleted.add(k);
    }
    for (const k of toOverwrite) expectedKv.set(k, { k, again: true });
    await converged(running());
    // Past what the follower holds, and with tombstones of keys it holds live swept.
    await compactUntil("compaction past the killed follower, with tombstones swept", leader, (st, dropped) => (st.compactedVv[leader] ?? 0) > (before[leader] ?? 0) && dropped > 0);

    await c.start(follower);
    await converged(running());
    expect(await diff(follower)).toEqual(expectedDiff(follower));
    expect(logOf(follower)).toMatch(/receiving a snapshot/);
    expect(logOf(follower)).toMatch(/snapshot installed/);
  }, TEST_TIMEOUT_MS);

  it("a leader whose data dir is emptied comes back as a follower that bootstraps; the region keeps its leader and every acknowledged write", async () => {
    const leader = await usLeader();
    await c.stop(leader);
    rmSync(join(c.files.dataDir, leader), { recursive: true, force: true });
    const next = await usLeader();
    expect(next).not.toBe(leader);
    const more = Array.from({ length: 60 }, (_, i) => KEYS + 100 + i);
    await eachLimited(more, (i) => write("PUT", `${url(next)}/kv/${key(i)}`, { i, under: next }));
    for (const i of more) expectedKv.set(key(i), { i, under: next });
    await compactUntil("the old leader's ops compacted at the new one", next, (st) => (st.compactedVv[leader] ?? 0) > 0);

    await c.start(leader);
    await converged(running());
    for (const n of running()) expect(await diff(n)).toEqual(expectedDiff(n));
    expect(logOf(leader)).toMatch(/snapshot installed/);
    // The region has one leader all its nodes agree on.
    const views = await Promise.all(running().filter((n) => n.startsWith(US)).map((n) => ok("GET", `${url(n)}/status`)));
    expect(new Set(views.map((v) => v.leader)).size).toBe(1);
  }, TEST_TIMEOUT_MS);
});
