// Proves the architecture rules in eslint.config.js fire: code under src/core
// that reaches for I/O, the wall clock, randomness or timers is a lint error,
// while the same code in src/node (the runtime) is fine and a pure library
// (yjs) is allowed in the core; and every layer may import only the layers
// before it (api, core, storage, net, node, http, server, cli), with the SDK
// limited to src/api. Linted as virtual files, so no fixture on disk can
// drift from what is tested.
import { ESLint } from "eslint";
import { beforeAll, describe, expect, it } from "vitest";

const CORE = "src/core/__fixture__.ts";
const RUNTIME = "src/node/__fixture__.ts";

const CORE_RULES = ["no-restricted-imports", "no-restricted-properties", "no-restricted-globals", "no-restricted-syntax"];

let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: process.cwd() });
});

async function lint(code: string, filePath: string): Promise<ESLint.LintResult> {
  const [result] = await eslint.lintText(code, { filePath });
  if (!result) throw new Error("eslint returned no result");
  // A fatal parse error would make every expectation below vacuous.
  expect(result.messages.filter((m) => m.fatal)).toEqual([]);
  return result;
}

const errorRules = (r: ESLint.LintResult): string[] => r.messages.filter((m) => m.severity === 2).map((m) => m.ruleId ?? "(none)");

// Each snippet breaks exactly one core rule and is otherwise clean code.
const violations: Array<[string, string, string]> = [
  ['import "node:fs"', 'import { readFileSync } from "node:fs";\nexport const read = readFileSync;\n', "no-restricted-imports"],
  ['import "node:crypto"', 'import { randomUUID } from "node:crypto";\nexport const id = randomUUID;\n', "no-restricted-imports"],
  ['import "fs"', 'import fs from "fs";\nexport const f = fs;\n', "no-restricted-imports"],
  ['import "fs/promises"', 'import { readFile } from "fs/promises";\nexport const f = readFile;\n', "no-restricted-imports"],
  ['import "ws"', 'import { WebSocket } from "ws";\nexport const W = WebSocket;\n', "no-restricted-imports"],
  ['import "better-sqlite3"', 'import Database from "better-sqlite3";\nexport const D = Database;\n', "no-restricted-imports"],
  ['import "hono"', 'import { Hono } from "hono";\nexport const H = Hono;\n', "no-restricted-imports"],
  ['import "@hono/node-server"', 'import { serve } from "@hono/node-server";\nexport const s = serve;\n', "no-restricted-imports"],
  ['import from a higher layer', 'import { x } from "../storage/db.js";\nexport const y = x;\n', "no-restricted-imports"],
  ['re-export "node:fs"', 'export { readFileSync } from "node:fs";\n', "no-restricted-imports"],
  ["Date.now()", "export const t = Date.now();\n", "no-restricted-properties"],
  ["Math.random()", "export const r = Math.random();\n", "no-restricted-properties"],
  ["performance.now()", "export const t = performance.now();\n", "no-restricted-properties"],
  ["setTimeout", "export function later(f: () => void): void {\n  setTimeout(f, 10);\n}\n", "no-restricted-globals"],
  ["setInterval", "export function every(f: () => void): void {\n  setInterval(f, 10);\n}\n", "no-restricted-globals"],
  ["fetch", 'export const get = () => fetch("http://example.com");\n', "no-restricted-globals"],
  ["process.env", "export const v = process.env.X;\n", "no-restricted-globals"],
  ["new Date()", "export const d = new Date();\n", "no-restricted-syntax"],
  ["Date()", "export const d = Date();\n", "no-restricted-syntax"],
  ['import("node:fs")', 'export const m = () => import("node:fs");\n', "no-restricted-syntax"],
  ["crypto.getRandomValues", "export const r = crypto.getRandomValues(new Uint8Array(4));\n", "no-restricted-globals"],
  ["globalThis.Date.now()", "export const t = globalThis.Date.now();\n", "no-restricted-globals"],
];

describe("lint: the pure core", () => {
  it.each(violations)("%s in src/core is an error", async (_name, code, rule) => {
    const r = await lint(code, CORE);
    expect(errorRules(r)).toContain(rule);
  });

  it.each(violations)("%s in src/node is not a core-rule error", async (_name, code) => {
    const r = await lint(code, RUNTIME);
    expect(errorRules(r).filter((id) => CORE_RULES.includes(id))).toEqual([]);
  });

  it("allows yjs and lib0 in src/core: they are pure", async () => {
    const code = 'import * as Y from "yjs";\nimport * as encoding from "lib0/encoding";\nexport const doc = new Y.Doc();\nexport const enc = encoding.createEncoder;\n';
    expect(errorRules(await lint(code, CORE))).toEqual([]);
  });

  it("allows clock values that are inputs: new Date(ms) and a `now` parameter", async () => {
    const code = "export const at = (nowMs: number): string => new Date(nowMs).toISOString();\nexport const later = (now: number, ms: number): number => now + ms;\n";
    expect(errorRules(await lint(code, CORE))).toEqual([]);
  });

  it("applies to nested core folders too", async () => {
    expect(errorRules(await lint("export const t = Date.now();\n", "src/core/codec/__fixture__.ts"))).toContain("no-restricted-properties");
  });
});

/** A file of `layer` that imports `spec` and uses it. */
function importing(spec: string, typeOnly = false): string {
  return typeOnly ? `import type { X } from "${spec}";\nexport type Y = X;\n` : `import { x } from "${spec}";\nexport const y = x;\n`;
}

// [case, file, import]: each crosses one layer boundary upwards (or, for the
// SDK, reaches past src/api), and must be an error.
const forbidden: Array<[string, string, string]> = [
  ["src/api importing src/core", "src/api/__fixture__.ts", "../core/ids.js"],
  ["src/api importing a package", "src/api/__fixture__.ts", "zod"],
  ["src/core importing src/net", "src/core/__fixture__.ts", "../net/frames.js"],
  ["src/core importing src/server", "src/core/__fixture__.ts", "../server.js"],
  ["src/storage importing src/net", "src/storage/__fixture__.ts", "../net/hub.js"],
  ["src/storage importing src/node", "src/storage/__fixture__.ts", "../node/service.js"],
  ["src/net importing src/node", "src/net/__fixture__.ts", "../node/runtime.js"],
  ["src/net importing src/http", "src/net/__fixture__.ts", "../http/app.js"],
  ["src/node importing src/http", "src/node/__fixture__.ts", "../http/errors.js"],
  ["src/node importing src/server", "src/node/__fixture__.ts", "../server.js"],
  ["src/node importing src/cli", "src/node/__fixture__.ts", "../cli/args.js"],
  ["src/http importing src/server", "src/http/__fixture__.ts", "../server.js"],
  ["src/http importing src/cli", "src/http/__fixture__.ts", "../cli/main.js"],
  ["src/server importing src/cli", "src/server.ts", "./cli/main.js"],
  ["src/node importing the SDK", "src/node/__fixture__.ts", "../client/index.js"],
  ["src/http importing the SDK", "src/http/__fixture__.ts", "../client/errors.js"],
  ["the SDK importing src/node", "src/client/__fixture__.ts", "../node/service.js"],
  ["the SDK importing src/core", "src/client/__fixture__.ts", "../core/fence.js"],
  ["the SDK importing src/http", "src/client/__fixture__.ts", "../http/errors.js"],
  ["the SDK importing src/server", "src/client/__fixture__.ts", "../server.js"],
  ["the SDK importing src/cli", "src/client/__fixture__.ts", "../cli/args.js"],
];

// [case, file, import]: one import per layer from a layer before it (or its own), which must pass.
const allowed: Array<[string, string, string]> = [
  ["src/api importing src/api", "src/api/__fixture__.ts", "./types.js"],
  ["src/core importing src/api", "src/core/__fixture__.ts", "../api/types.js"],
  ["src/storage importing src/core", "src/storage/__fixture__.ts", "../core/op.js"],
  ["src/net importing src/core", "src/net/__fixture__.ts", "../core/ids.js"],
  ["src/net importing src/storage", "src/net/__fixture__.ts", "../storage/port.js"],
  ["src/node importing src/net", "src/node/__fixture__.ts", "../net/hub.js"],
  ["src/http importing src/node", "src/http/__fixture__.ts", "../node/service.js"],
  ["src/server importing src/http", "src/server.ts", "./http/app.js"],
  ["src/cli importing src/server", "src/cli/__fixture__.ts", "../server.js"],
  ["src/cli importing the SDK", "src/cli/__fixture__.ts", "../client/index.js"],
  ["the SDK importing src/api", "src/client/__fixture__.ts", "../api/types.js"],
  ["the SDK importing itself", "src/client/__fixture__.ts", "./errors.js"],
];

describe("lint: layers import only the layers before them", () => {
  it.each(forbidden)("%s is an error", async (_name, file, spec) => {
    expect(errorRules(await lint(importing(spec), file))).toContain("no-restricted-imports");
  });

  it.each(forbidden)("%s is an error as a type-only import too", async (_name, file, spec) => {
    expect(errorRules(await lint(importing(spec, true), file))).toContain("no-restricted-imports");
  });

  it.each(allowed)("%s passes", async (_name, file, spec) => {
    expect(errorRules(await lint(importing(spec), file))).toEqual([]);
  });

  it("a re-export is an import too: the SDK cannot re-export node types", async () => {
    expect(errorRules(await lint('export type { StatusView } from "../node/service.js";\n', "src/client/__fixture__.ts"))).toContain("no-restricted-imports");
  });
});
