// One established peer link: a WebSocket that finished the handshake. It owns
// what happens after the handshake: decoding untrusted frames (a bad one
// closes this link and nothing else), bounded sends, and ws-level pings whose
// pongs, like a draining send queue, are evidence that the connection lives.
// It decides nothing about liveness: it reports that evidence up (onAlive),
// and the replication machine, with the failure detector on its awake clock,
// says when a silent link is dead and the hub closes it. It hands frames up
// and reports when it goes down, once.

import type { Socket } from "node:net";
import type { Logger } from "pino";
import { WebSocket, type RawData } from "ws";
import type { NodeId } from "../core/ids.js";
import { CloseCode } from "./handshake.js";
import { closeReason, decodeFrame, encodeFrame, isCodecError, isHandshakeFrame, type Frame } from "./frames.js";

/** How long a closing socket may take to finish the close handshake before it is cut. */
export const CLOSE_GRACE_MS = 1000;

/** A ws message as one byte array (ws hands out Buffers, ArrayBuffers or fragment lists). */
export function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/**
 * Closes a socket with a code and reason, and cuts it if the peer does not
 * finish the close handshake within CLOSE_GRACE_MS (ws would wait 30 s).
 * A socket still connecting is cut at once: it cannot carry a close frame.
 */
export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === WebSocket.CONNECTING) {
    ws.terminate();
    return;
  }
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.close(code, closeReason(reason));
  const cut = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
  cut.unref();
  ws.once("close", () => clearTimeout(cut));
}

/** How a close the peer sent (or a lost connection) reads in onLinkDown. */
export function peerCloseReason(code: number, reason: Buffer): string {
  if (code === 1006) return "connection lost";
  const text = reason.toString("utf8");
  return text === "" ? `closed by peer (${code})` : `closed by peer (${code}): ${text}`;
}

export interface LinkOptions {
  readonly peer: NodeId;
  readonly pingIntervalMs: number;
  readonly sendQueueBytesMax: number;
  readonly logger: Logger;
  /** A decoded, non-handshake frame. */
  readonly onFrame: (frame: Frame) => void;
  /** Called exactly once, when the link stops being usable. */
  readonly onDown: (reason: string) => void;
  /** At most once per ping interval: a pong arrived or the send queue drained since the last one. */
  readonly onAlive: () => void;
}

/** An up link to one peer. */
export class Link {
  private down = false;
  /** A pong arrived since the last tick. */
  private ponged = false;
  private lastQueuedBytes = 0;
  private readonly pinger: NodeJS.Timeout;

  constructor(private readonly ws: WebSocket, private readonly o: LinkOptions) {
    ws.on("message", (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on("pong", () => {
      this.ponged = true;
    });
    ws.on("close", (code: number, reason: Buffer) => this.markDown(peerCloseReason(code, reason)));
    this.pinger = setInterval(() => this.tick(), o.pingIntervalMs);
    this.pinger.unref();
  }

  get isUp(): boolean {
    return !this.down;
  }

  /** Bytes written to the socket but not yet handed to the kernel. */
  get queuedBytes(): number {
    return this.down ? 0 : this.ws.bufferedAmount;
  }

  /**
   * Queues a frame; false when the link is down or the queue is over
   * sendQueueBytesMax. An empty queue always takes one frame, even a frame
   * larger than the bound, so a big frame cannot wedge the link; the queue is
   * therefore bounded by sendQueueBytesMax plus one frame (and ws framing).
   */
  send(frame: Frame): boolean {
    if (this.down || this.ws.readyState !== WebSocket.OPEN) return false;
    const queuedBytes = this.ws.bufferedAmount;
    if (queuedBytes >= this.o.sendQueueBytesMax && queuedBytes > 0) return false;
    const bytes = encodeFrame(frame);
    if (queuedBytes > 0 && queuedBytes + bytes.length > this.o.sendQueueBytesMax) return false;
    this.corkForThisTurn();
    this.ws.send(bytes, { binary: true });
    this.sentBytes += bytes.length;
    return true;
  }

  /**
   * Holds the socket's writes until the end of this turn of the event loop,
   * so the frames queued in one turn (a ping to every peer, ops and acks after
   * a commit) leave in one writev instead of one system call each. ws corks
   * around each frame itself; the outer cork nests.
   */
  private corkForThisTurn(): void {
    if (this.corked) return;
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    if (socket === undefined) return;
    this.corked = true;
    socket.cork();
    process.nextTick(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  private corked = false;

  /** Bytes of frames this link has queued for sending (for the bandwidth figures). */
  sentBytes = 0;

  /** Closes the link with a peer-protocol code; onDown fires now with `reason`. */
  close(code: number, reason: string): void {
    if (this.down) return;
    this.markDown(reason);
    closeSocket(this.ws, code, reason);
  }

  /** Cuts the socket without a close handshake (its peer is presumed gone); onDown fires now with `reason`. */
  terminate(reason: string): void {
    if (this.down) return;
    this.markDown(reason);
    this.ws.terminate();
  }

  private markDown(reason: string): void {
    if (this.down) return;
    this.down = true;
    clearInterval(this.pinger);
    this.o.onDown(reason);
  }

  private tick(): void {
    if (this.down || this.ws.readyState !== WebSocket.OPEN) return;
    const queuedBytes = this.ws.bufferedAmount;
    // Evidence the connection lives besides frames (which go up anyway): a
    // pong, or our queue drained (the kernel only takes more once the peer
    // acknowledged earlier bytes, so a ping stuck behind a big backlog on a
    // slow link is not a death).
    const drained = queuedBytes < this.lastQueuedBytes;
    this.lastQueuedBytes = queuedBytes;
    const alive = this.ponged || drained;
    this.ponged = false;
    this.ws.ping();
    if (alive) this.o.onAlive();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.down) return;
    if (!isBinary) return this.badFrame("text message");
    const frame = decodeFrame(toBytes(data));
    if (isCodecError(frame)) return this.badFrame(`${frame.reason} (at byte ${frame.offset})`);
    if (isHandshakeFrame(frame)) return this.badFrame(`unexpected ${frame.t} after the handshake`);
    try {
      this.o.onFrame(frame);
    } catch (err) {
      // A bug in the runtime, not the peer's fault: keep the link.
      this.o.logger.error({ err, peer: this.o.peer, frame: frame.t }, "onFrame threw");
    }
  }

  private badFrame(detail: string): void {
    const reason = `bad frame: ${detail}`;
    this.o.logger.warn({ peer: this.o.peer, reason }, "closing peer link: bad frame");
    this.close(CloseCode.badFrame, reason);
  }
}
