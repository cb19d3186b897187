// One lint setup for the whole repository. Its main job is architectural:
// the pure core (src/core) must not reach for I/O, wall clocks, randomness or
// timers, so that every decision it makes is a function of its inputs and the
// simulator can replay it deterministically; and every layer imports only the
// layers before it (DESIGN.md, Architecture), so that a dependency arrow that
// points up is an error, not a review comment. test/lint.test.ts proves the
// rules fire on virtual fixture files that break them.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Imports the pure core must never make (yjs is allowed: it is pure). */
export const coreForbiddenImports = {
  paths: [
    { name: "ws", message: "src/core is pure: networking belongs in src/net." },
    { name: "better-sqlite3", message: "src/core is pure: storage belongs in src/storage." },
    { name: "hono", message: "src/core is pure: HTTP belongs in src/http." },
    { name: "pino", message: "src/core is pure: return data, let the runtime log." },
  ],
  patterns: [
    { group: ["node:*"], message: "src/core is pure: no node:* modules (time and I/O are inputs)." },
    { group: ["fs", "fs/*", "net", "http", "https", "child_process", "os", "crypto", "timers", "timers/*", "worker_threads", "dgram", "dns", "process"], message: "src/core is pure: no Node built-ins." },
    { group: ["hono/*", "@hono/*", "ws/*"], message: "src/core is pure: no I/O libraries." },
    { group: ["**/storage/**", "**/net/**", "**/node/**", "**/http/**", "**/client/**", "**/cli/**", "**/server.js"], message: "src/core depends on nothing above it." },
  ],
};

/**
 * The layers, bottom first (DESIGN.md, Architecture). Each may import only the
 * ones before it; src/api (the HTTP API's types and constants) is below all of
 * them, so every layer, the SDK included, may import it.
 */
const LAYERS = [
  { name: "api", files: ["src/api/**/*.ts"], group: ["**/api/**"] },
  { name: "core", files: ["src/core/**/*.ts"], group: ["**/core/**"] },
  { name: "storage", files: ["src/storage/**/*.ts"], group: ["**/storage/**"] },
  { name: "net", files: ["src/net/**/*.ts"], group: ["**/net/**"] },
  { name: "node", files: ["src/node/**/*.ts"], group: ["**/node/**"] },
  { name: "http", files: ["src/http/**/*.ts"], group: ["**/http/**"] },
  // The composition root: storage + node + http + listen.
  { name: "server", files: ["src/server.ts"], group: ["**/server.js"] },
  { name: "cli", files: ["src/cli/**/*.ts"], group: ["**/cli/**"] },
];

/** The import patterns a layer must not use: every layer after it, and the SDK (which no server code needs; the CLI may). */
export function layerForbiddenImports(name) {
  const at = LAYERS.findIndex((l) => l.name === name);
  if (at < 0) throw new Error(`unknown layer ${name}`);
  const above = LAYERS.slice(at + 1);
  const below = LAYERS.slice(0, at).map((l) => `src/${l.name}`).join(", ") || "nothing";
  const patterns = above.map((l) => ({ group: l.group, message: `src/${name} may import only the layers before it (${below}); src/${l.name} is above it.` }));
  // The CLI is the SDK's one caller inside the repository (geokv put/get/...).
  if (name !== "cli") patterns.push({ group: ["**/client/**"], message: `src/${name} must not import the SDK (src/client): the SDK is a client of the server, not a part of it.` });
  return { patterns };
}

/**
 * The SDK (src/client) talks to nodes over HTTP only, so it may import src/api
 * (the API's types and constants) and nothing else of the server: no core,
 * storage, net, node, http, server or cli module. It needs no pure helper from
 * src/core either: causal tokens are opaque strings to a client (DESIGN.md:
 * "token is an opaque string"), which it hands back as it got them, and its
 * retry backoff is its own (full jitter for many clients, not the peer links'
 * policy). Keeping it this way lets it ship without the server's code.
 */
export const sdkForbiddenImports = {
  patterns: LAYERS.filter((l) => l.name !== "api").map((l) => ({
    group: l.group,
    message: `the SDK (src/client) may import only src/api, never server internals (src/${l.name}).`,
  })),
};

export const coreForbiddenProperties = [
  { object: "Date", property: "now", message: "src/core is pure: take `now` as an input." },
  { object: "Math", property: "random", message: "src/core is pure: take random numbers as an input." },
  { object: "performance", property: "now", message: "src/core is pure: take `now` as an input." },
  { object: "process", property: "hrtime", message: "src/core is pure: take `now` as an input." },
];

export const coreForbiddenGlobals = [
  { name: "setTimeout", message: "src/core is pure: the runtime owns timers." },
  { name: "setInterval", message: "src/core is pure: the runtime owns timers." },
  { name: "setImmediate", message: "src/core is pure: the runtime owns timers." },
  { name: "queueMicrotask", message: "src/core is pure: the runtime owns scheduling." },
  { name: "fetch", message: "src/core is pure: no I/O." },
  { name: "process", message: "src/core is pure: configuration is an input." },
  { name: "require", message: "src/core is pure: no dynamic loading." },
  { name: "crypto", message: "src/core is pure: take random numbers as an input." },
  { name: "globalThis", message: "src/core is pure: reach nothing through the global object." },
];

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "coverage/**", "test/lint-fixtures/**", "data/**", ".geokv/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: "readonly", process: "readonly", Buffer: "readonly", setTimeout: "readonly", clearTimeout: "readonly",
        setInterval: "readonly", clearInterval: "readonly", setImmediate: "readonly", URL: "readonly", TextEncoder: "readonly",
        TextDecoder: "readonly", performance: "readonly", fetch: "readonly", AbortController: "readonly", AbortSignal: "readonly",
        Response: "readonly", Request: "readonly", Headers: "readonly", structuredClone: "readonly", queueMicrotask: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/switch-exhaustiveness-check": "off",
    },
  },
  // Layers above the core: each imports only the layers before it. The core
  // has its stricter rule below (it also forbids I/O libraries and node:*).
  ...["storage", "net", "node", "http", "server", "cli"].map((name) => ({
    files: (LAYERS.find((l) => l.name === name) ?? { files: [] }).files,
    rules: { "no-restricted-imports": ["error", layerForbiddenImports(name)] },
  })),
  {
    // The API's shared vocabulary imports nothing: it is types and constants only.
    files: ["src/api/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [{ regex: "^(?!\\./)", message: "src/api holds only the HTTP API's types and constants: it imports nothing outside src/api." }] }] },
  },
  {
    // The dashboard's page script runs in the browser, as a classic script.
    files: ["src/dashboard/**/*.js"],
    languageOptions: {
      sourceType: "script",
      globals: {
        window: "readonly", document: "readonly", sessionStorage: "readonly", EventSource: "readonly", ResizeObserver: "readonly",
        fetch: "readonly", performance: "readonly", setTimeout: "readonly", console: "readonly", uPlot: "readonly",
      },
    },
  },
  {
    files: ["src/client/**/*.ts"],
    rules: { "no-restricted-imports": ["error", sdkForbiddenImports] },
  },
  {
    files: ["src/core/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", coreForbiddenImports],
      "no-restricted-properties": ["error", ...coreForbiddenProperties],
      "no-restricted-globals": ["error", ...coreForbiddenGlobals],
      "no-restricted-syntax": [
        "error",
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: "src/core is pure: `new Date()` reads the wall clock; take `now` as an input." },
        { selector: "CallExpression[callee.name='Date']", message: "src/core is pure: `Date()` reads the wall clock; take `now` as an input." },
        { selector: "ImportExpression", message: "src/core is pure: no dynamic import()." },
      ],
    },
  },
);
