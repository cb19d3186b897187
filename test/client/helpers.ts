// Test support for the SDK suites: a fetch wrapper that records every attempt
// the client makes (and can lose an answer after the node applied the
// request), a TCP server that accepts and never answers, a URL nothing
// listens on, and a wait for a region to agree on its leader. The nodes are
// always real; only the client's side of the wire is observed or disturbed.

import { createServer, type Server, type Socket } from "node:net";
import { freePort, waitFor } from "../support/cluster-files.js";

/** One attempt the client made. */
export interface SentRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Headers;
  /** performance.now() when the attempt started. */
  readonly startedMs: number;
  /** The HTTP status, or "error" when fetch threw (refused, timed out, or lost on purpose). */
  status: number | "error";
  /** performance.now() when the answer (or the error) came back. */
  answeredMs?: number;
  /** The error body's code, for error answers in the contract's shape. */
  errorCode?: string;
  /** Response headers, when there was a response. */
  responseHeaders?: Headers;
}

export interface RecordingFetch {
  readonly fetch: typeof fetch;
  readonly sent: SentRequest[];
}

/**
 * Wraps the global fetch and records each attempt. When `loseAnswer` returns
 * true for an attempt, the request is sent and its whole answer read, and
 * then the wrapper throws as if the connection broke before the answer
 * arrived: the node applied the request, the client never learns it.
 */
export function recordingFetch(loseAnswer?: (r: SentRequest, index: number) => boolean): RecordingFetch {
  const sent: SentRequest[] = [];
  const wrapped = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const r: SentRequest = { url, method: init?.method ?? "GET", headers: new Headers(init?.headers), startedMs: performance.now(), status: "error" };
    const index = sent.length;
    sent.push(r);
    let res: Response;
    try {
      res = await fetch(input, init);
    } finally {
      r.answeredMs = performance.now();
    }
    r.status = res.status;
    r.responseHeaders = res.headers;
    if (res.status >= 400) {
      // Read the error here (the client gets a copy) so tests can tell no_leader from stale_replica.
      const text = await res.clone().text();
      try {
        r.errorCode = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
      } catch {
        // not the contract's shape
      }
    }
    if (loseAnswer?.(r, index)) {
      await res.arrayBuffer();
      r.status = "error";
      throw new TypeError("fetch failed", { cause: new Error("simulated: connection reset after the node answered") });
    }
    return res;
  };
  return { fetch: wrapped as typeof fetch, sent };
}

/** A loopback URL that refuses connections (nothing listens on the port). */
export async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

/** A TCP server that accepts connections and never answers: a hung node. */
export async function blackholeServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => undefined);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** GET /status of one node (no auth needed), or null when it does not answer. */
export async function nodeStatus(url: string): Promise<{ node: string; leader: string | null; role: string; vv: Record<string, number>; peers: { node: string; state: string }[] } | null> {
  try {
    const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) return null;
    return (await res.json()) as { node: string; leader: string | null; role: string; vv: Record<string, number>; peers: { node: string; state: string }[] };
  } catch {
    return null;
  }
}

/** Waits until every node of `urls` names the same leader; returns its id. */
export async function agreedLeader(urls: Map<string, string>, nodes: readonly string[], timeoutMs = 20_000): Promise<string> {
  return waitFor(
    `nodes ${nodes.join(", ")} to agree on a leader`,
    async () => {
      const views = await Promise.all(nodes.map((n) => nodeStatus(urls.get(n) as string)));
      const leader = views[0]?.leader ?? null;
      if (leader === null || !views.every((v) => v?.leader === leader)) return null;
      return leader;
    },
    timeoutMs,
  );
}
