// The in-memory store with an explicit durability point, so the simulator can
// model the window between a commit and its fsync: a write is visible at once
// (as it is to a process before fsync) but survives a crash only once sync()
// has run; a crash keeps exactly the writes up to the last sync, in order. The
// live store works on a clone of the durable disk and journals its writes
// (DiskWrite values); sync() replays the journal onto the durable disk, so it
// costs what the journal holds, never what the disk holds. A restart clones
// the disk once, which is fine: restarts are rare, syncs are not.

import { applyWrite, cloneMemoryDisk, createMemoryDisk } from "./memory-disk.js";
import type { DiskWrite, MemoryDisk } from "./memory-disk.js";
import { createMemoryStorage } from "./memory.js";
import type { Storage } from "./port.js";
import type { VersionVector } from "../core/version-vector.js";

/** A live memory store whose writes become durable only at sync(). */
export interface CrashableStorage {
  /** The store: reads see every write at once; a clean close() syncs first, so it loses nothing. */
  readonly storage: Storage;
  /** Makes every write so far durable. Throws once the store is closed. */
  sync(): void;
  /** Writes (commit, setMeta, compactOps, pruneIdempotency calls) since the last sync: what a crash now would lose. */
  readonly unsyncedWrites: number;
  /** The process dies: the store closes without syncing, and the durable disk (what was synced) is returned. */
  crash(): MemoryDisk;
  /** The durable disk, to restart on; throws while the store is open, since a sync would still write to it. */
  durableDisk(): MemoryDisk;
  /** The applied vector as of the last sync: what a crash now would keep. Readable at any time. */
  durableVv(): VersionVector;
}

class CrashableMemory implements CrashableStorage {
  readonly storage: Storage;
  private journal: DiskWrite[] = [];
  private closed = false;

  constructor(private readonly durable: MemoryDisk) {
    this.storage = createMemoryStorage(cloneMemoryDisk(durable), {
      written: (w) => {
        this.journal.push(w);
      },
      closing: () => {
        this.flush();
        this.closed = true;
      },
    });
  }

  get unsyncedWrites(): number {
    return this.journal.length;
  }

  sync(): void {
    if (this.closed) throw new Error("storage is closed");
    this.flush();
  }

  crash(): MemoryDisk {
    // With the journal gone, the close below has nothing left to sync.
    this.journal = [];
    this.storage.close();
    return this.durable;
  }

  durableVv(): VersionVector {
    return Object.fromEntries(this.durable.nodeVv);
  }

  durableDisk(): MemoryDisk {
    if (!this.closed) throw new Error("durableDisk: the store is still open; close it or crash it first");
    return this.durable;
  }

  /** Replays the journal onto the durable disk, which equals the live one as of the last sync. */
  private flush(): void {
    for (const w of this.journal) applyWrite(this.durable, w);
    this.journal = [];
  }
}

/**
 * A crashable store on `durable` (a fresh empty disk by default), which it owns until it is closed:
 * restart a crashed node with createCrashableStorage(previous.crash()).
 */
export function createCrashableStorage(durable: MemoryDisk = createMemoryDisk()): CrashableStorage {
  return new CrashableMemory(durable);
}
