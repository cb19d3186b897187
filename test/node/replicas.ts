// LocalStore replicas on real SQLite files, shared by the node suites: a test
// opens the replicas it needs (each on its own file in a temp folder, with a
// clock that advances 1 ms per reading), and every one is closed and the
// folder removed after the test.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";
import type { NodeId } from "../../src/core/ids.js";
import type { Op } from "../../src/core/op.js";
import { LocalStore } from "../../src/node/local-store.js";
import { createGroupCommitter, type GroupCommitter } from "../../src/storage/group-commit.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/storage/sqlite.js";

export interface Replica {
  readonly id: NodeId;
  readonly path: string;
  storage: SqliteStorage;
  committer: GroupCommitter;
  store: LocalStore;
}

export interface Replicas {
  /** A replica `id` on its own file (or on `path`, to reopen one after close). */
  open(id: NodeId, path?: string): Replica;
  /** Lets pending commits finish, then closes the storage. */
  close(r: Replica): Promise<void>;
  /** Every op `from` logged of its own, read back from its storage as replication would. */
  ownOps(from: Replica): Op[];
  /** The shared test clock, without advancing it. */
  now(): number;
}

/** Registers the hooks of a suite's replicas; folders are named after `prefix`. */
export function useReplicas(prefix: string): Replicas {
  let root = "";
  let open: Replica[] = [];
  let wallMs = 0;
  const close = async (r: Replica) => {
    await r.committer.close();
    r.storage.close();
    open = open.filter((x) => x !== r);
  };
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), prefix));
    open = [];
    wallMs = 1_763_000_000_000;
  });
  afterEach(async () => {
    for (const r of [...open]) await close(r);
    rmSync(root, { recursive: true, force: true });
  });
  return {
    open(id, path = join(root, id, "geokv.sqlite")) {
      const storage = openSqliteStorage({ path });
      const committer = createGroupCommitter(storage);
      const store = new LocalStore({ nodeId: id, storage, committer, now: () => wallMs++ });
      const r: Replica = { id, path, storage, committer, store };
      open.push(r);
      return r;
    },
    close,
    ownOps: (from) => from.storage.getOps(from.id, 1, Number.MAX_SAFE_INTEGER, 1000),
    now: () => wallMs,
  };
}
