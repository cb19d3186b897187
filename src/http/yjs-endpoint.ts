// GET /yjs/:room: the WebSocket of the y-websocket protocol. This file is the
// transport: it takes the upgrade, reads the room from the path (the rest of
// the path, so a room may hold "/"; it is the doc `room` of the docs
// namespace), checks the client's token (`?token=` or Sec-WebSocket-Protocol),
// and hands the connection to the node's rooms (src/node/yjs-rooms.ts), which
// speak the protocol. A connection that is refused is first accepted and
// then closed with a code and a reason, because a stock WebsocketProvider
// shows a close reason but only retries a refused upgrade forever; codes in
// 4400-4499 tell it not to reconnect.

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { WebSocketServer, type WebSocket } from "ws";
import { validateKey } from "../core/key.js";
import { YjsClose, type YjsRooms } from "../node/yjs-rooms.js";
import type { NodeError } from "../node/errors.js";
import { allows, grantFor, guards, type AccessTokens, type Need } from "./access.js";

/** The path prefix of live documents. */
export const YJS_PATH = "/yjs/";
/** Room of a message's framing: type and length varints around an update of at most maxValueBytes. */
const FRAMING_BYTES = 32;
/** A connection that answers no ping within this long is dead (a half-open TCP connection) and is cut. */
const PING_EVERY_MS = 30_000;

export interface YjsEndpointOptions {
  /** The client tokens and their grants; a connection needs read on docs, and writes only with write on docs. */
  readonly access: AccessTokens;
  readonly rooms: YjsRooms;
  readonly maxValueBytes: number;
  readonly logger: Logger;
  /** Asked before a connection joins, with how many are open: null, or the overloaded error (the ws-clients bound). None refused when absent. */
  readonly admitClient?: (clients: number) => NodeError | null;
}

export interface YjsEndpoint {
  /** Takes an upgrade whose path starts with /yjs/. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Node shutdown: lets queued edits be written (up to `drainMs`), then closes every connection. */
  close(drainMs: number): Promise<void>;
}

/** A close reason fits in 123 bytes of UTF-8. */
function reasonOf(reason: string): string {
  let s = reason;
  while (Buffer.byteLength(s) > 123) s = s.slice(0, -1);
  return s;
}

/** The room named by a request path, or why there is none. */
export function roomOf(path: string): { room: string } | { problem: string } {
  const rest = path.slice(YJS_PATH.length);
  if (rest.length === 0) return { problem: "the path names no room (/yjs/<room>)" };
  // y-websocket puts the room in the URL as it is: decoded when it is valid
  // percent-encoding ("my%20notes" is the doc "my notes", as GET /docs sees
  // it), taken as written otherwise ("50%").
  let room: string;
  try {
    room = decodeURIComponent(rest);
  } catch {
    room = rest;
  }
  const bad = validateKey(room);
  return bad === null ? { room } : { problem: `invalid room: ${bad.reason}` };
}

/** The tokens a request presents: its ?token= and each Sec-WebSocket-Protocol it offers. */
function presented(req: IncomingMessage, url: URL): string[] {
  const out: string[] = [];
  const q = url.searchParams.get("token");
  if (q !== null) out.push(q);
  const protocols = req.headers["sec-websocket-protocol"];
  if (typeof protocols === "string") for (const p of protocols.split(",")) if (p.trim() !== "") out.push(p.trim());
  return out;
}

/** What a connection may do: read (sync and receive), or also write. */
type Access = "write" | "read";

const READ_DOCS: Need = { scope: "read", namespace: "docs" };
const WRITE_DOCS: Need = { scope: "write", namespace: "docs" };

/** The best access the presented tokens grant (write over read), or why none. */
function accessFor(tokens: readonly string[], t: AccessTokens): { access: Access; protocol?: string } | { code: number; reason: string } {
  if (!guards(t, "read")) return { access: "write" };
  if (tokens.length === 0) return { code: YjsClose.unauthorized, reason: "geokv: unauthorized: this node needs a client token (?token= or Sec-WebSocket-Protocol)" };
  let best: { access: Access; token: string } | undefined;
  let known = false;
  for (const token of tokens) {
    const g = grantFor(token, t);
    if (g === null) continue;
    known = true;
    if (!allows(g, READ_DOCS)) continue;
    if (allows(g, WRITE_DOCS)) return { access: "write", protocol: token };
    best ??= { access: "read", token };
  }
  if (best !== undefined) return { access: best.access, protocol: best.token };
  // A known token that lacks the scope says more than an unknown one.
  return { code: YjsClose.forbidden, reason: `geokv: forbidden: ${known ? "this token lacks the read scope on namespace docs" : "wrong client token"}` };
}

/** Builds the endpoint over the node's rooms. */
export function createYjsEndpoint(o: YjsEndpointOptions): YjsEndpoint {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: o.maxValueBytes + FRAMING_BYTES,
    perMessageDeflate: false,
    // A token offered as a subprotocol is named back, as browsers require of a protocol they offered.
    handleProtocols: (protocols, req) => {
      const url = new URL(req.url ?? "/", "http://x");
      const a = accessFor(presented(req, url), o.access);
      if ("access" in a && a.protocol !== undefined && protocols.has(a.protocol)) return a.protocol;
      return false;
    },
  });
  const sockets = new Set<WebSocket>();
  // As y-websocket's own server does: ping every connection, cut the ones that did not answer the last ping.
  const alive = new WeakSet<WebSocket>();
  const pinger = setInterval(() => {
    for (const ws of sockets) {
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, PING_EVERY_MS);
  pinger.unref();

  function serve(ws: WebSocket, req: IncomingMessage): void {
    // ws closes a frame over maxPayload with 1009 and no reason; give it one.
    const wsClose = ws.close.bind(ws);
    const tooBig = reasonOf(`geokv: a message over ${o.maxValueBytes + FRAMING_BYTES} bytes (max-value-bytes ${o.maxValueBytes} and framing)`);
    ws.close = (code?: number, reason?: string | Buffer) => wsClose(code, reason ?? (code === YjsClose.tooBig ? tooBig : undefined));
    const url = new URL(req.url ?? "/", "http://x");
    const refuse = (code: number, reason: string) => {
      o.logger.info({ path: url.pathname, code }, `yjs connection refused: ${reason}`);
      ws.close(code, reasonOf(reason));
    };
    const where = roomOf(url.pathname);
    if ("problem" in where) return refuse(YjsClose.badMessage, `geokv: ${where.problem}`);
    const access = accessFor(presented(req, url), o.access);
    if ("code" in access) return refuse(access.code, access.reason);
    // 1013 Try Again Later: a stock client reconnects with its backoff, by then perhaps to a node with
    // room. Not logged one by one: the shedder counts and summarizes sheds.
    const shed = o.admitClient?.(sockets.size) ?? null;
    if (shed !== null) return ws.close(YjsClose.overloaded, reasonOf(`geokv: ${shed.message}`));

    sockets.add(ws);
    alive.add(ws);
    ws.on("pong", () => alive.add(ws));
    const session = o.rooms.open(
      where.room,
      {
        send: (message) => ws.send(message),
        buffered: () => ws.bufferedAmount,
        // A client that left its send buffer full would never read a close frame queued behind it: cut it at once.
        close: (code, reason) => (code === YjsClose.slowClient ? ws.terminate() : ws.close(code, reasonOf(reason))),
      },
      access.access === "read",
      access.access === "write" ? access.protocol : undefined,
    );
    ws.on("message", (data, isBinary) => {
      if (!isBinary) {
        ws.close(YjsClose.badMessage, "geokv: text frames are not part of the protocol");
        session.closed();
        return;
      }
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      session.receive(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
    });
    ws.on("close", () => {
      sockets.delete(ws);
      session.closed();
    });
    // ws closes the socket after an error (an oversized frame: 1009); the close event above follows.
    ws.on("error", (err) => o.logger.debug({ err: String(err), room: where.room }, "yjs connection error"));
  }

  return {
    handleUpgrade(req, socket, head) {
      wss.handleUpgrade(req, socket, head, (ws) => serve(ws, req));
    },
    async close(drainMs) {
      clearInterval(pinger);
      await o.rooms.drain(drainMs);
      o.rooms.close();
      for (const ws of sockets) ws.terminate();
      sockets.clear();
      wss.close();
    },
  };
}
