// How the dashboard's controls call another node of the cluster: one HTTP
// request with a deadline, the caller's Authorization passed on, and the
// answer (or why there was none) as a value the page can show per node. A
// node that is down or slow must not fail the whole control.

/** How long a control waits for one node. */
export const NODE_CALL_TIMEOUT_MS = 3000;
const ANSWER_BYTES_MAX = 64 * 1024;

/** One node's answer: its status and JSON body, or the reason it gave none. */
export type NodeAnswer =
  | { readonly ok: boolean; readonly status: number; readonly body: unknown }
  | { readonly ok: false; readonly status: 0; readonly error: string };

/** Calls `path` on the node at `baseUrl`. */
export async function callNode(
  fetch: typeof globalThis.fetch,
  baseUrl: string,
  path: string,
  o: { readonly method: "GET" | "POST"; readonly body?: unknown; readonly authorization?: string | undefined },
): Promise<NodeAnswer> {
  const headers: Record<string, string> = {};
  if (o.authorization !== undefined) headers.authorization = o.authorization;
  if (o.body !== undefined) headers["content-type"] = "application/json";
  try {
    const res = await fetch(`${baseUrl}${path}`, {
      method: o.method,
      headers,
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      signal: AbortSignal.timeout(NODE_CALL_TIMEOUT_MS),
    });
    const text = (await res.text()).slice(0, ANSWER_BYTES_MAX);
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: the text as it came
    }
    return { ok: res.ok, status: res.status, body };
  } catch (err) {
    return { ok: false, status: 0, error: `${baseUrl} did not answer: ${(err as Error).message}` };
  }
}
