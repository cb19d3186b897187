// The partition harness leaves nothing behind on any exit path: a child
// process (test/support/netns-hold.ts) starts a netns cluster and is then
// interrupted (SIGINT, as Ctrl-C sends), terminated (SIGTERM, as a runner's
// timeout sends) or fails with an uncaught error; afterwards no namespace or
// root-namespace link with its prefix exists and none of its processes runs.
// A passing run is checked by partitions.test.ts after each scenario.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { describe, expect, test } from "vitest";
import { leftovers } from "../support/netns.js";
import { waitFor } from "../support/cluster-files.js";

interface Held {
  readonly prefix: string;
  readonly pids: number[];
}

/** Runs netns-hold.ts in `mode`; resolves with what it started once it reported, and its exit. */
async function hold(mode: "wait" | "throw"): Promise<{ held: Held; child: ReturnType<typeof spawn>; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/support/netns-hold.ts", mode], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const line = await new Promise<string>((ok, fail) => {
    createInterface({ input: child.stdout! }).once("line", ok);
    void exited.then((code) => fail(new Error(`netns-hold ${mode} exited with ${code} before reporting: ${stderr}`)));
  });
  return { held: JSON.parse(line) as Held, child, exited };
}

describe("netns harness cleanup", () => {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    test(`${signal} to the test process removes namespaces, links and processes`, async () => {
      const { held, child, exited } = await hold("wait");
      expect(held.pids.length).toBe(2); // the node and the relay
      expect(leftovers(held.prefix, held.pids).length).toBeGreaterThan(0);
      child.kill(signal);
      expect(await exited).toBe(code);
      await waitFor("nothing left", () => leftovers(held.prefix, held.pids).length === 0, 5000);
    });
  }

  test("an uncaught error in the test process removes them too", async () => {
    const { held, exited } = await hold("throw");
    expect(await exited).toBe(1);
    await waitFor("nothing left", () => leftovers(held.prefix, held.pids).length === 0, 5000);
  });
});
