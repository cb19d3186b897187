// Failover: how long a region cannot take writes when its leader dies, next to
// etcd driven the same way in the same run. One geokv region of three node
// processes under a steady SDK write load (ack=region) has its leader
// SIGKILLed again and again; each time the bench times the write-unavailability
// window (kill to the first write acknowledged by a new leader), restarts the
// killed node and waits for a healthy region. The same is done to a 3-member
// etcd cluster through its HTTP/JSON gateway, at etcd's default timings and at
// the same timings as geokv. A second measurement counts elections while a
// fresh region's leader is saturated with ack=region writes (there should be
// none). The survivors' role-change log lines split each geokv failover into
// detection, election and catch-up.

import { cpus } from "node:os";
import { fmt, type BenchSection } from "./report.js";
import {
  describeCodes,
  EtcdCluster,
  etcdBinary,
  etcdPhases,
  failoverPhases,
  GeokvRegion,
  killLoop,
  startEtcdLoad,
  startSdkLoad,
  WINDOW_BOUND_MS,
  windowStats,
  type KillResult,
  type GeokvStatus,
  type KillTarget,
  type WriteLoad,
} from "./failover-support.js";
import { benchSeconds, buildGeokv, envNumber, jsonValue, load, loadAverage, percentile, sleep, verdict, waitFor, withCleanup, type Build, type LoadResult } from "./support.js";

/** Concurrent SDK (or etcd client) write loops during the kills. */
const WRITE_LOOPS = 8;
const NODES = 3;
const COUNTER_KEY = "failover-counter";
const MEDIAN_TARGET_MS = 750;
const MAX_TARGET_MS = 1_500;
const LOAD_CONNECTIONS = 64;
const LOAD_KEYS = 10_000;
const LOAD_VALUE_BYTES = 100;
/** After the autocannon run, wait this long so an election it provoked shows in the metrics. */
const AFTER_LOAD_SETTLE_MS = 2_000;
const CONVERGE_TIMEOUT_MS = 30_000;
/** Duplicated increments spelled out in the notes; the rest are counted. */
const DUPLICATES_LISTED = 3;

interface Timing {
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  /** Said in the table: "defaults" or "equal". */
  readonly label: string;
}

const GEOKV_DEFAULT: Timing = { heartbeatMs: 100, electionTimeoutMs: 500, label: "geokv defaults" };
const ETCD_DEFAULT: Timing = { heartbeatMs: 100, electionTimeoutMs: 1000, label: "etcd defaults" };
const EQUAL: Timing = { heartbeatMs: 50, electionTimeoutMs: 250, label: "equal" };

const timingText = (t: Timing) => `heartbeat ${t.heartbeatMs} ms, election timeout ${t.electionTimeoutMs} ms (${t.label})`;

/** Where one failover's time went, in ms after the kill, and what the clients met meanwhile. */
interface KillDetail {
  /** First survivor starts an election. */
  readonly detectMs: number | null;
  /** geokv: the new leader proclaims its epoch; etcd: null. */
  readonly proclaimMs: number | null;
  /** The new leader is in office (geokv: majority accepted and caught up; etcd: became leader). */
  readonly activeMs: number | null;
  /** Failed client attempts between the kill and the first ack from the new leader. */
  readonly refused503: number;
  readonly retryAfters: readonly string[];
  readonly noAnswer: number;
  /** Distinct 503 messages (at most a few). */
  readonly messages: readonly string[];
  /** geokv: the survivors' role lines, for the slow cases. */
  readonly lines: string;
}

/** Writes applied twice (same Idempotency-Key, two dots). */
interface Duplicate {
  readonly idem: string;
  readonly dots: { dot: string; wallMs: number }[];
  /** Which kill it straddles, as text. */
  readonly near: string;
}

/** One system at one timing: the kills and what the clients saw. */
interface KillRun {
  readonly system: string;
  readonly timing: Timing;
  readonly results: readonly KillResult[];
  readonly details: readonly KillDetail[];
  readonly load: WriteLoad;
  /** geokv: the counter check; etcd: null. */
  readonly counter: { value: number; acked: number; failed: number; agreed: boolean; duplicates: Duplicate[] } | null;
}

/** The client attempts that failed between the kill and the first ack from a new leader. */
function refusalsOf(wl: WriteLoad, r: KillResult): Pick<KillDetail, "refused503" | "retryAfters" | "noAnswer" | "messages"> {
  const rs = wl.refusals.between(r.t0Ms, r.t0Ms + (r.windowMs ?? WINDOW_BOUND_MS));
  // Node URLs and ports differ per answer; keep the shape of the message.
  const shape = (m: string) => m.replace(/http:\/\/127\.0\.0\.1:\d+/g, "<url>").replace(/\d+ ms/g, "<n> ms");
  return {
    messages: [...new Set(rs.map((x) => x.message).filter((x): x is string => x !== undefined).map(shape))].slice(0, 3),
    refused503: rs.filter((x) => x.status === 503).length,
    retryAfters: [...new Set(rs.map((x) => x.retryAfter).filter((x): x is string => x !== null))],
    noAnswer: rs.filter((x) => x.status === 0).length,
  };
}

// ---- geokv -------------------------------------------------------------------------------

async function geokvKills(build: Build, timing: Timing, kills: number, defaults: boolean): Promise<KillRun> {
  const args = defaults ? [] : ["--heartbeat-ms", String(timing.heartbeatMs), "--election-timeout-ms", String(timing.electionTimeoutMs)];
  const region = await GeokvRegion.start(build, "fo", NODES, args);
  await waitFor("geokv region healthy", () => region.healthy(), 30_000, 50);
  const urls = region.nodes.map((n) => region.urls.get(n) as string);
  const wl = startSdkLoad(urls, WRITE_LOOPS, COUNTER_KEY);
  const details: KillDetail[] = [];
  const target: KillTarget = {
    healthyLeader: async () => {
      const l = await region.healthy();
      return l ? { name: l.node, term: l.epoch } : null;
    },
    kill: (n) => region.kill(n),
    restart: (n) => region.startNode(n),
    // The token's origin is the node that took the write: only a leader does.
    fromNewLeader: (a, killed) => a.origin !== killed.name && a.origin !== "?",
    // How many of the dead leader's own ops each survivor holds: what it got before it died.
    survivorsView: async (killed) => {
      const out: Record<string, number> = {};
      for (const n of region.nodes.filter((x) => x !== killed)) {
        const st = (await region.status(n)) as (GeokvStatus & { vv?: Record<string, number> }) | null;
        out[n] = st?.vv?.[killed] ?? -1;
      }
      return out;
    },
  };
  const label = `geokv ${timing.label}`;
  const results = await killLoop(target, wl, kills, label, async (r, before) => {
    // Logs are flushed by the time the killed node is back; read the survivors'.
    await sleep(200);
    const survivors = region.nodes.filter((n) => n !== r.killed);
    const until = r.killWallMs + (r.windowMs ?? WINDOW_BOUND_MS) + 1000;
    const p = failoverPhases(region, survivors, r.newOrigin ?? "", before.term, r.killWallMs, until);
    const d: KillDetail = {
      detectMs: p.detectMs,
      proclaimMs: p.proclaimMs,
      activeMs: p.activeMs,
      ...refusalsOf(wl, r),
      lines: p.lines.map((l) => `${l.node} +${l.time - r.killWallMs} ms ${l.role}: ${l.reason}`).join("; "),
    };
    details.push(d);
    console.log(`  phases: detect ${d.detectMs ?? "?"} ms, proclaim ${d.proclaimMs ?? "?"} ms, leader ${d.activeMs ?? "?"} ms, first ack ${r.windowMs?.toFixed(0) ?? "none"} ms; meanwhile ${d.refused503} answers 503 (Retry-After ${d.retryAfters.join("/") || "none"}), ${d.noAnswer} without answer${d.messages.length > 0 ? `; 503 said: ${d.messages.join(" | ")}` : ""}`);
  });
  await wl.stop();
  // Exactly-once: every node ends with the counter equal to the acknowledged increments.
  await waitFor("geokv healthy after the kills", () => region.healthy(), 60_000, 50);
  let value = Number.NaN;
  let agreed = false;
  try {
    await waitFor("every node has the same counter", async () => {
      const vs = await Promise.all(region.nodes.map((n) => region.counter(n, COUNTER_KEY)));
      value = vs[0] as number;
      agreed = vs.every((v) => v === value);
      return agreed;
    }, CONVERGE_TIMEOUT_MS, 100);
  } catch (err) {
    console.error(`counter did not converge: ${(err as Error).message}`);
  }
  // Which increments were applied twice: one Idempotency-Key under two dots.
  const duplicates: Duplicate[] = region.duplicateOps(region.nodes[0] as string, "counters", COUNTER_KEY).map((d) => {
    const firstMs = d.dots[0]?.wallMs ?? 0;
    let near = "no kill";
    let best = Number.POSITIVE_INFINITY;
    results.forEach((r, i) => {
      const dist = Math.abs(firstMs - r.killWallMs);
      if (dist < best) {
        best = dist;
        const [origin, seq] = (d.dots[0]?.dot ?? "?:0").split(":");
        const held = Object.entries(r.survivors).map(([n, v]) => `${n} held ${origin} up to seq ${v}`).join(", ");
        const fate = origin === r.killed && Object.values(r.survivors).every((v) => v < Number(seq))
          ? "no survivor had the first op when the new leader took the retry: it came back with the restarted node and was merged"
          : "a survivor already had the first op, yet the retry was applied again";
        near = `kill ${i + 1} of ${r.killed}: first dot taken ${rel(firstMs - r.killWallMs)}, second ${rel((d.dots[1]?.wallMs ?? 0) - r.killWallMs)}; at the first new-leader ack ${held}: ${fate}`;
      }
    });
    return { ...d, near };
  });
  const counter = { value, acked: wl.incrs.ok, failed: wl.incrs.failed, agreed, duplicates };
  console.log(`${label}: counter ${value} (nodes agree: ${agreed}), acknowledged increments ${wl.incrs.ok}, failed increments ${wl.incrs.failed}; puts ok ${wl.puts.ok} failed ${wl.puts.failed} (${describeCodes(wl.puts)})`);
  for (const d of duplicates) console.log(`  applied twice: Idempotency-Key ${d.idem} as ${d.dots.map((x) => x.dot).join(" and ")} (${d.near})`);
  for (const s of [...wl.puts.samples, ...wl.incrs.samples]) console.log(`  failure: ${s}`);
  await region.close();
  return { system: "geokv", timing, results, details, load: wl, counter };
}

/** "12 ms before the kill" / "1164 ms after the kill". */
const rel = (deltaMs: number) => (deltaMs < 0 ? `${-deltaMs} ms before the kill` : `${deltaMs} ms after the kill`);

/** Elections while a fresh region's leader takes as many ack=region writes as 64 connections send. */
interface ElectionsRun {
  readonly result: LoadResult;
  readonly elections: number;
  readonly leaderChanges: number;
  readonly epochBefore: number[];
  readonly epochAfter: number[];
  readonly leaderBefore: string;
  readonly leaderAfter: string | null;
}

async function electionsUnderLoad(build: Build, seconds: number): Promise<ElectionsRun> {
  const region = await GeokvRegion.start(build, "el", NODES, []);
  const leader = await waitFor("geokv region healthy", () => region.healthy(), 30_000, 50);
  const before = await Promise.all(region.nodes.map((n) => region.electionMetrics(n)));
  const result = await load({
    url: region.urls.get(leader.node) as string,
    connections: LOAD_CONNECTIONS,
    seconds,
    method: "PUT",
    path: (i) => `/kv/load-${i % LOAD_KEYS}?ack=region`,
    body: (i) => jsonValue(LOAD_VALUE_BYTES, i),
    headers: { "content-type": "application/json" },
  });
  await sleep(AFTER_LOAD_SETTLE_MS);
  const after = await Promise.all(region.nodes.map((n) => region.electionMetrics(n)));
  const leaderAfter = (await region.agreedLeader())?.node ?? null;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const run: ElectionsRun = {
    result,
    elections: sum(after.map((a, i) => a.elections - (before[i]?.elections ?? 0))),
    leaderChanges: sum(after.map((a, i) => a.leaderChanges - (before[i]?.leaderChanges ?? 0))),
    epochBefore: before.map((b) => b.epoch),
    epochAfter: after.map((a) => a.epoch),
    leaderBefore: leader.node,
    leaderAfter,
  };
  console.log(`elections under load: ${fmt(result.requestsPerSec)} writes/s, failed ${result.failed}, elections ${run.elections}, leader changes ${run.leaderChanges}, epochs ${run.epochBefore.join("/")} -> ${run.epochAfter.join("/")}, leader ${run.leaderBefore} -> ${run.leaderAfter ?? "none"}`);
  await region.close();
  return run;
}

// ---- etcd ------------------------------------------------------------------------------------

async function etcdKills(bin: string, timing: Timing, kills: number): Promise<{ run: KillRun; version: string }> {
  const cluster = await EtcdCluster.start(bin, timing);
  // A put that a follower forwarded to the dead leader is lost and answered only
  // at etcd's request timeout (5 s + 2 election timeouts): a client must bound
  // each attempt itself. One election timeout is the tightest sensible bound.
  const wl = startEtcdLoad(cluster, WRITE_LOOPS, timing.electionTimeoutMs);
  const details: KillDetail[] = [];
  const target: KillTarget = {
    healthyLeader: () => cluster.healthy(),
    kill: (n) => cluster.kill(n),
    restart: (n) => cluster.startMember(n),
    // A put answered in a later raft term was committed under a new leader.
    fromNewLeader: (a, killed) => a.term > killed.term,
  };
  const results = await killLoop(target, wl, kills, `etcd ${timing.label}`, async (r) => {
    await sleep(200);
    const survivors = cluster.members.map((m) => m.name).filter((n) => n !== r.killed);
    const p = etcdPhases(cluster, survivors, r.killWallMs, r.killWallMs + (r.windowMs ?? WINDOW_BOUND_MS) + 1000);
    const d: KillDetail = { detectMs: p.detectMs, proclaimMs: null, activeMs: p.electedMs, ...refusalsOf(wl, r), lines: "" };
    details.push(d);
    console.log(`  phases: election started ${d.detectMs ?? "?"} ms, leader ${d.activeMs ?? "?"} ms, first ack ${r.windowMs?.toFixed(0) ?? "none"} ms; meanwhile ${d.refused503} answers 503, ${d.noAnswer} attempts without answer`);
  });
  await wl.stop();
  console.log(`etcd ${timing.label}: puts ok ${wl.puts.ok} failed ${wl.puts.failed} (${describeCodes(wl.puts)})`);
  for (const s of wl.puts.samples) console.log(`  failure: ${s}`);
  const version = cluster.version;
  await cluster.close();
  return { run: { system: "etcd", timing, results, details, load: wl, counter: null }, version };
}

// ---- the section -------------------------------------------------------------------------------

const ms = (n: number) => (Number.isFinite(n) ? fmt(n) : "none");

/** Median of the known values, or NaN. */
function medianOf(xs: readonly (number | null)[]): number {
  return percentile(xs.filter((x): x is number => x !== null).sort((a, b) => a - b), 50);
}

/** Where a run's failover time went, as one sentence. */
function phaseNote(r: KillRun): string {
  const d = r.details;
  const gap = r.results.map((x, i) => (x.windowMs !== null && d[i]?.activeMs != null ? x.windowMs - (d[i]?.activeMs as number) : null));
  const with503 = d.filter((x) => x.refused503 > 0).length;
  const ras = [...new Set(d.flatMap((x) => x.retryAfters))];
  const parts = [
    `${r.system} at ${timingText(r.timing)}: median ${ms(medianOf(d.map((x) => x.detectMs)))} ms to detection (first survivor starts an election)`,
    ...(r.system === "geokv" ? [`${ms(medianOf(d.map((x) => x.proclaimMs)))} ms to the proclamation of the new epoch`] : []),
    `${ms(medianOf(d.map((x) => x.activeMs)))} ms to a new leader in office`,
    `${ms(windowStats(r.results).median)} ms to the first acknowledged write (median ${ms(medianOf(gap))} ms after the leader took office)`,
    `client attempts that failed meanwhile: ${with503} of ${d.length} kills saw 503 answers (median ${ms(medianOf(d.map((x) => x.refused503)))} per kill${ras.length > 0 ? `, Retry-After ${ras.join("/")} s` : ""}), median ${ms(medianOf(d.map((x) => x.noAnswer)))} attempts per kill got no answer`,
  ];
  return parts.join(", ");
}

function killRow(r: KillRun, systemName: string, target: string, met: boolean | null): string[] {
  const s = windowStats(r.results);
  const failures = r.load.puts.failed + r.load.incrs.failed;
  const writes = r.load.puts.ok + r.load.puts.failed + r.load.incrs.ok + r.load.incrs.failed;
  let once = "n/a (plain puts)";
  if (r.counter) {
    const c = r.counter;
    if (!c.agreed) once = `VIOLATED: nodes disagree on the counter (last read ${c.value})`;
    else if (c.value === c.acked && c.failed === 0) once = `ok: counter ${fmt(c.value)} = ${fmt(c.acked)} acknowledged increments`;
    else if (c.value >= c.acked && c.value <= c.acked + c.failed) once = `counter ${fmt(c.value)}, ${fmt(c.acked)} acknowledged + ${c.failed} failed (ambiguous, within bounds)`;
    else once = `VIOLATED: counter ${fmt(c.value)} != ${fmt(c.acked)} acknowledged increments (+${c.failed} failed)`;
  }
  return [
    systemName,
    timingText(r.timing),
    `leader SIGKILL under ${WRITE_LOOPS} write loops`,
    String(r.results.length),
    ms(s.min),
    ms(s.median),
    ms(s.p90),
    ms(s.max),
    `${fmt(failures)} of ${fmt(writes)}${failures > 0 ? ` (${describeCodes(r.load.puts)}${r.load.incrs.failed > 0 ? `; incr ${describeCodes(r.load.incrs)}` : ""})` : ""}`,
    once,
    target,
    met === null ? "not measured" : verdict(met),
  ];
}

function etcdMissingRow(t: Timing): string[] {
  return ["etcd", timingText(t), "etcd not installed", "0", "", "", "", "", "", "", "", "not measured"];
}

/** Runs the failover benchmark and returns its BENCHMARKS.md section. */
export async function run(): Promise<BenchSection> {
  return withCleanup(async () => {
    const kills = Math.round(envNumber("BENCH_FAILOVER_KILLS", 20));
    const seconds = benchSeconds();
    const loadAtStart = loadAverage();
    const startedMs = performance.now();
    const build = buildGeokv();
    const bin = etcdBinary();
    if (!bin) console.log("etcd not installed (apt-get install etcd-server): its rows say so");

    const elections = await electionsUnderLoad(build, seconds);
    const gDefault = await geokvKills(build, GEOKV_DEFAULT, kills, true);
    const eDefault = bin ? await etcdKills(bin, ETCD_DEFAULT, kills) : null;
    const gEqual = await geokvKills(build, EQUAL, kills, false);
    const eEqual = bin ? await etcdKills(bin, EQUAL, kills) : null;
    const loadAtEnd = loadAverage();

    const gd = windowStats(gDefault.results);
    const ge = windowStats(gEqual.results);
    const ee = eEqual ? windowStats(eEqual.run.results) : null;
    const defaultMet = gd.missing === 0 && gd.median <= MEDIAN_TARGET_MS && gd.max <= MAX_TARGET_MS;
    const equalMet = ee ? ge.missing === 0 && ge.median <= ee.median : null;

    const rows: string[][] = [
      ["system", "timings", "measurement", "kills", "min ms", "median ms", "p90 ms", "max ms", "client-visible failed writes", "exactly-once counter", "target", "verdict"],
      killRow(gDefault, "geokv", `median <= ${MEDIAN_TARGET_MS} ms, max <= ${fmt(MAX_TARGET_MS)} ms`, defaultMet),
      eDefault ? killRow(eDefault.run, `etcd ${eDefault.version}`, "baseline", null).map((c, i) => (i === 11 ? "baseline" : c)) : etcdMissingRow(ETCD_DEFAULT),
      killRow(gEqual, "geokv", "median <= etcd's median at equal timings", equalMet),
      eEqual ? killRow(eEqual.run, `etcd ${eEqual.version}`, "baseline", null).map((c, i) => (i === 11 ? "baseline" : c)) : etcdMissingRow(EQUAL),
      [
        "geokv",
        timingText(GEOKV_DEFAULT),
        `elections during ${seconds} s of autocannon PUT ?ack=region, ${LOAD_CONNECTIONS} connections, at the leader of a fresh region (${fmt(elections.result.requestsPerSec)} writes/s)`,
        "",
        "",
        "",
        "",
        "",
        `${fmt(elections.result.failed)} of ${fmt(elections.result.ok + elections.result.failed)} (errors + non-2xx)`,
        "",
        "0 elections",
        `${verdict(elections.elections === 0)}: ${elections.elections} elections, epochs ${elections.epochBefore.join("/")} -> ${elections.epochAfter.join("/")}`,
      ],
    ];

    const slowest = (r: KillRun) => {
      let worst = 0;
      r.results.forEach((x, i) => {
        if ((x.windowMs ?? Infinity) > (r.results[worst]?.windowMs ?? -1)) worst = i;
      });
      const x = r.results[worst];
      const d = r.details[worst];
      if (!x || !d || d.lines === "") return "";
      return `Slowest geokv kill at ${timingText(r.timing)}: ${ms(x.windowMs ?? Infinity)} ms (${x.killed} killed; ${d.refused503} client attempts answered 503 meanwhile); survivors' role lines: ${d.lines}.`;
    };
    const dupNote = (r: KillRun) => {
      const c = r.counter;
      if (!c || c.duplicates.length === 0) return "";
      const merged = c.duplicates.filter((d) => d.near.includes("came back with the restarted node")).length;
      const list = c.duplicates.slice(0, DUPLICATES_LISTED).map((d) => `${d.dots.map((x) => x.dot).join(" + ")} (${d.near})`).join("; ");
      const more = c.duplicates.length > DUPLICATES_LISTED ? `; and ${c.duplicates.length - DUPLICATES_LISTED} more` : "";
      return `At ${timingText(r.timing)} ${c.duplicates.length} increments were applied twice (one Idempotency-Key in two ops of the op log under different dots); in ${merged} of them no survivor had the dead leader's op when the new leader took the client's retry, so the op came back with the restarted node and was merged next to the retry's. ${list}${more}.`;
    };
    // Most of a window after the new leader took office is client-side waiting, not election.
    const clientGap = (r: KillRun) => medianOf(r.results.map((x, i) => (x.windowMs !== null && r.details[i]?.activeMs != null ? x.windowMs - (r.details[i]?.activeMs as number) : null)));
    const learned: string[] = [];
    for (const r of [gDefault, gEqual]) {
      const g = clientGap(r);
      if (Number.isFinite(g) && g > 0.3 * windowStats(r.results).median) {
        const said = [...new Set(r.details.flatMap((x) => x.messages))].slice(0, 3).map((m) => `"${m}"`).join(", ");
        learned.push(`geokv at ${timingText(r.timing)}: ${ms(g)} ms of the median window come after the new leader is in office. Between the kill and the first ack the clients got 503 answers (Retry-After ${[...new Set(r.details.flatMap((x) => x.retryAfters))].join("/") || "none"} s)${said !== "" ? ` saying ${said}` : ""}: a write that reaches a follower before it has noticed the dead leader is relayed to it, fails at once, and is refused instead of waiting (up to writeWaitMs) for the next leader; the SDK honours Retry-After as a floor and sits out a full second.`);
      }
    }

    return {
      name: "failover",
      title: "Failover: write unavailability when the leader is SIGKILLed, next to etcd",
      table: rows,
      notes: [
        `Window = from the SIGKILL of the leader to the first write acknowledged by a new leader, as the client sees it. geokv (${build.label}): one region of ${NODES} node processes of the built CLI on loopback; a write counts when its causal token's origin (the node that took it) is a survivor. etcd: a 3-member cluster on loopback (temp data dirs, free ports), leader found through POST /v3/maintenance/status (header.member_id == leader); a put counts when its answer's raft_term is above the killed leader's term. After every kill the killed process is restarted (etcd on the same data dir) and the bench waits until all ${NODES} are up with one agreed leader (geokv: every node /ready, followers at most 500 ops behind) and writes flow for 0.5 s before the next kill.`,
        `Load during the kills: ${WRITE_LOOPS} concurrent loops. geokv: each loop has its own SDK client (createClient with all ${NODES} node URLs: retries with full-jitter backoff from 50 ms to 1 s, Retry-After as a floor, Idempotency-Key on every write, 10 s deadline and 5 s attempt bound per call) and alternates put(fresh key, ack=region) and incr("${COUNTER_KEY}", 1, ack=region). etcd: each loop POSTs /v3/kv/put through the JSON gateway, knows all three members, sticks to the last one that answered and moves on to the next on any error, with the same backoff and 10 s deadline; each attempt is bounded by one election timeout, because a put that a follower forwarded to the dead leader is lost and answered only at etcd's request timeout (5 s + 2 election timeouts), so with the SDK's 5 s attempt bound etcd's window is about 5 s. A write that still fails after its deadline is a client-visible failure.`,
        `Exactly-once: at the end every geokv node must hold the counter at exactly the number of increments the clients saw acknowledged (an increment that failed at the client may or may not have been applied, so with failures the check is a range). The op logs are then searched for one Idempotency-Key under two dots.`,
        dupNote(gDefault),
        dupNote(gEqual),
        `Where the time goes (survivors' log lines: geokv's role changes with their reasons, etcd's raft lines; medians over the kills). ${[gDefault, eDefault?.run, gEqual, eEqual?.run].filter((r): r is KillRun => r !== undefined).map(phaseNote).join(". ")}.`,
        ...learned,
        slowest(gDefault),
        slowest(gEqual),
        `Elections under load: geokv_elections_total and geokv_leader_changes_total summed over the three nodes' /metrics, and geokv_epoch, before and ${AFTER_LOAD_SETTLE_MS / 1000} s after the autocannon run; ${elections.leaderChanges} leader changes; leader ${elections.leaderBefore} before, ${elections.leaderAfter ?? "none agreed"} after.`,
        eDefault || eEqual
          ? `etcd ${eDefault?.version ?? eEqual?.version} (Debian etcd-server) runs with --heartbeat-interval/--election-timeout as in the table; raft randomizes its election timeout in [timeout, 2 x timeout) and pre-vote is off in 3.4. geokv suspects after the election timeout plus up to half of it; the suspecter asks the higher-ranked members other than the silent leader (Bully, waiting up to half an election timeout only when there are any), then holds a pre-vote and raises its epoch once a majority granted it; the coordinator takes writes once a majority accepted its epoch and it holds their ops.`
          : "etcd not installed: the etcd rows were not measured.",
        `The machine is shared and was loaded: 1-minute load average ${loadAtStart} at the start and ${loadAtEnd} at the end (os.loadavg), ${cpus().length} cores for ${NODES} server processes and the bench client; the whole bench took ${fmt((performance.now() - startedMs) / 60_000, 1)} min. Kills per run: BENCH_FAILOVER_KILLS (default 20).`,
      ].filter((n) => n !== ""),
    };
  });
}
