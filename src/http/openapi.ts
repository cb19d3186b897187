// The OpenAPI 3.1 document of the HTTP API (DESIGN.md, "HTTP API"), served at
// GET /openapi.json by every node. Written by hand as a typed object, so a
// reader sees the contract in one place; test/http/openapi.test.ts checks
// that its paths are exactly the routes the app registers.

import { ERROR_CODES } from "../api/types.js";

/** The parts of OpenAPI 3.1 this document uses. */
type Schema = { readonly $ref: string } | { readonly [keyword: string]: unknown };

interface Parameter {
  readonly name: string;
  readonly in: "path" | "query" | "header";
  readonly required?: boolean;
  readonly description: string;
  readonly schema: Schema;
}

interface MediaType {
  readonly schema: Schema;
}

interface Response {
  readonly description: string;
  readonly headers?: Readonly<Record<string, { readonly description: string; readonly schema: Schema }>>;
  readonly content?: Readonly<Record<string, MediaType>>;
}

type Ref = { readonly $ref: string };

interface Operation {
  readonly operationId: string;
  readonly summary: string;
  readonly tags: readonly string[];
  readonly parameters?: readonly (Parameter | Ref)[];
  readonly requestBody?: { readonly required: boolean; readonly content: Readonly<Record<string, MediaType>> };
  readonly responses: Readonly<Record<string, Response | Ref>>;
  readonly security?: readonly Readonly<Record<string, readonly string[]>>[];
}

type Method = "get" | "put" | "post" | "delete";
export type PathItem = Partial<Record<Method, Operation>> & { readonly parameters?: readonly (Parameter | Ref)[] };

export interface OpenApiDocument {
  readonly openapi: `3.1.${number}`;
  readonly info: { readonly title: string; readonly version: string; readonly description: string };
  readonly paths: Readonly<Record<string, PathItem>>;
  readonly components: {
    readonly schemas: Readonly<Record<string, Schema>>;
    readonly parameters: Readonly<Record<string, Parameter>>;
    readonly responses: Readonly<Record<string, Response>>;
    readonly securitySchemes: Readonly<Record<string, { readonly type: "http"; readonly scheme: "bearer"; readonly description: string }>>;
  };
}

const ref = (kind: "schemas" | "parameters" | "responses", name: string): Ref => ({ $ref: `#/components/${kind}/${name}` });
const json = (schema: Schema): Readonly<Record<string, MediaType>> => ({ "application/json": { schema } });
const ok = (description: string, schema: Schema): Response => ({ description, content: json(schema) });
const object = (properties: Record<string, Schema>, required: readonly string[] = Object.keys(properties)): Schema => ({
  type: "object",
  properties,
  required,
});
const string: Schema = { type: "string" };
const integer: Schema = { type: "integer" };
const stringArray: Schema = { type: "array", items: string };

/** The error answers a data read or write can give; each route adds its own. */
const readErrors = { "400": ref("responses", "BadRequest"), "401": ref("responses", "Unauthorized"), "403": ref("responses", "Forbidden"), "503": ref("responses", "Unavailable") };
const writeErrors = { ...readErrors, "409": ref("responses", "Conflict"), "413": ref("responses", "TooLarge") };
const keyed = [ref("parameters", "Key")];
const readParams = [...keyed, ref("parameters", "CausalToken")];
const writeParams = [...keyed, ref("parameters", "Ack"), ref("parameters", "IdempotencyKey"), ref("parameters", "CausalToken")];
const client = [{ clientToken: [] }];
const admin = [{ adminToken: [] }];
const written = (description: string, body: Schema): Response => ({
  description,
  headers: { "X-Geokv-Token": { description: "causal token of this write: send it back to read your writes", schema: string } },
  content: json(body),
});

/** The document /openapi.json answers. */
export const OPENAPI: OpenApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "geokv",
    version: "0.1.0",
    description:
      "Multi-leader geo-replicated key-value and document store. Every node serves all of this API; writes sent to a follower are forwarded to its region's leader. Every response carries X-Geokv-Node (the node that answered); every error is {\"error\": {\"code\", \"message\"}}.",
  },
  paths: {
    "/kv": {
      get: {
        operationId: "kvList",
        summary: "kv entries in key byte order, after exclusive; pass next back as after",
        tags: ["kv"],
        parameters: [
          { name: "prefix", in: "query", description: "only keys starting with this", schema: string },
          { name: "after", in: "query", description: "start after this key (exclusive)", schema: string },
          { name: "limit", in: "query", description: "page size", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
          ref("parameters", "CausalToken"),
        ],
        responses: { "200": ok("one page", object({ items: { type: "array", items: ref("schemas", "KvItem") }, next: { type: ["string", "null"] } })), ...readErrors },
        security: client,
      },
    },
    "/kv/{key}": {
      get: {
        operationId: "kvGet",
        summary: "the value under key",
        tags: ["kv"],
        parameters: readParams,
        responses: { "200": ok("the value and its version", ref("schemas", "KvItem")), "404": ref("responses", "NotFound"), ...readErrors },
        security: client,
      },
      put: {
        operationId: "kvPut",
        summary: "store a JSON value under key",
        tags: ["kv"],
        parameters: writeParams,
        requestBody: { required: true, content: json(ref("schemas", "JsonValue")) },
        responses: { "200": written("stored", object({ key: string, token: string, version: ref("schemas", "Version") })), ...writeErrors },
        security: client,
      },
      delete: {
        operationId: "kvDelete",
        summary: "delete key (a tombstone)",
        tags: ["kv"],
        parameters: writeParams,
        responses: { "200": written("deleted", object({ key: string, token: string })), ...writeErrors },
        security: client,
      },
    },
    "/counters/{key}": {
      get: {
        operationId: "counterGet",
        summary: "a PN-counter's value (0 when never written)",
        tags: ["counters"],
        parameters: readParams,
        responses: { "200": ok("the value", object({ key: string, value: integer })), ...readErrors },
        security: client,
      },
      post: {
        operationId: "counterAdd",
        summary: "add delta (may be negative) to a counter",
        tags: ["counters"],
        parameters: writeParams,
        requestBody: { required: true, content: json(object({ delta: integer })) },
        responses: { "200": written("the new value", object({ key: string, value: integer, token: string })), ...writeErrors },
        security: client,
      },
    },
    "/sets/{key}": {
      get: {
        operationId: "setGet",
        summary: "an OR-set's members, sorted (empty when never written)",
        tags: ["sets"],
        parameters: readParams,
        responses: { "200": ok("the members", object({ key: string, members: stringArray })), ...readErrors },
        security: client,
      },
      post: {
        operationId: "setUpdate",
        summary: "add and remove members (add wins over a concurrent remove)",
        tags: ["sets"],
        parameters: writeParams,
        requestBody: { required: true, content: json(object({ add: stringArray, remove: stringArray }, [])) },
        responses: { "200": written("the members after the write", object({ key: string, members: stringArray, token: string })), ...writeErrors },
        security: client,
      },
    },
    "/docs/{key}": {
      get: {
        operationId: "docGet",
        summary: "the Yjs update that brings state vector sv up to date (the whole doc without sv)",
        tags: ["docs"],
        parameters: [...readParams, { name: "sv", in: "query", description: "base64 Yjs state vector", schema: string }],
        responses: { "200": { description: "a Yjs update", content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } } }, ...readErrors },
        security: client,
      },
    },
    "/docs/{key}/updates": {
      post: {
        operationId: "docUpdate",
        summary: "apply a Yjs update to a doc",
        tags: ["docs"],
        parameters: writeParams,
        requestBody: { required: true, content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } } },
        responses: { "200": written("applied", object({ key: string, token: string })), "404": ref("responses", "NotFound"), ...writeErrors },
        security: client,
      },
    },
    "/yjs/{room}": {
      get: {
        operationId: "yjsRoom",
        summary:
          "WebSocket (Upgrade: websocket): the y-websocket protocol of y-protocols for the doc `room` of the docs namespace (the room is the rest of the path). Sync step 1 and 2, update, awareness, query-awareness, one message per frame. With client tokens set, the token goes in ?token= or Sec-WebSocket-Protocol; a read token syncs without writing. Refusals close the socket: 4401 no token, 4403 wrong token, 4400 bad message, 1009 too big, 4503 too many edits waiting for a leader.",
        tags: ["docs"],
        parameters: [
          { name: "room", in: "path", required: true, description: "the doc's key; the rest of the path, so it may hold /", schema: string },
          { name: "token", in: "query", description: "the client token (or send it as Sec-WebSocket-Protocol)", schema: string },
        ],
        responses: { "101": { description: "switching to the WebSocket protocol" }, "400": { description: "bad_request: not a WebSocket upgrade", content: json(ref("schemas", "Error")) } },
        security: client,
      },
    },
    "/conflicts": {
      get: {
        operationId: "conflicts",
        summary: "recorded kv conflicts, newest first",
        tags: ["kv"],
        parameters: [{ name: "limit", in: "query", description: "at most this many", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } }],
        responses: {
          "200": ok("the conflicts", object({ items: { type: "array", items: object({ key: string, winner: ref("schemas", "Version"), loser: ref("schemas", "Version"), at: string }) } })),
          ...readErrors,
        },
        security: client,
      },
    },
    "/status": {
      get: { operationId: "status", summary: "this node's view of its region and peers", tags: ["cluster"], responses: { "200": ok("the status", ref("schemas", "Status")) } },
    },
    "/health": {
      get: { operationId: "health", summary: "200 while the process serves", tags: ["cluster"], responses: { "200": ok("serving", object({ ok: { const: true }, node: string })) } },
    },
    "/ready": {
      get: {
        operationId: "ready",
        summary: "200 when the region has a leader and this node is not too far behind it",
        tags: ["cluster"],
        responses: { "200": ok("ready", object({ ready: { const: true } })), "503": ok("not ready, and why", object({ ready: { const: false }, reason: string })) },
      },
    },
    "/metrics": {
      get: {
        operationId: "metrics",
        summary: "Prometheus metrics: open when the node has no token at all, else any token with the read (or admin) scope",
        tags: ["cluster"],
        responses: { "200": { description: "Prometheus text exposition format", content: { "text/plain": { schema: string } } }, "401": ref("responses", "Unauthorized"), "403": ref("responses", "Forbidden") },
        security: client,
      },
    },
    "/leadership/stepdown": {
      post: {
        operationId: "stepdown",
        summary: "the region's leader steps down so another node is elected (forwarded when sent to a follower)",
        tags: ["leadership"],
        responses: {
          "202": ok("stepped down", object({ steppedDown: string, leader: { type: ["string", "null"] } })),
          "401": ref("responses", "Unauthorized"),
          "403": ref("responses", "Forbidden"),
          "409": ref("responses", "Conflict"),
          "503": ref("responses", "Unavailable"),
        },
        security: admin,
      },
    },
    "/leadership/promote": {
      post: {
        operationId: "promote",
        summary: "manual failover: make this node its region's leader (refused when unsafe, with the reason)",
        tags: ["leadership"],
        responses: { "202": ok("promoted", object({ promoted: string })), "401": ref("responses", "Unauthorized"), "403": ref("responses", "Forbidden"), "409": ref("responses", "Conflict") },
        security: admin,
      },
    },
    "/fence-token/validate": {
      post: {
        operationId: "validateFence",
        summary: "whether a fencing token is its region's current one",
        tags: ["leadership"],
        requestBody: { required: true, content: json(object({ token: { type: "string", examples: ["us-east:7"] } })) },
        responses: { "200": ok("the verdict", object({ valid: { type: "boolean" }, current: string })), "400": ref("responses", "BadRequest") },
      },
    },
    "/admin/compact": {
      post: {
        operationId: "compact",
        summary: "run one compaction pass now: stable op-log entries past --op-log-retain-ops, stable kv tombstones, stable kv versions folded to their dots, expired idempotency records, free pages",
        tags: ["admin"],
        responses: {
          "200": ok(
            "what the pass did",
            object({
              compactedOps: integer,
              droppedTombstones: integer,
              foldedKv: integer,
              prunedIdempotency: integer,
              reclaimedPages: integer,
              opLogOps: integer,
              compactedVv: { type: "object", additionalProperties: integer },
              stableVv: { type: "object", additionalProperties: integer },
            }),
          ),
          "401": ref("responses", "Unauthorized"),
          "403": ref("responses", "Forbidden"),
          "404": ref("responses", "NotFound"),
        },
        security: admin,
      },
    },
    "/admin/faults": {
      post: {
        operationId: "faults",
        summary: "block regions or nodes on this node's links, or heal them (demos and tests)",
        tags: ["admin"],
        requestBody: {
          required: true,
          content: json({
            oneOf: [
              object({ block: stringArray, direction: { enum: ["both", "in", "out"], default: "both" } }, ["block"]),
              object({ clear: { const: true } }),
            ],
          }),
        },
        responses: {
          "200": ok("the blocked set now", object({ blocked: stringArray }, [])),
          "400": ref("responses", "BadRequest"),
          "401": ref("responses", "Unauthorized"),
          "403": ref("responses", "Forbidden"),
          "404": ref("responses", "NotFound"),
        },
        security: admin,
      },
    },
    "/openapi.json": {
      get: { operationId: "openapi", summary: "this document", tags: ["meta"], responses: { "200": ok("OpenAPI 3.1", { type: "object" }) } },
    },
  },
  components: {
    schemas: {
      Error: object({ error: object({ code: { enum: ERROR_CODES }, message: string }) }),
      JsonValue: { description: "any JSON value, at most maxValueBytes (1 MiB by default)" },
      Version: object({ hlc: { type: "string", description: "hybrid logical clock" }, node: string }),
      KvItem: object({ key: string, value: ref("schemas", "JsonValue"), version: ref("schemas", "Version") }),
      Status: object(
        {
          node: string,
          region: string,
          role: { enum: ["leader", "follower", "candidate"] },
          leader: { type: ["string", "null"] },
          epoch: integer,
          fencingToken: { type: ["string", "null"] },
          vv: { type: "object", additionalProperties: integer },
          peers: {
            type: "array",
            items: object({ node: string, region: string, state: { enum: ["up", "down"] }, lagOps: integer, lastContactMs: { type: ["integer", "null"] } }),
          },
          storage: object({
            opLogOps: integer,
            opLogBytes: integer,
            dbBytes: integer,
            compactedVv: { type: "object", additionalProperties: integer, description: "per origin, the seq up to which ops were compacted out of the log" },
            stableVv: { type: "object", additionalProperties: integer, description: "the stability frontier: every member holds every op at or below it" },
          }),
          clock: object({
            skewed: { type: "boolean", description: "more than maxClockSkewMs from most peers: client writes refused with clock_skew, no leadership" },
            offsetMs: { type: ["integer", "null"], description: "this clock minus the peers' (median of those measured); null before any sample" },
          }),
        },
        ["node", "region", "role", "leader", "epoch", "vv", "peers"],
      ),
    },
    parameters: {
      Key: { name: "key", in: "path", required: true, description: "1 to 1024 bytes of UTF-8, URL-encoded (a / as %2F)", schema: { type: "string", minLength: 1 } },
      Ack: { name: "ack", in: "query", description: "durability before the answer", schema: { enum: ["local", "region", "all"], default: "region" } },
      IdempotencyKey: { name: "Idempotency-Key", in: "header", description: "makes retries of this write safe, also across a failover", schema: { type: "string", minLength: 1, maxLength: 256 } },
      CausalToken: { name: "X-Geokv-Token", in: "header", description: "served only once this node has applied the write the token names", schema: string },
    },
    responses: {
      BadRequest: { description: "bad_request or invalid_key", content: json(ref("schemas", "Error")) },
      Unauthorized: { description: "unauthorized: no bearer token", content: json(ref("schemas", "Error")) },
      Forbidden: { description: "forbidden: an unknown token, or one without the scope or namespace the route needs (a write with a read-only token)", content: json(ref("schemas", "Error")) },
      NotFound: { description: "not_found", content: json(ref("schemas", "Error")) },
      Conflict: { description: "idempotency_mismatch, or refused (a promote or stepdown that is not safe)", content: json(ref("schemas", "Error")) },
      TooLarge: { description: "value_too_large", content: json(ref("schemas", "Error")) },
      Unavailable: {
        description: "no_leader, stale_replica, clock_skew, or overloaded (a bound of the node's queues is full: shed at once, nothing changed)",
        headers: { "Retry-After": { description: "seconds to wait before retrying, on no_leader, stale_replica, clock_skew and overloaded", schema: integer } },
        content: json(ref("schemas", "Error")),
      },
    },
    securitySchemes: {
      clientToken: { type: "http", scheme: "bearer", description: "GEOKV_CLIENT_TOKEN (read and write), GEOKV_READ_TOKEN (read), or a tokens-file token with the read or write scope on the route's namespace, when the node has any" },
      adminToken: { type: "http", scheme: "bearer", description: "GEOKV_ADMIN_TOKEN, or a tokens-file token with the admin scope, when the node has one" },
    },
  },
};
