// Writes a live document's batched client updates the way any client write
// goes: taken here when this node leads its region, passed to the leader
// over HTTP when another node does (the same POST /docs/:key/updates a client
// would send, marked as forwarded so it is never passed on again). It
// reports whether to retry; the room's queue (src/core/docs/update-queue.ts)
// keeps the updates until a write succeeded. A retried update that did land
// the first time is harmless: merging a Yjs update twice changes nothing.

import type { Logger } from "pino";
import { FORWARDED_HEADER } from "../api/types.js";
import { isNodeError } from "./errors.js";
import type { DataService, WriteRouter } from "./service.js";

/** How a write ended: done (also when refused for good, which is logged), or to be retried. */
export type DocWriteOutcome = "done" | "retry";

export interface DocWriter {
  write(key: string, update: Uint8Array): Promise<DocWriteOutcome>;
}

export interface DocWriterOptions {
  readonly nodeId: string;
  readonly service: Pick<DataService, "docUpdate">;
  readonly router: WriteRouter;
  /** The token this node presents to its leader when client tokens are required. */
  readonly clientToken: string | undefined;
  /** How long one forwarded write may take. */
  readonly timeoutMs: number;
  readonly logger: Logger;
}

/** A writer that routes through the region's leader. */
export function createDocWriter(o: DocWriterOptions): DocWriter {
  return {
    async write(key, update) {
      const route = o.router.route();
      if (route.kind === "none") return "retry";
      if (route.kind === "local") {
        const r = await o.service.docUpdate(key, update, { ack: "local", requestHash: "" });
        if (!isNodeError(r)) return "done";
        if (r.code === "no_leader" || r.code === "clock_skew" || r.code === "internal") return "retry";
        o.logger.error({ key, code: r.code, bytes: update.length }, `live doc update refused: ${r.message}`);
        return "done";
      }
      try {
        const res = await fetch(`${route.url}/docs/${encodeURIComponent(key)}/updates`, {
          method: "POST",
          body: update,
          headers: {
            "content-type": "application/octet-stream",
            [FORWARDED_HEADER]: o.nodeId,
            ...(o.clientToken !== undefined ? { authorization: `Bearer ${o.clientToken}` } : {}),
          },
          signal: AbortSignal.timeout(o.timeoutMs),
        });
        const text = await res.text();
        if (res.ok) return "done";
        // A token the leader does not take (mid-rotation, say) is retried, not dropped: the edits stay queued.
        if (res.status >= 500 || res.status === 429 || res.status === 401 || res.status === 403) {
          if (res.status < 500) o.logger.warn({ key, status: res.status, leader: route.node }, `live doc update refused by the leader; retrying: ${text.slice(0, 200)}`);
          return "retry";
        }
        o.logger.error({ key, status: res.status, leader: route.node, bytes: update.length }, `live doc update refused by the leader: ${text.slice(0, 300)}`);
        return "done";
      } catch (err) {
        o.logger.debug({ key, leader: route.node, err: String(err) }, "live doc update not forwarded; retrying");
        return "retry";
      }
    },
  };
}
