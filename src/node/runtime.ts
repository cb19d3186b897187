// Starts one geokv node: opens its SQLite store, builds the replica store,
// serves the HTTP app, and shuts all of it down in order (stop taking
// requests, let in-flight writes commit, close the database). The runtime
// holds handles and timers, not decisions.

import { mkdirSync } from "node:fs";
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import Database from "better-sqlite3";
import { pino, type Logger } from "pino";
import { formatFence, parseFence } from "../core/fence.js";
import type { NodeId } from "../core/ids.js";
import { createApp } from "../http/app.js";
import { createMetrics, type NodeMetrics } from "../http/metrics.js";
import { createGroupCommitter, type GroupCommitter } from "../storage/group-commit.js";
import { openSqliteStorage, type SqliteStorage } from "../storage/sqlite.js";
import type { Duplex } from "node:stream";
import type { MemberConfig } from "../core/cluster-view.js";
import { createHub, PEER_PATH, type Hub } from "../net/hub.js";
import { clusterId, type ClusterConfig, type ClusterNode, type RegionConfig } from "./config.js";
import { nodeError } from "./errors.js";
import { LocalStore } from "./local-store.js";
import { Replicator } from "./replicator.js";
import { ElectionDriver } from "./election-driver.js";
import { mergeVv, vvLag } from "../core/version-vector.js";
import type { ClusterService, StatusView, WriteRouter } from "./service.js";
import type { Settings } from "./settings.js";

/** Idempotency records are kept this long: a client retrying later than this is not a retry. */
const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
const IDEMPOTENCY_PRUNE_EVERY_MS = 10 * 60 * 1000;

/** How long a shutdown waits for in-flight requests before cutting their connections. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface StartNodeOptions {
  readonly cluster: ClusterConfig;
  readonly nodeId: NodeId;
  /** The data folder of the whole cluster; this node uses <dataDir>/<nodeId>/. */
  readonly dataDir: string;
  readonly settings: Settings;
  /** Where to listen, when not the host and port of the node's URL (containers). */
  readonly listen?: { readonly host: string; readonly port: number } | undefined;
  readonly logger?: Logger;
}

/** A running node. */
export interface RunningNode {
  readonly nodeId: NodeId;
  readonly url: string;
  readonly store: LocalStore;
  readonly storage: SqliteStorage;
  readonly metrics: NodeMetrics;
  readonly logger: Logger;
  /** Stops accepting requests, lets in-flight writes commit, closes the database. */
  close(): Promise<void>;
}

/** Opens the node's store and starts serving; resolves once it listens. */
export async function startNode(o: StartNodeOptions): Promise<RunningNode> {
  const me = o.cluster.nodes.get(o.nodeId) as ClusterNode;
  const region = o.cluster.regions.find((r) => r.region === me.region) as RegionConfig;
  const logger = o.logger ?? pino({ level: o.settings.logLevel, base: { node: o.nodeId, region: me.region } });
  const dir = join(o.dataDir, o.nodeId);
  mkdirSync(dir, { recursive: true });
  const releaseDir = lockDataDir(dir);
  const storage = openSqliteStorage({ path: join(dir, "geokv.db"), synchronous: o.settings.synchronous });
  const stored = storage.getMeta("nodeId");
  if (stored !== undefined && stored !== o.nodeId) {
    storage.close();
    releaseDir();
    throw new Error(`${dir} holds the data of node ${stored}, not ${o.nodeId}; refusing to start`);
  }
  if (stored === undefined) storage.setMeta("nodeId", o.nodeId);
  const committer: GroupCommitter = createGroupCommitter(storage);
  const metrics = createMetrics(() => storage.sizeBytes());

  const members: MemberConfig[] = [...o.cluster.nodes.values()].map((n) => ({ node: n.id, region: n.region, priority: n.priority }));
  const self = members.find((m) => m.node === o.nodeId) as MemberConfig;
  const refusedBy = new Map<string, string>();
  // The hub, the replicator and the store refer to each other through these
  // late-bound closures; construction order is hub -> store -> replicator.
  const leaderWaiters = new Set<() => void>();
  // eslint-disable-next-line prefer-const -- assigned once below, read by closures created before it
  let replicator: Replicator | undefined;
  const hub: Hub = createHub({
    self: { node: o.nodeId, region: me.region, clusterId: clusterId(o.cluster) },
    peers: [...o.cluster.nodes.values()].filter((n) => n.id !== o.nodeId).map((n) => ({ node: n.id, region: n.region, url: n.url })),
    secret: o.settings.clusterSecret,
    intro: () => ({ epoch: storage.getMeta("epoch") ?? 0, vv: storage.appliedVv() }),
    onLinkUp: (peer, intro) => {
      refusedBy.delete(peer);
      replicator?.onLinkUp(peer, intro);
    },
    onLinkDown: (peer, reason) => replicator?.onLinkDown(peer, reason),
    onFrame: (peer, frame) => replicator?.onFrame(peer, frame),
    onRefused: (peer, reason) => {
      // A fault injected on purpose is not a misconfiguration worth an alarm.
      if (reason.includes("fault injection")) return;
      refusedBy.set(peer, reason);
      logger.error({ peer, reason }, `link with ${peer} refused: ${reason}`);
    },
    logger,
  });

  let localVvQueued = false;
  const store = new LocalStore({
    nodeId: o.nodeId,
    storage,
    committer,
    now: Date.now,
    onConflicts: (cs) => metrics.conflicts.inc(cs.length),
    onWriteAcked: (ns) => metrics.writes.inc({ ns }),
    onRead: (ns) => metrics.reads.inc({ ns }),
    onCommitted: (ops) => {
      replicator?.onCommitted(ops);
      // Once per burst, not per write: a group commit wakes all its writes in
      // one turn, and reading the vector from SQLite for each was 7% of a PUT.
      if (localVvQueued) return;
      localVvQueued = true;
      queueMicrotask(() => {
        localVvQueued = false;
        election?.onLocalVv(storage.appliedVv());
      });
    },
    ackGate: (op, level) => (replicator as Replicator).awaitAck(op, level),
    writeGate: () => {
      const r = replicator as Replicator;
      if (!r.isLeader()) return nodeError("no_leader", `${o.nodeId} is not the leader of ${me.region}`, 1);
      if (r.clockSkewed()) return nodeError("clock_skew", `${o.nodeId}'s clock is more than ${o.settings.maxClockSkewMs} ms from its peers'; refusing writes so a wrong clock cannot win conflicts`, 1);
      return null;
    },
  });
  const election: ElectionDriver = new ElectionDriver({
    self,
    members: members.filter((m) => m.region === me.region),
    failover: region.failover,
    preempt: region.preempt,
    heartbeatMs: o.settings.heartbeatMs,
    electionTimeoutMs: o.settings.electionTimeoutMs,
    storage,
    hub,
    logger,
    metrics,
    onChange: (e) => {
      replicator?.leadershipChanged(e.reason);
      for (const w of [...leaderWaiters]) w();
    },
  });
  replicator = new Replicator({
    leadership: election,
    self,
    members,
    hub,
    store,
    storage,
    heartbeatMs: o.settings.heartbeatMs,
    electionTimeoutMs: o.settings.electionTimeoutMs,
    writeWaitMs: o.settings.writeWaitMs,
    maxClockSkewMs: o.settings.maxClockSkewMs,
    now: Date.now,
    logger,
    metrics,
  });
  const repl = replicator;

  let lastLeader: string | null = repl.leader();
  const router: WriteRouter = {
    route() {
      const leader = repl.leader();
      if (leader !== lastLeader) {
        lastLeader = leader;
        for (const w of [...leaderWaiters]) w();
      }
      if (leader === o.nodeId && repl.isLeader()) return { kind: "local" };
      if (leader === null || leader === o.nodeId) return { kind: "none", reason: `region ${me.region} has no leader that ${o.nodeId} can reach (this node: ${election.phase()})` };
      return { kind: "forward", node: leader, url: (o.cluster.nodes.get(leader) as ClusterNode).url };
    },
    changed(ms) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(t);
          leaderWaiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, ms);
        leaderWaiters.add(done);
      });
    },
  };

  const cluster: ClusterService = {
    status(): StatusView {
      return {
        node: o.nodeId,
        region: me.region,
        role: election.role(),
        leader: repl.leader(),
        epoch: election.epoch(),
        fencingToken: election.fencingToken(),
        phase: election.phase(),
        vv: storage.appliedVv(),
        peers: repl.peerStatus(),
        ...(refusedBy.size > 0 ? { refusedBy: [...refusedBy].map(([node, reason]) => ({ node, reason })) } : {}),
      };
    },
    ready: () => {
      const leader = repl.leader();
      if (leader === null) return { ready: false, reason: `region ${me.region} has no leader` };
      if (leader === o.nodeId) return { ready: true };
      const behind = repl.behindPeer(leader);
      if (behind >= o.settings.readyLagOps) return { ready: false, reason: `${behind} ops behind leader ${leader} (limit ${o.settings.readyLagOps})` };
      return { ready: true };
    },
  };

  const app = createApp({
    nodeId: o.nodeId,
    service: store,
    cluster,
    metrics,
    logger,
    maxValueBytes: o.settings.maxValueBytes,
    tokenWaitMs: o.settings.writeWaitMs,
    clientToken: o.settings.clientToken,
    adminToken: o.settings.adminToken,
    router,
    writeWaitMs: o.settings.writeWaitMs,
    faults: {
      block: (targets, direction) => hub.block(targets, direction),
      clear: () => hub.clearFaults(),
    },
    leadership: {
      async stepdown() {
        if (election.isActiveLeader()) {
          const refused = election.stepdown();
          return refused === null ? { ok: true, leader: null } : { ok: false, status: 409, reason: refused };
        }
        const leader = repl.leader();
        if (leader === null || leader === o.nodeId) return { ok: false, status: 503, reason: `region ${me.region} has no leader to step down` };
        return { ok: false, status: 409, reason: `${o.nodeId} is not the leader`, forwardTo: (o.cluster.nodes.get(leader) as ClusterNode).url };
      },
      promote() {
        // The most up-to-date reachable node of the region: promote is refused when this one is behind it.
        let best = storage.appliedVv();
        for (const p of repl.peerViews()) if (p.region === me.region && p.up) best = mergeVv(best, p.vv);
        const refused = election.promote(best);
        if (refused === null) return { ok: true };
        const behind = vvLag(best, storage.appliedVv());
        return { ok: false, reason: behind > 0 && !/behind/.test(refused) ? `${refused} (${behind} ops behind)` : refused };
      },
      validateFence(token) {
        const f = parseFence(token);
        if (f === null || !o.cluster.regions.some((r) => r.region === f.region)) return null;
        const current = formatFence(f.region, repl.knownEpoch(f.region));
        return { valid: token === current, current };
      },
    },
  });

  const host = o.listen?.host ?? me.host;
  const port = o.listen?.port ?? me.port;
  let server: ServerType;
  try {
    server = await new Promise<ServerType>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: host, port }, () => resolve(s));
      s.once("error", reject);
    });
  } catch (err) {
    // Port taken or not ours to bind: release the database so the caller can
    // retry or exit cleanly instead of holding the file open.
    await committer.close();
    storage.close();
    releaseDir();
    throw err;
  }
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? "").split("?")[0];
    if (path === PEER_PATH) hub.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  hub.start();
  repl.start();
  election.start();
  const pruner = setInterval(() => {
    const n = storage.pruneIdempotency(Date.now() - IDEMPOTENCY_TTL_MS);
    if (n > 0) logger.info({ pruned: n }, "pruned expired idempotency records");
  }, IDEMPOTENCY_PRUNE_EVERY_MS);
  pruner.unref();
  logger.info({ url: me.url, listen: `${host}:${port}`, region: me.region, failover: region.failover }, "node serving");

  // serve() builds an HTTP/1 server (no createServer option is passed).
  const http1 = server as HttpServer;
  // Answers under way, so a shutdown can ask their keep-alive connections to
  // close after the answer: a busy client would otherwise keep reusing its
  // connection and server.close() would never finish.
  const answering = new Set<ServerResponse>();
  let draining = false;
  // Prepended, so it runs before the app can send headers.
  http1.prependListener("request", (_req: IncomingMessage, res: ServerResponse) => {
    if (draining) res.setHeader("Connection", "close");
    answering.add(res);
    res.once("close", () => answering.delete(res));
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      clearInterval(pruner);
      election.stop();
      repl.stop();
      await hub.close();
      await new Promise<void>((resolve) => {
        draining = true;
        for (const res of answering) if (!res.headersSent) res.setHeader("Connection", "close");
        // A connection that stays busy past the grace period is cut; its write may still commit.
        const force = setTimeout(() => http1.closeAllConnections(), SHUTDOWN_GRACE_MS);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        // Idle keep-alive sockets would hold close() open; in-flight requests still finish.
        http1.closeIdleConnections();
      });
      await committer.close();
      storage.close();
      releaseDir();
      logger.info("node stopped");
    })();
    return closing;
  };
  return { nodeId: o.nodeId, url: me.url, store, storage, metrics, logger, close };
}

/**
 * Takes an OS lock on <dir>/LOCK for as long as the node runs, so a second
 * process on the same data directory is refused: two writers on one database
 * would hand out the same dots (seq) and the op log would silently keep only
 * one of each. SQLite's exclusive locking mode keeps its file lock until the
 * connection closes, and the OS drops it when the process dies (SIGKILL
 * included), so a crash never leaves a stale lock. Returns the release.
 */
function lockDataDir(dir: string): () => void {
  const path = join(dir, "LOCK");
  const db = new Database(path);
  try {
    db.pragma("busy_timeout = 0");
    db.pragma("journal_mode = OFF");
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS held (x); COMMIT;");
  } catch (err) {
    db.close();
    if ((err as { code?: unknown }).code === "SQLITE_BUSY") {
      throw new Error(`${dir} is in use by another running geokv process (${path} is locked); refusing to start`);
    }
    throw err;
  }
  return () => {
    if (db.open) db.close();
  };
}
