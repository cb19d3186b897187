// The baseline of bench/yjs.ts: the least a y-websocket server can be. One
// process, one Y.Doc and one Awareness per room kept in memory for good (no
// persistence, no replication, docs never destroyed), the protocol of
// y-protocols one message per frame: sync step 1 and 2 and updates applied and
// relayed to the room's other connections, awareness relayed, query-awareness
// answered. It answers GET /health so the bench can wait for it. The bench
// transpiles this file and runs it with plain node, as geokv's dist/ is run.

import { createServer } from "node:http";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import * as awarenessProtocol from "y-protocols/awareness";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";

const MESSAGE_SYNC = 0;
const MESSAGE_AWARENESS = 1;
const MESSAGE_QUERY_AWARENESS = 3;
const PATH_PREFIX = "/yjs/";

interface Room {
  readonly doc: Y.Doc;
  readonly awareness: awarenessProtocol.Awareness;
  /** Each connection and the awareness client ids it has announced (removed when it closes). */
  readonly conns: Map<WebSocket, Set<number>>;
}

const rooms = new Map<string, Room>();

function send(conn: WebSocket, message: Uint8Array): void {
  if (conn.readyState === conn.OPEN) conn.send(message);
}

function awarenessMessage(awareness: awarenessProtocol.Awareness, clients: number[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
  encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, clients));
  return encoding.toUint8Array(encoder);
}

function openRoom(name: string): Room {
  const doc = new Y.Doc();
  const awareness = new awarenessProtocol.Awareness(doc);
  awareness.setLocalState(null);
  const room: Room = { doc, awareness, conns: new Map() };
  // The origin of an update or awareness change is the connection it came from: it is relayed to the others.
  doc.on("update", (update: Uint8Array, origin: unknown) => {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_SYNC);
    syncProtocol.writeUpdate(encoder, update);
    const message = encoding.toUint8Array(encoder);
    for (const conn of room.conns.keys()) if (conn !== origin) send(conn, message);
  });
  awareness.on("update", ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
    const owned = room.conns.get(origin as WebSocket);
    if (owned) {
      for (const id of added) owned.add(id);
      for (const id of removed) owned.delete(id);
    }
    const message = awarenessMessage(awareness, [...added, ...updated, ...removed]);
    for (const conn of room.conns.keys()) if (conn !== origin) send(conn, message);
  });
  rooms.set(name, room);
  return room;
}

function onMessage(room: Room, conn: WebSocket, data: Uint8Array): void {
  const decoder = decoding.createDecoder(data);
  const encoder = encoding.createEncoder();
  const type = decoding.readVarUint(decoder);
  switch (type) {
    case MESSAGE_SYNC:
      encoding.writeVarUint(encoder, MESSAGE_SYNC);
      // Step 1 is answered with step 2 into `encoder`; step 2 and updates are applied with the connection as origin.
      syncProtocol.readSyncMessage(decoder, encoder, room.doc, conn);
      if (encoding.length(encoder) > 1) send(conn, encoding.toUint8Array(encoder));
      return;
    case MESSAGE_AWARENESS:
      awarenessProtocol.applyAwarenessUpdate(room.awareness, decoding.readVarUint8Array(decoder), conn);
      return;
    case MESSAGE_QUERY_AWARENESS:
      send(conn, awarenessMessage(room.awareness, [...room.awareness.getStates().keys()]));
      return;
    default:
      return; // auth and unknown message types: nothing to do for a server without permissions
  }
}

function onConnection(conn: WebSocket, roomName: string): void {
  const room = rooms.get(roomName) ?? openRoom(roomName);
  room.conns.set(conn, new Set());
  conn.binaryType = "nodebuffer";
  conn.on("message", (data: RawData) => {
    try {
      onMessage(room, conn, new Uint8Array(data as Buffer));
    } catch (err) {
      console.error(`room ${roomName}: bad message`, err);
      conn.close(1003);
    }
  });
  conn.on("close", () => {
    const owned = room.conns.get(conn);
    room.conns.delete(conn);
    if (owned && owned.size > 0) awarenessProtocol.removeAwarenessStates(room.awareness, [...owned], null);
  });
  // The server speaks first, as y-websocket's server does: its step 1, then the room's awareness.
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  syncProtocol.writeSyncStep1(encoder, room.doc);
  send(conn, encoding.toUint8Array(encoder));
  const states = [...room.awareness.getStates().keys()];
  if (states.length > 0) send(conn, awarenessMessage(room.awareness, states));
}

const wss = new WebSocketServer({ noServer: true });
const server = createServer((req, res) => {
  res.writeHead(req.url === "/health" ? 200 : 404, { "content-type": "application/json" }).end('{"ok":true}');
});
server.on("upgrade", (req, socket, head) => {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (!path.startsWith(PATH_PREFIX) || path.length === PATH_PREFIX.length) {
    socket.destroy();
    return;
  }
  const roomName = decodeURIComponent(path.slice(PATH_PREFIX.length));
  wss.handleUpgrade(req, socket, head, (conn) => onConnection(conn, roomName));
});
server.listen(Number(process.env.BASELINE_PORT), "127.0.0.1");
