// The node's V8 heap flags (src/cli/heap-flags.ts): applied unless the
// operator set the same flag, in either spelling, on node's command line or
// in NODE_OPTIONS. Run in a child process, since V8 flags are process-wide.

import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

const probe = (execArgv: string[], nodeOptions: string) =>
  JSON.parse(execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", `
    const { applyHeapFlags } = await import(${JSON.stringify(new URL("../../src/cli/heap-flags.ts", import.meta.url).pathname)});
    console.log(JSON.stringify(applyHeapFlags(${JSON.stringify(execArgv)}, ${JSON.stringify(nodeOptions)})));
  `], { encoding: "utf8" })) as string[];

describe("applyHeapFlags", () => {
  it("applies both flags by default", () => {
    expect(probe([], "")).toEqual(["--heap-growing-percent=30", "--max-semi-space-size=4"]);
  });

  it("leaves a flag the operator set alone, however it is spelled", () => {
    expect(probe(["--max-semi-space-size=16"], "")).toEqual(["--heap-growing-percent=30"]);
    expect(probe([], "--max-old-space-size=512 --heap_growing_percent=50")).toEqual(["--max-semi-space-size=4"]);
  });
});
