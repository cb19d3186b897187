// `geokv snapshot create|restore` as users run them: the built CLI in a child
// process against real SQLite files. A region of three nodes where r-1 and r-2
// runs at first: kv puts and deletes, counters, sets and a Yjs doc go in over
// HTTP; the backup is made WHILE r-1 runs; it is restored into a fresh data
// folder for r-3 and read back with openSqliteStorage (every namespace, the
// deleted keys, the vector, the integrity check); the refusals leave nothing
// behind (a non-empty or foreign or locked target, a missing, altered, cut
// off or foreign file, bad usage); and finally r-3, restored from r-1's
// backup into the cluster's data folder, is started and catches up with the
// writes made after the backup.

import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as Y from "yjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCausalToken } from "../../src/core/causal-token.js";
import { counterValue } from "../../src/core/crdt/pn-counter.js";
import { setMembers } from "../../src/core/crdt/or-set.js";
import { readKv } from "../../src/core/crdt/lww.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/storage/sqlite.js";
import { makeTempCluster, waitFor, type TempCluster } from "../support/cluster-files.js";
import { dbPath, getJson, killChildren, runGeokv, sendJson, startNodeProcess } from "./helpers.js";

let cluster: TempCluster;
let url1: string;
/** Scratch folder for backup files and other data folders. */
let scratch: string;
let backup: string;
/** What `snapshot create --json` printed. */
let created: { vv: Record<string, number>; rows: Record<string, number>; node: string; file: string };

const KV_KEYS = 40;
/** Keys i with i % 5 === 0 are deleted after being written. */
const isDeleted = (i: number) => i % 5 === 0;
const COUNTERS: Record<string, number> = { hits: 7, misses: -3 };
const SETS: Record<string, string[]> = { colors: ["blue", "red"] };
/** A value whose bytes the altered-file case finds in the backup and changes. */
const MARKER = "MARKER-0123456789";

const put = (url: string, key: string, value: unknown) => sendJson("PUT", `${url}/kv/${encodeURIComponent(key)}`, value);

async function ok(r: Promise<{ status: number; body: unknown }>): Promise<void> {
  const a = await r;
  if (a.status !== 200) throw new Error(`expected 200, got ${a.status} ${JSON.stringify(a.body)}`);
}

async function del(url: string, key: string): Promise<void> {
  const res = await fetch(`${url}/kv/${encodeURIComponent(key)}`, { method: "DELETE", signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  expect(res.status).toBe(200);
}

function docUpdate(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("body").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

async function postDoc(url: string, key: string, update: Uint8Array): Promise<void> {
  const res = await fetch(`${url}/docs/${key}/updates`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: update, signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  expect(res.status).toBe(200);
}

/** A folder name inside scratch that does not exist yet. */
let folders = 0;
function freshDataDir(): string {
  return join(scratch, `data-${++folders}`);
}

function withStore<T>(path: string, fn: (s: SqliteStorage) => T): T {
  const s = openSqliteStorage({ path });
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

beforeAll(async () => {
  cluster = await makeTempCluster([{ region: "r", nodes: 3, preempt: true }]);
  scratch = mkdtempSync(join(tmpdir(), "geokv-snap-"));
  backup = join(scratch, "r-1.gkvb");
  url1 = cluster.urls.get("r-1") as string;
  // Two of three: a majority, so the region elects a leader and acknowledges writes while r-3 is down;
  // with preempt, r-1 (the highest priority) leads, so every write is an op of r-1.
  await Promise.all(["r-1", "r-2"].map((n) => startNodeProcess(n, cluster.regionsDir, cluster.dataDir, cluster.urls.get(n) as string)));
  await waitFor("r-1 to lead its region", async () => (await getJson<{ role: string }>(`${url1}/status`)).body.role === "leader", 15_000);
  await waitFor("r-1 to be ready", async () => (await fetch(`${url1}/ready`)).status === 200, 15_000);
  for (let i = 0; i < KV_KEYS; i++) await ok(put(url1, `k${i}`, { i, text: i === 1 ? MARKER : `value ${i}` }));
  for (let i = 0; i < KV_KEYS; i++) if (isDeleted(i)) await del(url1, `k${i}`);
  for (const [key, total] of Object.entries(COUNTERS)) {
    await ok(sendJson("POST", `${url1}/counters/${key}`, { delta: total - 1 }));
    await ok(sendJson("POST", `${url1}/counters/${key}`, { delta: 1 }));
  }
  await ok(sendJson("POST", `${url1}/sets/colors`, { add: ["red", "green", "blue"] }));
  await ok(sendJson("POST", `${url1}/sets/colors`, { remove: ["green"] }));
  await postDoc(url1, "notes", docUpdate("hello from the backup"));
}, 60_000);

afterAll(async () => {
  await killChildren();
  cluster?.cleanup();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

describe("geokv snapshot create", () => {
  it("writes a backup of a running node: the vector it covers and the rows, atomically", async () => {
    const r = await runGeokv(["snapshot", "create", backup, "--node", "r-1", "--data", cluster.dataDir, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    created = JSON.parse(r.stdout) as typeof created;
    const status = await getJson<{ vv: Record<string, number> }>(`${url1}/status`);
    // Nothing was written meanwhile: the backup covers everything r-1 applied.
    expect(created.vv).toEqual(status.body.vv);
    expect(created.vv["r-1"]).toBeGreaterThanOrEqual(KV_KEYS + KV_KEYS / 5 + 4 + 2 + 1);
    // Deleted keys keep their tombstones (nothing compacted): every key written is a row.
    expect(created.rows).toMatchObject({ kv: KV_KEYS, counters: 2, sets: 1, docs: 1 });
    expect(created.rows.total).toBe(KV_KEYS + 2 + 1 + 1 + (created.rows.idem ?? 0));
    expect(existsSync(`${backup}.tmp`)).toBe(false);
    // The node kept running and writing while the snapshot's connection read beside it.
    await ok(put(url1, "during", 1));

    const human = await runGeokv(["snapshot", "create", join(scratch, "human.gkvb"), "--node", "r-1", "--data", cluster.dataDir]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^wrote .*human\.gkvb: a snapshot of node r-1 at /);
    expect(human.stdout).toContain('covers vv  {"r-1":');
    expect(human.stdout).toMatch(/rows +kv \d+, counters 2, sets 1, docs 1, idem \d+ \(\d+ in all\)/);
  });

  it("under write load, the backup holds exactly the writes its vector covers", async () => {
    /** Key -> the seq of its write (an op of r-1, the leader). */
    const acked = new Map<string, number>();
    let stop = false;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let n = 0; !stop; n++) {
        const key = `load-${w}-${n}`;
        const a = await put(url1, key, n);
        if (a.status !== 200) throw new Error(`PUT ${key}: ${a.status}`);
        const token = parseCausalToken((a.body as { token: string }).token);
        if (token === null || token.origin !== "r-1") throw new Error(`PUT ${key}: not an op of r-1: ${JSON.stringify(a.body)}`);
        acked.set(key, token.seq);
      }
    });
    await waitFor("writes to be under way", () => acked.size >= 20);
    const file = join(scratch, "under-load.gkvb");
    const r = await runGeokv(["snapshot", "create", file, "--node", "r-1", "--data", cluster.dataDir, "--json"]);
    stop = true;
    await Promise.all(writers);
    expect(r.code, r.stderr).toBe(0);
    const vv = (JSON.parse(r.stdout) as { vv: Record<string, number> }).vv;
    const covered = [...acked].filter(([, seq]) => seq <= (vv["r-1"] ?? 0));
    // Writes went on while the snapshot was read: some are in it, some are not.
    expect(covered.length).toBeGreaterThan(0);
    expect(covered.length).toBeLessThan(acked.size);
    const data = freshDataDir();
    const restored = await runGeokv(["snapshot", "restore", file, "--node", "r-3", "--data", data]);
    expect(restored.code, restored.stderr).toBe(0);
    withStore(dbPath(data, "r-3"), (s) => {
      expect(s.appliedVv()).toEqual(vv);
      for (const [key, seq] of acked) {
        const value = readKv(s.getKv(key))?.valueJson;
        if (seq <= (vv["r-1"] ?? 0)) expect(value, `${key} (seq ${seq}) is covered`).toBeDefined();
        else expect(value, `${key} (seq ${seq}) is past the vector`).toBeUndefined();
      }
    });
  });

  it("refuses an existing FILE without --force (exit 2), replaces it with --force", async () => {
    const file = join(scratch, "existing.gkvb");
    writeFileSync(file, "keep me");
    const r = await runGeokv(["snapshot", "create", file, "--node", "r-1", "--data", cluster.dataDir]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`geokv: ${file} exists; pass --force to replace it`);
    expect(readFileSync(file, "utf8")).toBe("keep me");
    const json = await runGeokv(["snapshot", "create", file, "--node", "r-1", "--data", cluster.dataDir, "--json"]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: "file_exists" } });
    const forced = await runGeokv(["snapshot", "create", file, "--node", "r-1", "--data", cluster.dataDir, "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(file).subarray(0, 15).toString()).toBe("SQLite format 3");
  });

  it("refuses a node with no database there, or a folder of another node (exit 1)", async () => {
    const none = await runGeokv(["snapshot", "create", join(scratch, "none.gkvb"), "--node", "r-3", "--data", cluster.dataDir]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no database of node r-3");
    const other = freshDataDir();
    // A data folder copied from r-1 and renamed r-3: the node id inside says whose it is.
    const restored = await runGeokv(["snapshot", "restore", backup, "--node", "r-1", "--data", other]);
    expect(restored.code, restored.stderr).toBe(0);
    rmSync(join(other, "r-1", "LOCK"));
    renameSync(join(other, "r-1"), join(other, "r-3"));
    const foreign = await runGeokv(["snapshot", "create", join(scratch, "foreign.gkvb"), "--node", "r-3", "--data", other]);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain("holds the data of node r-1, not r-3");
    expect(existsSync(join(scratch, "foreign.gkvb"))).toBe(false);
  });
});

describe("geokv snapshot restore", () => {
  it("makes a fresh data folder for another node with every namespace as backed up", async () => {
    const data = freshDataDir();
    const r = await runGeokv(["snapshot", "restore", backup, "--node", "r-3", "--data", data, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { node: string; source: string; vv: Record<string, number>; rows: Record<string, number> };
    expect(out).toMatchObject({ node: "r-3", source: "r-1", vv: created.vv, rows: created.rows });

    withStore(dbPath(data, "r-3"), (s) => {
      expect(s.integrityCheck()).toBe("ok");
      expect(s.getMeta("nodeId")).toBe("r-3");
      expect(s.appliedVv()).toEqual(created.vv);
      expect(s.stagedSnapshotRows()).toBe(0);
      for (let i = 0; i < KV_KEYS; i++) {
        const winner = readKv(s.getKv(`k${i}`));
        if (isDeleted(i)) expect(winner?.valueJson ?? null, `k${i} is deleted`).toBeNull();
        else expect(JSON.parse(winner?.valueJson ?? "null"), `k${i}`).toEqual({ i, text: i === 1 ? MARKER : `value ${i}` });
      }
      expect(s.listKv({ limit: 1000 }).map((row) => row.key).sort()).toEqual(
        Array.from({ length: KV_KEYS }, (_, i) => i).filter((i) => !isDeleted(i)).map((i) => `k${i}`).sort(),
      );
      for (const [key, total] of Object.entries(COUNTERS)) expect(counterValue(s.getCounter(key)), key).toBe(total);
      for (const [key, members] of Object.entries(SETS)) expect(setMembers(s.getSet(key)), key).toEqual(members);
      const doc = new Y.Doc();
      Y.applyUpdate(doc, s.getDoc("notes") as Uint8Array);
      expect(doc.getText("body").toString()).toBe("hello from the backup");
      // r-3 issues its own seqs after what the backup holds of it (nothing) and its clock moves past r-1's.
      expect(s.getMeta("lastSeq") ?? 0).toBe(0);
    });
    // The LOCK is released: a node could start on it now.
    expect(readdirSync(join(data, "r-3")).sort()).toEqual(["LOCK", "geokv.db"]);
  });

  it("refuses a target that holds data, another node's data, or a running node (exit 1), and leaves it as it was", async () => {
    const data = freshDataDir();
    expect((await runGeokv(["snapshot", "restore", backup, "--node", "r-3", "--data", data])).code).toBe(0);
    const again = await runGeokv(["snapshot", "restore", backup, "--node", "r-3", "--data", data]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already holds data of node r-3");
    withStore(dbPath(data, "r-3"), (s) => expect(s.appliedVv()).toEqual(created.vv));

    // An empty database of another node (it started once, took no data).
    const foreign = freshDataDir();
    withStore(dbPath(foreign, "r-3"), (s) => s.setMeta("nodeId", "x-9" as never));
    const wrong = await runGeokv(["snapshot", "restore", backup, "--node", "r-3", "--data", foreign, "--json"]);
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.stderr)).toMatchObject({ error: { code: "wrong_node" } });
    expect(wrong.stderr).toContain("holds the data of node x-9");
    expect(readdirSync(join(foreign, "r-3")).filter((f) => f === "LOCK")).toEqual([]);
    withStore(dbPath(foreign, "r-3"), (s) => expect(s.getMeta("nodeId")).toBe("x-9"));

    // r-1 runs on its folder and holds its LOCK.
    const busy = await runGeokv(["snapshot", "restore", backup, "--node", "r-1", "--data", cluster.dataDir]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain("in use by a running geokv process");
    expect((await getJson<{ value: unknown }>(`${url1}/kv/k2`)).body.value).toEqual({ i: 2, text: "value 2" });
  });

  it("takes an empty database of the same node (it started once, took nothing)", async () => {
    const data = freshDataDir();
    withStore(dbPath(data, "r-3"), (s) => s.setMeta("nodeId", "r-3" as never));
    const r = await runGeokv(["snapshot", "restore", backup, "--node", "r-3", "--data", data]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`restored node r-3 into ${join(data, "r-3")}`);
    withStore(dbPath(data, "r-3"), (s) => expect(counterValue(s.getCounter("hits"))).toBe(7));
  });

  it("refuses a missing, altered, cut off or foreign file (exit 1) and creates nothing", async () => {
    const altered = join(scratch, "altered.gkvb");
    const bytes = readFileSync(backup);
    // Every copy: a page split can leave a stale one in a page's free space, where no read looks.
    let copies = 0;
    for (let at = bytes.indexOf(MARKER); at >= 0; at = bytes.indexOf(MARKER, at + 1)) {
      bytes[at + MARKER.length - 1] = "X".charCodeAt(0);
      copies++;
    }
    expect(copies).toBeGreaterThan(0);
    writeFileSync(altered, bytes);
    const cut = join(scratch, "cut.gkvb");
    copyFileSync(backup, cut);
    truncateSync(cut, Math.floor(readFileSync(backup).length / 2));
    const text = join(scratch, "text.gkvb");
    writeFileSync(text, "not a backup at all, just some words that are long enough to look like a header. ".repeat(20));
    const otherDb = join(scratch, "other.db");
    withStore(otherDb, () => undefined);

    const cases: [string, RegExp][] = [
      [join(scratch, "missing.gkvb"), /no such file/],
      [altered, /do not match their SHA-256/],
      [cut, /damaged|malformed|rows|cannot open/i],
      [text, /not a database|cannot open|geokv backup/i],
      [otherDb, /not a geokv backup/],
    ];
    for (const [file, problem] of cases) {
      const data = freshDataDir();
      const r = await runGeokv(["snapshot", "restore", file, "--node", "r-3", "--data", data]);
      expect(r.code, `${file}: ${r.stderr}`).toBe(1);
      expect(r.stderr, file).toContain(`cannot restore from ${file}: `);
      expect(r.stderr, file).toMatch(problem);
      expect(r.stderr.trimEnd(), "one line").not.toContain("\n");
      expect(existsSync(data), `${file}: nothing made`).toBe(false);
    }
  });

  it("usage mistakes exit 2 with one line", async () => {
    const cases: [string[], string][] = [
      [["snapshot", "restore", backup], "needs --node ID"],
      [["snapshot", "create", backup], "needs --node ID"],
      [["snapshot", "restore", "--node", "r-3"], "needs FILE"],
      [["snapshot"], "needs an action"],
      [["snapshot", "copy", backup, "--node", "r-3"], 'unknown action "copy"'],
      [["snapshot", "restore", backup, "--node", "r-3", "--force"], "--force is for snapshot create"],
      [["snapshot", "restore", backup, "extra", "--node", "r-3"], "unexpected argument"],
      [["snapshot", "create", backup, "--node", "not an id"], "not a valid node id"],
    ];
    for (const [args, message] of cases) {
      const r = await runGeokv(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toContain(message);
      expect(r.stderr.trimEnd(), `${args.join(" ")}: one line`).not.toContain("\n");
      expect(r.stdout).toBe("");
    }
    const help = await runGeokv(["snapshot", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: geokv snapshot create FILE --node ID [--data DIR] [--force] [--json]");
    const overview = await runGeokv(["--help"]);
    expect(overview.stdout).toContain("geokv snapshot restore FILE --node ID [--data DIR]");
  });
});

describe("a node restored from a backup", () => {
  it("joins its region with the backed-up data and catches up with the writes made after the backup", async () => {
    // Writes the backup does not have.
    await ok(put(url1, "after-backup", "new"));
    await del(url1, "k1");
    await ok(sendJson("POST", `${url1}/counters/hits`, { delta: 10 }));
    const r = await runGeokv(["snapshot", "restore", backup, "--node", "r-3", "--data", cluster.dataDir]);
    expect(r.code, r.stderr).toBe(0);

    const url3 = cluster.urls.get("r-3") as string;
    await startNodeProcess("r-3", cluster.regionsDir, cluster.dataDir, url3);
    const kv = (key: string) => getJson<{ value: unknown }>(`${url3}/kv/${key}`);
    await waitFor("r-3 to have the write made after the backup", async () => (await kv("after-backup")).status === 200, 20_000);
    expect((await kv("after-backup")).body.value).toBe("new");
    expect((await kv("k2")).body.value).toEqual({ i: 2, text: "value 2" });
    await waitFor("r-3 to have the delete made after the backup", async () => (await kv("k1")).status === 404, 20_000);
    expect((await kv("k5")).status).toBe(404);
    await waitFor("r-3's counter to include the increment after the backup", async () => (await getJson<{ value: number }>(`${url3}/counters/hits`)).body.value === 17, 20_000);
    expect((await getJson<{ members: string[] }>(`${url3}/sets/colors`)).body.members).toEqual(["blue", "red"]);
    const status1 = await getJson<{ vv: Record<string, number> }>(`${url1}/status`);
    const sameVv = (a: Record<string, number>, b: Record<string, number>) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
    await waitFor("r-3's vector to reach r-1's", async () => sameVv((await getJson<{ vv: Record<string, number> }>(`${url3}/status`)).body.vv, status1.body.vv), 20_000);
  });
});
