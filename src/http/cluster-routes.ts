// The leadership endpoints of the cluster API: stepdown (forwarded to the
// leader when asked of a follower), manual promote, and fencing-token
// validation. Refusals answer 409 with code "refused" and the reason, so an
// operator sees why a failover was not safe.

import type { Context, Hono } from "hono";
import { isNodeError, nodeError } from "../node/errors.js";
import type { LeadershipService } from "../node/service.js";
import { errorBody, sendError } from "./errors.js";
import { isObject, parseJson, readBody } from "./parse.js";

const FORWARDED_HEADER = "x-geokv-forwarded";

/** Mounts /leadership/stepdown, /leadership/promote and /fence-token/validate. */
export function mountClusterRoutes(app: Hono, nodeId: string, l: LeadershipService): void {
  app.post("/leadership/stepdown", async (c) => {
    const r = await l.stepdown();
    if (r.ok) return c.json({ steppedDown: nodeId, leader: r.leader }, 202);
    if (r.forwardTo !== undefined && c.req.header(FORWARDED_HEADER) === undefined) return forward(c, r.forwardTo, nodeId);
    if (r.status === 503) return sendError(c, nodeError("no_leader", r.reason, 1));
    return c.json(errorBody("refused", r.reason), 409);
  });

  app.post("/leadership/promote", (c) => {
    const r = l.promote();
    if (r.ok) return c.json({ promoted: nodeId }, 202);
    return c.json(errorBody("refused", r.reason), 409);
  });

  app.post("/fence-token/validate", async (c) => {
    const bytes = await readBody(c, 4096);
    if (isNodeError(bytes)) return sendError(c, bytes);
    const body = parseJson(bytes);
    if (isNodeError(body)) return sendError(c, body);
    if (!isObject(body.value) || typeof body.value.token !== "string") return sendError(c, nodeError("bad_request", 'body must be {"token": "<region>:<epoch>"}'));
    const r = l.validateFence(body.value.token);
    if (r === null) return sendError(c, nodeError("bad_request", `not a fencing token: ${JSON.stringify(body.value.token).slice(0, 100)}; expected "<region>:<epoch>"`));
    return c.json(r);
  });
}

async function forward(c: Context, leaderUrl: string, nodeId: string): Promise<Response> {
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
