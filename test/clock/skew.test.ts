// Clocks that lie, on real processes: every node of a 3-node region runs
// under libfaketime with its wall clock read from a file on each call, so a
// test moves one running node's clock (or all of them) without a restart.
// Monotonic clocks stay true. Checked here: a skewed follower refuses client
// writes with clock_skew, says so in /status, is passed over in an election,
// and recovers once corrected; a skewed leader steps down and a good-clock
// node leads (the timeline is printed); a wall clock stepped back 10 s under
// load moves no lease, elects nobody, and no stored version goes back. And
// throughout: no acknowledged version carries an HLC more than
// maxClockSkewMs ahead of real time (this test process's clock is true).

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { decodeHlc } from "../../src/core/hlc.js";
import { faketimeEnv, setClockOffset } from "../support/faketime.js";
import { agreedLeader, call, regionLeader, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";

const REGION = "k";
/** The default bound (DESIGN.md): skew past it refuses writes and leadership. */
const MAX_CLOCK_SKEW_MS = 500;
const AHEAD_MS = 20_000;
/** Detection needs a fresh pong per peer (one a second) after the step: generous for a loaded machine. */
const DETECT_MS = 10_000;
const ELECT_MS = 20_000;

interface ClockCluster {
  readonly c: ProcCluster;
  readonly nodes: readonly string[];
  /** node -> its libfaketime timestamp file */
  readonly clockFile: (node: string) => string;
  close(): Promise<void>;
}

let open: ClockCluster | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

async function startClockCluster(): Promise<ClockCluster> {
  const dir = mkdtempSync(join(tmpdir(), "geokv-clocks-"));
  const nodes = [1, 2, 3].map((i) => `${REGION}-${i}`);
  const clockFile = (n: string) => join(dir, `${n}.faketime`);
  const nodeEnv = Object.fromEntries(nodes.map((n) => [n, faketimeEnv(clockFile(n))]));
  const c = await startProcCluster([{ region: REGION, nodes: 3 }], { nodeEnv }).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  open = {
    c,
    nodes,
    clockFile,
    close: async () => {
      await c.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return open;
}

const url = (k: ClockCluster, n: string) => k.c.urls.get(n) as string;

/** The replicator's line when the measured verdict (what the election hears) turns skewed. */
const CLOCK_SKEWED_LOG = "clock skewed: more than";

/** True when `node`'s log has a line containing `text`. */
function logged(k: ClockCluster, node: string, text: string): boolean {
  return existsSync(k.c.logFile(node)) && readFileSync(k.c.logFile(node), "utf8").includes(text);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- /status has many shapes; the tests read a few fields
async function status(k: ClockCluster, n: string): Promise<any> {
  return (await call(`${url(k, n)}/status`)).body;
}

/** Every node has clock samples of both peers and calls its clock good. */
async function clocksMeasured(k: ClockCluster): Promise<void> {
  await waitFor("every node to have measured its clock against its peers", async () => {
    const all = await Promise.all(k.nodes.map((n) => status(k, n)));
    return all.every((s) => s.clock?.offsetMs !== null && s.clock?.offsetMs !== undefined && s.clock.skewed === false);
  }, DETECT_MS);
}

/** A PUT of `value` at `key` sent to `node`; the HLC of an acknowledged version is checked against real time. */
async function put(k: ClockCluster, node: string, key: string, value: unknown): Promise<{ status: number; code?: string; message?: string; hlcWallMs?: number }> {
  const r = await call(`${url(k, node)}/kv/${key}`, "PUT", value);
  if (r.status !== 200) return { status: r.status, code: r.body?.error?.code, message: r.body?.error?.message };
  const hlc = decodeHlc(r.body.version.hlc);
  if (hlc === null) throw new Error(`unparseable version ${JSON.stringify(r.body.version)}`);
  // Real time: this process runs without libfaketime.
  expect(hlc.wallMs, `version of ${key} ahead of real time`).toBeLessThanOrEqual(Date.now() + MAX_CLOCK_SKEW_MS);
  return { status: 200, hlcWallMs: hlc.wallMs };
}

/** Writes keys `${prefix}-<i>` to `node` one after another until stop(); every answer, with when it was sent. */
function writer(k: ClockCluster, node: string, prefix: string) {
  const results: Array<{ i: number; sentMs: number; doneMs: number; status: number; code?: string; hlcWallMs?: number }> = [];
  let stopped = false;
  const done = (async () => {
    for (let i = 0; !stopped; i++) {
      const sentMs = performance.now();
      const r = await put(k, node, `${prefix}-${i}`, i).catch((err: unknown) => ({ status: 0, code: String(err) }));
      results.push({ i, sentMs, doneMs: performance.now(), ...r });
    }
  })();
  return {
    results,
    okSince: (ms: number) => results.filter((r) => r.sentMs >= ms && r.status === 200).length,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

describe("clocks that lie (libfaketime)", () => {
  it("a skewed follower refuses client writes with clock_skew, shows it in /status, is passed over in an election, and recovers when corrected", async () => {
    const k = await startClockCluster();
    const { leader, followers } = await regionLeader(k.c, REGION);
    await clocksMeasured(k);
    // The best-ranked follower: the one the next election would pick if its clock did not count.
    const [victim, other] = followers as [string, string];
    setClockOffset(k.clockFile(victim), AHEAD_MS);
    // At once it refuses writes (its wall clock stepped against its monotonic one); once both peers
    // measured it, the verdict reaches the election (the log line says so).
    await waitFor(`${victim} to call its clock skewed`, async () => (await status(k, victim)).clock.skewed === true, DETECT_MS);
    await waitFor(`${victim} to log its measured skew`, () => logged(k, victim, CLOCK_SKEWED_LOG), DETECT_MS);
    expect((await status(k, victim)).clock.offsetMs).toBeGreaterThan(AHEAD_MS - MAX_CLOCK_SKEW_MS);
    // The good clocks are far from one peer of two: not a majority, so not skewed.
    for (const n of [leader, other]) expect((await status(k, n)).clock.skewed).toBe(false);
    expect(await put(k, victim, "from-victim", 1)).toMatchObject({ status: 503, code: "clock_skew" });
    expect(await put(k, other, "from-other", 1)).toMatchObject({ status: 200 });

    // The leader hands over: the skewed node, though best-ranked of the two left, does not stand.
    const epoch = (await status(k, leader)).epoch as number;
    expect((await call(`${url(k, leader)}/leadership/stepdown`, "POST")).status).toBe(202);
    const next = await waitFor("a new leader that all three agree on", async () => {
      const l = await agreedLeader(k.c, k.nodes);
      return l !== null && l.epoch > epoch ? l : null;
    }, ELECT_MS);
    expect(next.node).toBe(other);
    expect((await put(k, other, "after-handover", 1)).status).toBe(200);
    expect((await status(k, victim)).role).toBe("follower");

    // Corrected at runtime (no restart): it takes writes again (forwarded to the leader).
    setClockOffset(k.clockFile(victim), 0);
    await waitFor(`${victim} to call its clock good again`, async () => (await status(k, victim)).clock.skewed === false, DETECT_MS);
    expect((await put(k, victim, "from-victim-corrected", 1)).status).toBe(200);
  });

  it("a skewed leader steps down, a good-clock node leads, and writes continue through it", async () => {
    const k = await startClockCluster();
    const { leader, followers } = await regionLeader(k.c, REGION);
    await clocksMeasured(k);
    const entry = followers[1] as string; // clients write through a good follower the whole time
    const w = writer(k, entry, "w");
    await waitFor("writes flowing", () => w.okSince(0) >= 5, ELECT_MS);
    const t0 = performance.now();
    setClockOffset(k.clockFile(leader), AHEAD_MS);
    const times: Record<string, number> = {};
    const mark = (what: string) => {
      times[what] ??= Math.round(performance.now() - t0);
    };
    let newLeader: string | undefined;
    await waitFor("skew seen, step-down, and a new leader agreed on", async () => {
      const [s, l] = await Promise.all([status(k, leader), agreedLeader(k.c, k.nodes)]);
      if (s.clock.skewed) mark("skewed leader refuses writes (/status clock.skewed)");
      if (logged(k, leader, CLOCK_SKEWED_LOG)) mark("peers' measurements confirm the skew: the election hears it");
      if (s.role !== "leader") mark("skewed leader stepped down");
      if (l !== null && l.node !== leader) {
        newLeader = l.node;
        mark(`new leader ${l.node} (epoch ${l.epoch}) agreed on by all three`);
      }
      return newLeader !== undefined && Object.keys(times).length === 4;
    }, ELECT_MS, 10);
    const tNew = performance.now();
    await waitFor("writes through the new leader", () => w.okSince(tNew) >= 20, ELECT_MS);
    await w.stop();
    const refusedDuring = w.results.filter((r) => r.sentMs >= t0 && r.status !== 200);
    const log = Object.entries(times).sort((a, b) => a[1] - b[1]).map(([what, ms]) => `  +${String(ms).padStart(5)} ms  ${what}`);
    console.log(
      [
        `skewed leader ${leader}: wall clock moved ${AHEAD_MS} ms ahead at +0 ms (writes through ${entry}, one at a time)`,
        ...log,
        `  writes sent after the skew: ${w.results.filter((r) => r.sentMs >= t0).length}, refused: ${refusedDuring.length} (${[...new Set(refusedDuring.map((r) => r.code))].join(", ") || "none"})`,
      ].join("\n"),
    );
    expect(newLeader).not.toBe(leader);
    expect(Object.keys(times)).toHaveLength(4);
    // Every write sent once the new leader was agreed on succeeded.
    expect(w.results.filter((r) => r.sentMs >= tNew).every((r) => r.status === 200)).toBe(true);
    expect(await put(k, leader, "to-the-skewed-one", 1)).toMatchObject({ status: 503, code: "clock_skew" });
    // Nothing the skewed leader stamped is stored ahead of real time (put() checked each acknowledged one).
    for (const n of k.nodes) {
      const items = (await call(`${url(k, n)}/kv?prefix=w-&limit=1000`)).body.items as Array<{ version: { hlc: string } }>;
      for (const it of items) expect((decodeHlc(it.version.hlc) as { wallMs: number }).wallMs).toBeLessThanOrEqual(Date.now() + MAX_CLOCK_SKEW_MS);
    }
  });

  it("a wall clock stepped back 10 s under load: no election, no step-down, leases hold, writes go on, and stored versions never go back", async () => {
    const k = await startClockCluster();
    const { leader, followers } = await regionLeader(k.c, REGION);
    await clocksMeasured(k);
    // The leader serves once a majority took its epoch; the third node may hear it a moment later.
    // The baseline is the state every node agrees on.
    const agreed = await waitFor(`every node following ${leader} in one epoch`, async () => {
      const l = await agreedLeader(k.c, k.nodes);
      return l?.node === leader ? l : null;
    }, ELECT_MS);
    const epoch = agreed.epoch;
    // Watch every node's role and epoch the whole time: any change is a spurious election or step-down.
    const changes: string[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const n of k.nodes) {
          const s = await status(k, n);
          if (s.epoch !== epoch || (n === leader ? s.role !== "leader" : s.role !== "follower" || s.leader !== leader)) changes.push(`${n}: ${s.role}, leader ${s.leader}, epoch ${s.epoch}`);
        }
      }
    })();
    const w = writer(k, leader, "j");
    await waitFor("writes flowing", () => w.okSince(0) >= 5, ELECT_MS);

    // One follower's clock goes back 10 s: it is skewed (refuses its own clients), but it moves no lease.
    const jumper = followers[0] as string;
    const t1 = performance.now();
    setClockOffset(k.clockFile(jumper), -10_000);
    await waitFor(`${jumper} to call its clock skewed`, async () => (await status(k, jumper)).clock.skewed === true, DETECT_MS);
    expect(await put(k, jumper, "from-jumper", 1)).toMatchObject({ status: 503, code: "clock_skew" });
    setClockOffset(k.clockFile(jumper), 0);
    await waitFor(`${jumper} to call its clock good again`, async () => (await status(k, jumper)).clock.skewed === false, DETECT_MS);

    // Every clock of the region goes back 10 s at once, the leader's included: they still agree,
    // so after the re-measure window nobody is skewed; the leader's HLC holds its ground.
    const hlcBefore = Math.max(...w.results.filter((r) => r.status === 200).map((r) => r.hlcWallMs as number));
    const t2 = performance.now();
    for (const n of k.nodes) setClockOffset(k.clockFile(n), -10_000);
    await waitFor("writes acknowledged after the step", () => w.okSince(t2) >= 30, ELECT_MS);
    await w.stop();
    watching = false;
    await watch;

    expect(changes, "role or epoch changes during the steps").toEqual([]);
    // A write still in flight at t2 may reach the leader after its own clock stepped: it belongs
    // to the second step, so the first window holds the writes answered before t2.
    expect(w.results.filter((r) => r.sentMs >= t1 && r.doneMs < t2 && r.status !== 200), "writes to the leader refused while a follower jumped").toEqual([]);
    const refused = w.results.filter((r) => r.doneMs >= t2 && r.status !== 200);
    // Refused only in the re-measure window after the step, and only for the clock.
    expect(refused.every((r) => r.code === "clock_skew")).toBe(true);
    const oks = w.results.filter((r) => r.status === 200).map((r) => r.hlcWallMs as number);
    // Stored versions never go back: each acknowledged write is stamped at or after the one before.
    for (let i = 1; i < oks.length; i++) expect(oks[i]).toBeGreaterThanOrEqual(oks[i - 1] as number);
    expect(Math.min(...w.results.filter((r) => r.sentMs >= t2 && r.status === 200).map((r) => r.hlcWallMs as number))).toBeGreaterThanOrEqual(hlcBefore);
    console.log(`clock step back 10 s on every node: ${refused.length} writes refused with clock_skew while re-measuring, then ${w.okSince(t2)} acknowledged; no role or epoch change`);
  });
});
