// A client that speaks plain HTTP to a node's HTTPS port would otherwise see
// its connection reset with no word of why (the TLS layer cannot parse
// "GET / HTTP/1.1" and drops the socket). OpenSSL recognizes that case
// (ERR_SSL_HTTP_REQUEST); this answers it, on the raw socket under the TLS
// one, with a plain 400 in the API's error shape that names the https:// URL.

import type { Socket } from "node:net";
import type { Server as TlsServer, TLSSocket } from "node:tls";

/** The plain-HTTP answer to a request sent without TLS to `httpsUrl`. */
export function plainHttpRefusal(httpsUrl: string): string {
  const body = JSON.stringify({ error: { code: "bad_request", message: `this port serves HTTPS only: use ${httpsUrl}` } });
  return `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** Answers plain-HTTP requests to `server` with plainHttpRefusal(httpsUrl); other TLS client errors are left as they are. */
export function refusePlainHttp(server: TlsServer, httpsUrl: string): void {
  server.on("tlsClientError", (err: NodeJS.ErrnoException, tlsSocket: TLSSocket) => {
    if (err.code !== "ERR_SSL_HTTP_REQUEST") return;
    // Node keeps the socket the TLS layer wraps as _parent; without it there is nobody to answer.
    const raw = (tlsSocket as unknown as { _parent?: Socket })._parent;
    if (raw === undefined || raw.destroyed || !raw.writable) return;
    raw.on("error", () => {});
    raw.end(plainHttpRefusal(httpsUrl));
  });
}
