// Test support for the browser test: Debian's Chromium driven by
// playwright-core. When either is missing the test fails and says exactly
// which (a browser test that skips itself would pass CI without a browser);
// Chromium is installed from Debian first when we are root, as
// test/support/netns-tools.ts does for iptables. .ci/run installs it too.

import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import type { Browser } from "playwright-core";

export const CHROMIUM_PATH = "/usr/bin/chromium";
/** apt-get update plus Chromium and its libraries; past this the mirror hangs. */
export const CHROMIUM_INSTALL_TIMEOUT_MS = 540_000;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Installs Debian's chromium when it is missing and we are root; throws naming what is missing otherwise. */
export function ensureChromium(): void {
  if (executable(CHROMIUM_PATH)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`the dashboard test needs Debian's chromium at ${CHROMIUM_PATH}, which is not installed; as root: apt-get install -y chromium`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    execFileSync("apt-get", ["update", "-qq"], { env, stdio: ["ignore", "pipe", "pipe"], timeout: CHROMIUM_INSTALL_TIMEOUT_MS });
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "chromium"], { env, stdio: ["ignore", "pipe", "pipe"], timeout: CHROMIUM_INSTALL_TIMEOUT_MS });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`the dashboard test needs Debian's chromium at ${CHROMIUM_PATH}; apt-get install chromium failed: ${e.stderr?.toString() ?? ""}${e.message}`);
  }
  if (!executable(CHROMIUM_PATH)) throw new Error(`the dashboard test needs Debian's chromium: installed, but ${CHROMIUM_PATH} is still missing`);
}

/** Launches headless Chromium through playwright-core; throws naming everything that is missing. */
export async function launchChromium(): Promise<Browser> {
  const missing: string[] = [];
  let pw: typeof import("playwright-core") | undefined;
  try {
    pw = await import("playwright-core");
  } catch (err) {
    missing.push(`the npm package playwright-core (a devDependency; run npm install), which did not load: ${(err as Error).message}`);
  }
  try {
    ensureChromium();
  } catch (err) {
    missing.push((err as Error).message.replace(/^the dashboard test needs /, ""));
  }
  if (pw === undefined || missing.length > 0) throw new Error(`the dashboard test needs ${missing.join("; and ")}`);
  return pw.chromium.launch({ executablePath: CHROMIUM_PATH, args: ["--no-sandbox"] });
}
