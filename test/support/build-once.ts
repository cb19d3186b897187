// Vitest global setup: the process tests run the CLI from its built output
// (dist/), as users do, so dist must match src before any suite starts.
// Compiling once here, in the main vitest process, keeps suites from racing
// to rebuild and from testing a stale binary.

import { execFileSync } from "node:child_process";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
/** A full build takes ~10 s; past this something hangs (a lock, a watcher). */
const BUILD_TIMEOUT_MS = 180_000;

/** Compiles src/ to dist/ with tsconfig.build.json; throws with tsc's output when it fails. */
export default function setup(): void {
  try {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: BUILD_TIMEOUT_MS,
      encoding: "utf8",
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`build-once: npx tsc -p tsconfig.build.json failed:\n${e.stdout ?? ""}${e.stderr ?? ""}${e.message}`);
  }
}
