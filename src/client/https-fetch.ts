// A fetch for https:// URLs that trusts a given CA. Node 20's global fetch
// trusts only the system store (and NODE_EXTRA_CA_CERTS, read once at process
// start) and takes no per-call CA, but a TLS cluster's certificates usually
// come from its own. The SDK uses it for ClientOptions.ca, and `geokv node`
// hands it to its node for the calls nodes make to each other (write
// forwarding, stepdown relays, dashboard controls: server code does not
// import the SDK, it is given this). It is the subset of fetch those callers
// use, over node:https with a keep-alive agent; errors are thrown as fetch
// throws them (a TypeError whose cause carries the code), so callers that
// read `err.cause.code` keep working.

import { Agent, request } from "node:https";

/** Statuses whose Response must have a null body. */
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([101, 204, 205, 304]);
/** Bound on pooled connections per node. */
const SOCKETS_PER_HOST_MAX = 16;
/**
 * Longest time an idle pooled connection is kept. The node's idle timeout is
 * what counts: Node 20's agent closes an idle socket a second before the
 * server's `Keep-Alive: timeout=N` hint, but only when the agent has a
 * `timeout` of its own (without one it ignores the hint, keeps the socket
 * until the node closes it, and a request sent as the node's timer fires is
 * reset: ECONNRESET).
 */
export const IDLE_SOCKET_MS_MAX = 60_000;

/** The CA to trust and, optionally, a client certificate to present. */
export interface HttpsFetchTls {
  readonly ca: Buffer;
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
}

function headersOf(init: RequestInit["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  new Headers(init).forEach((v, k) => {
    out[k] = v;
  });
  return out;
}

function bodyBytes(body: RequestInit["body"]): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError("https fetch: only string, Uint8Array and ArrayBuffer bodies are supported");
}

function fetchFailed(cause: unknown): TypeError {
  return new TypeError("fetch failed", { cause });
}

/** A fetch that sends https:// requests with this CA (and client certificate), and everything else to the global fetch. */
export function createHttpsFetch(tls: HttpsFetchTls): typeof fetch {
  const agent = new Agent({ keepAlive: true, maxSockets: SOCKETS_PER_HOST_MAX, timeout: IDLE_SOCKET_MS_MAX, ca: tls.ca, ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}) });
  const httpsFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    if (input instanceof Request) return Promise.reject(new TypeError("https fetch: pass a URL and init, not a Request"));
    const url = new URL(input);
    if (url.protocol !== "https:") return fetch(url, init);
    const body = bodyBytes(init.body);
    const headers = headersOf(init.headers);
    if (body !== undefined) headers["content-length"] = String(body.length);
    return new Promise<Response>((resolve, reject) => {
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason);
      const req = request(url, { method: init.method ?? "GET", headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => reject(fetchFailed(err)));
        res.on("end", () => {
          signal?.removeEventListener("abort", onAbort);
          const status = res.statusCode ?? 0;
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (Array.isArray(v)) for (const x of v) out.append(k, x);
            else if (v !== undefined) out.set(k, v);
          }
          resolve(new Response(NULL_BODY_STATUSES.has(status) ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage ?? "", headers: out }));
        });
      });
      const onAbort = () => req.destroy(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", (err) => {
        signal?.removeEventListener("abort", onAbort);
        // An abort rejects with the signal's reason (an AbortError or TimeoutError), as fetch does.
        reject(signal?.aborted ? signal.reason : fetchFailed(err));
      });
      req.end(body);
    });
  };
  return httpsFetch as typeof fetch;
}
