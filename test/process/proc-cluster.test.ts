// The process-cluster test harness itself: when one node of a cluster fails
// to start, the harness stops the nodes it had already started before it
// fails the caller (who never got close()), so a failed setup leaves no
// orphaned node processes loading the machine for every later test.

import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { startProcCluster } from "../support/proc-cluster.js";

/** The command lines of this process's children that run a geokv node. */
function nodeChildren(): string[] {
  const out = execFileSync("ps", ["-o", "args=", "--ppid", String(process.pid)], { encoding: "utf8" });
  return out.split("\n").filter((l) => l.includes("dist/cli/main.js node"));
}

describe("startProcCluster", () => {
  it("stops the nodes it started when another one fails to start", async () => {
    expect(nodeChildren()).toEqual([]);
    // A bad setting makes p-2 exit at startup; p-1 and p-3 start normally.
    const err = await startProcCluster([{ region: "p", nodes: 3 }], { nodeEnv: { "p-2": { GEOKV_HEARTBEAT_MS: "not-a-number" } } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(String(err)).toMatch(/p-2 exited/);
    expect(nodeChildren()).toEqual([]);
  });
});
