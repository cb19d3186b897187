// Prometheus metrics for one node. The node layer owns them (DESIGN.md,
// Architecture): drivers count what they perform, and src/http only renders
// the registry at /metrics. Each node gets its own registry (not the
// prom-client global) so that several nodes can live in one test process.
// Labels are bounded: routes are hono's route patterns, never raw paths.

import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { YjsStats } from "./yjs-rooms.js";

/** The node's metrics and the registry that renders them. */
export interface NodeMetrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<"route" | "method" | "code">;
  readonly httpDuration: Histogram<"route" | "method">;
  readonly writes: Counter<"ns">;
  readonly reads: Counter<"ns">;
  readonly conflicts: Counter;
  readonly storageBytes: Gauge;
  readonly epoch: Gauge;
  readonly elections: Counter;
  readonly leaderChanges: Counter;
  readonly replicationLagOps: Gauge<"peer">;
  readonly linkUp: Gauge<"peer">;
  readonly sendQueueDepth: Gauge<"peer">;
  readonly peerBytesSent: Counter<"kind">;
  readonly eventLoopDelay: Gauge<"stat">;
  /** The longest GC pause and the number of pauses since the previous scrape. */
  readonly gcPause: Gauge<"stat">;
  readonly opsFromLog: Counter;
  readonly staleBatches: Counter;
  /** Live documents (y-websocket): client updates taken, batches written, connections closed by this node (by close code). */
  readonly yjsUpdates: Counter;
  readonly yjsWrites: Counter;
  readonly yjsClosed: Counter<"code">;
  /** Requests and connections answered 503 overloaded, by the bound that was full (src/core/admission.ts). */
  readonly shed: Counter<"bound">;
  /** Client HTTP requests being answered now (the in-flight bound counts these). */
  readonly inflightRequests: Gauge;
  /** Stops the event-loop delay sampler; the registry can still be read. */
  close(): void;
}

/** What the metrics read from the node at scrape time. */
export interface MetricSources {
  /** Size of the node's database in bytes. */
  readonly storageBytes: () => number;
  /** Bytes of frames sent to peers since start, by kind (cumulative; the counter adds the deltas). */
  readonly peerBytesSent?: () => { readonly ops: number; readonly other: number };
  /** The live documents' connections and memory. */
  readonly yjs?: () => YjsStats;
  /** The byte budget of live and cached documents. */
  readonly docCacheBudgetBytes?: number;
  /** The op log's size and the store's in-memory caches with their budgets. */
  readonly store?: () => StoreStats;
}

/** What the storage gauges show. */
export interface StoreStats {
  readonly opLogOps: number;
  readonly opLogBytes: number;
  readonly kvCacheBytes: number;
  readonly kvCacheBudgetBytes: number;
  readonly pageCacheBudgetBytes: number;
}

/** Sampling period of the event-loop delay monitor; a stall shorter than this may be missed. */
const EVENT_LOOP_RESOLUTION_MS = 10;
const NS_PER_S = 1e9;

/** Creates a registry with geokv's metrics; gauges fed by `sources` are read at scrape time. */
export function createMetrics(sources: MetricSources, withDefaults = true): NodeMetrics {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: "geokv_process_" });
  const registers = [registry];
  const loop = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  loop.enable();
  // The longest garbage-collection pause since the previous scrape: what part
  // of an event-loop stall the collector took (it runs on the loop's thread).
  const gc = { maxMs: 0, count: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.count++;
      gc.maxMs = Math.max(gc.maxMs, e.duration);
    }
  });
  gcObserver.observe({ entryTypes: ["gc"] });
  // The hub counts bytes since start; the counter adds what was sent since the last scrape.
  const sentBefore = { ops: 0, other: 0 };
  registerYjsGauges(sources, registers);
  registerStoreGauges(sources, registers);
  return {
    registry,
    httpRequests: new Counter({ name: "geokv_http_requests_total", help: "HTTP requests by route, method and status code", labelNames: ["route", "method", "code"], registers }),
    httpDuration: new Histogram({
      name: "geokv_http_request_duration_seconds",
      help: "HTTP request latency by route and method",
      labelNames: ["route", "method"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    writes: new Counter({ name: "geokv_writes_total", help: "Acknowledged client writes by namespace", labelNames: ["ns"], registers }),
    reads: new Counter({ name: "geokv_reads_total", help: "Client reads by namespace", labelNames: ["ns"], registers }),
    conflicts: new Counter({ name: "geokv_conflicts_total", help: "Concurrent kv versions detected (true conflicts)", registers }),
    storageBytes: new Gauge({
      name: "geokv_storage_bytes",
      help: "Size of the node's SQLite database",
      registers,
      collect() {
        this.set(sources.storageBytes());
      },
    }),
    epoch: new Gauge({ name: "geokv_epoch", help: "The region epoch this node knows", registers }),
    elections: new Counter({ name: "geokv_elections_total", help: "Elections this node started", registers }),
    leaderChanges: new Counter({ name: "geokv_leader_changes_total", help: "Times this node saw its region's leader change", registers }),
    replicationLagOps: new Gauge({ name: "geokv_replication_lag_ops", help: "Ops a peer lacks that this node has", labelNames: ["peer"], registers }),
    linkUp: new Gauge({ name: "geokv_link_up", help: "1 when the link to a peer is up", labelNames: ["peer"], registers }),
    sendQueueDepth: new Gauge({ name: "geokv_send_queue_bytes", help: "Bytes queued in the socket to a peer", labelNames: ["peer"], registers }),
    opsFromLog: new Counter({
      name: "geokv_replication_ops_from_log_total",
      help: "Ops read back from the op log to send to peers (a peer behind the in-memory tail); live streaming reads none",
      registers,
    }),
    staleBatches: new Counter({ name: "geokv_stale_batches_rejected_total", help: "Replicated batches refused for a stale fencing token", registers }),
    yjsUpdates: new Counter({ name: "geokv_yjs_updates_total", help: "Updates taken from y-websocket clients", registers }),
    yjsWrites: new Counter({ name: "geokv_yjs_writes_total", help: "Batches of y-websocket client updates written (one op each)", registers }),
    yjsClosed: new Counter({ name: "geokv_yjs_closed_total", help: "y-websocket connections this node closed, by close code", labelNames: ["code"], registers }),
    shed: new Counter({ name: "geokv_shed_total", help: "Requests and connections refused with 503 overloaded, by the bound that was full", labelNames: ["bound"], registers }),
    inflightRequests: new Gauge({ name: "geokv_inflight_requests", help: "Client HTTP requests being answered now", registers }),
    peerBytesSent: new Counter({
      name: "geokv_peer_bytes_sent_total",
      help: "Bytes of frames sent to peers, by kind (ops, other)",
      labelNames: ["kind"],
      registers,
      collect() {
        if (sources.peerBytesSent === undefined) return;
        const now = sources.peerBytesSent();
        for (const kind of ["ops", "other"] as const) {
          const delta = now[kind] - sentBefore[kind];
          // A counter never goes back: a smaller cumulative figure is ignored,
          // not subtracted. inc(0) still exports the series, so a scrape
          // before the first frame reads 0 rather than nothing.
          this.inc({ kind }, Math.max(0, delta));
          sentBefore[kind] = Math.max(sentBefore[kind], now[kind]);
        }
      },
    }),
    eventLoopDelay: new Gauge({
      name: "geokv_event_loop_delay_seconds",
      help: `Event-loop delay since the previous scrape (reset at every scrape; sampled every ${EVENT_LOOP_RESOLUTION_MS} ms), by stat (max, p99)`,
      labelNames: ["stat"],
      registers,
      collect() {
        // Reset per scrape, so a stall shows in the next scrape and then leaves
        // it: a rolling figure would hide when it happened. With no sample yet
        // (scraped twice within one resolution) both read 0.
        const has = loop.count > 0;
        this.set({ stat: "max" }, has ? loop.max / NS_PER_S : 0);
        this.set({ stat: "p99" }, has ? loop.percentile(99) / NS_PER_S : 0);
        loop.reset();
      },
    }),
    gcPause: new Gauge({
      name: "geokv_gc_pause_seconds",
      help: "Longest garbage-collection pause since the previous scrape (reset at every scrape), and the number of pauses, by stat (max, count)",
      labelNames: ["stat"],
      registers,
      collect() {
        this.set({ stat: "max" }, gc.maxMs / 1000);
        this.set({ stat: "count" }, gc.count);
        gc.maxMs = 0;
        gc.count = 0;
      },
    }),
    close() {
      loop.disable();
      gcObserver.disconnect();
    },
  };
}

/** Gauges of the live documents, read at scrape time (not in NodeMetrics: no driver sets them). */
function registerStoreGauges(sources: MetricSources, registers: Registry[]): void {
  const stats = sources.store;
  if (stats === undefined) return;
  const gauge = (name: string, help: string, read: (s: StoreStats) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read(stats()));
      },
    });
  };
  gauge("geokv_op_log_ops", "Rows in the op log (compacted past --op-log-retain-ops once stable)", (s) => s.opLogOps);
  gauge("geokv_op_log_bytes", "Key, body and payload bytes of the op log's rows", (s) => s.opLogBytes);
  gauge("geokv_kv_cache_bytes", "Bytes of the kv read cache (committed registers' text)", (s) => s.kvCacheBytes);
  gauge("geokv_kv_cache_budget_bytes", "The byte budget of the kv read cache", (s) => s.kvCacheBudgetBytes);
  gauge("geokv_page_cache_budget_bytes", "The byte budget of SQLite's page cache", (s) => s.pageCacheBudgetBytes);
}

function registerYjsGauges(sources: MetricSources, registers: Registry[]): void {
  const stats = sources.yjs;
  if (stats === undefined) return;
  new Gauge({
    name: "geokv_yjs_connections",
    help: "y-websocket connections open on this node",
    registers,
    collect() {
      this.set(stats().connections);
    },
  });
  new Gauge({
    name: "geokv_yjs_docs",
    help: "Documents in memory: live (a room with clients or edits to write) and cached (an idle doc's merged update)",
    labelNames: ["state"],
    registers,
    collect() {
      const s = stats();
      this.set({ state: "live" }, s.liveDocs);
      this.set({ state: "cached" }, s.cachedDocs);
    },
  });
  new Gauge({
    name: "geokv_yjs_doc_bytes",
    help: "Bytes of documents in memory, live and cached (their merged updates)",
    labelNames: ["state"],
    registers,
    collect() {
      const s = stats();
      this.set({ state: "live" }, s.liveBytes);
      this.set({ state: "cached" }, s.cachedBytes);
    },
  });
  new Gauge({
    name: "geokv_yjs_queue_bytes",
    help: "Bytes of client edits waiting to be written (the region has no leader, or a write is under way)",
    registers,
    collect() {
      this.set(stats().queuedBytes);
    },
  });
  const budget = sources.docCacheBudgetBytes;
  if (budget !== undefined) {
    new Gauge({ name: "geokv_yjs_doc_budget_bytes", help: "The byte budget of documents in memory (--doc-cache-bytes)", registers }).set(budget);
  }
}
