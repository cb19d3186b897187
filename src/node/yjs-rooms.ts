// Live documents: the y-websocket protocol's rooms on this node. A room is one
// doc of the docs namespace with clients connected to it here. It holds the
// doc as its merged update (never a live Y.Doc), so a sync step 1 is answered
// with Y.diffUpdate against the client's state vector, and memory is the
// doc's encoded size. What it does:
//
// - a client's update is relayed at once to the room's other clients here,
//   and queued to be written like any write: batched (src/core/docs/
//   update-queue.ts decides), through the region's leader (doc-writer.ts);
// - every docs op this node commits, its own or a peer's, is pushed to the
//   room's clients, except the echo of a batch this room wrote itself (its
//   clients have those updates already);
// - presence (awareness) is kept per room in memory, relayed to the room's
//   clients here and, as presence frames, to every other node; throttled
//   and coalesced per client; removed when a client leaves, when the link
//   to the node that relayed it goes down, and by the awareness timeout;
// - a room without clients whose writes are all done leaves memory; its
//   merged update stays in an LRU cache within a byte budget.
//
// The transport (the WebSocket, auth, the path) is the HTTP layer's
// (src/http/yjs-endpoint.ts); it hands each connection here as a YjsClient.

import type { Logger } from "pino";
import * as Y from "yjs";
import * as encoding from "lib0/encoding";
import * as decoding from "lib0/decoding";
import * as syncProtocol from "y-protocols/sync";
import * as awarenessProtocol from "y-protocols/awareness";
import * as authProtocol from "y-protocols/auth";
import { awarenessEntries, awarenessUpdateProblem, encodeAwarenessEntries, raisedPastRemoval } from "../core/docs/awareness.js";
import { emptyQueue, nextStep, offer, written, type UpdateQueue, type UpdateQueueLimits } from "../core/docs/update-queue.js";
import { emptyDoc, mergeIntoDoc, validateDocUpdate, validateStateVector } from "../core/crdt/ydoc.js";
import type { NodeId } from "../core/ids.js";
import type { Op } from "../core/op.js";
import { LIVE_UPDATE_BYTES_MAX } from "../net/frames.js";
import type { DocWriter } from "./doc-writer.js";

/** The y-websocket message types (y-websocket's own numbering). */
export const MESSAGE_SYNC = 0;
export const MESSAGE_AWARENESS = 1;
export const MESSAGE_AUTH = 2;
export const MESSAGE_QUERY_AWARENESS = 3;

/** WebSocket close codes this node uses; 4400-4499 tell a stock client not to reconnect, 4500-4599 to try again later. */
export const YjsClose = {
  goingAway: 1001,
  tooBig: 1009,
  badMessage: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  /** The room's queue of unwritten edits is full (the region has had no leader for a while). */
  queueFull: 4503,
  /** The client does not read what it is sent. */
  slowClient: 4504,
  /** The node holds as many live-document clients as it takes (--max-ws-clients): try again later. */
  overloaded: 1013,
} as const;

/** One connection, as the transport gives it. */
export interface YjsClient {
  /** Sends one protocol message as one frame. */
  send(message: Uint8Array): void;
  /** Bytes sent but not yet taken by the client's socket. */
  buffered(): number;
  close(code: number, reason: string): void;
}

/** A connection's side of a room: what the transport calls. */
export interface YjsSession {
  /** One frame from the client. */
  receive(message: Uint8Array): void;
  /** The connection is gone. */
  closed(): void;
}

/** The frames a room sends to other nodes. */
export interface PresencePeers {
  /** Presence to every node whose link is up. */
  broadcast(room: string, update: Uint8Array): void;
  sendTo(peer: NodeId, room: string, update: Uint8Array): void;
  /** A batch being written, to every node whose link is up (live-update frames). */
  relay(room: string, update: Uint8Array): void;
}

export interface YjsRoomsOptions {
  readonly nodeId: NodeId;
  /** The doc's merged state as stored here. */
  readonly loadDoc: (key: string) => Uint8Array;
  readonly writer: DocWriter;
  /** True when the region has a leader to write through. */
  readonly leaderKnown: () => boolean;
  /** Resolves when the region's leader may have changed, or after `ms`. */
  readonly leaderChanged: (ms: number) => Promise<void>;
  readonly peers: PresencePeers;
  readonly queue: UpdateQueueLimits;
  /** The largest update (and message) a client may send. */
  readonly maxValueBytes: number;
  /** Budget of the cache of idle docs' merged updates. */
  readonly docCacheBytes: number;
  /** Presence changes are sent at most this often per room. */
  readonly awarenessMs: number;
  /** A client with more than this many bytes unsent is closed. */
  readonly sendBufferBytes: number;
  readonly now: () => number;
  readonly logger: Logger;
  /** Counts a client update taken, a batch written, and a frame refused (by reason). */
  readonly counted?: (what: "update" | "write" | "refused", reason?: string) => void;
}

/** What /metrics shows of the rooms. */
export interface YjsStats {
  readonly connections: number;
  readonly liveDocs: number;
  readonly liveBytes: number;
  readonly cachedDocs: number;
  readonly cachedBytes: number;
  readonly queuedBytes: number;
}

/** The largest awareness message a client may send (its presence: a name, a color, a cursor). */
export const AWARENESS_MESSAGE_BYTES_MAX = 64 * 1024;
/** Client states per presence frame: 15 of at most 64 KiB stay under the frame's 1 MiB. */
const PRESENCE_CLIENTS_PER_FRAME = 15;
/** Origin of awareness changes that came from another node: relayed to this node's clients only. */
const FROM_PEER = Symbol("peer");
/** Relayed batches a room keeps until their ops commit here; past these the oldest is forgotten (its op still comes). */
const RELAYED_MAX = 256;
const RELAYED_BYTES_MAX = 4 * 1_048_576;
/** How often a shutdown checks whether the rooms' queues drained. */
const DRAIN_POLL_MS = 20;
/** Batches written by a room whose commit has not come back yet; past this the oldest is forgotten. */
const ECHOES_MAX = 64;
/** Unmerged updates a room holds past its state before folding them in. */
const EXTRA_BYTES_MIN = 64 * 1024;
/** The empty update (no structs, no deletions): a client's sync step 2 when the node has everything. */
const EMPTY_UPDATE_BYTES = emptyDoc().length;

function isEmptyUpdate(u: Uint8Array): boolean {
  return u.length === EMPTY_UPDATE_BYTES && u[0] === 0 && u[1] === 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function syncMessage(kind: number, payload: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_SYNC);
  encoding.writeVarUint(e, kind);
  encoding.writeVarUint8Array(e, payload);
  return encoding.toUint8Array(e);
}

function awarenessMessage(update: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_AWARENESS);
  encoding.writeVarUint8Array(e, update);
  return encoding.toUint8Array(e);
}

function deniedMessage(reason: string): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_AUTH);
  authProtocol.writePermissionDenied(e, reason);
  return encoding.toUint8Array(e);
}

class Session implements YjsSession {
  /** Awareness client ids this connection speaks for. */
  readonly awarenessIds = new Set<number>();
  private deniedSaid = false;
  private gone = false;

  constructor(
    readonly id: number,
    readonly client: YjsClient,
    readonly room: Room,
    readonly readOnly: boolean,
    /** The token the client was let in with, presented when its edits are passed to the leader (undefined: none needed). */
    readonly writeToken: string | undefined,
  ) {}

  receive(message: Uint8Array): void {
    if (this.gone) return;
    let problem: { code: number; reason: string } | null;
    try {
      problem = this.room.rooms.handle(this, message);
    } catch (err) {
      // A frame that gets past the checks and still makes yjs throw is this client's problem only.
      this.room.rooms.o.logger.warn({ err, room: this.room.key }, "live doc frame failed; closing its connection");
      problem = { code: YjsClose.badMessage, reason: "geokv: the message could not be applied" };
    }
    if (problem !== null) this.fail(problem.code, problem.reason);
  }

  closed(): void {
    if (this.gone) return;
    this.gone = true;
    this.room.leave(this);
  }

  /** Sends unless the client stopped reading, in which case it is closed. */
  send(message: Uint8Array): void {
    if (this.gone) return;
    if (this.client.buffered() > this.room.rooms.o.sendBufferBytes) {
      this.fail(YjsClose.slowClient, `geokv: the client left more than ${this.room.rooms.o.sendBufferBytes} bytes unread; reconnect`);
      return;
    }
    this.client.send(message);
  }

  /** Closes the connection for a reason, leaving the room. */
  fail(code: number, reason: string): void {
    if (this.gone) return;
    this.room.rooms.o.counted?.("refused", String(code));
    this.client.close(code, reason);
    this.closed();
  }

  denyOnce(): void {
    if (this.deniedSaid) return;
    this.deniedSaid = true;
    this.send(deniedMessage("geokv: this connection's token is read-only; its updates are dropped"));
  }
}

class Room {
  readonly sessions = new Set<Session>();
  /** The doc's merged update: the stored state, then what committed or arrived since, folded in. */
  private state: Uint8Array;
  private extra: Uint8Array[] = [];
  private extraBytes = 0;
  readonly queue: UpdateQueue = emptyQueue();
  private writing = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private echoes: Uint8Array[] = [];
  /** The token of the latest client whose edit was queued: a follower passes the batch to its leader with it. */
  private writeToken: string | undefined;
  /**
   * Batches other nodes relayed before writing them: sent to this room's
   * clients, and kept apart from the room's state until their op commits
   * here, so the state vector this node shows a client never claims an edit
   * that may not become durable (a client would then not send it again).
   */
  private relayed: Uint8Array[] = [];
  private relayedBytes = 0;
  readonly awareness: awarenessProtocol.Awareness;
  private presenceLocal = new Set<number>();
  private presencePeers = new Set<number>();
  private presenceTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * The doc loaded in a Y.Doc, only to check client updates against it: an
   * update can be valid alone and still break the doc it is merged into
   * (it names structs the doc has, differently). Built on the first client
   * update, fed every update the room takes, dropped when anything throws
   * (and rebuilt from the merged update on the next check).
   */
  private mirror: Y.Doc | null = null;
  /** Presence client ids that came from other nodes, and from which. */
  private readonly peerClients = new Map<number, NodeId>();
  private retired = false;

  constructor(
    readonly rooms: YjsRooms,
    readonly key: string,
    state: Uint8Array,
  ) {
    this.state = state;
    this.awareness = new awarenessProtocol.Awareness(new Y.Doc({ guid: key, gc: true }));
    // The node is no client of the doc: it has no presence of its own.
    this.awareness.setLocalState(null);
    this.awareness.on("update", ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
      if (origin instanceof Session) {
        for (const id of added) origin.awarenessIds.add(id);
        for (const id of updated) origin.awarenessIds.add(id);
        for (const id of removed) origin.awarenessIds.delete(id);
      }
      for (const id of [...added, ...updated, ...removed]) {
        this.presenceLocal.add(id);
        // Changes this node's clients made go to the other nodes; theirs, and timeouts, do not come back.
        if (origin !== FROM_PEER && origin !== "timeout") this.presencePeers.add(id);
      }
      this.schedulePresence();
    });
  }

  /** Bytes held in memory for this doc. */
  bytes(): number {
    return this.state.length + this.extraBytes;
  }

  /** The doc's whole merged update as this node knows it (written or not). */
  merged(): Uint8Array {
    if (this.extra.length > 0) {
      this.state = mergeIntoDoc(this.state, this.extra);
      this.extra = [];
      this.extraBytes = 0;
    }
    return this.state;
  }

  /** True when `update` applies to the doc as this room holds it (and then the mirror holds it too). */
  accepts(update: Uint8Array): boolean {
    let mirror = this.mirror;
    if (mirror === null) {
      mirror = new Y.Doc({ gc: false, guid: this.key });
      try {
        Y.applyUpdate(mirror, this.merged());
      } catch {
        // The stored doc itself does not load: nothing to check against; the update was valid alone.
        mirror.destroy();
        return true;
      }
      this.mirror = mirror;
    }
    try {
      Y.applyUpdate(mirror, update);
      return true;
    } catch {
      this.dropMirror();
      return false;
    }
  }

  private dropMirror(): void {
    this.mirror?.destroy();
    this.mirror = null;
  }

  private hold(update: Uint8Array, mirrored = false): void {
    if (this.mirror !== null && !mirrored) {
      try {
        Y.applyUpdate(this.mirror, update);
      } catch {
        this.dropMirror();
      }
    }
    this.extra.push(update);
    this.extraBytes += update.length;
    if (this.extraBytes > Math.max(EXTRA_BYTES_MIN, this.state.length)) this.merged();
  }

  join(session: Session): void {
    this.sessions.add(session);
    // As a y-websocket server does: the node's state vector first (the client
    // answers with what the node lacks), then the presence it knows.
    session.send(syncMessage(syncProtocol.messageYjsSyncStep1, Y.encodeStateVectorFromUpdate(this.merged())));
    const states = [...this.awareness.getStates().keys()];
    if (states.length > 0) session.send(awarenessMessage(awarenessProtocol.encodeAwarenessUpdate(this.awareness, states)));
  }

  leave(session: Session): void {
    this.sessions.delete(session);
    if (session.awarenessIds.size > 0) awarenessProtocol.removeAwarenessStates(this.awareness, [...session.awarenessIds], session);
    this.retireIfDone();
  }

  /** Answers a client's sync step 1: what it lacks (relayed edits included). */
  syncStep1(session: Session, stateVector: Uint8Array): void {
    const state = this.relayed.length > 0 ? Y.mergeUpdates([this.merged(), ...this.relayed]) : this.merged();
    session.send(syncMessage(syncProtocol.messageYjsSyncStep2, Y.diffUpdate(state, stateVector)));
  }

  /** A batch another node relayed as it wrote it: to this room's clients now, to the state when its op commits. */
  relayedUpdate(update: Uint8Array): void {
    this.relayed.push(update);
    this.relayedBytes += update.length;
    while (this.relayed.length > RELAYED_MAX || this.relayedBytes > RELAYED_BYTES_MAX) this.relayedBytes -= (this.relayed.shift() as Uint8Array).length;
    const message = syncMessage(syncProtocol.messageYjsUpdate, update);
    for (const s of this.sessions) s.send(message);
  }

  /** A client's update, valid and not empty: queued for writing and relayed to the others. */
  clientUpdate(session: Session, update: Uint8Array): void {
    const o = this.rooms.o;
    if (!this.accepts(update)) {
      session.fail(YjsClose.badMessage, "geokv: yjs rejected the update against the document");
      return;
    }
    const taken = offer(this.queue, { client: session.id, bytes: update }, o.now(), o.queue);
    if (taken.accepted) this.writeToken = session.writeToken ?? this.writeToken;
    if (!taken.accepted) {
      // The mirror took an update the room does not hold: rebuilt from the room's state on the next check.
      this.dropMirror();
      // The edit is neither relayed nor held: the client keeps it and sends it again when it reconnects.
      session.fail(YjsClose.queueFull, `geokv: edits wait for a region leader; ${taken.reason}`);
      return;
    }
    o.counted?.("update");
    this.hold(update, true);
    const message = syncMessage(syncProtocol.messageYjsUpdate, update);
    for (const s of this.sessions) if (s !== session) s.send(message);
    this.pump();
  }

  /** A docs op committed at this node. */
  committed(update: Uint8Array): void {
    const echo = this.echoes.findIndex((e) => sameBytes(e, update));
    if (echo >= 0) {
      // This room's own batch: its clients had each of its updates as it arrived.
      this.echoes.splice(echo, 1);
      return;
    }
    const relayed = this.relayed.findIndex((e) => sameBytes(e, update));
    this.hold(update);
    if (relayed >= 0) {
      // Relayed by its writer: the clients have it; now it is durable, it joins the state.
      this.relayedBytes -= update.length;
      this.relayed.splice(relayed, 1);
      return;
    }
    const message = syncMessage(syncProtocol.messageYjsUpdate, update);
    for (const s of this.sessions) s.send(message);
  }

  /** Writes now what waits for the batch delay (the rooms are flushing). */
  flushNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pump();
  }

  /** Writes what the queue says is due, one batch at a time. */
  pump(): void {
    if (this.writing || this.retired) return;
    const o = this.rooms.o;
    const step = nextStep(this.queue, o.now(), o.leaderKnown(), o.queue, this.rooms.flushing);
    if (step.kind === "idle") {
      this.retireIfDone();
      return;
    }
    if (step.kind === "wait") {
      if (this.timer !== undefined) return;
      const wake = () => {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.pump();
      };
      this.timer = setTimeout(wake, step.ms);
      if (!o.leaderKnown()) void o.leaderChanged(step.ms).then(wake);
      return;
    }
    const batch = step.batch.map((u) => u.bytes);
    const update = batch.length === 1 ? (batch[0] as Uint8Array) : Y.mergeUpdates(batch);
    this.echoes.push(update);
    if (this.echoes.length > ECHOES_MAX) this.echoes.shift();
    if (update.length <= LIVE_UPDATE_BYTES_MAX) o.peers.relay(this.key, update);
    this.writing = true;
    void o.writer.write(this.key, update, this.writeToken).then(
      (outcome) => this.wrote(outcome === "done", update),
      (err: unknown) => {
        o.logger.error({ err, room: this.key }, "live doc write failed");
        this.wrote(false, update);
      },
    );
  }

  private wrote(ok: boolean, update: Uint8Array): void {
    const o = this.rooms.o;
    this.writing = false;
    if (ok) o.counted?.("write");
    else {
      // Not written: its commit will not come back, and a retry batches afresh.
      const at = this.echoes.indexOf(update);
      if (at >= 0) this.echoes.splice(at, 1);
    }
    written(this.queue, ok, o.now(), o.queue);
    this.pump();
  }

  /** A presence update from a client of this node (checked). */
  presence(update: Uint8Array, origin: Session): void {
    awarenessProtocol.applyAwarenessUpdate(this.awareness, update, origin);
  }

  /** A presence update from another node (checked). */
  peerPresence(peer: NodeId, update: Uint8Array): void {
    const entries = awarenessEntries(update);
    for (const x of entries) this.peerClients.set(x.client, peer);
    const removedClock = (client: number) => (this.awareness.getStates().has(client) ? undefined : this.awareness.meta.get(client)?.clock);
    const back = raisedPastRemoval(entries, removedClock);
    awarenessProtocol.applyAwarenessUpdate(this.awareness, back.raised ? encodeAwarenessEntries(back.entries) : update, FROM_PEER);
  }

  /** The link to `peer` is down: its clients' presence goes now, not at the awareness timeout. */
  peerDown(peer: NodeId): void {
    const ids = [...this.peerClients].filter(([, p]) => p === peer).map(([id]) => id);
    for (const id of ids) this.peerClients.delete(id);
    if (ids.length > 0) awarenessProtocol.removeAwarenessStates(this.awareness, ids, FROM_PEER);
  }

  /** The states of this node's own clients (for a node that asked). */
  ownPresence(): Uint8Array | null {
    const ids: number[] = [];
    for (const s of this.sessions) for (const id of s.awarenessIds) if (this.awareness.getStates().has(id)) ids.push(id);
    return ids.length > 0 ? awarenessProtocol.encodeAwarenessUpdate(this.awareness, ids) : null;
  }

  allPresence(): Uint8Array {
    return awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...this.awareness.getStates().keys()]);
  }

  private schedulePresence(): void {
    if (this.presenceTimer !== undefined || this.retired) return;
    this.presenceTimer = setTimeout(() => {
      this.presenceTimer = undefined;
      this.flushPresence();
    }, this.rooms.o.awarenessMs);
  }

  /** Sends the latest state of every client that changed since the last flush: one message, however often each changed. */
  private flushPresence(): void {
    if (this.presenceLocal.size > 0) {
      const message = awarenessMessage(awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...this.presenceLocal]));
      this.presenceLocal.clear();
      for (const s of this.sessions) s.send(message);
    }
    if (this.presencePeers.size > 0) {
      const ids = [...this.presencePeers];
      this.presencePeers.clear();
      // Each client's state is at most AWARENESS_MESSAGE_BYTES_MAX, so this many fit one presence frame.
      for (let i = 0; i < ids.length; i += PRESENCE_CLIENTS_PER_FRAME) {
        this.rooms.o.peers.broadcast(this.key, awarenessProtocol.encodeAwarenessUpdate(this.awareness, ids.slice(i, i + PRESENCE_CLIENTS_PER_FRAME)));
      }
    }
  }

  /** Leaves memory once nobody is connected and nothing waits to be written. */
  retireIfDone(): void {
    if (this.retired || this.sessions.size > 0 || this.queue.items.length > 0 || this.writing) return;
    this.retired = true;
    clearTimeout(this.timer);
    // Presence of the clients that just left still goes out to the other nodes.
    clearTimeout(this.presenceTimer);
    this.presenceTimer = undefined;
    this.flushPresence();
    this.awareness.destroy();
    this.awareness.doc.destroy();
    this.dropMirror();
    this.rooms.retired(this.key, this.merged());
  }

  /** Node shutdown: every client is told, nothing more is written (the clients hold their edits and sync them on reconnect). */
  shutdown(): void {
    for (const s of [...this.sessions]) s.fail(YjsClose.goingAway, "geokv: node shutting down");
    this.retired = true;
    clearTimeout(this.timer);
    clearTimeout(this.presenceTimer);
    this.awareness.destroy();
    this.awareness.doc.destroy();
    this.dropMirror();
  }
}

/** The live documents of one node. */
export class YjsRooms {
  private readonly rooms = new Map<string, Room>();
  /** Idle docs' merged updates, least recently used first (Map order). */
  private readonly cache = new Map<string, Uint8Array>();
  private cacheBytes = 0;
  private nextSession = 1;
  private closed = false;
  /** Shutting down: queued edits are written without waiting out the batch delay. */
  flushing = false;

  constructor(readonly o: YjsRoomsOptions) {}

  /** A new connection to the doc `key` (a valid key); `readOnly` drops its updates; `writeToken` is the token it was let in with. */
  open(key: string, client: YjsClient, readOnly: boolean, writeToken?: string): YjsSession {
    if (this.closed) {
      client.close(YjsClose.goingAway, "geokv: node shutting down");
      return { receive: () => undefined, closed: () => undefined };
    }
    let room = this.rooms.get(key);
    const first = room === undefined;
    if (room === undefined) {
      let state = this.cache.get(key);
      if (state !== undefined) {
        this.cache.delete(key);
        this.cacheBytes -= state.length;
      } else state = this.o.loadDoc(key);
      room = new Room(this, key, state);
      this.rooms.set(key, room);
    }
    const session = new Session(this.nextSession++, client, room, readOnly, writeToken);
    room.join(session);
    // The other nodes' clients of this room: they told us nothing while we had none.
    if (first) this.o.peers.broadcast(key, new Uint8Array(0));
    return session;
  }

  /**
   * One frame of a session: handled, or the reason to close the connection.
   * A frame is one message; nothing of a bad one is applied.
   */
  handle(session: Session, message: Uint8Array): { code: number; reason: string } | null {
    const room = session.room;
    const d = decoding.createDecoder(message);
    let type: number;
    let payload: Uint8Array | undefined;
    let syncKind = -1;
    try {
      type = decoding.readVarUint(d);
      if (type === MESSAGE_SYNC) {
        syncKind = decoding.readVarUint(d);
        payload = decoding.readVarUint8Array(d);
      } else if (type === MESSAGE_AWARENESS) {
        payload = decoding.readVarUint8Array(d);
      } else if (type === MESSAGE_AUTH) {
        // A client has nothing to say here; read it so its framing is checked.
        decoding.readVarUint(d);
        decoding.readVarString(d);
      } else if (type !== MESSAGE_QUERY_AWARENESS) {
        return { code: YjsClose.badMessage, reason: `geokv: unknown message type ${type}` };
      }
    } catch {
      return { code: YjsClose.badMessage, reason: "geokv: malformed message (its lengths run past the frame)" };
    }
    if (decoding.hasContent(d)) return { code: YjsClose.badMessage, reason: "geokv: bytes after the end of the message (one message per frame)" };

    if (type === MESSAGE_SYNC) {
      const bytes = payload as Uint8Array;
      if (syncKind === syncProtocol.messageYjsSyncStep1) {
        if (!validateStateVector(bytes)) return { code: YjsClose.badMessage, reason: "geokv: sync step 1 holds no valid state vector" };
        room.syncStep1(session, bytes);
        return null;
      }
      if (syncKind !== syncProtocol.messageYjsSyncStep2 && syncKind !== syncProtocol.messageYjsUpdate) return { code: YjsClose.badMessage, reason: `geokv: unknown sync message type ${syncKind}` };
      if (bytes.length > this.o.maxValueBytes) return { code: YjsClose.tooBig, reason: `geokv: an update of ${bytes.length} bytes is over max-value-bytes (${this.o.maxValueBytes})` };
      if (session.readOnly) {
        session.denyOnce();
        return null;
      }
      if (isEmptyUpdate(bytes)) return null;
      if (!validateDocUpdate(bytes)) return { code: YjsClose.badMessage, reason: "geokv: yjs rejected the update" };
      room.clientUpdate(session, bytes);
      return null;
    }
    if (type === MESSAGE_AWARENESS) {
      const bytes = payload as Uint8Array;
      if (bytes.length > AWARENESS_MESSAGE_BYTES_MAX) return { code: YjsClose.tooBig, reason: `geokv: an awareness update of ${bytes.length} bytes (at most ${AWARENESS_MESSAGE_BYTES_MAX})` };
      const problem = awarenessUpdateProblem(bytes);
      if (problem !== null) return { code: YjsClose.badMessage, reason: `geokv: ${problem}`.slice(0, 120) };
      room.presence(bytes, session);
      return null;
    }
    if (type === MESSAGE_QUERY_AWARENESS) session.send(awarenessMessage(room.allPresence()));
    return null;
  }

  /** Docs ops this node committed (its own writes and peers'), in commit order. */
  committed(ops: readonly Op[]): void {
    for (const op of ops) {
      if (op.ns !== "docs") continue;
      const room = this.rooms.get(op.key);
      if (room !== undefined) room.committed(op.update);
      else this.forget(op.key);
    }
  }

  /** A snapshot install gave these docs new states: live rooms take them (as one update each), idle cached copies go. */
  installed(keys: readonly string[], state: (key: string) => Uint8Array | undefined): void {
    for (const key of keys) {
      const room = this.rooms.get(key);
      const now = room === undefined ? undefined : state(key);
      if (room !== undefined && now !== undefined) room.committed(now);
      else this.forget(key);
    }
  }

  /** A presence frame from another node. */
  presenceFrom(peer: NodeId, roomKey: string, update: Uint8Array): void {
    const room = this.rooms.get(roomKey);
    // No client here: nothing to relay to, and a first client will ask.
    if (room === undefined) return;
    if (update.length === 0) {
      const own = room.ownPresence();
      if (own !== null) this.o.peers.sendTo(peer, roomKey, own);
      return;
    }
    const problem = awarenessUpdateProblem(update);
    if (problem !== null) {
      this.o.logger.warn({ peer, room: roomKey }, `presence frame refused: ${problem}`);
      return;
    }
    room.peerPresence(peer, update);
  }

  /** A batch another node relayed as it wrote it (an authenticated peer: not checked again). */
  liveUpdateFrom(roomKey: string, update: Uint8Array): void {
    // No client here: the op will come with replication.
    this.rooms.get(roomKey)?.relayedUpdate(update);
  }

  /** A link to another node came up: ask it for its clients' presence in every room here (it asks us the same). */
  peerUp(peer: NodeId): void {
    for (const key of this.rooms.keys()) this.o.peers.sendTo(peer, key, new Uint8Array(0));
  }

  /** A link to another node went down (dead, or cut off): the presence it relayed is removed. */
  peerDown(peer: NodeId): void {
    for (const room of this.rooms.values()) room.peerDown(peer);
  }

  /** Called by a room leaving memory, with its merged update. */
  retired(key: string, state: Uint8Array): void {
    this.rooms.delete(key);
    this.forget(key);
    if (state.length > this.o.docCacheBytes) return;
    this.cache.set(key, state);
    this.cacheBytes += state.length;
    this.evict();
  }

  private forget(key: string): void {
    const cached = this.cache.get(key);
    if (cached === undefined) return;
    this.cache.delete(key);
    this.cacheBytes -= cached.length;
  }

  /** Drops the least recently used idle docs until live and cached docs fit the budget. */
  private evict(): void {
    let live = 0;
    for (const r of this.rooms.values()) live += r.bytes();
    for (const [key, state] of this.cache) {
      if (this.cacheBytes + live <= this.o.docCacheBytes) break;
      this.cache.delete(key);
      this.cacheBytes -= state.length;
    }
  }

  stats(): YjsStats {
    let connections = 0;
    let liveBytes = 0;
    let queuedBytes = 0;
    for (const r of this.rooms.values()) {
      connections += r.sessions.size;
      liveBytes += r.bytes();
      queuedBytes += r.queue.bytes;
    }
    return { connections, liveDocs: this.rooms.size, liveBytes, cachedDocs: this.cache.size, cachedBytes: this.cacheBytes, queuedBytes };
  }

  /**
   * Node shutdown, first half: waits up to `ms` for every room's queued
   * edits to be written (an author may have left within the batch delay, or
   * while the region had no leader: nobody would send those again).
   */
  async drain(ms: number): Promise<void> {
    const deadline = this.o.now() + ms;
    this.flushing = true;
    for (const room of this.rooms.values()) room.flushNow();
    const waiting = () => [...this.rooms.values()].some((r) => r.queue.items.length > 0);
    while (waiting() && this.o.now() < deadline) {
      await new Promise<void>((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    if (waiting()) this.o.logger.warn({ rooms: [...this.rooms.values()].filter((r) => r.queue.items.length > 0).length }, "live doc edits not written at shutdown; their clients sync them on reconnect");
  }

  /** Node shutdown: closes every connection. */
  close(): void {
    this.closed = true;
    for (const room of [...this.rooms.values()]) room.shutdown();
    this.rooms.clear();
    this.cache.clear();
    this.cacheBytes = 0;
  }
}
