// The peer-link hub: one WebSocket link to every other node of the cluster,
// so the runtime can say "send this frame to that node" and be told when a
// peer comes and goes. It does the transport's whole job (who dials whom, the
// authenticated handshake, reconnecting with backoff, bounded sends, fault
// injection) and none of replication's: frames go up to the runtime as they
// come, with the links' signs of life (pongs, drained queues); the runtime
// says when a silent link is dead (closeLink), never the hub.
//
// One link per pair: the node whose id sorts lower dials, the other accepts.
// The dialer redials forever with jittered exponential backoff until close().

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { isValidId, type NodeId, type RegionId } from "../core/ids.js";
import type { VersionVector } from "../core/version-vector.js";
import { acceptedProofs, newNonce, proofFor } from "./auth.js";
import { backoffDelayMs } from "./backoff.js";
import { type FaultDirection, Faults } from "./faults.js";
import {
  decodeFrame,
  isCodecError,
  isHandshakeFrame,
  encodeFrame,
  peekHelloProtocol,
  PROTOCOL_VERSION,
  type Frame,
  type HelloFrame,
  type Intro,
  type WelcomeFrame,
} from "./frames.js";
import { CLOSE_GOING_AWAY, CloseCode, checkHello, checkPeerProof, checkWelcome, isPeerCloseCode, type HandshakeContext, type Refusal } from "./handshake.js";
import { CLOSE_GRACE_MS, Link, closeSocket, peerCloseReason, toBytes } from "./link.js";
import { checkPeerCert, peerCertFacts, type PeerCertFacts, type PeerTls } from "./peer-cert.js";

export type { FaultDirection } from "./faults.js";

/** Another node of the cluster, as configured. */
export interface PeerInfo {
  readonly node: NodeId;
  readonly region: RegionId;
  /** Its HTTP base URL, e.g. http://127.0.0.1:7101; the link goes to ws://host:port/peer. */
  readonly url: string;
}

export interface HubOptions {
  readonly self: { readonly node: NodeId; readonly region: RegionId; readonly clusterId: string };
  /** Every other node of the cluster. */
  readonly peers: readonly PeerInfo[];
  /**
   * GEOKV_CLUSTER_SECRET's list; when set (non-empty), HMAC challenge-response
   * is required both ways: this node proves with the first, and accepts a
   * proof made with any of them (rotation by rolling restarts).
   */
  readonly secrets?: readonly string[] | undefined;
  /** TLS on the links (wss://, verified against the CA; --peer-mtls: certificates must name their node). */
  readonly tls?: PeerTls | undefined;
  /** What to put in hello/welcome right now. */
  readonly intro: () => { epoch: number; vv: VersionVector };
  /** After a successful handshake, with the peer's intro. */
  readonly onLinkUp: (peer: NodeId, intro: Intro) => void;
  readonly onLinkDown: (peer: NodeId, reason: string) => void;
  /** Frames after the handshake (ops, ack, ping, pong, control), never hello/welcome/auth. */
  readonly onFrame: (peer: NodeId, frame: Frame) => void;
  /** The link to `peer` showed its connection lives (a ws pong, a drained send queue); at most once per ping interval. */
  readonly onAlive?: (peer: NodeId) => void;
  /**
   * A handshake with `peer` was refused: the peer refused us (its close
   * reason), or the cluster secrets do not match (reported by both sides,
   * since either secret may be the wrong one).
   */
  readonly onRefused?: (peer: NodeId, reason: string) => void;
  readonly logger: Logger;
  /** Default 50. */
  readonly backoffMinMs?: number;
  /** Default 2000. */
  readonly backoffMaxMs?: number;
  /** Default 8 MiB: above this ws.bufferedAmount, send() refuses (returns false). */
  readonly sendQueueBytesMax?: number;
  /** Default 2000: the whole handshake (connect, hello, welcome, auth) must fit in it. */
  readonly handshakeTimeoutMs?: number;
  /** Jitter source, default Math.random (tests can seed). */
  readonly random?: () => number;
  /** ws-level ping period: how often a link checks for pongs and a draining queue (onAlive); default 1000. */
  readonly pingIntervalMs?: number;
}

/** The blocked targets: `blocked` is every target in any direction; `both`, `in`, `out` per direction. */
export interface FaultsView {
  blocked: string[];
  both: string[];
  in: string[];
  out: string[];
}

/**
 * Client frames must be masked (RFC 6455 5.3), and ws masks them with random
 * bytes by XOR in JavaScript, byte by byte, then unmasks them so at the
 * server. Masking protects HTTP intermediaries from script-chosen payloads;
 * a peer link is node-to-node and authenticated, so it uses the all-zero
 * mask, which is valid and which ws skips on both sides (a heal's frames are
 * tens of kilobytes: _mask was a visible share of its profile).
 */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

export interface Hub {
  /** Handles an HTTP upgrade for the path /peer (the runtime routes upgrades by path and calls this). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Starts dialing (call once the HTTP server listens). */
  start(): void;
  /** Sends a frame; false when the link is down, blocked outbound, or over sendQueueBytesMax (caller retries later from its log). */
  send(peer: NodeId, frame: Frame): boolean;
  isUp(peer: NodeId): boolean;
  /** Cuts the link to `peer` (presumed dead); onLinkDown fires with `reason`, and the dialer redials with its backoff. */
  closeLink(peer: NodeId, reason: string): void;
  /** Bytes queued in the socket for that peer (for metrics). */
  queuedBytes(peer: NodeId): number;
  /**
   * Fault injection: block node ids or region names. "both" (default): close
   * the link and refuse/skip reconnects; "in": drop frames received from
   * them; "out": drop frames sent to them (send returns false). Additive.
   */
  block(targets: readonly string[], direction?: FaultDirection): { blocked: string[] };
  /** Removes every fault; dialing resumes at once. */
  clearFaults(): { blocked: string[] };
  faults(): FaultsView;
  /** Bytes of frames sent since start: ops frames and everything else (heartbeats, acks, control). */
  sentBytes(): { ops: number; other: number };
  /** Stops dialing, closes every link and socket; no callback fires once it is called. */
  close(): Promise<void>;
}

/** The path peers connect to. */
export const PEER_PATH = "/peer";
/** Largest frame accepted: ops frames are bounded (FRAME_OPS_MAX) but values can be 1 MiB each. */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** Inbound sockets still in their handshake: bounds what unauthenticated clients can hold. */
const PENDING_INBOUND_MAX = 64;
/** A repeated refusal is logged at warn at most this often (a refused peer redials every few seconds). */
const REFUSAL_WARN_EVERY_MS = 60_000;
/** Remembered refusals, for rate-limiting their log lines. */
const REFUSAL_MEMORY_MAX = 1024;

const DEFAULTS = {
  backoffMinMs: 50,
  backoffMaxMs: 2000,
  sendQueueBytesMax: 8 * 1024 * 1024,
  handshakeTimeoutMs: 2000,
  pingIntervalMs: 1000,
};

/** ws://host:port/peer (wss for https) for a peer's HTTP base URL. */
export function peerWsUrl(httpUrl: string): string {
  const u = new URL(httpUrl);
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`peer url must be http(s): ${httpUrl}`);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.pathname = u.pathname.replace(/\/+$/, "") + PEER_PATH;
  u.search = "";
  u.hash = "";
  return u.toString();
}

interface PeerState {
  readonly info: PeerInfo;
  /** True when our id sorts lower: we dial, they accept. */
  readonly dials: boolean;
  readonly wsUrl: string;
  link: Link | undefined;
  /** Our outbound socket while it connects and handshakes. */
  dialing: WebSocket | undefined;
  /** Failed attempts since the last successful handshake (drives the backoff). */
  attempt: number;
  redialTimer: NodeJS.Timeout | undefined;
}

function introOf(f: HelloFrame | WelcomeFrame): Intro {
  return { proto: f.proto, clusterId: f.clusterId, node: f.node, region: f.region, epoch: f.epoch, vv: f.vv, nonce: f.nonce };
}

function badFrame(detail: string): Refusal {
  return { code: CloseCode.badFrame, reason: `bad frame: ${detail}` };
}

/** The certificate facts of a dialed link's TLS socket (a socket without TLS presents none). */
function socketCertFacts(ws: WebSocket): PeerCertFacts {
  const socket = (ws as unknown as { _socket?: TLSSocket })._socket;
  if (socket === undefined || typeof socket.getPeerCertificate !== "function") return { authorized: false, authorizationError: "no TLS socket", presented: false, subjectAltName: undefined };
  return peerCertFacts(socket);
}

function rejectUpgrade(socket: Duplex, status: string): void {
  socket.on("error", () => {});
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** Creates the hub; nothing is dialed until start(). */
export function createHub(o: HubOptions): Hub {
  const backoffMinMs = o.backoffMinMs ?? DEFAULTS.backoffMinMs;
  const backoffMaxMs = o.backoffMaxMs ?? DEFAULTS.backoffMaxMs;
  const sendQueueBytesMax = o.sendQueueBytesMax ?? DEFAULTS.sendQueueBytesMax;
  const handshakeTimeoutMs = o.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs;
  const pingIntervalMs = o.pingIntervalMs ?? DEFAULTS.pingIntervalMs;
  const random = o.random ?? Math.random;
  const secrets = (o.secrets ?? []).filter((x) => x !== "");
  /** The secret this node proves with; the others are only accepted. */
  const secret = secrets[0];
  const { self } = o;
  const log = o.logger.child({ component: "peer-links" });
  const sent = { ops: 0, other: 0 };

  /** What to say about ourselves in hello/welcome; a failing intro() ends that handshake, not the process. */
  function introOrClose(ws: WebSocket, finish: () => void): { epoch: number; vv: VersionVector } | null {
    try {
      return o.intro();
    } catch (err) {
      log.error({ err }, "intro() threw");
      finish();
      closeSocket(ws, 1011, "internal error");
      return null;
    }
  }

  // Checked here so bad configuration fails at startup, not inside a socket event on the first dial.
  const clusterIdBytes = Buffer.byteLength(self.clusterId);
  if (clusterIdBytes < 1 || clusterIdBytes > 64) throw new Error(`cluster id must be 1 to 64 bytes, got ${clusterIdBytes}`);
  if (!isValidId(self.node) || !isValidId(self.region)) throw new Error(`invalid node or region id: ${self.node}, ${self.region}`);
  const peers = new Map<string, PeerState>();
  for (const info of o.peers) {
    if (!isValidId(info.node) || !isValidId(info.region)) throw new Error(`invalid peer node or region id: ${info.node}, ${info.region}`);
    if (info.node === self.node) throw new Error(`peers must not include this node (${self.node})`);
    if (peers.has(info.node)) throw new Error(`peer ${info.node} listed twice`);
    peers.set(info.node, { info, dials: self.node < info.node, wsUrl: peerWsUrl(info.url), link: undefined, dialing: undefined, attempt: 0, redialTimer: undefined });
  }
  const regionOf = (node: string): RegionId | undefined => peers.get(node)?.info.region;
  const ctx: HandshakeContext = { self, regionOf };
  // The chain is checked by checkPeerCert on open, not by the TLS layer, so a refusal carries a reason.
  const dialTls = o.tls === undefined ? {} : { ca: o.tls.ca, cert: o.tls.cert, key: o.tls.key, rejectUnauthorized: false };
  const faults = new Faults(regionOf);
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD_BYTES, perMessageDeflate: false, clientTracking: false });
  /** Every socket not yet closed, so close() can wait for all of them. */
  const sockets = new Set<WebSocket>();
  /** peer or remote address -> reason -> when last logged at warn. */
  const refusalsLogged = new Map<string, Map<string, number>>();
  let pendingInbound = 0;
  let started = false;
  let closed = false;
  let closing: Promise<void> | undefined;

  /** Runs a runtime callback; a throw is the runtime's bug and must not break the link layer. */
  function emit(what: string, fn: () => void): void {
    if (closed) return;
    try {
      fn();
    } catch (err) {
      log.error({ err }, `${what} callback threw`);
    }
  }

  function logRefusal(who: string, reason: string, fields: Record<string, unknown>, msg: string): void {
    const nowMs = Date.now();
    let byReason = refusalsLogged.get(who);
    if (byReason === undefined) {
      if (refusalsLogged.size >= REFUSAL_MEMORY_MAX) refusalsLogged.clear();
      byReason = new Map();
      refusalsLogged.set(who, byReason);
    }
    const lastMs = byReason.get(reason);
    if (lastMs === undefined || nowMs - lastMs >= REFUSAL_WARN_EVERY_MS) {
      byReason.set(reason, nowMs);
      log.warn({ ...fields, reason }, msg);
    } else {
      log.debug({ ...fields, reason }, msg);
    }
  }

  function track(ws: WebSocket): void {
    sockets.add(ws);
    ws.on("error", (err: Error) => log.debug({ err: err.message }, "peer socket error"));
    ws.once("close", () => sockets.delete(ws));
  }

  function installLink(p: PeerState, ws: WebSocket, intro: Intro): void {
    const peer = p.info.node;
    // A second connection from the same peer wins: the old one is usually a
    // half-dead TCP connection the peer already gave up on.
    p.link?.close(CloseCode.replaced, "replaced by a newer connection");
    const link: Link = new Link(ws, {
      peer,
      pingIntervalMs,
      sendQueueBytesMax,
      logger: log,
      onFrame: (frame) => {
        if (faults.blocksIn(peer)) {
          log.debug({ peer, frame: frame.t }, "fault injection: dropping a frame from a blocked peer");
          return;
        }
        emit("onFrame", () => o.onFrame(peer, frame));
      },
      onAlive: () => emit("onAlive", () => o.onAlive?.(peer)),
      onDown: (reason) => {
        if (p.link === link) p.link = undefined;
        if (!closed) log.info({ peer, reason }, "peer link down");
        emit("onLinkDown", () => o.onLinkDown(peer, reason));
        scheduleRedial(p);
      },
    });
    p.link = link;
    refusalsLogged.delete(peer);
    log.info({ peer, region: p.info.region, epoch: intro.epoch, dialed: p.dials }, "peer link up");
    emit("onLinkUp", () => o.onLinkUp(peer, intro));
  }

  function scheduleRedial(p: PeerState): void {
    if (closed || !started || !p.dials || p.link || p.dialing || p.redialTimer || faults.blocksLink(p.info.node)) return;
    const delayMs = backoffDelayMs(p.attempt, backoffMinMs, backoffMaxMs, random);
    p.attempt++;
    p.redialTimer = setTimeout(() => {
      p.redialTimer = undefined;
      dial(p);
    }, delayMs);
    p.redialTimer.unref();
  }

  function dial(p: PeerState): void {
    if (closed || p.link || p.dialing || faults.blocksLink(p.info.node)) return;
    if (p.redialTimer) {
      clearTimeout(p.redialTimer);
      p.redialTimer = undefined;
    }
    const peer = p.info.node;
    const ws = new WebSocket(p.wsUrl, { perMessageDeflate: false, maxPayload: MAX_PAYLOAD_BYTES, followRedirects: false, generateMask: zeroMask, ...dialTls });
    track(ws);
    p.dialing = ws;
    const nonce = newNonce();
    let done = false;
    let refusedByUs = false;
    const timer = setTimeout(() => refuse({ code: CloseCode.handshakeTimeout, reason: `handshake timeout: no welcome within ${handshakeTimeoutMs} ms` }), handshakeTimeoutMs);
    timer.unref();

    function finish(): void {
      done = true;
      clearTimeout(timer);
      if (p.dialing === ws) p.dialing = undefined;
    }

    function refuse(r: Refusal): void {
      if (done) return;
      finish();
      refusedByUs = true;
      if (r.code === CloseCode.handshakeTimeout) log.debug({ peer, reason: r.reason }, "peer handshake timed out");
      else logRefusal(peer, r.reason, { peer, code: r.code }, "refusing peer");
      if (r.code === CloseCode.authFailed) emit("onRefused", () => o.onRefused?.(peer, r.reason));
      closeSocket(ws, r.code, r.reason);
    }

    const onOpen = (): void => {
      if (done) return;
      // Before anything of ours is sent: the peer's certificate, checked here
      // rather than by the TLS layer so the refusal has a reason both ends read.
      const tlsWrong = o.tls === undefined ? null : checkPeerCert(socketCertFacts(ws), peer, o.tls.peerMtls, "server");
      if (tlsWrong) return refuse(tlsWrong);
      const mine = introOrClose(ws, finish);
      if (mine === null) return;
      ws.send(encodeFrame({ t: "hello", proto: PROTOCOL_VERSION, clusterId: self.clusterId, node: self.node, region: self.region, epoch: mine.epoch, vv: mine.vv, nonce }));
    };

    const onMessage = (data: RawData, isBinary: boolean): void => {
      if (done) return;
      if (!isBinary) return refuse(badFrame("text message during the handshake"));
      const f = decodeFrame(toBytes(data));
      if (isCodecError(f)) return refuse(badFrame(`${f.reason} (at byte ${f.offset})`));
      if (f.t !== "welcome") return refuse(badFrame(`expected welcome, got ${f.t}`));
      const wrong = checkWelcome(ctx, f, p.info) ?? checkPeerProof(acceptedProofs(secrets, self.clusterId, peer, self.node, nonce), f.proof);
      if (wrong) return refuse(wrong);
      // A fault injected while we were handshaking.
      if (faults.blocksLink(peer)) return refuse({ code: CloseCode.blocked, reason: "blocked by fault injection" });
      finish();
      ws.off("open", onOpen);
      ws.off("message", onMessage);
      ws.off("close", onClose);
      ws.send(encodeFrame({ t: "auth", proof: proofFor(secret, self.clusterId, self.node, peer, f.nonce) }));
      p.attempt = 0;
      installLink(p, ws, introOf(f));
    };

    const onClose = (code: number, reason: Buffer): void => {
      const wasDone = done;
      finish();
      if (!refusedByUs && !wasDone && isPeerCloseCode(code)) {
        const text = reason.toString("utf8");
        logRefusal(peer, text, { peer, code }, "refused by peer");
        emit("onRefused", () => o.onRefused?.(peer, text));
      } else if (!refusedByUs) {
        log.debug({ peer, reason: peerCloseReason(code, reason) }, "dial failed");
      }
      scheduleRedial(p);
    };

    ws.on("open", onOpen);
    ws.on("message", onMessage);
    ws.on("close", onClose);
  }

  function accept(ws: WebSocket, remote: string, cert: PeerCertFacts | undefined): void {
    track(ws);
    pendingInbound++;
    let phase: "hello" | "auth" | "done" = "hello";
    let peerState: PeerState | undefined;
    let hello: HelloFrame | undefined;
    /** The id the hello claims, checked or not: what the refusal logs name. */
    let claimed: string | undefined;
    let nonce: Uint8Array | undefined;
    let refusedByUs = false;
    const timer = setTimeout(
      () => refuse({ code: CloseCode.handshakeTimeout, reason: `handshake timeout: no ${phase === "hello" ? "hello" : "auth"} within ${handshakeTimeoutMs} ms` }),
      handshakeTimeoutMs,
    );
    timer.unref();

    function finish(): void {
      if (phase === "done") return;
      phase = "done";
      pendingInbound--;
      clearTimeout(timer);
    }

    function refuse(r: Refusal): void {
      if (phase === "done") return;
      finish();
      refusedByUs = true;
      logRefusal(claimed ?? remote, r.reason, { peer: claimed, remote, code: r.code }, "refusing peer");
      const known = peerState;
      if (r.code === CloseCode.authFailed && known) emit("onRefused", () => o.onRefused?.(known.info.node, r.reason));
      closeSocket(ws, r.code, r.reason);
    }

    const onMessage = (data: RawData, isBinary: boolean): void => {
      if (phase === "done") return;
      if (!isBinary) return refuse(badFrame("text message during the handshake"));
      const bytes = toBytes(data);
      if (phase === "hello") {
        // Refuse another protocol version by its number, before its hello
        // (whose layout may differ from ours) fails to decode.
        const proto = peekHelloProtocol(bytes);
        const f = decodeFrame(bytes);
        if (!isCodecError(f) && f.t === "hello") claimed = f.node;
        if (proto !== undefined && proto !== PROTOCOL_VERSION) {
          return refuse({ code: CloseCode.protocolVersion, reason: `protocol version ${proto} not supported (this node speaks ${PROTOCOL_VERSION})` });
        }
        if (isCodecError(f)) return refuse(badFrame(`${f.reason} (at byte ${f.offset})`));
        if (f.t !== "hello") return refuse(badFrame(`expected hello, got ${f.t}`));
        const wrong = checkHello(ctx, f, (n) => faults.blocksLink(n));
        if (wrong) return refuse(wrong);
        const tlsWrong = o.tls === undefined || cert === undefined ? null : checkPeerCert(cert, f.node, o.tls.peerMtls, "client");
        if (tlsWrong) {
          peerState = peers.get(f.node);
          return refuse(tlsWrong);
        }
        const mine = introOrClose(ws, finish);
        if (mine === null) return;
        peerState = peers.get(f.node);
        hello = f;
        nonce = newNonce();
        const proof = proofFor(secret, self.clusterId, self.node, f.node, f.nonce);
        ws.send(encodeFrame({ t: "welcome", proto: PROTOCOL_VERSION, clusterId: self.clusterId, node: self.node, region: self.region, epoch: mine.epoch, vv: mine.vv, nonce, proof }));
        phase = "auth";
        return;
      }
      const p = peerState;
      if (p === undefined || hello === undefined || nonce === undefined) throw new Error("auth phase without a hello");
      const f = decodeFrame(bytes);
      if (isCodecError(f)) return refuse(badFrame(`${f.reason} (at byte ${f.offset})`));
      if (f.t !== "auth") return refuse(badFrame(`expected auth, got ${f.t}`));
      const wrong = checkPeerProof(acceptedProofs(secrets, self.clusterId, hello.node, self.node, nonce), f.proof);
      if (wrong) return refuse(wrong);
      if (faults.blocksLink(p.info.node)) return refuse({ code: CloseCode.blocked, reason: "blocked by fault injection" });
      finish();
      ws.off("message", onMessage);
      ws.off("close", onClose);
      installLink(p, ws, introOf(hello));
    };

    const onClose = (code: number, reason: Buffer): void => {
      const wasDone = phase === "done";
      finish();
      if (refusedByUs || wasDone) return;
      const known = peerState;
      if (known && isPeerCloseCode(code)) {
        const text = reason.toString("utf8");
        logRefusal(known.info.node, text, { peer: known.info.node, code }, "refused by peer");
        emit("onRefused", () => o.onRefused?.(known.info.node, text));
      } else if (isPeerCloseCode(code)) {
        // Refused before its hello (the dialer did not take our certificate): only the address is known.
        logRefusal(remote, reason.toString("utf8"), { remote, code }, "refused by peer");
      } else {
        log.debug({ remote, peer: claimed, reason: peerCloseReason(code, reason) }, "inbound peer socket closed during the handshake");
      }
    };

    ws.on("message", onMessage);
    ws.on("close", onClose);
  }

  function closeBlocked(): void {
    for (const p of peers.values()) {
      if (!faults.blocksLink(p.info.node)) continue;
      if (p.redialTimer) {
        clearTimeout(p.redialTimer);
        p.redialTimer = undefined;
      }
      p.link?.close(CloseCode.blocked, "blocked by fault injection");
      if (p.dialing) closeSocket(p.dialing, CloseCode.blocked, "blocked by fault injection");
    }
  }

  return {
    handleUpgrade(req, socket, head) {
      if (closed) return rejectUpgrade(socket, "503 Service Unavailable");
      const path = new URL(req.url ?? "/", "http://localhost").pathname;
      if (path !== PEER_PATH) return rejectUpgrade(socket, "404 Not Found");
      if (pendingInbound >= PENDING_INBOUND_MAX) {
        log.warn({ remote: req.socket.remoteAddress, pendingInbound }, "too many peer handshakes in progress; refusing a connection");
        return rejectUpgrade(socket, "503 Service Unavailable");
      }
      const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
      const cert = o.tls === undefined ? undefined : peerCertFacts(req.socket as TLSSocket);
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (closed) return ws.terminate();
        accept(ws, remote, cert);
      });
    },

    start() {
      if (started || closed) return;
      started = true;
      for (const p of peers.values()) if (p.dials) dial(p);
    },

    send(peer, frame) {
      if (isHandshakeFrame(frame)) throw new Error(`the hub sends ${frame.t} frames itself`);
      const p = peers.get(peer);
      if (p?.link === undefined) return false;
      if (faults.blocksOut(peer)) return false;
      const before = p.link.sentBytes;
      const ok = p.link.send(frame);
      sent[frame.t === "ops" ? "ops" : "other"] += p.link.sentBytes - before;
      return ok;
    },

    sentBytes() {
      return { ...sent };
    },

    isUp(peer) {
      return peers.get(peer)?.link?.isUp ?? false;
    },

    closeLink(peer, reason) {
      peers.get(peer)?.link?.terminate(reason);
    },

    queuedBytes(peer) {
      return peers.get(peer)?.link?.queuedBytes ?? 0;
    },

    block(targets, direction = "both") {
      faults.add(targets, direction);
      log.info({ targets, direction }, "fault injection: blocking");
      if (direction === "both") closeBlocked();
      return { blocked: faults.view().blocked };
    },

    clearFaults() {
      faults.clear();
      log.info("fault injection: cleared");
      // Heal promptly: a link that was blocked is redialed now, not after its backoff.
      for (const p of peers.values()) {
        if (!p.dials || !started) continue;
        p.attempt = 0;
        dial(p);
      }
      return { blocked: [] };
    },

    faults() {
      return faults.view();
    },

    close() {
      if (closing) return closing;
      closed = true;
      for (const p of peers.values()) {
        if (p.redialTimer) clearTimeout(p.redialTimer);
        p.redialTimer = undefined;
        p.link?.close(CLOSE_GOING_AWAY, "node shutting down");
      }
      const waits: Promise<void>[] = [];
      for (const ws of sockets) {
        if (ws.readyState === WebSocket.CLOSED) continue;
        waits.push(new Promise<void>((resolve) => ws.once("close", () => resolve())));
        closeSocket(ws, CLOSE_GOING_AWAY, "node shutting down");
        // closeSocket cuts an unresponsive peer after the grace period; this
        // also covers a socket that was already closing on its own.
        setTimeout(() => ws.terminate(), CLOSE_GRACE_MS * 2).unref();
      }
      closing = Promise.all(waits).then(
        () =>
          new Promise<void>((resolve) => {
            wss.close(() => resolve());
          }),
      );
      return closing;
    },
  };
}
