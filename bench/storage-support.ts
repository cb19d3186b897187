// Helpers the storage bench's parts share (bench/storage.ts and
// bench/bootstrap-part.ts): a node and the client that drives it, its
// /status.storage, one explicit compaction pass, and the write loop.

import { fmt } from "./report.js";
import { HttpClient, jsonValue, sleep, startGeokv, waitFor, type Build, type GeokvCluster } from "./support.js";

/** Bytes of every value the bench writes (JSON). */
export const VALUE_BYTES = 100;
/** Writes in flight per node, each on its own keep-alive connection. */
export const WRITE_CONCURRENCY = 64;

/** One POST /admin/compact may run a whole pass over a large log. */
export const COMPACT_TIMEOUT_MS = 300_000;

/** /status.storage, as the compaction API specifies it. */
export interface StorageStatus {
  readonly opLogOps: number;
  readonly opLogBytes: number;
  readonly dbBytes: number;
  readonly compactedVv: Record<string, number>;
  readonly stableVv: Record<string, number>;
}

/**
 * POST /admin/compact's answer: the spec's fields, and prunedIdempotency and
 * reclaimedPages besides. Builds before 9c62613 (BENCH_REF) answer no
 * droppedTombstones, so every count but compactedOps is optional here and
 * reported as found.
 */
export interface CompactAnswer {
  readonly compactedOps: number;
  readonly droppedTombstones?: number;
  readonly prunedIdempotency?: number;
  readonly reclaimedPages?: number;
  readonly opLogOps: number;
  readonly compactedVv: Record<string, number>;
  readonly stableVv: Record<string, number>;
}

/** One geokv node (of a single-node region, or the leader of a larger one), and the client the bench drives it with. */
export interface OneNode {
  readonly cluster: GeokvCluster;
  readonly node: string;
  readonly url: string;
  readonly client: HttpClient;
}

export const mib = (bytes: number) => `${fmt(bytes / 2 ** 20, 2)} MiB`;
export const ms = (x: number) => `${fmt(x, 1)} ms`;

/** Starts a single-node region `region` with `env`; resolves when the node is ready (its own leader). */
export async function startOne(build: Build, region: string, env: Record<string, string>): Promise<OneNode> {
  // An admin token inherited from the shell would lock the bench out of /admin/compact: empty means unset.
  const cluster = await startGeokv(build, [{ region, nodes: 1 }], { GEOKV_ADMIN_TOKEN: "", ...env });
  const node = `${region}-1`;
  const url = cluster.urls.get(node) as string;
  const client = new HttpClient(WRITE_CONCURRENCY + 4);
  // /status, not /ready: a node logs every 503 it answers at warn.
  await waitFor(`${node} leading its region`, async () => (await client.json<{ leader: string | null }>(`${url}/status`)).leader === node, 20_000);
  return { cluster, node, url, client };
}

/** /status.storage of a node; throws when the build has none (compaction not in it). */
export async function storageStatus(n: OneNode): Promise<StorageStatus> {
  const s = await n.client.json<{ storage?: StorageStatus }>(`${n.url}/status`);
  const st = s.storage;
  if (st === undefined || typeof st.opLogOps !== "number" || typeof st.dbBytes !== "number") {
    throw new Error(`${n.node} /status has no storage.opLogOps / storage.dbBytes (is compaction in this build?): ${JSON.stringify(s).slice(0, 300)}`);
  }
  return st;
}

/** POST /admin/compact: one full pass now, with how long it took to answer. */
export async function compactNow(n: OneNode): Promise<{ answer: CompactAnswer; tookMs: number }> {
  const t0 = performance.now();
  const a = await n.client.send("POST", `${n.url}/admin/compact`, undefined, COMPACT_TIMEOUT_MS);
  const tookMs = performance.now() - t0;
  if (a.status !== 200) throw new Error(`${n.node} POST /admin/compact: ${a.status} ${a.body.slice(0, 300)}`);
  return { answer: JSON.parse(a.body) as CompactAnswer, tookMs };
}

/** What a run of writes did. */
export interface Writes {
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  readonly firstError: string | undefined;
  /** Answers 503 that were retried (only with `retry503`). */
  readonly retried: number;
}

/** With retry503, a write answered 503 (no leader: the region electing) is tried again up to this many times. */
const RETRIES_MAX = 50;
/** Pause before the n-th retry of a write: n times this, at most 1 s. */
const RETRY_STEP_MS = 50;

/** How writeMany goes on, retries and paces. */
export interface WriteManyOptions {
  /** Goes on past `count` until this returns true. */
  readonly until?: () => boolean;
  /** Retries a write answered 503 (see writeMany). */
  readonly retry503?: boolean;
  /** Sends write i no earlier than i / ratePerS seconds after the start (an offered rate, not as fast as the node answers). */
  readonly ratePerS?: number;
}

/**
 * PUTs `count` values (write i to pathOf(i), ack=local) over WRITE_CONCURRENCY
 * keep-alive connections, as fast as the node answers, or at most
 * `ratePerS` a second; with `until`, goes on past `count` until it returns
 * true. A failed write is counted, not retried; with `retry503`, one answered
 * 503 (a region electing, where a write can wait for no leader) is tried
 * again after a pause, up to RETRIES_MAX times, so a load of distinct keys
 * ends with every key written.
 */
export async function writeMany(n: OneNode, label: string, count: number, pathOf: (i: number) => string, opts: WriteManyOptions = {}): Promise<Writes> {
  const { until, retry503 = false, ratePerS } = opts;
  let next = 0;
  let ok = 0;
  let failed = 0;
  let retried = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const step = Math.max(1, Math.floor(count / 10));
  const more = () => (until === undefined ? next < count : !until());
  const worker = async () => {
    while (more()) {
      const i = next++;
      if (ratePerS !== undefined) {
        const dueMs = t0 + (i * 1000) / ratePerS - performance.now();
        if (dueMs > 0) await sleep(dueMs);
        if (!more() && until !== undefined) break;
      }
      try {
        let a = await n.client.send("PUT", `${n.url}${pathOf(i)}?ack=local`, jsonValue(VALUE_BYTES, i));
        for (let attempt = 1; retry503 && a.status === 503 && attempt <= RETRIES_MAX; attempt++) {
          retried++;
          await sleep(Math.min(1000, RETRY_STEP_MS * attempt));
          a = await n.client.send("PUT", `${n.url}${pathOf(i)}?ack=local`, jsonValue(VALUE_BYTES, i));
        }
        if (a.status === 200) ok++;
        else {
          failed++;
          firstError ??= `${a.status} ${a.body.slice(0, 200)}`;
        }
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
      if (until === undefined && (i + 1) % step === 0) console.log(`  ${label}: ${fmt(i + 1)} / ${fmt(count)} writes, ${fmt((ok + failed) / ((performance.now() - t0) / 1000))} /s`);
    }
  };
  await Promise.all(Array.from({ length: WRITE_CONCURRENCY }, worker));
  const seconds = (performance.now() - t0) / 1000;
  if (failed > 0) console.error(`  ${label}: ${fmt(failed)} writes failed; the first: ${firstError}`);
  if (retried > 0) console.log(`  ${label}: ${fmt(retried)} answers 503 retried`);
  return { ok, failed, seconds, firstError, retried };
}
