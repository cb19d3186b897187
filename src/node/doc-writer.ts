// Writes a live document's batched client updates the way any client write
// goes: taken here when this node leads its region, passed to the leader
// over HTTP when another node does (the same POST /docs/:key/updates a client
// would send, marked as forwarded so it is never passed on again, over a
// bounded pool of keep-alive connections). It
// reports whether to retry; the room's queue (src/core/docs/update-queue.ts)
// keeps the updates until a write succeeded. A retried update that did land
// the first time is harmless: merging a Yjs update twice changes nothing.

import { Agent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Logger } from "pino";
import { FORWARDED_HEADER } from "../api/types.js";
import type { PeerTls } from "../net/peer-cert.js";
import { isNodeError } from "./errors.js";
import type { DataService, WriteRouter } from "./service.js";

/** How a write ended: done (also when refused for good, which is logged), or to be retried. */
export type DocWriteOutcome = "done" | "retry";

export interface DocWriter {
  /** `clientToken`: the token of a client whose edit is in `update`, presented to the leader when this node has none of its own. */
  write(key: string, update: Uint8Array, clientToken?: string): Promise<DocWriteOutcome>;
}

export interface DocWriterOptions {
  readonly nodeId: string;
  readonly service: Pick<DataService, "docUpdate">;
  readonly router: WriteRouter;
  /**
   * The token this node presents to its leader when client tokens are
   * required (GEOKV_CLIENT_TOKEN); without one (tokens only in a tokens
   * file), the token of the client whose edit it is.
   */
  readonly clientToken: string | undefined;
  /** How long one forwarded write may take. */
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** In a TLS cluster: the CA the leader's certificate chains to (and this node's own, to present). */
  readonly tls?: PeerTls | undefined;
}

/** Connections a node keeps to its leader for live-doc writes (however many rooms write at once). */
const FORWARD_SOCKETS_MAX = 16;
/** Bytes of a refusal's body kept for the log. */
const ANSWER_BYTES_MAX = 4096;

/** POSTs `body`; the status and (the start of) the answer, or the error. */
function post(agent: Agent, url: string, body: Uint8Array, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; text: string } | { error: string }> {
  return new Promise((resolve) => {
    const send = url.startsWith("https:") ? httpsRequest : httpRequest;
    const req = send(url, { method: "POST", agent, headers: { ...headers, "content-length": String(body.length) }, timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (text.length < ANSWER_BYTES_MAX) text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      res.on("error", (err) => resolve({ error: String(err) }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err) => resolve({ error: String(err) }));
    req.end(body);
  });
}

/**
 * Longest time an idle pooled connection is kept. The number that matters is
 * the leader's own idle timeout: Node 20's agent closes an idle socket a
 * second before the server's `Keep-Alive: timeout=N` hint, but only when the
 * agent has a `timeout` of its own (without one it ignores the hint, keeps
 * the socket until the server closes it, and a write sent as the server's
 * timer fires is reset: ECONNRESET).
 */
export const FORWARD_IDLE_MS_MAX = 60_000;

/** The keep-alive pool of forwarded writes, plain or TLS: bounded, and closing idle sockets before the leader does. */
export function forwardAgent(tls: PeerTls | undefined): Agent {
  // Bounded: fetch()'s global pool opened a connection per room with a write in flight.
  const pool = { keepAlive: true, maxSockets: FORWARD_SOCKETS_MAX, timeout: FORWARD_IDLE_MS_MAX };
  return tls === undefined ? new Agent(pool) : new HttpsAgent({ ...pool, ca: tls.ca, cert: tls.cert, key: tls.key });
}

/** A writer that routes through the region's leader. */
export function createDocWriter(o: DocWriterOptions): DocWriter {
  const agent = forwardAgent(o.tls);
  return {
    async write(key, update, clientToken) {
      const route = o.router.route();
      if (route.kind === "none" || route.kind === "refused") return "retry";
      if (route.kind === "local") {
        const r = await o.service.docUpdate(key, update, { ack: "local", requestHash: "" });
        if (!isNodeError(r)) return "done";
        if (r.code === "no_leader" || r.code === "clock_skew" || r.code === "internal") return "retry";
        o.logger.error({ key, code: r.code, bytes: update.length }, `live doc update refused: ${r.message}`);
        return "done";
      }
      const token = o.clientToken ?? clientToken;
      const answer = await post(agent, `${route.url}/docs/${encodeURIComponent(key)}/updates`, update, {
        "content-type": "application/octet-stream",
        [FORWARDED_HEADER]: o.nodeId,
        ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      }, o.timeoutMs);
      if ("error" in answer) {
        o.logger.debug({ key, leader: route.node, err: answer.error }, "live doc update not forwarded; retrying");
        return "retry";
      }
      const { status, text } = answer;
      if (status >= 200 && status < 300) return "done";
      // A token the leader does not take (mid-rotation, say) is retried, not dropped: the edits stay queued.
      if (status >= 500 || status === 429 || status === 401 || status === 403) {
        if (status < 500) o.logger.warn({ key, status, leader: route.node }, `live doc update refused by the leader; retrying: ${text.slice(0, 200)}`);
        return "retry";
      }
      o.logger.error({ key, status, leader: route.node, bytes: update.length }, `live doc update refused by the leader: ${text.slice(0, 300)}`);
      return "done";
    },
  };
}
