// The node runtime: opens this node's SQLite store, builds the replica store,
// the peer hub, the election and the replicator, and hands the services the
// HTTP layer needs to whoever serves them (src/server.ts, the composition
// root). It holds handles and timers, not decisions, and knows nothing of
// HTTP: serving, listening and the shutdown drain live above this layer.

import { mkdirSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { pino, type Logger } from "pino";
import { IDEMPOTENCY_TTL_MS } from "../core/apply/idempotency.js";
import { fencingTokenOf } from "../core/fence.js";
import type { NodeId } from "../core/ids.js";
import { createMetrics, type NodeMetrics } from "./metrics.js";
import { createGroupCommitter, type GroupCommitter } from "../storage/group-commit.js";
import { openSqliteStorage, type SqliteStorage } from "../storage/sqlite.js";
import type { MemberConfig } from "../core/cluster-view.js";
import { createHub, PEER_PATH, type Hub } from "../net/hub.js";
import type { PeerTls } from "../net/peer-cert.js";
import { clusterId, type ClusterConfig, type ClusterNode, type RegionConfig } from "./config.js";
import { nodeError } from "./errors.js";
import { LocalStore } from "./local-store.js";
import { Replicator } from "./replicator.js";
import { ElectionDriver } from "./election-driver.js";
import { createDashboardFeed, type DashboardFeed } from "./dashboard-feed.js";
import { mergeVv, vvLag, type VersionVector } from "../core/version-vector.js";
import type { ClusterService, FaultService, LeadershipService, StatusView, WriteRouter } from "./service.js";
import type { Settings } from "./settings.js";
import { createDocWriter } from "./doc-writer.js";
import { YjsRooms } from "./yjs-rooms.js";
import { Snapshots } from "./snapshots.js";
import { Compactor } from "./compactor.js";
import { lockDataDir, nodeDataDir, nodeDbPath } from "./data-dir.js";
import { emptyDoc } from "../core/crdt/ydoc.js";
import { isNodeError } from "./errors.js";
import { LoadShedder } from "./overload.js";

/** Live docs: how often presence goes out per room, the largest write batch, a failed write's retry. */
const AWARENESS_MS = 50;
const YJS_BATCH_BYTES_MAX = 256 * 1024;
const YJS_RETRY_MS = 200;

export interface OpenNodeOptions {
  readonly cluster: ClusterConfig;
  readonly nodeId: NodeId;
  /** The data folder of the whole cluster; this node uses <dataDir>/<nodeId>/. */
  readonly dataDir: string;
  readonly settings: Settings;
  readonly logger?: Logger;
  /** TLS for the peer links and this node's calls to other nodes; unset: plain ws:// and http://. */
  readonly tls?: PeerTls | undefined;
}

/** A node's runtime, built but not yet started: what the HTTP layer serves, and the handles to run and stop it. */
export interface NodeRuntime {
  readonly nodeId: NodeId;
  readonly me: ClusterNode;
  readonly region: RegionConfig;
  readonly store: LocalStore;
  readonly storage: SqliteStorage;
  readonly metrics: NodeMetrics;
  readonly logger: Logger;
  readonly cluster: ClusterService;
  readonly router: WriteRouter;
  readonly faults: FaultService;
  readonly leadership: LeadershipService;
  /** Admission: the bounds of the node's queues and waits (the HTTP layer asks it for in-flight requests and live-doc clients). */
  readonly shedder: LoadShedder;
  /** The cluster as this node sees it, for the dashboard. */
  readonly dashboard: DashboardFeed;
  /** Live documents: the y-websocket rooms the HTTP layer's /yjs endpoint serves. */
  readonly rooms: YjsRooms;
  /** Takes a peer's WebSocket upgrade; false when the path is not the peer endpoint (the caller refuses it). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Starts the hub, the replicator, the election and the idempotency pruner (once the node can serve). */
  start(): void;
  /** Stops the drivers and closes every peer link; the store stays open for requests still in flight. */
  stopPeers(): Promise<void>;
  /** Lets in-flight writes commit, closes the database and releases the data directory. */
  closeStore(): Promise<void>;
}

/** Opens the node's store and builds its runtime (nothing runs until start()). */
export function openNodeRuntime(o: OpenNodeOptions): NodeRuntime {
  const me = o.cluster.nodes.get(o.nodeId) as ClusterNode;
  const region = o.cluster.regions.find((r) => r.region === me.region) as RegionConfig;
  const logger = o.logger ?? pino({ level: o.settings.logLevel, base: { node: o.nodeId, region: me.region } });
  const dir = nodeDataDir(o.dataDir, o.nodeId);
  mkdirSync(dir, { recursive: true });
  const releaseDir = lockDataDir(dir);
  const storage = openSqliteStorage({ path: nodeDbPath(o.dataDir, o.nodeId), synchronous: o.settings.synchronous });
  const stored = storage.getMeta("nodeId");
  if (stored !== undefined && stored !== o.nodeId) {
    storage.close();
    releaseDir();
    throw new Error(`${dir} holds the data of node ${stored}, not ${o.nodeId}; refusing to start`);
  }
  if (stored === undefined) storage.setMeta("nodeId", o.nodeId);
  const committer: GroupCommitter = createGroupCommitter(storage);
  const metrics = createMetrics({
    storageBytes: () => storage.sizeBytes(),
    peerBytesSent: () => hub.sentBytes(),
    yjs: () => rooms.stats(),
    docCacheBudgetBytes: o.settings.docCacheBytes,
    store: () => {
      const log = storage.opLogStats();
      return { opLogOps: log.ops, opLogBytes: log.bytes, ...storage.memoryBudgets() };
    },
  });

  const members: MemberConfig[] = [...o.cluster.nodes.values()].map((n) => ({ node: n.id, region: n.region, priority: n.priority }));
  const self = members.find((m) => m.node === o.nodeId) as MemberConfig;
  const refusedBy = new Map<string, string>();
  // The hub, the replicator and the store refer to each other through these
  // late-bound closures; construction order is hub -> store -> replicator.
  const leaderWaiters = new Set<() => void>();
  const shedder = new LoadShedder({
    bounds: {
      inflightRequests: o.settings.maxInflightRequests,
      pendingWriteOps: o.settings.maxPendingWriteOps,
      ackWaiters: o.settings.maxAckWaiters,
      tokenWaiters: o.settings.maxTokenWaiters,
      leaderWaiters: o.settings.maxLeaderWaiters,
      wsClients: o.settings.maxWsClients,
    },
    metrics,
    logger,
  });
  // eslint-disable-next-line prefer-const -- assigned once below, read by closures created before it
  let replicator: Replicator | undefined;
  const hub: Hub = createHub({
    self: { node: o.nodeId, region: me.region, clusterId: clusterId(o.cluster) },
    peers: [...o.cluster.nodes.values()].filter((n) => n.id !== o.nodeId).map((n) => ({ node: n.id, region: n.region, url: n.url })),
    secrets: o.settings.clusterSecret,
    tls: o.tls,
    intro: () => ({ epoch: storage.getMeta("epoch") ?? 0, vv: storage.appliedVv() }),
    onLinkUp: (peer, intro) => {
      refusedBy.delete(peer);
      replicator?.onLinkUp(peer, intro);
      rooms.peerUp(peer);
    },
    onLinkDown: (peer, reason) => {
      replicator?.onLinkDown(peer, reason);
      rooms.peerDown(peer);
    },
    onFrame: (peer, frame) => {
      if (frame.t === "presence") rooms.presenceFrom(peer, frame.room, frame.update);
      else if (frame.t === "live-update") rooms.liveUpdateFrom(frame.room, frame.update);
      else if (frame.t === "snap-begin" || frame.t === "snap-rows" || frame.t === "snap-end") snapshots.onFrame(peer, frame);
      else replicator?.onFrame(peer, frame);
    },
    onAlive: (peer) => replicator?.onAlive(peer),
    onRefused: (peer, reason) => {
      // A fault injected on purpose is not a misconfiguration worth an alarm.
      if (reason.includes("fault injection")) return;
      refusedBy.set(peer, reason);
      logger.error({ peer, reason }, `link with ${peer} refused: ${reason}`);
    },
    logger,
  });

  // Its sources are read only when a snapshot is taken, after construction.
  const dashboard = createDashboardFeed({
    cluster: o.cluster,
    status: () => cluster.status(),
    peerViews: () => repl.peerViews(),
    leaderOf: (r) => repl.leaderOf(r),
    knownEpoch: (r) => repl.knownEpoch(r),
    faults: () => hub.faults(),
    storage,
    now: Date.now,
  });

  const clockSkewError = () =>
    nodeError("clock_skew", `${o.nodeId}'s clock is more than ${o.settings.maxClockSkewMs} ms from most of its peers'; refusing writes so a wrong clock cannot win conflicts`, 1);
  let localVvQueued = false;
  const store = new LocalStore({
    nodeId: o.nodeId,
    storage,
    committer,
    now: Date.now,
    maxClockSkewMs: o.settings.maxClockSkewMs,
    onConflicts: (cs) => metrics.conflicts.inc(cs.length),
    onWriteAcked: (ns) => metrics.writes.inc({ ns }),
    onRead: (ns) => metrics.reads.inc({ ns }),
    sweptVv: (): VersionVector => compactor.sweptVv(),
    onCommitted: (ops) => {
      replicator?.onCommitted(ops);
      dashboard.committed(ops);
      rooms.committed(ops);
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
    writeGate: (meta, ackWaiting) => {
      const r = replicator as Replicator;
      if (!r.isLeader()) return nodeError("no_leader", `${o.nodeId} is not the leader of ${me.region}`, 1);
      if (r.clockSkewed()) return clockSkewError();
      // Shed before the op exists: a write refused here changed nothing anywhere.
      return shedder.check("pendingWriteOps", committer.stats().queuedOps) ?? (meta.ack === "local" ? null : shedder.check("ackWaiters", ackWaiting));
    },
    admitTokenWait: (waiting) => shedder.check("tokenWaiters", waiting),
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
      dashboard.roleChanged(e);
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
    memberForgetMs: o.settings.memberForgetMs,
    sendSnapshot: (peer, id) => snapshots.send(peer, id),
    now: Date.now,
    logger,
    metrics,
  });
  const repl = replicator;
  const snapshots: Snapshots = new Snapshots({
    self: o.nodeId,
    storage,
    hub,
    logger,
    wanted: (peer, id) => repl.snapshotWanted(peer, id),
    sent: (peer, id, ok, reason) => repl.snapshotSent(peer, id, ok, reason),
    install: async (header) => {
      const result = await store.installSnapshot(header);
      repl.installed();
      compactor.installed();
      rooms.installed(result.docKeys, (key) => storage.getDoc(key));
      election?.onLocalVv(storage.appliedVv());
      return result;
    },
  });

  let lastLeader: string | null = repl.leader();
  const router: WriteRouter = {
    route() {
      const leader = repl.leader();
      if (leader !== lastLeader) {
        lastLeader = leader;
        for (const w of [...leaderWaiters]) w();
      }
      // A skewed node refuses client writes itself, leader or not: it says why at once.
      if (repl.clockSkewed()) return { kind: "refused", error: clockSkewError() };
      if (leader === o.nodeId && repl.isLeader()) return { kind: "local" };
      if (leader === null || leader === o.nodeId) return { kind: "none", reason: `region ${me.region} has no leader that ${o.nodeId} can reach (this node: ${election.phase()})` };
      return { kind: "forward", node: leader, url: (o.cluster.nodes.get(leader) as ClusterNode).url };
    },
    admitWait: () => shedder.check("leaderWaiters", leaderWaiters.size),
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

  const peerIds = [...o.cluster.nodes.keys()].filter((n) => n !== o.nodeId);
  // Presence is best effort: a frame the codec refuses is logged, never thrown into a timer.
  const sendPresence = (peer: NodeId, room: string, update: Uint8Array): void => {
    try {
      hub.send(peer, { t: "presence", room, update });
    } catch (err) {
      logger.warn({ err, peer, room }, "presence frame not sent");
    }
  };
  const rooms: YjsRooms = new YjsRooms({
    nodeId: o.nodeId,
    loadDoc: (key) => {
      const state = store.docGet(key, undefined);
      return isNodeError(state) ? emptyDoc() : state;
    },
    writer: createDocWriter({ nodeId: o.nodeId, service: store, router, clientToken: o.settings.clientToken, timeoutMs: o.settings.writeWaitMs, logger, tls: o.tls }),
    leaderKnown: () => {
      const kind = router.route().kind;
      return kind === "local" || kind === "forward";
    },
    leaderChanged: (ms) => router.changed(ms),
    peers: {
      broadcast: (room, update) => {
        for (const peer of peerIds) if (hub.isUp(peer)) sendPresence(peer, room, update);
      },
      sendTo: sendPresence,
      relay: (room, update) => {
        for (const peer of peerIds) if (hub.isUp(peer)) hub.send(peer, { t: "live-update", room, update });
      },
    },
    queue: {
      batchBytes: Math.min(YJS_BATCH_BYTES_MAX, Math.floor(o.settings.maxValueBytes / 2)),
      batchDelayMs: o.settings.yjsBatchMs,
      queueBytes: o.settings.yjsQueueBytes,
      retryMs: YJS_RETRY_MS,
    },
    maxValueBytes: o.settings.maxValueBytes,
    docCacheBytes: o.settings.docCacheBytes,
    awarenessMs: AWARENESS_MS,
    sendBufferBytes: o.settings.wsSendBufferBytes,
    now: Date.now,
    logger,
    counted: (what, code) => {
      if (what === "update") metrics.yjsUpdates.inc();
      else if (what === "write") metrics.yjsWrites.inc();
      else metrics.yjsClosed.inc({ code: code ?? "" });
    },
  });

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
        clock: { skewed: repl.clockSkewed(), offsetMs: repl.clockOffsetMs() },
        storage: {
          opLogOps: storage.opLogStats().ops,
          opLogBytes: storage.opLogStats().bytes,
          dbBytes: storage.sizeBytes(),
          compactedVv: storage.opLogFloor(),
          stableVv: compactor.stableVv(),
        },
        ...(refusedBy.size > 0 ? { refusedBy: [...refusedBy].map(([node, reason]) => ({ node, reason })) } : {}),
      };
    },
    compact: () => compactor.runNow(),
    ready: () => {
      const leader = repl.leader();
      if (leader === null) return { ready: false, reason: `region ${me.region} has no leader` };
      if (leader === o.nodeId) return { ready: true };
      const behind = repl.behindPeer(leader);
      if (behind >= o.settings.readyLagOps) return { ready: false, reason: `${behind} ops behind leader ${leader} (limit ${o.settings.readyLagOps})` };
      return { ready: true };
    },
  };

  const faults: FaultService = {
    block: (targets, direction) => {
      const r = hub.block(targets, direction);
      dashboard.faultsChanged();
      return r;
    },
    clear: () => {
      const r = hub.clearFaults();
      dashboard.faultsChanged();
      return r;
    },
  };
  const leadership: LeadershipService = {
    async stepdown() {
      if (election.isActiveLeader()) {
        const refused = election.stepdown();
        return refused === null ? { ok: true, leader: null } : { ok: false, error: nodeError("refused", refused) };
      }
      const leader = repl.leader();
      if (leader === null || leader === o.nodeId) return { ok: false, error: nodeError("no_leader", `region ${me.region} has no leader to step down`, 1) };
      return { ok: false, error: nodeError("refused", `${o.nodeId} is not the leader`), forwardTo: (o.cluster.nodes.get(leader) as ClusterNode).url };
    },
    promote() {
      // The most up-to-date reachable node of the region: promote is refused when this one is behind it.
      let best = storage.appliedVv();
      for (const p of repl.peerViews()) if (p.region === me.region && p.up) best = mergeVv(best, p.vv);
      const refused = election.promote(best);
      if (refused === null) return { ok: true };
      const behind = vvLag(best, storage.appliedVv());
      return { ok: false, error: nodeError("refused", behind > 0 && !/behind/.test(refused) ? `${refused} (${behind} ops behind)` : refused) };
    },
    validateFence(token) {
      if (!o.cluster.regions.some((r) => r.region === token.region)) return null;
      const current = fencingTokenOf(token.region, repl.knownEpoch(token.region));
      return { valid: token.epoch === current.epoch, current };
    },
  };

  let storeClosing: Promise<void> | undefined;
  const compactor: Compactor = new Compactor({
    storage,
    retainOps: o.settings.opLogRetainOps,
    stableVv: (persisted) => repl.stableVv(persisted),
    compacted: (floor) => repl.compacted(floor),
    tombstoneHorizon: () => repl.tombstoneHorizon(),
    idempotencyTtlMs: IDEMPOTENCY_TTL_MS,
    now: Date.now,
    logger,
  });
  return {
    nodeId: o.nodeId,
    me,
    region,
    store,
    storage,
    metrics,
    logger,
    cluster,
    router,
    faults,
    leadership,
    shedder,
    dashboard,
    rooms,
    handleUpgrade(req, socket, head) {
      const path = (req.url ?? "").split("?")[0];
      if (path !== PEER_PATH) return false;
      hub.handleUpgrade(req, socket, head);
      return true;
    },
    start() {
      hub.start();
      repl.start();
      election.start();
      compactor.start();
    },
    async stopPeers() {
      snapshots.stop();
      await compactor.stop();
      election.stop();
      repl.stop();
      await hub.close();
    },
    closeStore() {
      storeClosing ??= (async () => {
        await committer.close();
        storage.close();
        metrics.close();
        releaseDir();
      })();
      return storeClosing;
    },
  };
}
