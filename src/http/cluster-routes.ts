// The leadership endpoints of the cluster API: stepdown (forwarded to the
// leader when asked of a follower), manual promote, and fencing-token
// validation. Refusals are the node's typed errors (409 "refused" with the
// reason, so an operator sees why a failover was not safe; 503 no_leader),
// answered through sendError like every other route.

import type { Context, Hono } from "hono";
import { formatFencingToken, parseFencingToken } from "../core/fence.js";
import { isNodeError, nodeError } from "../node/errors.js";
import type { LeadershipService } from "../node/service.js";
import { sendError } from "./errors.js";
import { FORWARDED_HEADER } from "./forward.js";
import { isObject, parseJson, readBody } from "./parse.js";

/** Mounts /leadership/stepdown, /leadership/promote and /fence-token/validate. */
export function mountClusterRoutes(app: Hono, nodeId: string, l: LeadershipService, fetch: typeof globalThis.fetch): void {
  app.post("/leadership/stepdown", async (c) => {
    const r = await l.stepdown();
    if (r.ok) return c.json({ steppedDown: nodeId, leader: r.leader }, 202);
    if (r.forwardTo !== undefined && c.req.header(FORWARDED_HEADER) === undefined) return forward(c, fetch, r.forwardTo, nodeId);
    return sendError(c, r.error);
  });

  app.post("/leadership/promote", (c) => {
    const r = l.promote();
    if (r.ok) return c.json({ promoted: nodeId }, 202);
    return sendError(c, r.error);
  });

  app.post("/fence-token/validate", async (c) => {
    const bytes = await readBody(c, 4096);
    if (isNodeError(bytes)) return sendError(c, bytes);
    const body = parseJson(bytes);
    if (isNodeError(body)) return sendError(c, body);
    if (!isObject(body.value) || typeof body.value.token !== "string") return sendError(c, nodeError("bad_request", 'body must be {"token": "<region>:<epoch>"}'));
    const text = body.value.token;
    const token = parseFencingToken(text);
    const r = token === null ? null : l.validateFence(token);
    if (token === null || r === null) return sendError(c, nodeError("bad_request", `not a fencing token: ${JSON.stringify(text).slice(0, 100)}; expected "<region>:<epoch>"`));
    const current = formatFencingToken(r.current);
    // Valid means the text is the token the region's leader stamps: a
    // non-canonical spelling of the same epoch ("us-east:007") is not it.
    return c.json({ valid: r.valid && formatFencingToken(token) === text, current });
  });
}

async function forward(c: Context, fetch: typeof globalThis.fetch, leaderUrl: string, nodeId: string): Promise<Response> {
  const headers: Record<string, string> = { [FORWARDED_HEADER]: nodeId };
  const auth = c.req.header("authorization");
  if (auth !== undefined) headers.authorization = auth;
  try {
    const res = await fetch(`${leaderUrl}/leadership/stepdown`, { method: "POST", headers, signal: AbortSignal.timeout(5000) });
    return new Response(await res.arrayBuffer(), { status: res.status, headers: { "content-type": res.headers.get("content-type") ?? "application/json" } });
  } catch (err) {
    return sendError(c, nodeError("no_leader", `the leader at ${leaderUrl} did not answer: ${(err as Error).message}`, 1));
  }
}
