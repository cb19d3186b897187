// GET /dashboard/events: the dashboard's live feed as Server-Sent Events, one
// JSON snapshot every EVENTS_PERIOD_MS and at once when something changes (a
// role change, a fault). A stream ends when its client goes away and when the
// node shuts down; its answer says "Connection: close", so an ended stream
// also ends its socket and never holds the shutdown drain open.

import type { Context } from "hono";
import { nodeError } from "../node/errors.js";
import { sendError } from "./errors.js";

/** Snapshot period: 2.5 updates a second. */
export const EVENTS_PERIOD_MS = 400;
/** Open streams per node: each costs a snapshot per period. */
export const EVENT_STREAMS_MAX = 64;
/** Snapshots queued for a client that does not read before more are skipped. */
const QUEUED_SNAPSHOTS_MAX = 8;
/** How soon a browser reconnects after the stream ended (the node restarted). */
const RETRY_MS = 1000;

export interface EventsOptions {
  /** The snapshot as JSON text. */
  readonly snapshot: () => string;
  /** Subscribes to changes worth an update now; returns the unsubscribe. */
  readonly onChange: (listener: () => void) => () => void;
  /** Aborted when the node shuts down: every stream ends. */
  readonly shutdown?: AbortSignal | undefined;
}

/** The handler of GET /dashboard/events. */
export function eventsHandler(o: EventsOptions): (c: Context) => Response {
  const encoder = new TextEncoder();
  let open = 0;
  return (c) => {
    if (open >= EVENT_STREAMS_MAX) return sendError(c, nodeError("refused", `${EVENT_STREAMS_MAX} dashboard event streams are open on this node already; close one`));
    let stop = () => {};
    const body = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          open++;
          let ended = false;
          let soon = false;
          const send = () => {
            soon = false;
            if (ended) return;
            // A client that stopped reading gets no more until it catches up: memory stays bounded.
            if ((controller.desiredSize ?? 0) <= -QUEUED_SNAPSHOTS_MAX) return;
            controller.enqueue(encoder.encode(`data: ${o.snapshot()}\n\n`));
          };
          const timer = setInterval(send, EVENTS_PERIOD_MS);
          const unsubscribe = o.onChange(() => {
            if (soon) return;
            soon = true;
            setImmediate(send);
          });
          const end = () => {
            stop();
            try {
              controller.close();
            } catch {
              // already closed or cancelled
            }
          };
          stop = () => {
            if (ended) return;
            ended = true;
            open--;
            clearInterval(timer);
            unsubscribe();
            o.shutdown?.removeEventListener("abort", end);
          };
          if (o.shutdown?.aborted) return end();
          o.shutdown?.addEventListener("abort", end, { once: true });
          controller.enqueue(encoder.encode(`retry: ${RETRY_MS}\n\n`));
          send();
        },
        cancel() {
          stop();
        },
      },
      { highWaterMark: 1 },
    );
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "close" },
    });
  };
}
