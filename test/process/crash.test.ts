// The crash test: a real `geokv node` process under concurrent write load is
// SIGKILLed at random moments, again and again, on the same data directory.
// A write answered 200 (ack=local) was committed durably before the answer,
// so after every restart each one must be there; a write whose answer was
// lost in the kill may or may not be. Between kill and restart the database
// is inspected read-only (integrity, node vector vs op log), exactly as the
// crash left it. The kill moments come from a seeded PRNG; the seed is
// printed and GEOKV_CRASH_SEED=<seed> replays the same schedule.

import { afterAll, describe, expect, it } from "vitest";
import { openSqliteStorage } from "../../src/storage/sqlite.js";
import { makeTempCluster, waitFor, type TempCluster } from "../support/cluster-files.js";
import {
  dbPath,
  getJson,
  inspectDbReadonly,
  killChildren,
  seededRandom,
  startNodeProcess,
  waitExit,
  type DbInspection,
  type GeokvProcess,
} from "./helpers.js";

const KILLS = 20;
const KV_WRITERS = 16;
/** Writers 0..SET_WRITERS-1 also add set members. */
const SET_WRITERS = 4;
/** The kill lands this long (uniform, ms) after the round's first acknowledged write. */
const KILL_DELAY_MS_MAX = 300;
const REQUEST_TIMEOUT_MS = 5_000;
const TEST_TIMEOUT_MS = 90_000;

const seedText = process.env.GEOKV_CRASH_SEED;
const SEED = seedText !== undefined && seedText !== "" ? Number(seedText) >>> 0 : Math.floor(Math.random() * 2 ** 32);

/** What the client knows about one kv key (written by one writer, so writes to it are sequential). */
interface KvModel {
  /** The last value answered 200, or undefined when none yet. */
  acked: string | undefined;
  /** Values sent after that whose answer was lost in a kill: each may or may not have been committed. */
  unanswered: Set<string>;
}

/** Everything the writers were told (acks) and everything they could not learn (lost answers). */
interface Model {
  readonly kv: KvModel[];
  /** Counter value known to be durable (acked increments, resolved by reads after each restart). */
  counterAcked: number;
  /** Increments whose answer was lost since the last resolution. */
  counterUnanswered: number;
  readonly setAcked: Set<string>;
  readonly setUnanswered: Set<string>;
  /** Highest seq of an acknowledged token "<node>:<seq>": the node vector must reach it. */
  maxAckedSeq: number;
  /** Non-200 answers or surprises: must stay empty. */
  readonly problems: string[];
}

/** Per-round numbers, for the summary line. */
interface RoundStats {
  acked: number;
  unanswered: number;
  checked: number;
  killDelayMs: number;
}

type Outcome = { kind: "acked"; token: string | null } | { kind: "lost" } | { kind: "refused"; status: number; text: string };

async function post(url: string, method: "PUT" | "POST", body: unknown): Promise<Outcome> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch {
    return { kind: "lost" };
  }
  // The status line is only sent after the commit: a 200 is an ack even if the body is cut off.
  let text = "";
  try {
    text = await res.text();
  } catch {
    // body lost in the kill; the status already told us
  }
  if (res.status !== 200) return { kind: "refused", status: res.status, text };
  return { kind: "acked", token: res.headers.get("x-geokv-token") };
}

function noteToken(m: Model, nodeId: string, token: string | null): void {
  const match = token === null ? null : /^(.+):(\d+)$/.exec(token);
  if (!match || match[1] !== nodeId) {
    m.problems.push(`acked write without a token of ${nodeId}: ${String(token)}`);
    return;
  }
  m.maxAckedSeq = Math.max(m.maxAckedSeq, Number(match[2]));
}

/** One writer loop: kv puts to its own key, counter increments, and (some) set adds, until `stopped()`. */
async function writer(
  w: number,
  round: number,
  url: string,
  nodeId: string,
  m: Model,
  stats: RoundStats,
  stopped: () => boolean,
): Promise<void> {
  const kv = m.kv[w] as KvModel;
  for (let n = 0; !stopped(); n++) {
    const value = `w${w}-r${round}-n${n}`;
    const put = await post(`${url}/kv/k${w}?ack=local`, "PUT", value);
    if (put.kind === "acked") {
      kv.acked = value;
      kv.unanswered.clear();
      noteToken(m, nodeId, put.token);
      stats.acked++;
    } else if (put.kind === "lost") {
      kv.unanswered.add(value);
      stats.unanswered++;
    } else {
      m.problems.push(`PUT k${w} answered ${put.status}: ${put.text}`);
    }
    if (stopped()) return;

    const inc = await post(`${url}/counters/c?ack=local`, "POST", { delta: 1 });
    if (inc.kind === "acked") {
      m.counterAcked++;
      noteToken(m, nodeId, inc.token);
      stats.acked++;
    } else if (inc.kind === "lost") {
      m.counterUnanswered++;
      stats.unanswered++;
    } else {
      m.problems.push(`POST /counters/c answered ${inc.status}: ${inc.text}`);
    }
    if (w >= SET_WRITERS || stopped()) continue;

    const member = `m${w}-r${round}-n${n}`;
    const add = await post(`${url}/sets/s?ack=local`, "POST", { add: [member] });
    if (add.kind === "acked") {
      m.setAcked.add(member);
      noteToken(m, nodeId, add.token);
      stats.acked++;
    } else if (add.kind === "lost") {
      m.setUnanswered.add(member);
      stats.unanswered++;
    } else {
      m.problems.push(`POST /sets/s answered ${add.status}: ${add.text}`);
    }
  }
}

/**
 * Reads everything back from a freshly restarted node and checks it against
 * the model; then resolves the model (what the node has is now known durable,
 * lost writes that are absent can never appear). Returns how many acked
 * writes' effects were checked.
 */
async function verifyAndResolve(url: string, m: Model): Promise<number> {
  let checked = 0;
  for (let w = 0; w < KV_WRITERS; w++) {
    const kv = m.kv[w] as KvModel;
    const r = await getJson<{ value?: unknown; error?: { code: string } }>(`${url}/kv/k${w}`);
    if (kv.acked === undefined && r.status === 404) {
      kv.unanswered.clear();
      continue;
    }
    expect(r.status, `GET /kv/k${w}`).toBe(200);
    const got = r.body.value;
    expect(typeof got, `k${w} holds a string`).toBe("string");
    const allowed = [...(kv.acked === undefined ? [] : [kv.acked]), ...kv.unanswered];
    expect(allowed, `k${w}: value ${String(got)} must be the last acked ${String(kv.acked)} or a lost later write`).toContain(got);
    if (kv.acked !== undefined) checked++;
    kv.acked = got as string;
    kv.unanswered.clear();
  }

  const c = await getJson<{ value: number }>(`${url}/counters/c`);
  expect(c.status).toBe(200);
  expect(c.body.value, "counter >= acknowledged increments").toBeGreaterThanOrEqual(m.counterAcked);
  expect(c.body.value, "counter <= acknowledged + unanswered increments").toBeLessThanOrEqual(m.counterAcked + m.counterUnanswered);
  checked += m.counterAcked;
  m.counterAcked = c.body.value;
  m.counterUnanswered = 0;

  const s = await getJson<{ members: string[] }>(`${url}/sets/s`);
  expect(s.status).toBe(200);
  const members = new Set(s.body.members);
  for (const a of m.setAcked) expect(members.has(a), `acked set member ${a} present`).toBe(true);
  for (const x of members) expect(m.setAcked.has(x) || m.setUnanswered.has(x), `set member ${x} was written`).toBe(true);
  checked += m.setAcked.size;
  for (const x of members) m.setAcked.add(x);
  m.setUnanswered.clear();
  return checked;
}

/** The database as the kill left it: intact, and the node vector agrees with the op log. */
function checkDbAfterKill(path: string, nodeId: string, m: Model): DbInspection {
  const db = inspectDbReadonly(path);
  expect(db.integrity, "PRAGMA integrity_check after SIGKILL").toBe("ok");
  expect(db.appliedVv, "node_vv equals the op log's contiguous vv").toEqual(db.opLogVv);
  // Own ops are never burnt by a crash (the next seq continues from the log), so the log has no gaps.
  expect(db.opCount[nodeId] ?? 0, "own op log is gap-free").toBe(db.opLogVv[nodeId] ?? 0);
  expect(db.appliedVv[nodeId] ?? 0, "every acknowledged token is in the node vector").toBeGreaterThanOrEqual(m.maxAckedSeq);
  return db;
}

describe("crash: SIGKILL under concurrent write load", () => {
  let cluster: TempCluster | undefined;
  /** Set when the test ends, also by a failure mid-round, so no writer loop outlives it. */
  let finished = false;

  afterAll(async () => {
    finished = true;
    await killChildren();
    cluster?.cleanup();
  });

  it(
    `every acknowledged write survives ${KILLS} SIGKILLs (seed ${SEED})`,
    async () => {
      console.log(`crash test seed ${SEED} (replay with GEOKV_CRASH_SEED=${SEED})`);
      const random = seededRandom(SEED);
      cluster = await makeTempCluster([{ region: "crash", nodes: 1 }]);
      const nodeId = "crash-1";
      const url = cluster.urls.get(nodeId) as string;
      const path = dbPath(cluster.dataDir, nodeId);
      const model: Model = {
        kv: Array.from({ length: KV_WRITERS }, () => ({ acked: undefined, unanswered: new Set<string>() })),
        counterAcked: 0,
        counterUnanswered: 0,
        setAcked: new Set(),
        setUnanswered: new Set(),
        maxAckedSeq: 0,
        problems: [],
      };
      const rounds: RoundStats[] = [];
      let lastDb: DbInspection | undefined;

      for (let round = 0; round < KILLS; round++) {
        const child: GeokvProcess = await startNodeProcess(nodeId, cluster.regionsDir, cluster.dataDir, url);
        const stats: RoundStats = { acked: 0, unanswered: 0, checked: 0, killDelayMs: Math.floor(random() * KILL_DELAY_MS_MAX) };
        rounds.push(stats);
        if (lastDb !== undefined) {
          // Nothing has written yet: the node's vector is what it recovered from disk.
          const status = await getJson<{ vv: Record<string, number> }>(`${url}/status`);
          expect(status.body.vv, "/status vv after restart equals the persisted vector").toEqual(lastDb.appliedVv);
          stats.checked = await verifyAndResolve(url, model);
        }

        let stop = false;
        const writers = Array.from({ length: KV_WRITERS }, (_, w) =>
          writer(w, round, url, nodeId, model, stats, () => stop || finished),
        );
        await waitFor(`round ${round}: a first acknowledged write`, () => stats.acked > 0 || model.problems.length > 0, 10_000, 1);
        // The kill moment: a seeded random delay after the round's first ack, while the writers keep going.
        await new Promise((r) => setTimeout(r, stats.killDelayMs));
        // Same tick: no writer starts a request after the flag, so every lost answer was in flight.
        stop = true;
        child.proc.kill("SIGKILL");
        const exit = await waitExit(child);
        expect(exit.signal).toBe("SIGKILL");
        await Promise.all(writers);
        expect(model.problems, "every answered write was a 200").toEqual([]);

        lastDb = checkDbAfterKill(path, nodeId, model);
      }

      // After the last kill: the store's own view of the file, through the storage port.
      const storage = openSqliteStorage({ path });
      try {
        expect(storage.integrityCheck()).toBe("ok");
        expect(storage.appliedVv()).toEqual(storage.opLogVv());
        expect(storage.appliedVv()).toEqual(lastDb?.appliedVv);
      } finally {
        storage.close();
      }

      // One last restart: everything acknowledged before the last kill is there.
      const last = await startNodeProcess(nodeId, cluster.regionsDir, cluster.dataDir, url);
      const finalChecked = await verifyAndResolve(url, model);
      last.proc.kill("SIGTERM");
      expect((await waitExit(last)).code).toBe(0);

      const acked = rounds.reduce((a, r) => a + r.acked, 0);
      const lost = rounds.reduce((a, r) => a + r.unanswered, 0);
      console.log(
        `crash test: ${KILLS} kills, ${acked} acked writes (${lost} answers lost in kills); ` +
          `acked writes checked per restart: ${[...rounds.slice(1).map((r) => r.checked), finalChecked].join(", ")}; ` +
          `acked per round: ${rounds.map((r) => r.acked).join(", ")}; kill delays ms: ${rounds.map((r) => r.killDelayMs).join(", ")}`,
      );
      expect(acked).toBeGreaterThan(KILLS);
    },
    TEST_TIMEOUT_MS,
  );
});
