// Test support for live documents: stock y-websocket providers in this
// process, each with `ws` as its WebSocket and no BroadcastChannel (providers
// of one process would otherwise sync through it and bypass the server).

import WebSocket from "ws";
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import { waitFor } from "../support/cluster-files.js";

export interface Editor {
  readonly doc: Y.Doc;
  readonly text: Y.Text;
  readonly provider: WebsocketProvider;
  /** Close events the provider saw (code, reason). */
  readonly closes: Array<{ code: number; reason: string }>;
  destroy(): void;
}

/** A provider on `ws://<node>/yjs` (wss:// for https) for `room`, editing the Y.Text "t"; `webSocket` replaces ws (to pass a CA). */
export function editor(nodeUrl: string, room: string, opts: { params?: Record<string, string>; protocols?: string[]; maxBackoffTime?: number; webSocket?: typeof WebSocket } = {}): Editor {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(`${nodeUrl.replace(/^http/, "ws")}/yjs`, room, doc, {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ws is the Node WebSocket the provider accepts as a polyfill
    WebSocketPolyfill: (opts.webSocket ?? WebSocket) as any,
    disableBc: true,
    maxBackoffTime: opts.maxBackoffTime ?? 500,
    ...(opts.params ? { params: opts.params } : {}),
    ...(opts.protocols ? { protocols: opts.protocols } : {}),
  });
  const closes: Array<{ code: number; reason: string }> = [];
  provider.on("connection-close", (event) => {
    if (event) closes.push({ code: event.code, reason: String(event.reason) });
  });
  return {
    doc,
    text: doc.getText("t"),
    provider,
    closes,
    destroy: () => {
      provider.destroy();
      doc.destroy();
    },
  };
}

/** Resolves once the provider has synced with its node. */
export async function synced(e: Editor, timeoutMs = 20_000): Promise<void> {
  await waitFor("provider synced", () => e.provider.synced, timeoutMs);
}

/** The text "t" of the doc a node serves over HTTP (GET /docs/:room). */
export async function httpText(nodeUrl: string, room: string): Promise<string> {
  const res = await fetch(`${nodeUrl}/docs/${encodeURIComponent(room)}`);
  if (!res.ok) throw new Error(`GET /docs/${room} at ${nodeUrl}: ${res.status}`);
  const doc = new Y.Doc();
  Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()));
  const s = doc.getText("t").toString();
  doc.destroy();
  return s;
}

/** A gauge or counter's value in a node's /metrics (0 when absent). */
export async function metric(nodeUrl: string, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`${nodeUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}
