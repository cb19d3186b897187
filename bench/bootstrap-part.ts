// Figure (3) of the storage bench: the bootstrap of a new follower from a
// snapshot, next to the same node code restoring the same rows from a local
// SQLite file in the same run.
//
// A 3-node region whose 3rd node is listed but not started (a region needs a
// majority of its members up to elect: with 2 nodes and one absent it never
// would): the leader (a real child process, like every node of this bench)
// gets `scale` distinct keys, which it replicates to the other started node;
// both forget the absent member after MEMBER_FORGET_MS and compact their logs
// past it (POST /admin/compact until /status.storage says so), so an empty
// follower can only be brought up by a snapshot. Then the follower starts on
// an empty data folder, and the clock runs from its spawn until its /status
// vector equals the leader's. Its log must say "snapshot installed" (else the
// figure would be an op replay, and does not count); the leader's "snapshot
// streamed" and the follower's install times come from their JSON log lines.
//
// Baseline: every node is stopped with SIGTERM, the leader's database copied, and
// a child process running the same build (bench/restore-child.ts) opens the
// copy, reads it with the store's snapshot reader, stages every row in a
// fresh store and installs them with the core's install rules: what a restore
// from a local backup file does.

import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { RestoreTimes } from "./restore-child.js";
import { fmt } from "./report.js";
import { compactNow, storageStatus, VALUE_BYTES, WRITE_CONCURRENCY, writeMany, type OneNode, type StorageStatus, type Writes } from "./storage-support.js";
import { HttpClient, jsonValue, onCleanup, sleep, startGeokv, waitFor, type Build } from "./support.js";

const REGION = "boot";
/** Nodes in the region file: two started, and the new member. */
const REGION_NODES = 3;
/** The new member: the region's lowest-ranked node, so its arrival moves no leadership (preempt is off besides). */
const FOLLOWER = `${REGION}-${REGION_NODES}`;
/** GEOKV_MEMBER_FORGET_MS of both nodes: the absent member stops holding compaction back this soon. */
export const MEMBER_FORGET_MS = 2000;
/** GEOKV_OP_LOG_RETAIN_OPS of both nodes (figure 1's compacted node keeps as many). */
export const BOOT_RETAIN_OPS = 1000;
/** The log counts as compacted past the absent member once it is down to the bound plus this. */
const COMPACTED_SLACK_OPS = 50;
/** Past this, the leader's log not compacted past the absent member fails the bench. */
const COMPACT_PAST_TIMEOUT_MS = 180_000;
/** Past this, the follower not matching its leader counts as a bootstrap that did not finish. */
const BOOTSTRAP_TIMEOUT_MS = 900_000;
/** How often the follower's and the leader's /status are read while it bootstraps. */
const VV_POLL_MS = 25;
/** A /status answer may wait out the install's one transaction (seconds at 1,000,000 keys). */
const STATUS_TIMEOUT_MS = 300_000;
/** Keys read back from the follower after it matched, spread over the whole range. */
const SPOT_CHECK_KEYS = 200;
/** The restore child is killed past this. */
const RESTORE_TIMEOUT_MS = 900_000;

type Vv = Record<string, number>;

/** A pino JSON line of a node's log: its wall time (epoch ms) and message, and the fields it carries. */
interface LogLine {
  readonly time: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** What figure (3) measured. */
export interface BootstrapFigures {
  /** The region's leader when the fill began, and when the follower started; its other started node then. */
  readonly firstLeader: string;
  readonly leader: string;
  readonly other: string;
  readonly fill: Writes;
  /** Keys the leader holds (distinct keys written 2xx). */
  readonly keys: number;
  readonly leaderVv: Vv;
  /** The leader's /status.storage once compacted past the absent member. */
  readonly compacted: StorageStatus;
  /** POST /admin/compact calls it took (each waits for a full pass). */
  readonly compactCalls: number;
  /** From the follower's spawn: it answered /health; its vector equalled the leader's (null: not within the timeout). */
  readonly healthMs: number;
  readonly matchedMs: number | null;
  /** From the logs (wall clock, ms after the spawn): the follower began receiving; its install began and ended. */
  readonly receiveBeganMs: number | null;
  readonly installBeganMs: number | null;
  readonly installedMs: number | null;
  /** The follower's "snapshot installed" line: rows, local kv rows removed, install ms (null when it never installed one). */
  readonly installed: { rows: number; removedKv: number; ms: number; vv: Vv } | null;
  /** Snapshots the follower began receiving, and installed. */
  readonly receiving: number;
  readonly installs: number;
  /** The leader's "snapshot streamed" lines (the last one's rows, data bytes and ms), and streams it began. */
  readonly streamed: { rows: number; bytes: number; ms: number } | null;
  readonly streamsBegun: number;
  /** Keys read back from the follower that did not match what was written. */
  readonly spotMismatches: number;
  readonly spotChecked: number;
  /** The baseline: the restore child's own times, and its wall time from spawn to exit. */
  readonly restore: RestoreTimes;
  readonly restoreWallMs: number;
  /** Bytes of the leader's database file(s) the baseline restored from. */
  readonly sourceBytes: number;
}

const keyOf = (i: number) => `boot-${i}`;
const vvText = (vv: Vv) => JSON.stringify(Object.entries(vv).filter(([, s]) => s > 0).sort(([a], [b]) => (a < b ? -1 : 1)));

/** The JSON lines of a node's log (what is not JSON, e.g. a stack trace, is skipped). */
function logLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const j = JSON.parse(line) as Partial<LogLine>;
      if (typeof j.time === "number" && typeof j.msg === "string") out.push(j as LogLine);
    } catch {
      // a line cut off by the kill, or not ours
    }
  }
  return out;
}

/**
 * /status.vv of a node, waiting as long as a blocked event loop needs. A
 * socket error is retried once: when the install's transaction ends, the
 * node's server closes the keep-alive connections that sat idle through it,
 * and a poll that reused one at that moment is reset without being served
 * (the 1,000,000-key run died of that ECONNRESET). A GET is safe to repeat.
 */
async function vvOf(client: HttpClient, url: string): Promise<Vv> {
  const get = () => client.send("GET", `${url}/status`, undefined, STATUS_TIMEOUT_MS);
  const a = await get().catch((err: unknown) => {
    if ((err as { code?: unknown }).code !== "ECONNRESET" && (err as { code?: unknown }).code !== "EPIPE") throw err;
    return get();
  });
  if (a.status !== 200) throw new Error(`GET ${url}/status: ${a.status} ${a.body.slice(0, 200)}`);
  return (JSON.parse(a.body) as { vv: Vv }).vv;
}

/** Runs the restore child on `source` into a fresh `target`; resolves with what it printed and its wall time. */
function restoreFromFile(build: Build, source: string, target: string, self: string): Promise<{ times: RestoreTimes; wallMs: number }> {
  const dist = dirname(dirname(build.main));
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ["--import", "tsx", "bench/restore-child.ts", dist, source, target, self], { timeout: RESTORE_TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
      const wallMs = performance.now() - t0;
      if (err) return reject(new Error(`restore child: ${err.message}\n${stderr}`));
      const line = stdout.trim().split("\n").pop() ?? "";
      try {
        resolve({ times: JSON.parse(line) as RestoreTimes, wallMs });
      } catch {
        reject(new Error(`restore child printed no result: ${stdout.slice(0, 500)} ${stderr.slice(0, 2000)}`));
      }
    });
    // execFile's own timeout kills it; this covers a bench interrupted meanwhile (by the child's pid).
    const unregister = onCleanup(() => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    });
    child.once("exit", () => unregister());
  });
}

/** Measures figure (3) at `scale` keys. */
export async function measureBootstrap(build: Build, scale: number): Promise<BootstrapFigures> {
  const env = { GEOKV_ADMIN_TOKEN: "", GEOKV_LOG_LEVEL: "info", GEOKV_MEMBER_FORGET_MS: String(MEMBER_FORGET_MS), GEOKV_OP_LOG_RETAIN_OPS: String(BOOT_RETAIN_OPS) };
  const cluster = await startGeokv(build, [{ region: REGION, nodes: REGION_NODES }], env, [], [FOLLOWER]);
  const followerUrl = cluster.urls.get(FOLLOWER) as string;
  const client = new HttpClient(4);
  const started = [...cluster.urls.keys()].filter((x) => x !== FOLLOWER);
  const nodeOf = (node: string): OneNode => ({ cluster, node, url: cluster.urls.get(node) as string, client: new HttpClient(WRITE_CONCURRENCY + 4) });
  // Whichever started node won the election (on a loaded machine either may, and it may change): ask, do not assume.
  const currentLeader = () =>
    waitFor(`a leader of ${REGION} (${FOLLOWER} not started)`, async () => {
      for (const n of started) {
        const st = await client.json<{ role: string; leader: string | null }>(`${cluster.urls.get(n) as string}/status`);
        if (st.role === "leader" && st.leader === n) return n;
      }
      return null;
    }, 30_000);
  const firstLeader = await currentLeader();

  const fill = await writeMany(nodeOf(firstLeader), "bootstrap leader", scale, (i) => `/kv/${keyOf(i)}`, { retry503: true });
  const leaderNode = await currentLeader();
  const otherNode = started.find((x) => x !== leaderNode) as string;
  const leader = nodeOf(leaderNode);
  const leaderUrl = leader.url;
  // Both started nodes compact (the test of this does the same): the leader is the one that streams the snapshot.
  let compactCalls = 0;
  const compacted = await waitFor(`${leaderNode}'s log compacted past the absent ${FOLLOWER}`, async () => {
    await Promise.all(started.map((n) => compactNow(nodeOf(n))));
    compactCalls++;
    const st = await storageStatus(leader);
    if (Object.values(st.compactedVv).some((x) => x > 0) && st.opLogOps <= BOOT_RETAIN_OPS + COMPACTED_SLACK_OPS) return st;
    throw new Error(`storage ${JSON.stringify(st)}`);
  }, COMPACT_PAST_TIMEOUT_MS, 250);
  const leaderVv = await vvOf(leader.client, leaderUrl);
  const leaderLogFrom = cluster.log(leaderNode).length;
  console.log(`  ${leaderNode} holds ${fmt(fill.ok)} keys (${fmt(fill.ok / fill.seconds)} writes/s, ${fmt(fill.failed)} failed), vv ${vvText(leaderVv)}, compacted to ${JSON.stringify(compacted.compactedVv)} after ${compactCalls} POST /admin/compact; starting ${FOLLOWER} on an empty data folder`);

  // ---- the follower, from its spawn until its vector is the leader's
  const spawnWall = Date.now();
  const t0 = performance.now();
  await cluster.start(FOLLOWER);
  const healthMs = performance.now() - t0;
  let matchedMs: number | null = null;
  let lastSeen = "";
  while (performance.now() - t0 < BOOTSTRAP_TIMEOUT_MS) {
    const [f, l] = await Promise.all([vvOf(client, followerUrl), vvOf(client, leaderUrl)]);
    lastSeen = `${FOLLOWER} ${vvText(f)}, ${leaderNode} ${vvText(l)}`;
    if (vvText(f) === vvText(l)) {
      matchedMs = performance.now() - t0;
      break;
    }
    await sleep(VV_POLL_MS);
  }
  console.log(matchedMs === null ? `  ${FOLLOWER} did not match its leader within ${BOOTSTRAP_TIMEOUT_MS / 1000} s: ${lastSeen}` : `  ${FOLLOWER} matched ${leaderNode} ${fmt(matchedMs / 1000, 2)} s after its spawn (/health after ${fmt(healthMs / 1000, 2)} s)`);

  // Keys spread over the range, read from the follower, against what was written.
  let spotMismatches = 0;
  const spotChecked = Math.min(SPOT_CHECK_KEYS, fill.ok);
  for (let j = 0; j < spotChecked; j++) {
    const i = Math.floor((j * scale) / spotChecked);
    const a = await client.send("GET", `${followerUrl}/kv/${keyOf(i)}`);
    const value = a.status === 200 ? JSON.stringify((JSON.parse(a.body) as { value: unknown }).value) : `status ${a.status}`;
    if (value !== jsonValue(VALUE_BYTES, i)) spotMismatches++;
  }

  const fLog = logLines(cluster.log(FOLLOWER));
  const lLog = logLines(cluster.log(leaderNode).slice(leaderLogFrom));
  const after = (l: LogLine | undefined) => (l === undefined ? null : l.time - spawnWall);
  const installLines = fLog.filter((l) => l.msg.startsWith("snapshot installed"));
  const last = installLines[installLines.length - 1];
  const installed = last === undefined ? null : { rows: Number(last.rows), removedKv: Number(last.removedKv), ms: Number(last.ms), vv: (last.vv ?? {}) as Vv };
  const streamedLines = lLog.filter((l) => l.msg === "snapshot streamed" && l.peer === FOLLOWER);
  const lastStream = streamedLines[streamedLines.length - 1];
  const receiveLines = fLog.filter((l) => l.msg.startsWith("receiving a snapshot"));

  // ---- the baseline: the same rows from a copy of the leader's file
  await Promise.all([FOLLOWER, otherNode, leaderNode].map((n) => cluster.stopNode(n)));
  const dir = mkdtempSync(join(tmpdir(), "geokv-bench-restore-"));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  let sourceBytes = 0;
  for (const suffix of ["", "-wal"]) {
    const from = join(cluster.files.dataDir, leaderNode, `geokv.db${suffix}`);
    if (!existsSync(from)) continue;
    copyFileSync(from, join(dir, `source.db${suffix}`));
    sourceBytes += statSync(from).size;
  }
  await cluster.close();
  console.log(`  restoring the same rows from a copy of ${leaderNode}'s database (${fmt(sourceBytes / 2 ** 20, 2)} MiB) in a child process`);
  const restore = await restoreFromFile(build, join(dir, "source.db"), join(dir, "restored", "geokv.db"), FOLLOWER);
  rmSync(dir, { recursive: true, force: true });

  return {
    firstLeader,
    leader: leaderNode,
    other: otherNode,
    fill,
    keys: fill.ok,
    leaderVv,
    compacted,
    compactCalls,
    healthMs,
    matchedMs,
    receiveBeganMs: after(receiveLines[receiveLines.length - 1]),
    installBeganMs: last === undefined ? null : (after(last) as number) - Number(last.ms),
    installedMs: after(last),
    installed,
    receiving: receiveLines.length,
    installs: installLines.length,
    streamed: lastStream === undefined ? null : { rows: Number(lastStream.rows), bytes: Number(lastStream.bytes), ms: Number(lastStream.ms) },
    streamsBegun: lLog.filter((l) => l.msg === "streaming a snapshot" && l.peer === FOLLOWER).length,
    spotMismatches,
    spotChecked,
    restore: restore.times,
    restoreWallMs: restore.wallMs,
    sourceBytes,
  };
}

/** The bootstrap's rate must be at least this share of the local restore's. */
export const BOOTSTRAP_TARGET_SHARE = 0.5;

/** Figure (3)'s table row, notes, "Learned" lines and (when missed) what missed, from the run's own figures. */
export function bootstrapReport(b: BootstrapFigures): { row: string[]; notes: string[]; learned: string[]; missed: string | null } {
  const s = (x: number | null) => (x === null ? "n/a" : `${fmt(x / 1000, 2)} s`);
  const rateA = b.matchedMs === null ? Number.NaN : b.keys / (b.matchedMs / 1000);
  const rateFromHealth = b.matchedMs === null ? Number.NaN : b.keys / ((b.matchedMs - b.healthMs) / 1000);
  const rateB = b.keys / (b.restore.totalMs / 1000);
  const share = rateA / rateB;
  const bySnapshot = b.installed !== null && b.installed.rows >= b.keys;
  const clean = b.fill.failed === 0 && b.spotMismatches === 0 && b.restore.vvMatches && b.restore.rows >= b.keys;
  const met = b.matchedMs !== null && bySnapshot && clean && share >= BOOTSTRAP_TARGET_SHARE;
  const why = [
    ...(b.matchedMs === null ? ["the follower never matched its leader"] : []),
    ...(bySnapshot ? [] : [b.installed === null ? 'no "snapshot installed" in the follower\'s log (an op replay, not a bootstrap)' : `the snapshot installed ${fmt(b.installed.rows)} rows, fewer than the ${fmt(b.keys)} keys`]),
    ...(b.spotMismatches > 0 ? [`${b.spotMismatches} of ${b.spotChecked} keys read back wrong`] : []),
    ...(b.fill.failed > 0 ? [`${fmt(b.fill.failed)} writes failed`] : []),
    ...(b.restore.vvMatches ? [] : ["the restore's vector is not the snapshot's"]),
  ];
  const row = [
    `(3) bootstrap of a new follower from a snapshot of ${fmt(b.keys)} keys: keys / s from its spawn until its /status vv equals the leader's; baseline: the same build restoring the same rows from a copy of the leader's SQLite file (child process)`,
    b.matchedMs === null
      ? `not finished within ${BOOTSTRAP_TIMEOUT_MS / 1000} s`
      : `${fmt(rateA)} keys/s (${s(b.matchedMs)}; ${fmt(rateFromHealth)} keys/s from its /health answering; ${b.installed === null ? "no snapshot installed" : `snapshot of ${fmt(b.installed.rows)} rows installed in ${s(b.installed.ms)}`})`,
    `${fmt(rateB)} keys/s (${s(b.restore.totalMs)}: read + stage ${s(b.restore.stageMs)}, install ${s(b.restore.installMs)})`,
    Number.isFinite(share) ? `${fmt(share, 2)}x` : "n/a",
    `>= ${BOOTSTRAP_TARGET_SHARE}x the baseline's rate, by a snapshot install`,
    `${met ? "met" : "MISSED"}${why.length > 0 ? ` (${why.join("; ")})` : ""}`,
  ];
  const streamed = b.streamed === null ? "no \"snapshot streamed\" line in the leader's log" : `${fmt(b.streamed.rows)} rows, ${fmt(b.streamed.bytes / 2 ** 20, 2)} MiB of state, in ${s(b.streamed.ms)}`;
  const notes = [
    `(3) A ${REGION_NODES}-node region (${[...Array(REGION_NODES).keys()].map((i) => `${REGION}-${i + 1}`).join(", ")}), every node with GEOKV_LOG_LEVEL=info (the snapshot lines are info), GEOKV_MEMBER_FORGET_MS=${fmt(MEMBER_FORGET_MS)} and GEOKV_OP_LOG_RETAIN_OPS=${fmt(BOOT_RETAIN_OPS)}; ${FOLLOWER} is in the region file but not started (with 2 nodes and one absent the region could not elect: it needs a majority); ${b.firstLeader === b.leader ? `${b.leader} led when the writes began and when ${FOLLOWER} started` : `${b.firstLeader} led when the writes began, ${b.leader} when ${FOLLOWER} started`}${Object.keys(b.leaderVv).filter((o) => (b.leaderVv[o] ?? 0) > 0).length > 1 ? " (the vector has ops of both started nodes: the other one led for a while, elections under load)" : ""}. The region got ${fmt(b.fill.ok)} distinct keys written through ${b.firstLeader} (boot-0 .., ${VALUE_BYTES}-byte values, ${fmt(b.fill.ok / b.fill.seconds)} writes/s, ${fmt(b.fill.failed)} failed, ${fmt(b.fill.retried)} answers 503 retried), vv ${JSON.stringify(b.leaderVv)}; then POST /admin/compact until /status.storage showed the log compacted past the absent member (${b.compactCalls} call${b.compactCalls === 1 ? "" : "s"} on both started nodes; compactedVv ${JSON.stringify(b.compacted.compactedVv)}, ${fmt(b.compacted.opLogOps)} op-log rows left), so an empty node cannot be caught up from the log. ${FOLLOWER} was then spawned on an empty data folder; the clock runs from just before its spawn (process start, module loading and opening its store are inside the figure) until the bench, reading both nodes' /status every ${VV_POLL_MS} ms, saw equal vectors; /health answered ${s(b.healthMs)} after the spawn. Its log: ${b.receiving} snapshot(s) begun, ${b.installs} installed (the last: ${b.installed === null ? "none" : `${fmt(b.installed.rows)} rows, ${fmt(b.installed.removedKv)} local kv rows removed, ${s(b.installed.ms)}, vv ${JSON.stringify(b.installed.vv)}`}); the leader's log: ${b.streamsBegun} stream(s) begun, the last streamed ${streamed}. ${b.spotChecked} keys spread over the range read back from the follower: ${b.spotMismatches} wrong.`,
    `(3) Baseline: every node stopped with SIGTERM, ${b.leader}'s database copied (${fmt(b.sourceBytes / 2 ** 20, 2)} MiB), and a child process (bench/restore-child.ts, running the same build's dist/ modules) opens the copy with openSqliteStorage, reads it with storage.openSnapshot() in the frames a node streams, stages every row into a fresh SQLite store (synchronous=FULL, as the node) with stageSnapshotRows and installs them with installSnapshot(header, installRules(${FOLLOWER}, header)): what a restore from a local backup file does. Timed inside the child from opening the stores to the install's end (open ${s(b.restore.openMs)}, read + stage ${s(b.restore.stageMs)}, install ${s(b.restore.installMs)}; ${fmt(b.restore.rows)} rows, ${fmt(b.restore.dataBytes / 2 ** 20, 2)} MiB); its process start and module loading are not inside (${s(b.restoreWallMs)} spawn to exit), while the follower's are: the ratio is the strict reading.`,
  ];
  const learned: string[] = [];
  if (b.matchedMs !== null && b.installed !== null && b.receiveBeganMs !== null && b.installBeganMs !== null && b.installedMs !== null) {
    const phases: Array<[string, number]> = [
      ["process start until /health", b.healthMs],
      ["from /health to the first snapshot frame (link up, the leader deciding)", b.receiveBeganMs - b.healthMs],
      [`receiving and staging the ${fmt(b.installed.rows)} rows`, b.installBeganMs - b.receiveBeganMs],
      ["the install transaction", b.installed.ms],
      ["from the install to the bench seeing equal vectors (catch-up and polling)", b.matchedMs - b.installedMs],
    ];
    const [bigName, bigMs] = phases.reduce((x, y) => (y[1] > x[1] ? y : x));
    const pct = (x: number) => `${fmt((100 * x) / (b.matchedMs as number))}%`;
    const stageRatio = (b.installBeganMs - b.receiveBeganMs) / b.restore.stageMs;
    const installRatio = b.installed.ms / b.restore.installMs;
    learned.push(
      `Learned, bootstrap: of the follower's ${s(b.matchedMs)} from spawn to a matching vector, ${phases.map(([n, x]) => `${n} ${s(x)} (${pct(x)})`).join(", ")}; the largest part is ${bigName} (${s(bigMs)}). The leader's stream of the same rows took ${b.streamed === null ? "n/a" : s(b.streamed.ms)} by its own log. The local restore read and staged the rows in ${s(b.restore.stageMs)} and installed them in ${s(b.restore.installMs)}: receiving and staging over the link took ${fmt(stageRatio, 2)}x the local read and stage, the follower's install ${fmt(installRatio, 2)}x the baseline's.`,
    );
  }
  return { row, notes, learned, missed: met ? null : `bootstrap (${Number.isFinite(share) ? `${fmt(share, 2)}x the local restore's rate` : "not finished"}${why.length > 0 ? `; ${why.join("; ")}` : ""})` };
}
