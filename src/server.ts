// The composition root (DESIGN.md, Architecture): storage + node + http +
// listen. It builds the node runtime (src/node), puts the HTTP app (src/http)
// in front of it, listens, routes peer WebSocket upgrades to the node, and
// shuts all of it down in order: stop the peers, stop taking requests and let
// the ones in flight finish, let in-flight writes commit, close the database.
// It lives above src/node so that the node layer never imports src/http.

import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import { serve, type ServerType } from "@hono/node-server";
import type { Logger } from "pino";
import type { NodeId } from "./core/ids.js";
import { withAdmission } from "./http/admission.js";
import { createApp } from "./http/app.js";
import { loadAccess } from "./http/load-access.js";
import { lingerOnUnreadBodies, serverOptions } from "./http/server-limits.js";
import { createYjsEndpoint, YJS_PATH } from "./http/yjs-endpoint.js";
import type { PeerTls } from "./net/peer-cert.js";
import { refusePlainHttp } from "./net/plain-http-refusal.js";
import type { ClusterConfig } from "./node/config.js";
import type { LocalStore } from "./node/local-store.js";
import type { NodeMetrics } from "./node/metrics.js";
import { openNodeRuntime } from "./node/runtime.js";
import type { Settings } from "./node/settings.js";
import type { SqliteStorage } from "./storage/sqlite.js";

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
  /** Serve HTTPS and dial wss:// peers with these (the node's URL is https://); unset: plain HTTP. */
  readonly tls?: PeerTls | undefined;
  /**
   * With tls: a fetch that trusts its CA, for this node's calls to the others
   * (forwarded writes, stepdown relays, dashboard controls). The caller
   * supplies it (the CLI passes the SDK's), since server code must not
   * import the SDK and Node 20's fetch takes no CA.
   */
  readonly peerFetch?: typeof fetch;
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
  // Before anything opens: a bad tokens file stops the node with the file and the entry named.
  const access = loadAccess(o.settings);
  if ("problem" in access) throw new Error(access.problem);
  if (o.tls && o.peerFetch === undefined) throw new Error("startNode: tls needs peerFetch, a fetch that trusts the cluster's CA");
  const node = openNodeRuntime({ cluster: o.cluster, nodeId: o.nodeId, dataDir: o.dataDir, settings: o.settings, tls: o.tls, ...(o.logger ? { logger: o.logger } : {}) });
  const { me, region, logger } = node;
  // Aborted at shutdown, so long-lived answers (the dashboard's event streams) end and do not hold the drain.
  const shutdown = new AbortController();
  const app = createApp({
    nodeId: o.nodeId,
    service: node.store,
    cluster: node.cluster,
    metrics: node.metrics,
    logger,
    maxValueBytes: o.settings.maxValueBytes,
    tokenWaitMs: o.settings.writeWaitMs,
    access,
    router: node.router,
    writeWaitMs: o.settings.writeWaitMs,
    faults: node.faults,
    leadership: node.leadership,
    dashboard: node.dashboard,
    shutdown: shutdown.signal,
    ...(o.peerFetch ? { peerFetch: o.peerFetch } : {}),
  });

  const host = o.listen?.host ?? me.host;
  const port = o.listen?.port ?? me.port;
  let server: ServerType;
  try {
    server = await new Promise<ServerType>((resolve, reject) => {
      // Under --peer-mtls peers present certificates; the hub judges them (API clients need none, hence no rejection here).
      const https = o.tls ? { serverOptions: { cert: o.tls.cert, key: o.tls.key, ca: o.tls.ca, requestCert: o.tls.peerMtls, rejectUnauthorized: false } } : {};
      // The in-flight bound sits in front of the app (admission.ts): a shed request never reaches hono.
      const admit = (listener: RequestListener) => withAdmission(listener, node.shedder, node.metrics, o.nodeId);
      // The connection timeouts against slow clients, and the lingering close of an unread body (server-limits.ts).
      const createServer = (opts: object, listener: RequestListener) => {
        const all = { ...opts, ...serverOptions(o.settings) };
        const created = o.tls ? createHttpsServer(all, admit(listener)) : createHttpServer(all, admit(listener));
        lingerOnUnreadBodies(created);
        return created;
      };
      const s = serve({ fetch: app.fetch, hostname: host, port, ...https, createServer: createServer as never }, () => resolve(s));
      s.once("error", reject);
    });
  } catch (err) {
    // Port taken or not ours to bind: release the database so the caller can
    // retry or exit cleanly instead of holding the file open.
    await node.closeStore();
    throw err;
  }
  const yjs = createYjsEndpoint({ rooms: node.rooms, access, maxValueBytes: o.settings.maxValueBytes, logger, admitClient: (clients) => node.shedder.check("wsClients", clients) });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if ((req.url ?? "").startsWith(YJS_PATH)) yjs.handleUpgrade(req, socket, head);
    else if (!node.handleUpgrade(req, socket, head)) socket.destroy();
  });
  if (o.tls) refusePlainHttp(server as unknown as HttpsServer, me.url);
  node.start();
  logger.info({ url: me.url, listen: `${host}:${port}`, region: me.region, failover: region.failover }, "node serving");

  // serve() builds an HTTP/1 server (http or https: both have the connection-closing methods used below).
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
      // Live docs first: their queued edits are written, then their clients
      // are closed and reconnect to another node with what they hold.
      await yjs.close(o.settings.writeWaitMs);
      await node.stopPeers();
      shutdown.abort();
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
      await node.closeStore();
      logger.info("node stopped");
    })();
    return closing;
  };
  return { nodeId: o.nodeId, url: me.url, store: node.store, storage: node.storage, metrics: node.metrics, logger, close };
}
