// A child process for the storage bench's bootstrap baseline (figure 3,
// bench/bootstrap-part.ts): what a restore from a local backup file does,
// with the same node code the bench's nodes run (the bench's build, imported
// from its dist/ folder, not this checkout's src/). It opens the SQLite file
// at SOURCE (a copy of the leader's database), reads a snapshot of it with the
// store's own snapshot reader in the frames a node streams (SNAP_ROWS_MAX rows,
// about SNAP_FRAME_BYTES), stages every row in a fresh store at TARGET, and
// installs them there with the core's install rules for node SELF, as a
// follower does when the last frame arrives. It prints one JSON line with
// the times, measured in here (process start and module loading excluded).
//
// usage: node --import tsx bench/restore-child.ts DIST SOURCE TARGET SELF

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type * as IdsModule from "../src/core/ids.js";
import type * as SnapshotModule from "../src/core/snapshot.js";
import type * as FramesModule from "../src/net/frames.js";
import type * as SqliteModule from "../src/storage/sqlite.js";

/** What the child prints (one JSON line on stdout). */
export interface RestoreTimes {
  readonly rows: number;
  readonly installedRows: number;
  readonly removedKv: number;
  readonly dataBytes: number;
  /** Opening both stores and the snapshot reader. */
  readonly openMs: number;
  /** Reading the snapshot and staging its rows in the target. */
  readonly stageMs: number;
  /** The install transaction. */
  readonly installMs: number;
  /** open + stage + install. */
  readonly totalMs: number;
  /** The target's vector after the install equals the snapshot header's. */
  readonly vvMatches: boolean;
}

const [dist, source, target, self] = process.argv.slice(2);
if (dist === undefined || source === undefined || target === undefined || self === undefined) {
  // Thrown, not exited: the script stops with its message and a non-zero code either way.
  throw new Error("usage: restore-child DIST SOURCE TARGET SELF");
}
const load = async <T>(path: string) => (await import(pathToFileURL(join(dist, path)).href)) as T;
const { openSqliteStorage } = await load<typeof SqliteModule>("storage/sqlite.js");
const { installRules } = await load<typeof SnapshotModule>("core/snapshot.js");
const { SNAP_ROWS_MAX, SNAP_FRAME_BYTES } = await load<typeof FramesModule>("net/frames.js");
const { asNodeId } = await load<typeof IdsModule>("core/ids.js");

const t0 = performance.now();
const from = openSqliteStorage({ path: source });
const to = openSqliteStorage({ path: target });
const reader = from.openSnapshot();
const tOpen = performance.now();
let rows = 0;
let dataBytes = 0;
for (;;) {
  const chunk = reader.next(SNAP_ROWS_MAX, SNAP_FRAME_BYTES);
  if (chunk.length === 0) break;
  to.stageSnapshotRows(chunk);
  rows += chunk.length;
  for (const r of chunk) dataBytes += r.data.length;
}
const tStaged = performance.now();
const header = reader.header;
const result = to.installSnapshot(header, installRules(asNodeId(self), header));
const tInstalled = performance.now();
const vv = to.appliedVv();
const vvMatches = Object.entries(header.vv).every(([o, s]) => (vv[o] ?? 0) === s) && Object.entries(vv).every(([o, s]) => s === 0 || header.vv[o] === s);
reader.close();
from.close();
to.close();
const times: RestoreTimes = {
  rows,
  installedRows: result.rows,
  removedKv: result.removedKv,
  dataBytes,
  openMs: tOpen - t0,
  stageMs: tStaged - tOpen,
  installMs: tInstalled - tStaged,
  totalMs: tInstalled - t0,
  vvMatches,
};
process.stdout.write(`${JSON.stringify(times)}\n`);
