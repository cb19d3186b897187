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

/** new_space's size after some garbage, in a child given `flags` on its command line and applying HEAP_FLAGS itself (unless `skipApply`). */
const youngBytes = (flags: string[], skipApply: boolean) =>
  Number(execFileSync(process.execPath, [...flags, "--import", "tsx", "--input-type=module", "-e", `
    const v8 = await import("node:v8");
    if (!${skipApply}) (await import(${JSON.stringify(new URL("../../src/cli/heap-flags.ts", import.meta.url).pathname)})).applyHeapFlags();
    const keep = [];
    for (let r = 0; r < 100; r++) { const a = []; for (let i = 0; i < 20000; i++) a.push({ i, s: "x" + i }); keep.push(a); if (keep.length > 10) keep.shift(); }
    console.log(v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size);
  `], { encoding: "utf8" }));

describe("applyHeapFlags", () => {
  it("applies its flag by default", () => {
    expect(probe([], "")).toEqual(["--heap-growing-percent=30"]);
  });

  it("leaves a flag the operator set alone, however it is spelled", () => {
    expect(probe(["--heap-growing-percent=50"], "")).toEqual([]);
    expect(probe([], "--max-old-space-size=512 --heap_growing_percent=50")).toEqual([]);
  });

  it("holds only flags that take effect when set at runtime: the heap matches the one the same flags give on the command line", async () => {
    const { HEAP_FLAGS } = await import("../../src/cli/heap-flags.js");
    const onCommandLine = Object.entries(HEAP_FLAGS).map(([f, v]) => `--${f}=${v}`);
    // A young-generation flag set at runtime is ignored (V8 sized it at start): the sizes would differ.
    expect(youngBytes([], false)).toBe(youngBytes(onCommandLine, true));
  });
});
