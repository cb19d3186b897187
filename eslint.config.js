// One lint setup for the whole repository. Its main job is architectural: the
// pure core (src/core) must not reach for I/O, wall clocks, randomness or
// timers, so that every decision it makes is a function of its inputs and the
// simulator can replay it deterministically. test/lint.test.ts proves the rule
// fires on fixtures that break it.
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
    { group: ["**/storage/**", "**/net/**", "**/node/**", "**/http/**", "**/client/**", "**/cli/**"], message: "src/core depends on nothing above it." },
  ],
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
