// Overload (issue 14): a region leader offered ten times the write rate it
// sustains. Real nodes (the built CLI in child processes, one 3-node region),
// written through the HTTP API. First the sustainable rate and the unloaded
// latency are measured with a closed loop (a fixed number of writers, each
// waiting for its answer); then an open loop offers 10x that rate for the
// same time, sending on schedule whatever the answers, so the node sees the
// arrivals a real flood brings. Measures, each next to its target:
// (1) elections during the flood: 0 (geokv_elections_total over the region,
//     and the leader and epoch the same before and after);
// (2) acknowledged writes lost: 0 (every key answered 2xx is read back from
//     every node of the region afterwards);
// (3) p99 latency of the accepted writes: <= 3x the unloaded p99;
// (4) the share of the offered writes shed with 503 overloaded (reported).
// The baseline is the same region, same run, unloaded.

import { fmt, type BenchSection } from "./report.js";
import { benchSeconds, buildGeokv, envNumber, HttpClient, jsonValue, loadAverage, metricValue, percentile, sleep, startGeokv, verdict, waitFor, withCleanup, type GeokvCluster } from "./support.js";

const REGION = "ov";
const NODES = [`${REGION}-1`, `${REGION}-2`, `${REGION}-3`];
/** Writers of the closed loop that measures the sustainable rate and the unloaded latency. */
const CLOSED_LOOP_WRITERS = 16;
/** The offered rate of the flood, as a multiple of the sustainable rate. */
const OVERLOAD_FACTOR = 10;
/** The open loop sends a slice of its requests every this many ms. */
const TICK_MS = 5;
/** Connections the open loop may use: enough that the client never queues (shed answers come back at once). */
const OPEN_LOOP_SOCKETS = 2048;
/** Bytes of each value. */
const VALUE_BYTES = 100;
/** A request without an answer after this long counts as failed. */
const REQUEST_TIMEOUT_MS = 15_000;
const P99_TARGET_FACTOR = 3;
/** Page size of GET /kv when the accepted keys are read back. */
const LIST_LIMIT = 1000;
/**
 * The in-flight bound the leader runs with, as a multiple of the closed
 * loop's writers: a bound on what the node holds, sized to what it holds
 * when it is busy but not overloaded (the default, 512, is sized for larger
 * machines than this bench's; README, "Overload").
 */
const INFLIGHT_PER_WRITER = 4;

interface Status {
  readonly leader: string | null;
  readonly epoch: number;
}

/** Answers of a run of writes. */
interface Run {
  readonly offered: number;
  readonly accepted: string[];
  readonly latenciesMs: number[];
  readonly shed: number;
  readonly otherFailures: Map<string, number>;
  readonly seconds: number;
}

function newRun(): Run & { otherFailures: Map<string, number> } {
  return { offered: 0, accepted: [], latenciesMs: [], shed: 0, otherFailures: new Map(), seconds: 0 };
}

/** Sends one write and files its answer in `run`. */
async function writeOne(client: HttpClient, url: string, key: string, i: number, run: Run & { offered: number; shed: number; seconds: number }): Promise<void> {
  const t0 = performance.now();
  const mutable = run as { offered: number; shed: number };
  mutable.offered++;
  try {
    const a = await client.send("PUT", `${url}/kv/${key}`, jsonValue(VALUE_BYTES, i), REQUEST_TIMEOUT_MS);
    if (a.status >= 200 && a.status < 300) {
      run.accepted.push(key);
      run.latenciesMs.push(a.receivedMs - t0);
    } else if (a.status === 503 && a.body.includes('"overloaded"')) {
      mutable.shed++;
    } else {
      const what = `${a.status} ${a.body.slice(0, 80)}`;
      run.otherFailures.set(what, (run.otherFailures.get(what) ?? 0) + 1);
    }
  } catch (err) {
    const what = (err as Error).message.slice(0, 80);
    run.otherFailures.set(what, (run.otherFailures.get(what) ?? 0) + 1);
  }
}

/** `writers` writers, each sending its next write when the last is answered, for `seconds`. */
async function closedLoop(client: HttpClient, url: string, prefix: string, writers: number, seconds: number): Promise<Run> {
  const run = newRun();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let next = 0;
  await Promise.all(Array.from({ length: writers }, async () => {
    while (performance.now() < end) {
      const i = next++;
      await writeOne(client, url, `${prefix}${i}`, i, run);
    }
  }));
  return { ...run, seconds: (performance.now() - t0) / 1000 };
}

/** Offers `ratePerS` writes a second for `seconds`, on schedule, whatever the answers; resolves when every answer is in. */
async function openLoop(client: HttpClient, url: string, prefix: string, ratePerS: number, seconds: number): Promise<Run & { sendLagMs: number }> {
  const run = newRun();
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let sent = 0;
  let sendLagMs = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * ratePerS);
    for (; sent < due; sent++) pending.push(writeOne(client, url, `${prefix}${sent}`, sent, run));
    // How far behind schedule the sender fell (the load generator's own limit on this machine).
    sendLagMs = Math.max(sendLagMs, performance.now() - t0 - (sent / ratePerS) * 1000);
    await sleep(TICK_MS);
  }
  const seconds_ = (performance.now() - t0) / 1000;
  await Promise.all(pending);
  return { ...run, seconds: seconds_, sendLagMs };
}

async function status(client: HttpClient, url: string): Promise<Status> {
  return client.json<Status>(`${url}/status`);
}

async function elections(client: HttpClient, c: GeokvCluster): Promise<number> {
  let sum = 0;
  for (const n of NODES) sum += metricValue((await client.get(`${c.urls.get(n) as string}/metrics`)).body, "geokv_elections_total", n);
  return sum;
}

/** Every key under `prefix` a node holds. */
async function keysOf(client: HttpClient, url: string, prefix: string): Promise<Set<string>> {
  const keys = new Set<string>();
  let after = "";
  for (;;) {
    const page = await client.json<{ items: { key: string }[]; next: string | null }>(`${url}/kv?prefix=${encodeURIComponent(prefix)}&limit=${LIST_LIMIT}${after === "" ? "" : `&after=${encodeURIComponent(after)}`}`);
    for (const it of page.items) keys.add(it.key);
    if (page.next === null) return keys;
    after = page.next;
  }
}

const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const msText = (x: number) => `${fmt(x, 1)} ms`;

/** Runs the overload benchmark and returns its BENCHMARKS.md section. */
export async function run(): Promise<BenchSection> {
  return withCleanup(async () => {
    const seconds = benchSeconds(10);
    const factor = envNumber("BENCH_OVERLOAD_FACTOR", OVERLOAD_FACTOR);
    const loadAtStart = loadAverage();
    const build = buildGeokv();
    const inflightMax = CLOSED_LOOP_WRITERS * INFLIGHT_PER_WRITER;
    const c = await startGeokv(build, [{ region: REGION, nodes: 3 }], { GEOKV_ADMIN_TOKEN: "", GEOKV_MAX_INFLIGHT_REQUESTS: String(inflightMax) });
    const client = new HttpClient(OPEN_LOOP_SOCKETS);
    const any = c.urls.get(NODES[0] as string) as string;
    const ready = await waitFor("the region to have a leader", async () => {
      const s = await status(client, any);
      return s.leader === null ? null : s;
    }, 30_000);
    const leaderUrl = c.urls.get(ready.leader as string) as string;

    console.log(`closed loop: ${CLOSED_LOOP_WRITERS} writers to the leader ${ready.leader} for ${seconds} s`);
    // A short warm-up first (JIT, SQLite's cache), not counted.
    await closedLoop(client, leaderUrl, "warm-", CLOSED_LOOP_WRITERS, Math.min(2, seconds));
    const base = await closedLoop(client, leaderUrl, "base-", CLOSED_LOOP_WRITERS, seconds);
    const rate = base.accepted.length / base.seconds;
    const baseP99 = percentile(sorted(base.latenciesMs), 99);
    console.log(`  ${fmt(rate)} writes/s sustained, p50 ${msText(percentile(sorted(base.latenciesMs), 50))} p99 ${msText(baseP99)}; failures ${JSON.stringify([...base.otherFailures])}`);

    const before = { status: await status(client, leaderUrl), elections: await elections(client, c) };
    const offeredRate = rate * factor;
    console.log(`open loop: ${fmt(offeredRate)} writes/s offered (${factor}x) for ${seconds} s`);
    const flood = await openLoop(client, leaderUrl, "flood-", offeredRate, seconds);
    const after = { status: await status(client, leaderUrl), elections: await elections(client, c) };
    const floodSorted = sorted(flood.latenciesMs);
    const floodP99 = percentile(floodSorted, 99);
    const shedShare = flood.offered === 0 ? 0 : flood.shed / flood.offered;
    const otherFailed = [...flood.otherFailures.values()].reduce((a, b) => a + b, 0);
    console.log(`  offered ${fmt(flood.offered)} (${fmt(flood.offered / flood.seconds)}/s; the sender fell at most ${msText(flood.sendLagMs)} behind), accepted ${fmt(flood.accepted.length)} (${fmt(flood.accepted.length / flood.seconds)}/s), shed ${fmt(flood.shed)} (${fmt(shedShare * 100, 1)}%), other failures ${fmt(otherFailed)} ${JSON.stringify([...flood.otherFailures].slice(0, 5))}; accepted p50 ${msText(percentile(floodSorted, 50))} p99 ${msText(floodP99)}`);

    // Every acknowledged write, on every node of the region, once replication has caught up.
    const acked = [...base.accepted, ...flood.accepted];
    const missing = new Map<string, number>();
    for (const n of NODES) {
      const url = c.urls.get(n) as string;
      let lacking = acked.length;
      await waitFor(`${n} holding every acknowledged write`, async () => {
        const [b, f] = [await keysOf(client, url, "base-"), await keysOf(client, url, "flood-")];
        lacking = acked.filter((k) => !(k.startsWith("base-") ? b : f).has(k)).length;
        return lacking === 0;
      }, 60_000).catch(() => undefined);
      missing.set(n, lacking);
    }
    const lost = Math.max(...missing.values());
    const newElections = after.elections - before.elections;
    const sameLeader = after.status.leader === before.status.leader && after.status.epoch === before.status.epoch;
    const shedMetric = metricValue((await client.get(`${leaderUrl}/metrics`)).body, 'geokv_shed_total{bound="inflightRequests"}', leaderUrl);
    await c.close();
    client.close();

    const rows: string[][] = [["figure", "geokv under the flood", "baseline: the same leader unloaded", "flood / baseline", "target", "verdict"]];
    rows.push(["write rate offered / accepted (2xx)", `${fmt(flood.offered / flood.seconds)}/s offered (${fmt(flood.offered / flood.seconds / rate, 1)}x) / ${fmt(flood.accepted.length / flood.seconds)}/s accepted`, `${fmt(rate)}/s (${CLOSED_LOOP_WRITERS} closed-loop writers)`, `${fmt(flood.accepted.length / flood.seconds / rate, 2)}x accepted`, `${factor}x offered`, verdict(flood.offered / flood.seconds >= 0.9 * offeredRate)]);
    rows.push(["(1) elections in the region during the flood (geokv_elections_total; leader and epoch before/after)", `${fmt(newElections)} (${before.status.leader} epoch ${before.status.epoch} -> ${after.status.leader} epoch ${after.status.epoch})`, "", "", "0, same leader and epoch", verdict(newElections === 0 && sameLeader)]);
    rows.push(["(2) acknowledged writes missing from a node of the region afterwards", `${fmt(lost)} of ${fmt(acked.length)} (${[...missing].map(([n, m]) => `${n} ${m}`).join(", ")})`, "", "", "0", verdict(lost === 0)]);
    rows.push(["(3) p99 latency of accepted writes", msText(floodP99), msText(baseP99), `${fmt(floodP99 / baseP99, 2)}x`, `<= ${P99_TARGET_FACTOR}x unloaded`, verdict(floodP99 <= P99_TARGET_FACTOR * baseP99)]);
    rows.push(["(4) share of offered writes shed, 503 overloaded with Retry-After", `${fmt(shedShare * 100, 1)}% (${fmt(flood.shed)}; the leader's geokv_shed_total{bound="inflightRequests"} ${fmt(shedMetric)})`, "", "", "reported", ""]);
    rows.push(["other failures during the flood (neither 2xx nor overloaded)", `${fmt(otherFailed)}${otherFailed > 0 ? ` ${JSON.stringify([...flood.otherFailures].slice(0, 3))}` : ""}`, `${fmt([...base.otherFailures.values()].reduce((a, b) => a + b, 0))}`, "", "", ""]);
    const misses = [
      ...(flood.offered / flood.seconds >= 0.9 * offeredRate ? [] : [`offered rate (${fmt(flood.offered / flood.seconds / rate, 1)}x: the generator could not keep its schedule)`]),
      ...(newElections === 0 && sameLeader ? [] : ["elections"]),
      ...(lost === 0 ? [] : ["lost writes"]),
      ...(floodP99 <= P99_TARGET_FACTOR * baseP99 ? [] : ["p99"]),
    ];
    return {
      name: "overload",
      title: "Overload: a leader offered 10x its sustainable write rate",
      table: rows,
      notes: [
        `Built from ${build.label}. Load average at the start: ${loadAtStart}. One 3-node region of real geokv processes on loopback, writes PUT /kv/<key>?ack=region (the default: a majority of the region) of ${VALUE_BYTES}-byte values to the leader, each to a new key.`,
        `Baseline: ${CLOSED_LOOP_WRITERS} closed-loop writers for ${seconds} s after a warm-up; its rate is the sustainable rate and its p99 the unloaded p99. Flood: an open loop (sends every ${TICK_MS} ms on schedule, whatever the answers, over up to ${OPEN_LOOP_SOCKETS} keep-alive connections) at ${factor}x that rate for ${seconds} s; latency is timed from the moment a write is handed to the client to its answer. The bench process, the load and all three nodes share this machine's cores.`,
        `The leader runs with GEOKV_MAX_INFLIGHT_REQUESTS=${inflightMax} (${INFLIGHT_PER_WRITER}x the closed loop's writers) and every other bound at its default; a write past it is answered 503 overloaded with Retry-After: 1 before it is read further. Lost writes: every key answered 2xx (baseline and flood) is looked for on each node with GET /kv?prefix= once replication has caught up (up to 60 s).`,
        misses.length === 0 ? "Every target met." : `Missed: ${misses.join(", ")}. Profile with BENCH_PROFILE_DIR=DIR npm run bench -- overload.`,
      ],
    };
  });
}
