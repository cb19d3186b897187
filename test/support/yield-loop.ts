// A long synchronous test starves its vitest worker's event loop: the worker's
// RPC to the main process ("onTaskUpdate") times out after 60 s and vitest
// fails the whole run with an unhandled error, even though every test passed.
// A simulator loop awaits this between schedules so replies get through.

import { setImmediate } from "node:timers/promises";

/** Lets the event loop run its timers and I/O once (a macrotask, not a microtask). */
export async function yieldToEventLoop(): Promise<void> {
  await setImmediate();
}
