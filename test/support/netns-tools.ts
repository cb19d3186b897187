// Vitest global setup: the partition suite (test/netns) needs `ip`
// (iproute2) and `iptables`. When that suite is selected and a tool is
// missing, install it from Debian if we are root, else fail with the exact
// list of what is missing: a partition test that skips itself would pass CI
// without ever cutting a link. Other selections (`vitest run test/core`) never
// pay for this. Already installed: two `command -v` checks, no apt.

import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const NETNS_DIR = "test/netns";
/** apt-get update plus install of two small packages; past this the mirror hangs. */
const APT_TIMEOUT_MS = 300_000;

/** Each tool the suite runs, and the Debian package that ships it. */
const TOOLS: readonly { readonly command: string; readonly pkg: string }[] = [
  { command: "ip", pkg: "iproute2" },
  { command: "iptables", pkg: "iptables" },
];

/** The Debian packages whose commands are not on PATH. */
export function missingNetnsPackages(): string[] {
  return TOOLS.filter((t) => !onPath(t.command)).map((t) => t.pkg);
}

function onPath(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Whether this vitest run includes a test/netns file (no filters: every file). */
function netnsSelected(filters: readonly string[] | undefined): boolean {
  if (filters === undefined || filters.length === 0) return true;
  const files = readdirSync(join(ROOT, NETNS_DIR)).map((f) => `${NETNS_DIR}/${f}`);
  return files.some((f) => filters.some((pattern) => f.includes(pattern.replace(/^\.\//, ""))));
}

/** Installs iproute2/iptables when missing and allowed (root), or throws naming them. */
export function ensureNetnsTools(): void {
  const missing = missingNetnsPackages();
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`test/netns needs ${missing.join(" and ")}, which ${missing.length === 1 ? "is" : "are"} not installed; as root: apt-get install -y ${missing.join(" ")}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    execFileSync("apt-get", ["update", "-qq"], { env, stdio: ["ignore", "pipe", "pipe"], timeout: APT_TIMEOUT_MS });
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { env, stdio: ["ignore", "pipe", "pipe"], timeout: APT_TIMEOUT_MS });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`test/netns needs ${missing.join(" and ")}; apt-get install failed: ${e.stderr?.toString() ?? ""}${e.message}`);
  }
  const still = missingNetnsPackages();
  if (still.length > 0) throw new Error(`test/netns needs ${still.join(" and ")}: installed, but still not on PATH`);
}

/** The global setup: checks (and installs) only when the netns suite runs. */
export default function setup(project: { vitest: { filenamePattern?: string[] } }): void {
  // filenamePattern is vitest's list of the CLI's file filters (undefined: all files).
  if (netnsSelected(project.vitest.filenamePattern)) ensureNetnsTools();
}
