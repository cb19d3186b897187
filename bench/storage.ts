// Storage: what a geokv node's disk and memory come to once the op log is
// compacted (issue 13), and what compacting costs its event loop. Real nodes
// (the built CLI in child processes, real SQLite, one single-node region
// each) written through the HTTP API. The baseline is the same node with
// compaction held off (a retain bound larger than any run writes), given the
// same writes side by side, so the ratios say what compaction buys and costs.
// Measures, each next to its target:
// (1) disk after BENCH_STORAGE_SCALE (default 1,000,000) overwrites of 10,000
//     keys, compacted: <= 3x the bytes of the live data (keys + values, read
//     back from the node);
// (2) RSS of a node holding BENCH_STORAGE_SCALE keys: <= 250 MB;
// (3) bootstrap of a new follower from a snapshot of BENCH_STORAGE_SCALE
//     keys: >= 50% of the rate at which the same node code loads those rows
//     from a local SQLite file in the same run (bench/bootstrap-part.ts);
// (4) the largest event-loop delay while compacting under write load
//     (the node's own geokv_event_loop_delay_seconds): <= 50 ms; once for the
//     background passes that keep up with the overwrites, once for the
//     baseline's whole uncompacted log, compacted after a restart with the
//     small retain bound while writes go on; and, with no target of its own,
//     once more with both nodes offered a quarter of their rate (4c), to tell the
//     delay compaction brings from the one saturation brings.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { bootstrapReport, measureBootstrap } from "./bootstrap-part.js";
import { fmt, type BenchSection } from "./report.js";
import { compactNow, mib, ms, startOne, storageStatus, VALUE_BYTES, WRITE_CONCURRENCY, writeMany, type OneNode } from "./storage-support.js";
import { buildGeokv, envNumber, HttpClient, loadAverage, metricValue, percentile, sleep, verdict, waitFor, withCleanup } from "./support.js";

/** Distinct keys the overwrites go to (figure 1). */
const OVERWRITE_KEYS = 10_000;
/** Op-log rows a compacted node keeps (GEOKV_OP_LOG_RETAIN_OPS): small, so the figure is the compacted size. */
const RETAIN_OPS = 1000;
/** The baseline's retain bound: more ops than any run writes, so its log is never compacted. */
const UNCOMPACTED_RETAIN_OPS = 1_000_000_000;
/** How often a node's /metrics is scraped (each scrape resets its event-loop max). */
const SCRAPE_EVERY_MS = 500;
/** Pause between two /health probes while a backlog is compacted. */
const HEALTH_EVERY_MS = 20;
/** How often /status is read to see whether a backlog is compacted. */
const STATUS_EVERY_MS = 250;
/** A backlog counts as compacted once the log is within a tenth of it, at most this many ops, of the retain bound (writes go on meanwhile). */
const BACKLOG_DONE_SLACK_OPS_MAX = 10_000;
/** Past this, compacting a backlog counts as not finished (and is reported so). */
const BACKLOG_TIMEOUT_MS = 180_000;
/** Write load after the backlog is compacted and the explicit pass has answered, so the last scrape sees a steady loop. */
const AFTER_BACKLOG_MS = 2000;
/** How long (4c) offers its paced writes, and the share of (1)'s rate it offers. */
const PACED_MS = 60_000;
const PACED_SHARE = 0.25;
/** Idle time after the load before RSS is read a second time (garbage the load left may be collected by then). */
const RSS_SETTLE_MS = 5000;
/** Page size of GET /kv (the API's largest). */
const LIST_LIMIT = 1000;

const DISK_TARGET_RATIO = 3;
/** 250 MB, read as decimal megabytes: the stricter reading (238.4 MiB). */
const RSS_TARGET_BYTES = 250e6;
const LOOP_DELAY_TARGET_MS = 50;

/** "n what", or "what: not in the answer" for a count the answer lacks. */
const counted = (n: number | undefined, what: string) => (n === undefined ? `${what}: not in the answer` : `${fmt(n)} ${what}`);
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a / b) ? `${fmt(a / b, 2)}x` : "n/a");

/** Bytes of the files in a node's data folder (database, WAL, shared memory) as the file system has them. */
function filesBytes(n: OneNode): { total: number; byFile: Record<string, number> } {
  const dir = join(n.cluster.files.dataDir, n.node);
  const byFile: Record<string, number> = {};
  let total = 0;
  for (const f of readdirSync(dir)) {
    const st = statSync(join(dir, f));
    if (!st.isFile()) continue;
    byFile[f] = st.size;
    total += st.size;
  }
  return { total, byFile };
}

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM); NaN where /proc is not there. */
function procStatusBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The node's JS heap and external memory from its /metrics (prom-client's default metrics); NaN for one not exported. */
async function heapBytes(n: OneNode): Promise<{ heapUsed: number; heapTotal: number; external: number }> {
  const body = (await n.client.get(`${n.url}/metrics`)).body;
  const read = (series: string) => {
    try {
      return metricValue(body, series, n.url);
    } catch {
      return Number.NaN;
    }
  };
  return {
    heapUsed: read("geokv_process_nodejs_heap_size_used_bytes"),
    heapTotal: read("geokv_process_nodejs_heap_size_total_bytes"),
    external: read("geokv_process_nodejs_external_memory_bytes"),
  };
}

/** The live kv data of a node: every key under `prefix`, paged through GET /kv, and its key + value bytes. */
async function liveData(n: OneNode, prefix: string): Promise<{ keys: number; bytes: number }> {
  let keys = 0;
  let bytes = 0;
  let after: string | null = "";
  while (after !== null) {
    const page: { items: { key: string; value: unknown }[]; next: string | null } = await n.client.json(`${n.url}/kv?prefix=${encodeURIComponent(prefix)}&limit=${LIST_LIMIT}${after === "" ? "" : `&after=${encodeURIComponent(after)}`}`);
    for (const it of page.items) {
      keys++;
      // The stored value is compact JSON (jsonValue), so stringify gives back its bytes exactly.
      bytes += Buffer.byteLength(it.key) + Buffer.byteLength(JSON.stringify(it.value));
    }
    after = page.next;
  }
  return { keys, bytes };
}

/** The largest event-loop delay a node reported over a window, from its /metrics scraped every SCRAPE_EVERY_MS, and what the loop's thread did meanwhile. */
interface LoopDelay {
  readonly maxMs: number;
  readonly scrapes: number;
  readonly failedScrapes: number;
  /** Scrapes whose delay was over the target. */
  readonly overTarget: number;
  /** The longest GC pause of the window (geokv_gc_pause_seconds max); NaN for a build without the gauge. */
  readonly gcMaxMs: number;
  /** The longest GC pause in the scrape with the largest delay. */
  readonly gcAtWorstMs: number;
  /** The node's main thread, from /proc/<pid>/schedstat over the window: ms it ran and ms it waited, runnable, for a CPU, per second of wall time. */
  readonly ranMsPerS: number;
  readonly waitedMsPerS: number;
}

/** A gauge of a /metrics body, NaN when the build does not export it. */
function metricOrNaN(body: string, series: string, url: string): number {
  try {
    return metricValue(body, series, url);
  } catch {
    return Number.NaN;
  }
}

/** The main thread's CPU time and run-queue wait (ns) from /proc/<pid>/schedstat; NaN where /proc lacks it. */
function schedstat(pid: number): { ranNs: number; waitedNs: number } {
  try {
    const [ran, waited] = readFileSync(`/proc/${pid}/schedstat`, "utf8").trim().split(" ").map(Number);
    return { ranNs: ran ?? Number.NaN, waitedNs: waited ?? Number.NaN };
  } catch {
    return { ranNs: Number.NaN, waitedNs: Number.NaN };
  }
}

/**
 * Scrapes `n`'s geokv_event_loop_delay_seconds{stat="max"} and
 * geokv_gc_pause_seconds{stat="max"} until stopped. The node resets both at
 * every scrape, so the first scrape (discarded) starts the window, and the
 * largest of the later ones is the window's largest delay.
 */
function watchLoopDelay(n: OneNode): { stop(): Promise<LoopDelay> } {
  let running = true;
  let maxMs = 0;
  let gcMaxMs = 0;
  let gcAtWorstMs = Number.NaN;
  let overTarget = 0;
  let scrapes = 0;
  let failedScrapes = 0;
  const pid = n.cluster.pid(n.node);
  const scrape = async () => {
    try {
      const a = await n.client.get(`${n.url}/metrics`);
      return {
        loopMs: metricValue(a.body, 'geokv_event_loop_delay_seconds{stat="max"}', n.url) * 1000,
        gcMs: metricOrNaN(a.body, 'geokv_gc_pause_seconds{stat="max"}', n.url) * 1000,
      };
    } catch (err) {
      failedScrapes++;
      console.error(`  ${n.node} /metrics: ${(err as Error).message}`);
      return undefined;
    }
  };
  let t0 = 0;
  let sched0 = { ranNs: 0, waitedNs: 0 };
  const loop = (async () => {
    await scrape();
    t0 = performance.now();
    sched0 = schedstat(pid);
    while (running) {
      await sleep(SCRAPE_EVERY_MS);
      const v = await scrape();
      if (v === undefined) continue;
      scrapes++;
      if (v.loopMs > LOOP_DELAY_TARGET_MS) overTarget++;
      if (v.loopMs > maxMs) {
        maxMs = v.loopMs;
        gcAtWorstMs = v.gcMs;
      }
      gcMaxMs = Math.max(gcMaxMs, v.gcMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const wallS = (performance.now() - t0) / 1000;
      const sched1 = schedstat(pid);
      return {
        maxMs, scrapes, failedScrapes, overTarget, gcMaxMs, gcAtWorstMs,
        ranMsPerS: (sched1.ranNs - sched0.ranNs) / 1e6 / wallS,
        waitedMsPerS: (sched1.waitedNs - sched0.waitedNs) / 1e6 / wallS,
      };
    },
  };
}

/** What the loop's thread did over a window, for a table cell. */
const loopDetail = (l: LoopDelay) =>
  `${fmt(l.overTarget)} of ${fmt(l.scrapes)} scrapes over ${LOOP_DELAY_TARGET_MS} ms; longest GC pause ${ms(l.gcMaxMs)} (${ms(l.gcAtWorstMs)} in the worst scrape); main thread ran ${fmt(l.ranMsPerS)} ms/s and waited for a CPU ${fmt(l.waitedMsPerS)} ms/s`;

/** /health round trips timed from the bench process, one at a time, until stopped. */
function probeHealth(n: OneNode): { stop(): Promise<{ p50Ms: number; p99Ms: number; maxMs: number; probes: number; failed: number }> } {
  const client = new HttpClient(1);
  let running = true;
  const times: number[] = [];
  let failed = 0;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const a = await client.send("GET", `${n.url}/health`, undefined, 30_000);
        if (a.status === 200) times.push(a.receivedMs - t0);
        else failed++;
      } catch {
        failed++;
      }
      await sleep(HEALTH_EVERY_MS);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      client.close();
      const s = times.sort((a, b) => a - b);
      return { p50Ms: percentile(s, 50), p99Ms: percentile(s, 99), maxMs: s[s.length - 1] ?? Number.NaN, probes: s.length, failed };
    },
  };
}

/** Runs the storage benchmark and returns its BENCHMARKS.md section. */
export async function run(): Promise<BenchSection> {
  return withCleanup(async () => {
    const scale = Math.round(envNumber("BENCH_STORAGE_SCALE", 1_000_000));
    const keys = Math.min(OVERWRITE_KEYS, scale);
    const loadAtStart = loadAverage();
    const build = buildGeokv();
    const overwritePath = (i: number) => `/kv/bench-${i % keys}`;

    // ---- (1) and (4a): the overwrites, on a compacted node and on the baseline side by side.
    console.log(`(1) ${fmt(scale)} overwrites of ${fmt(keys)} keys, retain ${fmt(RETAIN_OPS)} ops next to an uncompacted baseline`);
    const compacted = await startOne(build, "compacted", { GEOKV_OP_LOG_RETAIN_OPS: String(RETAIN_OPS) });
    const uncompacted = await startOne(build, "uncompacted", { GEOKV_OP_LOG_RETAIN_OPS: String(UNCOMPACTED_RETAIN_OPS) });
    const cLoop = watchLoopDelay(compacted);
    const uLoop = watchLoopDelay(uncompacted);
    const [cWrites, uWrites] = await Promise.all([
      writeMany(compacted, "compacted", scale, overwritePath),
      writeMany(uncompacted, "uncompacted", scale, overwritePath),
    ]);
    const [cLoopA, uLoopA] = await Promise.all([cLoop.stop(), uLoop.stop()]);
    const cBefore = await storageStatus(compacted);
    const uBefore = await storageStatus(uncompacted);
    const cCompact = await compactNow(compacted);
    const uCompact = await compactNow(uncompacted);
    const cAfter = await storageStatus(compacted);
    const uAfter = await storageStatus(uncompacted);
    const cFiles = filesBytes(compacted);
    const uFiles = filesBytes(uncompacted);
    const cLive = await liveData(compacted, "bench-");
    const uLive = await liveData(uncompacted, "bench-");
    console.log(`  compacted: ${fmt(cWrites.ok / cWrites.seconds)} writes/s; before the pass ${JSON.stringify(cBefore)}; POST /admin/compact ${ms(cCompact.tookMs)} ${JSON.stringify(cCompact.answer)}; after ${JSON.stringify(cAfter)}; files ${JSON.stringify(cFiles.byFile)}; live ${fmt(cLive.keys)} keys ${fmt(cLive.bytes)} B; loop max ${ms(cLoopA.maxMs)}, ${loopDetail(cLoopA)}`);
    console.log(`  uncompacted: ${fmt(uWrites.ok / uWrites.seconds)} writes/s; before the pass ${JSON.stringify(uBefore)}; POST /admin/compact ${ms(uCompact.tookMs)} ${JSON.stringify(uCompact.answer)}; after ${JSON.stringify(uAfter)}; files ${JSON.stringify(uFiles.byFile)}; live ${fmt(uLive.keys)} keys ${fmt(uLive.bytes)} B; loop max ${ms(uLoopA.maxMs)}, ${loopDetail(uLoopA)}`);

    // ---- (4c): the same two nodes at an offered rate, PACED_SHARE of the slower one's rate in (1), for PACED_MS.
    const pacedRate = Math.max(1, Math.round(Math.min(cWrites.ok / cWrites.seconds, uWrites.ok / uWrites.seconds) * PACED_SHARE));
    console.log(`(4c) both nodes offered ${fmt(pacedRate)} writes/s each for ${PACED_MS / 1000} s (${fmt(PACED_SHARE * 100)}% of the slower one's rate in (1))`);
    const cPacedLoop = watchLoopDelay(compacted);
    const uPacedLoop = watchLoopDelay(uncompacted);
    const pacedUntil = performance.now() + PACED_MS;
    const pacedOpts = { until: () => performance.now() >= pacedUntil, ratePerS: pacedRate };
    const [cPaced, uPaced] = await Promise.all([writeMany(compacted, "compacted, paced", 0, overwritePath, pacedOpts), writeMany(uncompacted, "uncompacted, paced", 0, overwritePath, pacedOpts)]);
    const [cLoopC, uLoopC] = await Promise.all([cPacedLoop.stop(), uPacedLoop.stop()]);
    const cPacedAfter = await storageStatus(compacted);
    console.log(`  compacted: ${fmt(cPaced.ok / cPaced.seconds)} writes/s (${fmt(cPaced.failed)} failed), loop max ${ms(cLoopC.maxMs)}, ${loopDetail(cLoopC)}; log ${fmt(cPacedAfter.opLogOps)} ops after`);
    console.log(`  uncompacted: ${fmt(uPaced.ok / uPaced.seconds)} writes/s (${fmt(uPaced.failed)} failed), loop max ${ms(uLoopC.maxMs)}, ${loopDetail(uLoopC)}`);
    await compacted.cluster.close();

    // ---- (4b): the baseline's whole log compacted after a restart with the small bound, under write load.
    console.log(`(4) restarting the uncompacted node with retain ${fmt(RETAIN_OPS)} ops: its ${fmt(uAfter.opLogOps)}-op log is compacted while writes go on`);
    uncompacted.client.close();
    await uncompacted.cluster.restart(uncompacted.node, { GEOKV_OP_LOG_RETAIN_OPS: String(RETAIN_OPS) });
    const backlog: OneNode = { ...uncompacted, client: new HttpClient(WRITE_CONCURRENCY + 4) };
    await waitFor(`${backlog.node} leading its region after the restart`, async () => (await backlog.client.json<{ leader: string | null }>(`${backlog.url}/status`)).leader === backlog.node, 20_000);
    const bLoop = watchLoopDelay(backlog);
    const bHealth = probeHealth(backlog);
    let writing = true;
    const t0 = performance.now();
    const bWritesP = writeMany(backlog, "during the backlog", 0, overwritePath, { until: () => !writing });
    let drainedMs: number | null = null;
    let lastOps = uAfter.opLogOps;
    const doneOps = RETAIN_OPS + Math.min(BACKLOG_DONE_SLACK_OPS_MAX, Math.ceil(uAfter.opLogOps / 10));
    while (performance.now() - t0 < BACKLOG_TIMEOUT_MS) {
      lastOps = (await storageStatus(backlog)).opLogOps;
      if (lastOps <= doneOps) {
        drainedMs = performance.now() - t0;
        break;
      }
      await sleep(STATUS_EVERY_MS);
    }
    console.log(drainedMs === null ? `  the log still held ${fmt(lastOps)} ops after ${BACKLOG_TIMEOUT_MS / 1000} s` : `  the log was down to ${fmt(lastOps)} ops after ${ms(drainedMs)}`);
    // One explicit full pass under the same load, whatever the background passes left.
    const bCompact = await compactNow(backlog);
    await sleep(AFTER_BACKLOG_MS);
    writing = false;
    const bWrites = await bWritesP;
    const [bLoopB, bHealthB] = await Promise.all([bLoop.stop(), bHealth.stop()]);
    // As for (1): once the writes have stopped, one pass, then the file is read (mid-load it holds the WAL of the last writes).
    const bFinal = await compactNow(backlog);
    const bAfter = await storageStatus(backlog);
    const bFiles = filesBytes(backlog);
    console.log(`  ${fmt(bWrites.ok / bWrites.seconds)} writes/s meanwhile (${fmt(bWrites.failed)} failed); POST /admin/compact ${ms(bCompact.tookMs)} ${JSON.stringify(bCompact.answer)}; after ${JSON.stringify(bAfter)}; files ${JSON.stringify(bFiles.byFile)}; loop max ${ms(bLoopB.maxMs)}, ${loopDetail(bLoopB)}; final POST /admin/compact ${JSON.stringify(bFinal.answer)}; /health p50 ${ms(bHealthB.p50Ms)} p99 ${ms(bHealthB.p99Ms)} max ${ms(bHealthB.maxMs)}`);
    await backlog.cluster.close();

    // ---- (2): RSS of a node holding `scale` keys, next to the same node before the load.
    console.log(`(2) ${fmt(scale)} distinct keys into one node (default settings)`);
    const big = await startOne(build, "rss", {});
    const pid = big.cluster.pid(big.node);
    const rssIdle = procStatusBytes(pid, "VmRSS");
    const bigWrites = await writeMany(big, "distinct keys", scale, (i) => `/kv/rss-${i}`);
    const rssLoaded = procStatusBytes(pid, "VmRSS");
    const rssPeak = procStatusBytes(pid, "VmHWM");
    const bigStorage = await storageStatus(big);
    const bigHeap = await heapBytes(big);
    await sleep(RSS_SETTLE_MS);
    const rssSettled = procStatusBytes(pid, "VmRSS");
    const settledHeap = await heapBytes(big);
    console.log(`  ${fmt(bigWrites.ok / bigWrites.seconds)} writes/s; RSS idle ${mib(rssIdle)}, after the load ${mib(rssLoaded)}, peak ${mib(rssPeak)}; JS heap used ${mib(bigHeap.heapUsed)} of ${mib(bigHeap.heapTotal)}, external ${mib(bigHeap.external)}; ${RSS_SETTLE_MS / 1000} s later RSS ${mib(rssSettled)}, heap used ${mib(settledHeap.heapUsed)} of ${mib(settledHeap.heapTotal)}; ${JSON.stringify(bigStorage)}`);
    await big.cluster.close();

    // ---- (3): a new follower bootstrapped from a snapshot of `scale` keys, next to a restore of the same rows from a file.
    console.log(`(3) ${fmt(scale)} distinct keys into a 3-node region with one member absent, compacted past it; then the member starts empty`);
    const boot = bootstrapReport(await measureBootstrap(build, scale));

    // ---- the table
    const diskRatio = cAfter.dbBytes / cLive.bytes;
    const filesRatio = cFiles.total / cLive.bytes;
    const cleanA = cWrites.failed === 0 && uWrites.failed === 0 && cLive.keys === keys;
    const loopWorst = Math.max(cLoopA.maxMs, bLoopB.maxMs);
    const rows: string[][] = [["figure", "geokv", "baseline (rows 1, 4: the uncompacted node)", "geokv / baseline", "target", "verdict"]];
    rows.push([`live data after ${fmt(scale)} overwrites of ${fmt(keys)} keys (key + value bytes, read back)`, `${fmt(cLive.bytes)} B (${fmt(cLive.keys)} keys)`, `${fmt(uLive.bytes)} B (${fmt(uLive.keys)} keys)`, "", "", ""]);
    rows.push([
      "(1) disk after the overwrites and POST /admin/compact: /status.storage.dbBytes",
      `${mib(cAfter.dbBytes)} (${fmt(diskRatio, 2)}x live)`,
      `${mib(uAfter.dbBytes)} (${fmt(uAfter.dbBytes / uLive.bytes, 2)}x live)`,
      ratio(cAfter.dbBytes, uAfter.dbBytes),
      `<= ${DISK_TARGET_RATIO}x live data, every write 2xx`,
      verdict(diskRatio <= DISK_TARGET_RATIO && cleanA),
    ]);
    rows.push([
      "(1) the same, files in the node's data folder (db, -wal, -shm)",
      `${mib(cFiles.total)} (${fmt(filesRatio, 2)}x live)`,
      `${mib(uFiles.total)} (${fmt(uFiles.total / uLive.bytes, 2)}x live)`,
      ratio(cFiles.total, uFiles.total),
      `<= ${DISK_TARGET_RATIO}x live data`,
      verdict(filesRatio <= DISK_TARGET_RATIO && cleanA),
    ]);
    rows.push(["op-log rows / op-log bytes after the pass", `${fmt(cAfter.opLogOps)} / ${mib(cAfter.opLogBytes)}`, `${fmt(uAfter.opLogOps)} / ${mib(uAfter.opLogBytes)}`, "", "", ""]);
    rows.push(["overwrites/s (both nodes written at once, 2xx only)", `${fmt(cWrites.ok / cWrites.seconds)} (${fmt(cWrites.failed)} failed)`, `${fmt(uWrites.ok / uWrites.seconds)} (${fmt(uWrites.failed)} failed)`, ratio(cWrites.ok / cWrites.seconds, uWrites.ok / uWrites.seconds), "", ""]);
    rows.push([`(1) the baseline's file after its ${fmt(uAfter.opLogOps)}-op log was compacted (restart with retain ${fmt(RETAIN_OPS)}, 4b): dbBytes`, `${mib(bAfter.dbBytes)} (${fmt(bAfter.dbBytes / uLive.bytes, 2)}x live; files ${mib(bFiles.total)})`, "", "", `<= ${DISK_TARGET_RATIO}x live data`, verdict(bAfter.dbBytes / uLive.bytes <= DISK_TARGET_RATIO)]);
    rows.push([
      `(2) RSS (VmRSS) of a node holding ${fmt(scale)} keys, after the load; baseline: the same node before it`,
      `${mib(rssLoaded)} (peak VmHWM ${mib(rssPeak)}; ${mib(rssSettled)} after ${RSS_SETTLE_MS / 1000} s idle)`,
      mib(rssIdle),
      ratio(rssLoaded, rssIdle),
      `<= 250 MB (${mib(RSS_TARGET_BYTES)}), every write 2xx`,
      verdict(rssLoaded <= RSS_TARGET_BYTES && bigWrites.failed === 0),
    ]);
    rows.push(boot.row);
    rows.push([
      "(4a) largest event-loop delay during the overwrites (background passes every 1 s), geokv_event_loop_delay_seconds max",
      ms(cLoopA.maxMs),
      ms(uLoopA.maxMs),
      ratio(cLoopA.maxMs, uLoopA.maxMs),
      `<= ${LOOP_DELAY_TARGET_MS} ms`,
      verdict(cLoopA.maxMs <= LOOP_DELAY_TARGET_MS),
    ]);
    rows.push([
      `(4b) largest event-loop delay while the ${fmt(uAfter.opLogOps)}-op log is compacted under write load, same gauge`,
      `${ms(bLoopB.maxMs)} (${drainedMs === null ? `not down to ${fmt(doneOps)} ops within ${BACKLOG_TIMEOUT_MS / 1000} s` : `log down to ${fmt(lastOps)} ops in ${fmt(drainedMs / 1000, 1)} s`})`,
      `${ms(uLoopA.maxMs)} (4a's baseline)`,
      ratio(bLoopB.maxMs, uLoopA.maxMs),
      `<= ${LOOP_DELAY_TARGET_MS} ms, log compacted`,
      verdict(bLoopB.maxMs <= LOOP_DELAY_TARGET_MS && drainedMs !== null),
    ]);
    rows.push(["(4a) what the loop's thread did meanwhile (geokv_gc_pause_seconds, /proc/<pid>/schedstat)", loopDetail(cLoopA), loopDetail(uLoopA), "", "", ""]);
    rows.push(["(4b) the same while the log is compacted", loopDetail(bLoopB), "", "", "", ""]);
    rows.push([
      `(4c) largest event-loop delay with both nodes offered ${fmt(pacedRate)} writes/s each (${fmt(PACED_SHARE * 100)}% of the slower one's rate in 4a) for ${PACED_MS / 1000} s, same gauge; the compacted node's background passes keep its log at the bound`,
      `${ms(cLoopC.maxMs)} (${fmt(cPaced.ok / cPaced.seconds)} writes/s, ${fmt(cPaced.failed)} failed; log ${fmt(cPacedAfter.opLogOps)} ops after)`,
      `${ms(uLoopC.maxMs)} (${fmt(uPaced.ok / uPaced.seconds)} writes/s, ${fmt(uPaced.failed)} failed)`,
      ratio(cLoopC.maxMs, uLoopC.maxMs),
      "none (shows what compaction costs off saturation; the target's rows are 4a and 4b)",
      "",
    ]);
    rows.push(["(4c) what the loop's thread did meanwhile", loopDetail(cLoopC), loopDetail(uLoopC), "", "", ""]);
    rows.push([
      "(4b) /health round trip from the bench process meanwhile, p50 / p99 / max (not the event-loop figure: includes the loopback and the bench's own loop)",
      `${ms(bHealthB.p50Ms)} / ${ms(bHealthB.p99Ms)} / ${ms(bHealthB.maxMs)} (${fmt(bHealthB.probes)} probes, ${fmt(bHealthB.failed)} failed)`,
      "",
      "",
      "",
      "",
    ]);

    // What the run teaches, from its own figures only.
    const learned: string[] = [];
    const walBytes = cFiles.byFile["geokv.db-wal"] ?? 0;
    if (walBytes > 0 && !(filesRatio <= DISK_TARGET_RATIO)) {
      const dbOnly = cFiles.byFile["geokv.db"] ?? 0;
      learned.push(
        `Learned, disk: of the compacted node's ${mib(cFiles.total)}, the WAL (geokv.db-wal) is ${mib(walBytes)}, ${fmt(walBytes / cLive.bytes, 2)}x the live data on its own; SQLite starts the WAL over after each automatic checkpoint (every 1,000 pages, about 4 MiB) but truncates the file only past journal_size_limit (64 MiB here), and the compaction pass does not checkpoint it with TRUNCATE. The database file alone is ${mib(dbOnly)}, ${fmt(dbOnly / cLive.bytes, 2)}x the live data${dbOnly / cLive.bytes <= DISK_TARGET_RATIO ? " (within the target)" : ""}, with ${fmt(cAfter.opLogOps)} op-log rows (${mib(cAfter.opLogBytes)}) left in it.`,
      );
    }
    if (!(cLoopA.maxMs <= LOOP_DELAY_TARGET_MS) && !(uLoopA.maxMs <= LOOP_DELAY_TARGET_MS)) {
      learned.push(
        `Learned, event loop: the baseline, which never compacts, reached ${ms(uLoopA.maxMs)} under the same writes (${fmt(uLoopA.overTarget)} of ${fmt(uLoopA.scrapes)} scrapes over ${LOOP_DELAY_TARGET_MS} ms), against ${ms(cLoopA.maxMs)} for the compacted node (${fmt(cLoopA.overTarget)} of ${fmt(cLoopA.scrapes)}) and ${ms(bLoopB.maxMs)} while a whole log was compacted; the delay past the target is there without compaction, so this run does not show what compaction itself adds. What fills a loop turn under this load: ${WRITE_CONCURRENCY} connections per node keep ${WRITE_CONCURRENCY} requests ready, so each turn parses and answers about that many writes and commits them in one transaction (fsync included); garbage collection runs on the same thread (longest pause ${ms(Math.max(cLoopA.gcMaxMs, uLoopA.gcMaxMs))}); and two nodes and the bench client share ${availableParallelism()} cores, so a node's main thread waited, runnable, for a CPU ${fmt(uLoopA.waitedMsPerS)}-${fmt(cLoopA.waitedMsPerS)} ms of every second it ran ${fmt(uLoopA.ranMsPerS)}-${fmt(cLoopA.ranMsPerS)} ms (load ${loadAtStart}-${loadAverage()}). To profile: BENCH_PROFILE_DIR=DIR (CPU profiles) or BENCH_NODE_ARGS=--trace-gc.`,
      );
    }
    const misses: string[] = [];
    if (!(diskRatio <= DISK_TARGET_RATIO && filesRatio <= DISK_TARGET_RATIO && cleanA)) misses.push(`disk (${fmt(diskRatio, 2)}x live by dbBytes, ${fmt(filesRatio, 2)}x by the files)`);
    if (!(bAfter.dbBytes / uLive.bytes <= DISK_TARGET_RATIO)) misses.push(`disk after the backlog was compacted (${fmt(bAfter.dbBytes / uLive.bytes, 2)}x live)`);
    if (!(rssLoaded <= RSS_TARGET_BYTES && bigWrites.failed === 0)) misses.push(`RSS (${mib(rssLoaded)})`);
    if (boot.missed !== null) misses.push(boot.missed);
    if (!(loopWorst <= LOOP_DELAY_TARGET_MS && drainedMs !== null)) misses.push(`event-loop delay (${ms(loopWorst)}${drainedMs === null ? ", backlog not compacted in time" : ""})`);

    return {
      name: "storage",
      title: "Storage: disk and memory with op-log compaction, what compacting costs the event loop, and a follower's bootstrap from a snapshot",
      table: rows,
      notes: [
        `Scale: BENCH_STORAGE_SCALE=${fmt(scale)} (the targets are stated for 1,000,000): that many overwrites of ${fmt(keys)} keys (bench-0 .. bench-${keys - 1}, write i to key i mod ${fmt(keys)}) for (1) and (4a), and that many distinct keys (rss-0 ..) for (2); every value is ${VALUE_BYTES} bytes of JSON. Writes are PUT /kv/:key?ack=local over ${WRITE_CONCURRENCY} keep-alive connections per node, as fast as the node answers (the HTTP API has no batch write).`,
        `geokv (${build.label}): the built CLI (\`node dist/cli/main.js node\`) in child processes, one single-node region per node for (1), (2) and (4), GEOKV_LOG_LEVEL=warn, SQLite synchronous=FULL (the default). Compacted: GEOKV_OP_LOG_RETAIN_OPS=${fmt(RETAIN_OPS)}. Baseline: the same build and writes with GEOKV_OP_LOG_RETAIN_OPS=${fmt(UNCOMPACTED_RETAIN_OPS)}, so it never compacts; both nodes are written at once, so machine load weighs on both alike.`,
        `(1) Live data: every key read back with GET /kv (pages of ${LIST_LIMIT}), key bytes + the value's JSON bytes. After the writes each node gets one POST /admin/compact (compacted node: ${ms(cCompact.tookMs)}, ${fmt(cCompact.answer.compactedOps)} ops removed, ${counted(cCompact.answer.reclaimedPages, "free pages returned")}, ${counted(cCompact.answer.droppedTombstones, "tombstones dropped")}; baseline: ${ms(uCompact.tookMs)}, ${fmt(uCompact.answer.compactedOps)} removed), then /status.storage is read. Before that pass the compacted node's log held ${fmt(cBefore.opLogOps)} ops (the background passes) and its dbBytes was ${mib(cBefore.dbBytes)}. Files: ${Object.entries(cFiles.byFile).map(([f, b]) => `${f} ${fmt(b)} B`).join(", ")} (compacted); ${Object.entries(uFiles.byFile).map(([f, b]) => `${f} ${fmt(b)} B`).join(", ")} (baseline).`,
        `(2) VmRSS from /proc/<pid>/status right after the last write was answered (and VmHWM, the peak over the node's life); the baseline is the same process idle before the load. ${fmt(bigWrites.ok)} writes 2xx at ${fmt(bigWrites.ok / bigWrites.seconds)}/s, ${fmt(bigWrites.failed)} failed; its /status.storage after: ${fmt(bigStorage.opLogOps)} op-log rows, dbBytes ${mib(bigStorage.dbBytes)}. Of the RSS after the load, the JS heap (prom-client's default metrics) had ${mib(bigHeap.heapUsed)} used of ${mib(bigHeap.heapTotal)}, and external memory was ${mib(bigHeap.external)}; the rest is SQLite's page cache, code and the allocator's free space. ${RSS_SETTLE_MS / 1000} s later, idle: RSS ${mib(rssSettled)}, heap ${mib(settledHeap.heapUsed)} used of ${mib(settledHeap.heapTotal)}. The verdict takes the reading right after the load. Default settings (the default retain bound, SQLite's 32 MiB page cache and the 20,000-key read cache are inside the figure).`,
        ...boot.notes,
        `(4) The event-loop figure is the node's own geokv_event_loop_delay_seconds{stat="max"} (perf_hooks monitorEventLoopDelay sampled every 10 ms, reset by each scrape), scraped every ${SCRAPE_EVERY_MS} ms; the row is the largest scrape of the window. The monitor records the time between two samples, so an idle loop reads about 10 ms and a stall of d ms reads up to d + 10; and a scrape's reset drops the sample after it, so a stall that starts within 10 ms of a scrape is not seen (the /health probes are the cross-check). (4a): the whole overwrite run, where the compacted node's background passes keep its log near the bound; the baseline never compacts. (4b): the baseline node, stopped with SIGTERM and restarted on its data with GEOKV_OP_LOG_RETAIN_OPS=${fmt(RETAIN_OPS)}, so its background passes compact its whole log while ${WRITE_CONCURRENCY} connections keep overwriting (${fmt(bWrites.ok / bWrites.seconds)} writes/s, ${fmt(bWrites.failed)} failed); the window runs from the first scrape after it was ready until ${AFTER_BACKLOG_MS / 1000} s after the log was down to ${fmt(doneOps)} ops (the bound plus a tenth of the backlog, at most ${fmt(BACKLOG_DONE_SLACK_OPS_MAX)}) and one POST /admin/compact (${ms(bCompact.tookMs)}, ${fmt(bCompact.answer.compactedOps)} ops removed) answered; once the writes stopped, one more POST /admin/compact (${ms(bFinal.tookMs)}, ${fmt(bFinal.answer.compactedOps)} ops removed, ${counted(bFinal.answer.reclaimedPages, "free pages returned")}) before the file row (1, 4b) is read, as for (1). /health is probed one request at a time every ${HEALTH_EVERY_MS} ms over the same window from the bench process. (4c): the two nodes of (1) right after it, each offered ${fmt(pacedRate)} writes/s (write i sent no earlier than i / rate seconds after the start, up to ${WRITE_CONCURRENCY} in flight) for ${PACED_MS / 1000} s; the run-queue wait in its row says how far the machine was from saturation. It has no target of its own and no verdict: it says whether the delay of 4a comes with compaction or with saturation.`,
        `The machine has 2 cores shared by the bench client, the nodes and anything else running. 1-minute load average: ${loadAtStart} at the start, ${loadAverage()} at the end.`,
        ...learned,
        ...boot.learned,
        ...(misses.length > 0 ? [`Missed at this scale: ${misses.join("; ")}.`] : []),
      ],
    };
  });
}
