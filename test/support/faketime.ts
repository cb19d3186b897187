// Vitest global setup and helpers for the clock suite (test/clock): it shifts
// one node's wall clock with libfaketime (Debian package `faketime`), read
// from a file on every call so a test can move a running node's clock. When
// that suite is selected and the library is missing, install it from Debian
// if we are root, else fail naming the package: a clock test that skipped
// itself would pass CI without ever lying to a node. Other selections never
// pay for this. Monotonic clocks stay true (FAKETIME_DONT_FAKE_MONOTONIC):
// leases and timeouts must not notice a wall-clock step.

import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const CLOCK_DIR = "test/clock";
/** apt-get update plus one small package; past this the mirror hangs. */
const APT_TIMEOUT_MS = 300_000;
const PKG = "faketime";

/** Where Debian puts the preload library, per architecture. */
const LIB_PATHS = ["x86_64-linux-gnu", "aarch64-linux-gnu", "arm-linux-gnueabihf", "i386-linux-gnu"].map((a) => `/usr/lib/${a}/faketime/libfaketime.so.1`);

/** The libfaketime preload library, or null when it is not installed. */
export function faketimeLib(): string | null {
  return LIB_PATHS.find((p) => existsSync(p)) ?? null;
}

/** Installs faketime when missing and allowed (root), or throws saying what is missing. */
export function ensureFaketime(): void {
  if (faketimeLib() !== null) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`test/clock needs libfaketime (Debian package ${PKG}: ${LIB_PATHS[0]}), which is not installed; as root: apt-get install -y ${PKG}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    execFileSync("apt-get", ["update", "-qq"], { env, stdio: ["ignore", "pipe", "pipe"], timeout: APT_TIMEOUT_MS });
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", PKG], { env, stdio: ["ignore", "pipe", "pipe"], timeout: APT_TIMEOUT_MS });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`test/clock needs the Debian package ${PKG}; apt-get install failed: ${e.stderr?.toString() ?? ""}${e.message}`);
  }
  if (faketimeLib() === null) throw new Error(`test/clock needs libfaketime: ${PKG} installed, but none of ${LIB_PATHS.join(", ")} exists`);
}

/** Writes a wall-clock offset (ms, either sign) to a libfaketime timestamp file; a node started with faketimeEnv(file) reads it on its next clock call. */
export function setClockOffset(file: string, offsetMs: number): void {
  const s = (Math.abs(offsetMs) / 1000).toFixed(3);
  writeFileSync(file, `${offsetMs < 0 ? "-" : "+"}${s}s\n`);
}

/** The env that puts a node's wall clock at the offset in `file` (0 until set), re-read on every call, monotonic clocks untouched. */
export function faketimeEnv(file: string): Record<string, string> {
  const lib = faketimeLib();
  if (lib === null) throw new Error("libfaketime is not installed (the global setup installs it when test/clock runs)");
  if (!existsSync(file)) setClockOffset(file, 0);
  return { LD_PRELOAD: lib, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_NO_CACHE: "1", FAKETIME_DONT_FAKE_MONOTONIC: "1" };
}

/** Whether this vitest run includes a test/clock file (no filters: every file). */
function clockSelected(filters: readonly string[] | undefined): boolean {
  if (filters === undefined || filters.length === 0) return true;
  const files = readdirSync(join(ROOT, CLOCK_DIR)).map((f) => `${CLOCK_DIR}/${f}`);
  return files.some((f) => filters.some((pattern) => f.includes(pattern.replace(/^\.\//, ""))));
}

/** The global setup: checks (and installs) only when the clock suite runs. */
export default function setup(project: { vitest: { filenamePattern?: string[] } }): void {
  if (clockSelected(project.vitest.filenamePattern)) ensureFaketime();
}
