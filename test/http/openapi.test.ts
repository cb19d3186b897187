// GET /openapi.json against the app itself: the document's paths and methods
// are exactly the routes the hono app registers (app.routes, with `/kv/*`
// standing for `/kv/{key}` and `/docs/{key}/updates` alike), and the document
// has the shape OpenAPI 3.1 asks for, with every $ref resolving.

import pino from "pino";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app.js";
import { OPENAPI } from "../../src/http/openapi.js";
import { createMetrics } from "../../src/node/metrics.js";
import type { ClusterService, DataService, FaultService, LeadershipService } from "../../src/node/service.js";

/** Only the routes matter here: no handler but /openapi.json is called. */
function routesApp() {
  const unused = new Proxy({}, { get: () => () => { throw new Error("not called by this test"); } });
  return createApp({
    nodeId: "t-1",
    service: unused as DataService,
    cluster: unused as ClusterService,
    metrics: createMetrics({ storageBytes: () => 0 }, false),
    logger: pino({ level: "silent" }),
    maxValueBytes: 1024,
    tokenWaitMs: 100,
    faults: unused as FaultService,
    leadership: unused as LeadershipService,
  });
}

/** The hono pattern a document path is served by: from its first {param} on, one wildcard. */
function honoPattern(path: string): string {
  const at = path.indexOf("/{");
  return at < 0 ? path : `${path.slice(0, at)}/*`;
}

const METHODS = ["get", "put", "post", "delete", "patch"] as const;

describe("GET /openapi.json", () => {
  const app = routesApp();

  it("documents exactly the routes the app registers", () => {
    // Middleware (app.use) registers method ALL; HEAD and OPTIONS are hono's, not routes of ours.
    const registered = new Set(app.routes.filter((r) => !["ALL", "HEAD", "OPTIONS"].includes(r.method)).map((r) => `${r.method} ${r.path}`));
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(OPENAPI.paths)) {
      for (const m of METHODS) if (m in item) documented.add(`${m.toUpperCase()} ${honoPattern(path)}`);
    }
    expect([...documented].sort()).toEqual([...registered].sort());
  });

  it("is served as JSON and has the OpenAPI 3.1 shape", async () => {
    const res = await app.request("/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const doc = (await res.json()) as typeof OPENAPI;
    expect(doc).toEqual(JSON.parse(JSON.stringify(OPENAPI)));
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toBe("geokv");
    expect(typeof doc.info.version).toBe("string");
    expect(Object.keys(doc.paths).length).toBeGreaterThan(0);

    const operationIds = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      expect(path, "paths start with /").toMatch(/^\//);
      for (const m of METHODS) {
        const op = item[m as keyof typeof item] as (typeof item)["get"];
        if (op === undefined) continue;
        const where = `${m.toUpperCase()} ${path}`;
        expect(operationIds.has(op.operationId), `${where}: operationId ${op.operationId} is unique`).toBe(false);
        operationIds.add(op.operationId);
        expect(Object.keys(op.responses).length, `${where} has responses`).toBeGreaterThan(0);
        for (const status of Object.keys(op.responses)) expect(status, where).toMatch(/^[1-5]\d\d$/);
        // Every {param} of the path is declared as a required path parameter.
        const declared = (op.parameters ?? []).map((p) => ("$ref" in p ? doc.components.parameters[p.$ref.split("/").pop() as string] : p));
        for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
          expect(declared.some((p) => p?.in === "path" && p.name === name && p.required === true), `${where} declares path parameter ${name}`).toBe(true);
        }
      }
    }

    // Every $ref points at something in the document, and errors use the contract's shape.
    const refs: string[] = [];
    const walk = (x: unknown): void => {
      if (Array.isArray(x)) x.forEach(walk);
      else if (typeof x === "object" && x !== null) {
        for (const [k, v] of Object.entries(x)) {
          if (k === "$ref" && typeof v === "string") refs.push(v);
          else walk(v);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) {
      expect(r, "local ref").toMatch(/^#\/components\//);
      const target = r.slice(2).split("/").reduce<unknown>((o, part) => (o as Record<string, unknown> | undefined)?.[part], doc);
      expect(target, `${r} resolves`).toBeDefined();
    }
    expect(doc.components.schemas.Error).toMatchObject({ properties: { error: { properties: { code: { enum: expect.arrayContaining(["not_found", "refused", "no_leader"]) } } } } });
  });
});
