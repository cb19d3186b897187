// What a client connection may hold of a node, in time, and how a connection
// whose request body was not read is closed. Two defences:
//
// - Timeouts (slowloris): a client has --headers-timeout-ms to send its
//   headers and --request-timeout-ms to send its whole request, after which
//   Node answers 408 and closes; an idle keep-alive connection is closed after
//   --idle-timeout-ms. Node checks them every CHECK_INTERVAL_MS at most, so a
//   connection that sends nothing at all is closed by the same rule.
//
// - The lingering close. A node answers an oversized upload (413) without
//   reading its body. Closing the socket then, with the client's bytes still
//   arriving, makes the kernel answer them with a reset, and a reset can reach
//   the client before it has read the 413: it sees EPIPE or ECONNRESET instead
//   of the answer. So the node half-closes instead (FIN after the answer),
//   keeps reading and discarding what the client still sends for at most
//   LINGER_MS, and only then lets go of the socket: Apache's lingering close.

import type { IncomingMessage, Server, ServerOptions, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** The connection timeouts of a node's HTTP server (src/node/settings.ts). */
export interface ConnectionLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** How often Node looks for connections past their headers or request timeout. */
const CHECK_INTERVAL_MS = 1000;

/** How long a half-closed connection keeps discarding a body nobody will read. */
export const LINGER_MS = 5000;

/** The http(s).createServer options that carry the limits. */
export function serverOptions(l: ConnectionLimits): ServerOptions {
  return {
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.idleTimeoutMs,
    connectionsCheckingInterval: Math.min(CHECK_INTERVAL_MS, l.headersTimeoutMs),
  };
}

/** Sockets already lingering, so a second close request is a no-op. */
const lingering = new WeakSet<Socket>();

/** Half-closes `socket` after what was written, discards what still arrives, and destroys it after LINGER_MS. */
export function lingerClose(socket: Socket): void {
  if (socket.destroyed || lingering.has(socket)) return;
  lingering.add(socket);
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  // Node's HTTP parser keeps consuming (and, for a dumped request, discarding)
  // the socket's bytes; the server allows half-open sockets, so reading goes
  // on after our FIN until the client closes its side or the timer fires.
  socket.end();
}

/**
 * Makes every response that finishes before its request body was read close
 * its connection with a lingering close instead of an abrupt one. Both Node
 * (after an answer sent with Connection: close) and @hono/node-server (when
 * its drain of an unread body gives up) end such a connection through
 * socket.destroySoon(); for that one socket, destroySoon lingers.
 */
export function lingerOnUnreadBodies(server: Server): void {
  server.prependListener("request", (req: IncomingMessage, res: ServerResponse) => {
    // Prepended, so it runs before Node's own finish handler decides the socket's fate.
    res.prependOnceListener("finish", () => {
      if (req.complete) return;
      const socket = req.socket as Socket & { destroySoon?: () => void };
      socket.destroySoon = () => lingerClose(socket);
    });
  });
}

/** Asks Node to close the connection after this answer (Connection: close), when the answer is still unsent. */
export function closeAfterAnswer(res: ServerResponse | undefined): void {
  if (res !== undefined && !res.headersSent) res.shouldKeepAlive = false;
}
