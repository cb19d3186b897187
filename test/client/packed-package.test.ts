// The SDK as a user gets it: `npm pack` of this repository (dist/ as the
// global setup built it), installed from the tarball into a fresh project,
// then `import { createClient } from "geokv"` and "geokv/client" from an ESM
// file run by node, and the same imports type-checked by tsc under the
// node16 and bundler resolutions, so package.json's `exports` and its `.d.ts`
// files are what is tested, not the source tree; and its `bin` still runs.

import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "../..");
/** The repository's own compiler: the temp project installs no dev dependencies. */
const TSC = join(ROOT, "node_modules/.bin/tsc");
/** pack + install from the npm cache take ~25 s on a loaded 2-core machine; past this something hangs. */
const STEP_TIMEOUT_MS = 150_000;

let tmp: string;
let app: string;

async function sh(cmd: string, args: readonly string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(cmd, [...args], { cwd, timeout: STEP_TIMEOUT_MS, encoding: "utf8", env: { ...process.env, npm_config_update_notifier: "false" } });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed in ${cwd}:\n${e.stdout ?? ""}${e.stderr ?? ""}${e.message}`);
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "geokv-pack-"));
  // dist/ is current (test/support/build-once.ts), so the pack skips `prepare` instead of building again.
  await sh("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", tmp], ROOT);
  const tarball = readdirSync(tmp).find((f) => f.endsWith(".tgz"));
  if (tarball === undefined) throw new Error(`npm pack wrote no tarball into ${tmp}`);
  app = join(tmp, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "geokv-user", private: true, type: "module" }));
  // --ignore-scripts: the SDK needs no native module, so better-sqlite3 need not build for this.
  await sh("npm", ["install", join(tmp, tarball), "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", "--omit=dev"], app);
}, STEP_TIMEOUT_MS * 2);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("the packed geokv package", () => {
  it("imports from an ESM file: geokv and geokv/client give the same createClient", async () => {
    writeFileSync(
      join(app, "use.mjs"),
      `import { createClient, GeokvError, isGeokvError } from "geokv";
import * as sub from "geokv/client";
const client = createClient({ nodes: ["http://127.0.0.1:1"] });
client.close();
console.log(JSON.stringify({
  createClient: typeof createClient,
  same: sub.createClient === createClient,
  error: typeof GeokvError,
  guard: isGeokvError(new GeokvError({ code: "not_found", message: "m", status: 404, node: null })),
  methods: ["get", "put", "incr", "setAdd", "docGet", "conflicts", "status"].every((m) => typeof client[m] === "function"),
}));
`,
    );
    const { stdout } = await sh(process.execPath, ["use.mjs"], app);
    expect(JSON.parse(stdout)).toEqual({ createClient: "function", same: true, error: "function", guard: true, methods: true });
  });

  it("keeps the geokv command: npm links the bin and it runs", async () => {
    const { stdout } = await sh(join(app, "node_modules/.bin/geokv"), ["--help"], app);
    expect(stdout).toContain("Usage:");
    expect(stdout).toContain("geokv incr KEY [DELTA]");
  });

  it("has types: tsc resolves them under node16 and bundler module resolution", async () => {
    // The expect-error line fails the check if the import were untyped (any): the types must really resolve.
    writeFileSync(
      join(app, "use.ts"),
      `import { createClient, type GeokvClient, type StatusView, type GeokvErrorCode } from "geokv";
import { createClient as fromSub, type ClientOptions } from "geokv/client";
const options: ClientOptions = { nodes: ["http://127.0.0.1:7101"], timeoutMs: 1000 };
const client: GeokvClient = createClient(options);
const status: Promise<StatusView> = client.status();
const value: Promise<number> = fromSub(options).incr("hits", 1);
const code: GeokvErrorCode = "no_leader";
// @ts-expect-error createClient is a function, not a number
const wrong: number = createClient;
void status; void value; void code; void wrong;
`,
    );
    const configs = {
      "tsconfig.node16.json": { module: "node16", moduleResolution: "node16" },
      "tsconfig.bundler.json": { module: "esnext", moduleResolution: "bundler" },
    };
    for (const [file, resolution] of Object.entries(configs)) {
      const compilerOptions = { ...resolution, target: "ES2022", strict: true, noEmit: true, types: [] };
      writeFileSync(join(app, file), JSON.stringify({ compilerOptions, files: ["use.ts"] }));
    }
    // Both compilers at once: each takes most of its time starting up.
    await Promise.all(Object.keys(configs).map((file) => sh(TSC, ["-p", file], app)));
  });
});
