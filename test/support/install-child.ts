// A child process for test/process/install-crash.test.ts: opens the SQLite
// store at argv[2], and installs the snapshot staged in it (header in
// argv[3], as JSON) as a node does, through the real storage and the core's
// install rules. It says "installing" right before the one transaction
// starts and "installed <rows>" after it, so the test can SIGKILL it in
// between.

import { installRules, type SnapshotHeader } from "../../src/core/snapshot.js";
import { asNodeId } from "../../src/core/ids.js";
import { openSqliteStorage } from "../../src/storage/sqlite.js";

const [path, headerJson, self] = process.argv.slice(2);
if (path === undefined || headerJson === undefined || self === undefined) {
  // Thrown, not exited: the script stops with its message and a non-zero code either way.
  throw new Error("usage: install-child DB HEADER_JSON SELF");
}
const header = JSON.parse(headerJson) as SnapshotHeader;
const storage = openSqliteStorage({ path });
process.stdout.write("installing\n");
const result = storage.installSnapshot(header, installRules(asNodeId(self), header));
process.stdout.write(`installed ${result.rows}\n`);
storage.close();
