// Prometheus metrics for one node. Each node gets its own registry (not the
// prom-client global) so that several nodes can live in one test process.
// Labels are bounded: routes are hono's route patterns, never raw paths.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

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
  readonly peerBytesSent: Gauge<"kind">;
  readonly staleBatches: Counter;
}

/** Creates a registry with geokv's metrics; `storageBytes` is read at scrape time. */
export function createMetrics(readStorageBytes: () => number, withDefaults = true): NodeMetrics {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: "geokv_process_" });
  const registers = [registry];
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
        this.set(readStorageBytes());
      },
    }),
    epoch: new Gauge({ name: "geokv_epoch", help: "The region epoch this node knows", registers }),
    elections: new Counter({ name: "geokv_elections_total", help: "Elections this node started", registers }),
    leaderChanges: new Counter({ name: "geokv_leader_changes_total", help: "Times this node saw its region's leader change", registers }),
    replicationLagOps: new Gauge({ name: "geokv_replication_lag_ops", help: "Ops a peer lacks that this node has", labelNames: ["peer"], registers }),
    linkUp: new Gauge({ name: "geokv_link_up", help: "1 when the link to a peer is up", labelNames: ["peer"], registers }),
    sendQueueDepth: new Gauge({ name: "geokv_send_queue_bytes", help: "Bytes queued in the socket to a peer", labelNames: ["peer"], registers }),
    staleBatches: new Counter({ name: "geokv_stale_batches_rejected_total", help: "Replicated batches refused for a stale fencing token", registers }),
    peerBytesSent: new Gauge({ name: "geokv_peer_bytes_sent", help: "Bytes of frames sent to peers since start, by kind (ops, other)", labelNames: ["kind"], registers }),
  };
}
