// How a node's V8 heap grows. With V8's defaults a node that holds a million
// keys shows an RSS of about 420 MiB, of which the live JS heap is under
// 60 MiB (a heap snapshot, issue 13): the rest is room V8 reserved to grow
// into, because after each major GC it lets the heap grow well past what is
// live before the next one. geokv's heap is mostly short-lived request
// garbage around a bounded set of caches (the values live in SQLite), so a
// smaller growth step costs a few more GCs and no measured throughput
// (bench/storage.ts, figure 2), and brings RSS under its 250 MB target.
// Set in the process (v8.setFlagsFromString) before the node allocates much,
// so `geokv node` started any way (by `geokv up`, a container, a bench)
// gets it; an operator's own flag in NODE_OPTIONS or on the command line wins.
// Only flags V8 reads as it runs belong here: the young generation's size
// (--max-semi-space-size and the like) is fixed when the heap is created, so
// set here it would change nothing (test/config/heap-flags.test.ts checks).

import { setFlagsFromString } from "node:v8";

/** The flags, each with the value geokv runs with. */
export const HEAP_FLAGS: Readonly<Record<string, string>> = {
  // Percent the heap may grow past its live size after a major GC (V8's default is larger, and grows with the heap).
  "heap-growing-percent": "30",
};

/** True when the operator set `flag` themselves (NODE_OPTIONS or node's own arguments), either spelling. */
function setByOperator(flag: string, execArgv: readonly string[], nodeOptions: string): boolean {
  const spellings = [flag, flag.replaceAll("-", "_")];
  const given = [...execArgv, ...nodeOptions.split(/\s+/)];
  return given.some((a) => spellings.some((s) => a === `--${s}` || a.startsWith(`--${s}=`)));
}

/** Applies HEAP_FLAGS not set by the operator; returns the ones applied. */
export function applyHeapFlags(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ""): string[] {
  const applied: string[] = [];
  for (const [flag, value] of Object.entries(HEAP_FLAGS)) {
    if (setByOperator(flag, execArgv, nodeOptions)) continue;
    setFlagsFromString(`--${flag}=${value}`);
    applied.push(`--${flag}=${value}`);
  }
  return applied;
}
