// A child process for test/netns/cleanup.test.ts: starts a one-node netns
// cluster, prints its prefix and pids as one JSON line, then ends the way
// argv[2] says, so that the test can check that every exit path removes the
// namespaces, links and processes: "wait" (until the parent signals it with
// SIGINT or SIGTERM) or "throw" (an uncaught error: a failing run).

import { startNetnsCluster } from "./netns.js";

const mode = process.argv[2];
const c = await startNetnsCluster([{ region: "solo", nodes: 1 }]);
process.stdout.write(`${JSON.stringify({ prefix: c.prefix, pids: c.pids() })}\n`);
if (mode === "throw") throw new Error("netns-hold: failing on purpose, with the cluster up");
// "wait": stay up until a signal; the harness's handler tears down and exits.
setInterval(() => {}, 1000);
