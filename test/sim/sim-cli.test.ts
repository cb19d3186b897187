// `npm run sim`: a seed replays, a failure prints its seed, the shrunk
// schedule and the command that replays it, and bad arguments are refused.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tsx = `${root}node_modules/.bin/tsx`;

function sim(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(tsx, ["test/sim/whole/cli.ts", ...args], { cwd: root, encoding: "utf8", timeout: 240_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("npm run sim", () => {
  it("replays one seed and says what it ran", () => {
    const r = sim("--seed", "2");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^seed 2: ok \{"steps":\d+/m);
    expect(r.out).toMatch(/1 schedule passed from seed 2/);
  }, 120_000);

  it("a failure prints the seed, the broken invariant, the shrunk schedule and the replay command", () => {
    const r = sim("--seed", "1", "--mutation", "no-majority-acceptance");
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/FAILED: seed 1\n.*durable votes/);
    expect(r.out).toMatch(/minimal schedule \(fast-check shrank it\):\n\{"regions":/);
    expect(r.out).toContain("replay: npm run sim -- --seed 1 --mutation no-majority-acceptance");
  }, 240_000);

  it("refuses bad arguments with exit code 2", () => {
    for (const args of [["--seed", "x"], ["--mutation", "nope"], ["--topology", "3,0"], ["--frobnicate"]]) {
      const r = sim(...args);
      expect(r.code, `${args.join(" ")}: ${r.out}`).toBe(2);
      expect(r.out).toMatch(/^sim: .*\nusage: npm run sim/m);
    }
  }, 120_000);
});
