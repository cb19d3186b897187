// The world of the whole-cluster simulator: regions of SimNodes (node.ts) on
// one virtual clock, the peer links between them (a connection per pair of
// nodes, dialled while the path is open, closed when a process dies or a
// machine presumes it dead), a network that delays, drops, duplicates and
// reorders frames per directed link and can be cut in any shape, region-local
// clients that retry with Idempotency-Key, and the node faults: crashes that
// lose unsynced writes, pauses longer than a lease, clock skew, drift and
// jumps. Every random choice comes from one seeded generator, so a run
// replays exactly.

import * as Y from "yjs";
import type { MemberConfig } from "../../../src/core/cluster-view.js";
import { asNodeId, asRegionId, type NodeId } from "../../../src/core/ids.js";
import { mulberry32 } from "../../../src/core/prng.js";
import { parseToken } from "../../../src/core/apply/token.js";
import type { MemoryDisk } from "../../../src/storage/memory.js";
import { InvariantViolation } from "../invariants.js";
import { Checks, type RequestOutcome } from "./checks.js";
import { Agenda } from "./events.js";
import { SimNode, type ClockModel, type Host, type PeerFrame, type SimDisk, type SimSettings, type WriteReply, type WriteRequest } from "./node.js";
import type { SnapshotCrashPhase } from "./snapshots.js";

/** Faults of one directed link while they last. */
export interface LinkFault {
  readonly drop: number;
  readonly dup: number;
  readonly extraDelayMs: number;
  /** Frames may overtake each other (otherwise a connection is FIFO). */
  readonly reorder: boolean;
}

export interface WorldConfig {
  readonly regions: readonly number[];
  readonly seed: number;
  readonly settings: SimSettings;
  readonly clocks: readonly ClockModel[];
  readonly openDisk: (disk: MemoryDisk | null) => SimDisk;
}

/** One client request of a script. */
export interface ClientRequest {
  readonly write: WriteRequest;
  readonly thinkMs: number;
  /** Counter delta, for the checks. */
  readonly delta: number;
  readonly update: Uint8Array | null;
}

// SIM_TRACE_LINES=N keeps more of the trace a failure prints (debugging a long schedule).
const TRACE_LINES = Number(process.env.SIM_TRACE_LINES ?? 200);
/** A client gives up on one attempt after this long without an answer. */
const CLIENT_ATTEMPT_TIMEOUT_EXTRA_MS = 1000;
const CLIENT_ATTEMPTS_MAX = 20;
const DIAL_EVERY_MS = 100;

export class World implements Host {
  now = 0;
  readonly agenda = new Agenda();
  readonly rng: () => number;
  readonly nodes: SimNode[];
  readonly byId = new Map<NodeId, SimNode>();
  readonly monitor: Checks;
  readonly regionNames: string[];
  readonly outcomes: RequestOutcome[] = [];
  readonly clients: SimClient[] = [];
  /** ep[a][b]: node a's end of its link to b. */
  private readonly ep: Array<Array<{ up: boolean; conn: number }>>;
  /** Cuts per directed link, counted so overlapping partitions heal separately. */
  private readonly cuts = new Map<number, number>();
  private readonly linkFaults = new Map<number, LinkFault>();
  /** Latest delivery time per directed link (FIFO unless reordering). */
  private readonly lastDelivery = new Map<number, number>();
  private connSeq = 0;
  /** Client requests each node holds unanswered: their connections reset when it dies. */
  private readonly inHand = new Map<SimNode, Set<() => void>>();
  private readonly disks: Array<MemoryDisk | null>;
  private readonly trace: Array<() => string> = [];
  /** Regions whose leader crashes right after its next idempotent write is durable, before it leaves. */
  readonly crashAfterWrite = new Map<string, Array<{ readonly downMs: number; readonly times: number; readonly key: string | null }>>();
  /** Regions whose leader stalls for the given time right after its next write is committed (it wakes believing it leads). */
  readonly pauseAfterWrite = new Map<string, number[]>();
  /** Regions whose leader is cut off from every node for the given time right after its next write is committed (a deposed leader). */
  readonly isolateAfterWrite = new Map<string, number[]>();
  /** The next node whose received snapshot reaches the phase crashes there, down for downMs. */
  readonly crashInSnapshot: Array<{ readonly phase: SnapshotCrashPhase; readonly downMs: number }> = [];
  /** The next snapshot stream that begins is cut (sender and receiver apart) after afterMs, for healAfterMs. */
  readonly cutSnapshot: Array<{ readonly afterMs: number; readonly healAfterMs: number }> = [];
  stats = { frames: 0, steps: 0, crashes: 0, pauses: 0, wipes: 0, snapshotCrashes: { staging: 0, installing: 0, installed: 0 }, snapshotCuts: 0, isolations: 0 };

  constructor(readonly cfg: WorldConfig) {
    this.rng = mulberry32(cfg.seed);
    const members: MemberConfig[] = [];
    this.regionNames = cfg.regions.map((_, r) => `r${r + 1}`);
    cfg.regions.forEach((size, r) => {
      for (let i = 0; i < size; i++) members.push({ node: asNodeId(`r${r + 1}-${i + 1}`), region: asRegionId(`r${r + 1}`), priority: 100 - i * 10 });
    });
    this.nodes = members.map((m, i) => new SimNode(this, i, m, members, cfg.settings, { ...(cfg.clocks[i] ?? { offsetMs: 0, drift: 0 }) }));
    for (const n of this.nodes) this.byId.set(n.id, n);
    this.ep = this.nodes.map(() => this.nodes.map(() => ({ up: false, conn: 0 })));
    this.disks = this.nodes.map(() => null);
    this.monitor = new Checks(
      () => this.now,
      (region) => this.regionNodes(region),
      cfg.settings.electionTimeoutMs + cfg.settings.heartbeatMs,
      cfg.settings.maxClockSkewMs,
      () => this.nodes,
    );
    for (const n of this.nodes) n.boot(cfg.openDisk(null));
    const dial = (): void => {
      this.dialAll();
      this.agenda.add(this.now + DIAL_EVERY_MS, dial);
    };
    this.agenda.add(0, dial);
  }

  // ---- Host --------------------------------------------------------------------

  later(node: SimNode, delayMs: number, kind: "timer" | "io", fn: () => void): void {
    const gen = node.gen;
    this.agenda.add(this.now + delayMs, () => {
      if (node.gen !== gen || !node.up) return;
      if (node.paused) node.backlog.push({ kind, fn });
      else fn();
    });
  }

  send(from: SimNode, to: NodeId, frame: PeerFrame): boolean {
    const b = this.byId.get(to);
    if (b === undefined) throw new InvariantViolation(`${from.id} sent to unknown node ${to}`);
    const e = this.endpoint(from, b);
    if (!e.up) return false;
    this.stats.frames++;
    const link = from.index * 1024 + b.index;
    if (this.cuts.has(link)) return true; // into the void: a partition is silence
    const fault = this.linkFaults.get(link);
    if (fault !== undefined && this.rng() < fault.drop) return true;
    const copies = fault !== undefined && this.rng() < fault.dup ? 2 : 1;
    for (let c = 0; c < copies; c++) this.deliver(from, b, e.conn, frame, fault);
    return true;
  }

  closeLink(from: SimNode, to: NodeId, reason: string): void {
    const b = this.byId.get(to) as SimNode;
    const e = this.endpoint(from, b);
    if (!e.up) return;
    e.up = false;
    from.onLinkDown(to, reason);
    this.tellClosed(from, b, e.conn);
  }

  random(): number {
    return this.rng();
  }

  fsyncDelayMs(): number {
    return 0.5 + this.rng() * 3;
  }

  note(line: () => string): void {
    const at = this.now;
    this.trace.push(() => `${at.toFixed(1).padStart(8)} ms  ${line()}`);
    if (this.trace.length > TRACE_LINES) this.trace.shift();
  }

  formatTrace(): string {
    return this.trace.map((f) => f()).join("\n");
  }

  // ---- running -------------------------------------------------------------------

  runUntil(t: number): void {
    while (this.agenda.nextAt() <= t) {
      const e = this.agenda.pop();
      this.now = e.at;
      this.stats.steps++;
      e.run();
    }
    this.now = t;
  }

  /** Runs until `cond` holds (checked every `everyMs`) or `deadline`; true when it held. */
  runUntilCondition(cond: () => boolean, deadline: number, everyMs = 50): boolean {
    while (this.now < deadline) {
      if (cond()) return true;
      this.runUntil(Math.min(deadline, this.now + everyMs));
    }
    return cond();
  }

  // ---- links ---------------------------------------------------------------------

  private endpoint(a: SimNode, b: SimNode): { up: boolean; conn: number } {
    return (this.ep[a.index] as Array<{ up: boolean; conn: number }>)[b.index] as { up: boolean; conn: number };
  }

  private baseDelayMs(a: SimNode, b: SimNode): number {
    return a.region === b.region ? 0.3 + this.rng() * 1.5 : 10 + this.rng() * 30;
  }

  private deliver(a: SimNode, b: SimNode, conn: number, frame: PeerFrame, fault: LinkFault | undefined): void {
    const link = a.index * 1024 + b.index;
    let at = this.now + this.baseDelayMs(a, b) + (fault ? this.rng() * fault.extraDelayMs : 0);
    if (!fault?.reorder) {
      at = Math.max(at, this.lastDelivery.get(link) ?? 0);
      this.lastDelivery.set(link, at);
    }
    const gen = b.gen;
    this.agenda.add(at, () => {
      const run = (): void => {
        const e = this.endpoint(b, a);
        if (b.gen !== gen || !b.up || !e.up || e.conn !== conn) return; // that connection is gone
        b.onFrame(a, frame);
      };
      if (b.gen !== gen || !b.up || this.cuts.has(link)) return; // cut while in flight
      if (b.paused) b.backlog.push({ kind: "io", fn: run });
      else run();
    });
  }

  /** `a` closed its end of connection `conn` to `b`: b learns it if the FIN gets through. */
  private tellClosed(a: SimNode, b: SimNode, conn: number): void {
    if (this.cuts.has(a.index * 1024 + b.index)) return;
    const gen = b.gen;
    this.agenda.add(this.now + this.baseDelayMs(a, b), () => {
      const run = (): void => {
        const e = this.endpoint(b, a);
        if (b.gen !== gen || !b.up || !e.up || e.conn !== conn) return;
        e.up = false;
        b.onLinkDown(a.id, "closed by the peer");
      };
      if (b.gen !== gen || !b.up) return;
      if (b.paused) b.backlog.push({ kind: "io", fn: run });
      else run();
    });
  }

  private canConnect(a: SimNode, b: SimNode): boolean {
    return a.up && b.up && !a.paused && !b.paused && !this.cuts.has(a.index * 1024 + b.index) && !this.cuts.has(b.index * 1024 + a.index);
  }

  /** The hubs redial: a pair whose link is down at either end connects again while the path is open both ways. */
  private dialAll(): void {
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (b.index <= a.index) continue;
        const ab = this.endpoint(a, b);
        const ba = this.endpoint(b, a);
        if ((ab.up && ba.up && ab.conn === ba.conn) || !this.canConnect(a, b)) continue;
        const conn = ++this.connSeq;
        // A half-open old connection is replaced by the new one.
        if (ab.up) {
          ab.up = false;
          a.onLinkDown(b.id, "replaced by a new connection");
        }
        if (ba.up) {
          ba.up = false;
          b.onLinkDown(a.id, "replaced by a new connection");
        }
        const introA = a.intro();
        const introB = b.intro();
        ab.up = true;
        ab.conn = conn;
        ba.up = true;
        ba.conn = conn;
        a.onLinkUp(b.id, introB);
        b.onLinkUp(a.id, introA);
      }
    }
  }

  // ---- faults ----------------------------------------------------------------------

  node(i: number): SimNode {
    const n = this.nodes[((i % this.nodes.length) + this.nodes.length) % this.nodes.length];
    return n as SimNode;
  }

  crash(n: SimNode): void {
    if (!n.up) return;
    this.stats.crashes++;
    this.note(() => `crash ${n.id}`);
    this.disks[n.index] = n.crash();
    for (const reset of this.inHand.get(n) ?? []) reset();
    this.inHand.delete(n);
    for (const b of this.nodes) {
      if (b === n) continue;
      const mine = this.endpoint(n, b);
      mine.up = false;
      const theirs = this.endpoint(b, n);
      if (theirs.up) this.tellClosed(n, b, theirs.conn); // the kernel resets the dead process's connections
    }
  }

  restart(n: SimNode): void {
    if (n.up) return;
    this.note(() => `restart ${n.id}`);
    n.boot(this.cfg.openDisk(this.disks[n.index] ?? null));
  }

  pause(n: SimNode, ms: number): void {
    if (!n.up || n.paused) return;
    this.stats.pauses++;
    this.note(() => `pause ${n.id} for ${ms} ms`);
    n.paused = true;
    const gen = n.gen;
    this.agenda.add(this.now + ms, () => {
      if (n.gen !== gen || !n.up) return;
      this.wake(n);
    });
  }

  wake(n: SimNode): void {
    if (!n.paused) return;
    this.note(() => `wake ${n.id}`);
    n.paused = false;
    // A held loop (block) finishes what held it before anything queued meanwhile runs.
    const done = n.blockedDone;
    n.blockedDone = null;
    done?.();
    if (!n.up || n.paused) return;
    const backlog = n.backlog.splice(0);
    // Node's event loop after SIGCONT: the timers phase first, then the sockets.
    for (const b of backlog) if (b.kind === "timer" && n.up && !n.paused) b.fn();
    for (const b of backlog) if (b.kind === "io" && n.up && !n.paused) b.fn();
  }

  /** Cuts every directed link in `pairs`; returns the heal. */
  cut(pairs: ReadonlyArray<readonly [SimNode, SimNode]>, what: string): () => void {
    const links = pairs.filter(([a, b]) => a !== b).map(([a, b]) => a.index * 1024 + b.index);
    for (const l of links) this.cuts.set(l, (this.cuts.get(l) ?? 0) + 1);
    this.note(() => `cut ${what}`);
    let healed = false;
    return () => {
      if (healed) return;
      healed = true;
      for (const l of links) {
        const c = (this.cuts.get(l) ?? 1) - 1;
        if (c <= 0) this.cuts.delete(l);
        else this.cuts.set(l, c);
      }
      this.note(() => `heal ${what}`);
    };
  }

  setLinkFault(a: SimNode, b: SimNode, fault: LinkFault | null): void {
    const l = a.index * 1024 + b.index;
    if (fault === null) this.linkFaults.delete(l);
    else this.linkFaults.set(l, fault);
    this.note(() => `link ${a.id} -> ${b.id}: ${fault === null ? "clean" : JSON.stringify(fault)}`);
  }

  /** The process dies and its disk is lost: it restarts, after downMs, on an empty disk (a lost disk, or a new member). */
  wipe(n: SimNode, downMs: number): void {
    if (!n.up) return;
    this.stats.wipes++;
    this.note(() => `wipe ${n.id}: it crashes and its disk is lost`);
    this.monitor.wiping(n);
    this.crash(n);
    this.disks[n.index] = null;
    n.wiped = true;
    this.agenda.add(this.now + downMs, () => this.restart(n));
  }

  linkUp(from: SimNode, to: NodeId): boolean {
    const b = this.byId.get(to);
    return b !== undefined && this.endpoint(from, b).up;
  }

  block(n: SimNode, ms: number, done: () => void): void {
    if (n.paused) throw new InvariantViolation(`${n.id} held its loop while paused`);
    n.paused = true;
    n.blockedDone = done;
    const gen = n.gen;
    this.agenda.add(this.now + ms, () => {
      if (n.gen !== gen || !n.up || n.blockedDone !== done) return;
      this.wake(n);
    });
  }

  snapshotStreaming(n: SimNode, peer: NodeId): void {
    const t = this.cutSnapshot.shift();
    if (t === undefined) return;
    const b = this.byId.get(peer) as SimNode;
    this.agenda.add(this.now + t.afterMs, () => {
      this.stats.snapshotCuts++;
      const heal = this.cut([[n, b], [b, n]], `${n.id} <-> ${b.id} while a snapshot streams`);
      this.agenda.add(this.now + t.healAfterMs, heal);
    });
  }

  maybeCrashInSnapshot(n: SimNode, phase: SnapshotCrashPhase): boolean {
    const i = this.crashInSnapshot.findIndex((t) => t.phase === phase);
    const t = this.crashInSnapshot[i];
    if (t === undefined) return false;
    this.crashInSnapshot.splice(i, 1);
    this.stats.snapshotCrashes[phase]++;
    const crashNow = (): void => {
      if (!n.up) return;
      this.note(() => `crash ${n.id} ${phase === "staging" ? "while it stages a snapshot" : phase === "installing" ? "inside a snapshot install, before it is durable" : "right after a snapshot install is durable"}`);
      if (phase === "installing") n.crashedInInstall = true;
      this.crash(n);
      this.agenda.add(this.now + t.downMs, () => this.restart(n));
    };
    // Inside the install, the crash lands somewhere in the window its transaction holds the loop.
    if (phase === "installing") {
      this.agenda.add(this.now + this.rng() * 2, crashNow);
      return false;
    }
    crashNow();
    return true;
  }

  /** Heals every cut and link fault, restarts every crashed node and wakes every paused one. */
  healAll(): void {
    this.crashAfterWrite.clear();
    this.pauseAfterWrite.clear();
    this.isolateAfterWrite.clear();
    this.crashInSnapshot.length = 0;
    this.cutSnapshot.length = 0;
    this.cuts.clear();
    this.linkFaults.clear();
    for (const n of this.nodes) {
      if (!n.up) this.restart(n);
      else if (n.paused) this.wake(n);
    }
    this.note(() => "heal everything");
  }

  jumpClock(n: SimNode, deltaMs: number): void {
    n.clock.offsetMs += deltaMs;
    this.note(() => `clock of ${n.id} jumps ${deltaMs} ms`);
  }

  regionNodes(region: string): SimNode[] {
    return this.nodes.filter((n) => n.region === region);
  }

  /** The node of `region` that takes writes now, if any. */
  leaderOf(region: string): SimNode | undefined {
    return this.regionNodes(region).find((n) => n.up && !n.paused && n.takesWrites());
  }

  /** Called by a node right after its write is durable: crash it there when the schedule asks (the exactly-once gap). */
  maybeCrashAfterWrite(n: SimNode, idemKey: string): boolean {
    const triggers = this.crashAfterWrite.get(n.region) ?? [];
    const i = triggers.findIndex((t) => t.key === null || t.key === idemKey);
    const t = triggers[i];
    if (t === undefined) return false;
    triggers.splice(i, 1);
    this.note(() => `crash ${n.id} right after its write under ${idemKey} is durable, before it leaves`);
    this.crash(n);
    // It comes back later, with its copy of the write.
    this.agenda.add(this.now + t.downMs, () => this.restart(n));
    // The retry's copy at the next leader meets the same fate, when asked: a third copy.
    if (t.times > 1) triggers.push({ downMs: t.downMs, times: t.times - 1, key: idemKey });
    return true;
  }

  maybePauseAfterWrite(n: SimNode): void {
    const isolate = this.isolateAfterWrite.get(n.region)?.shift();
    if (isolate !== undefined) {
      this.stats.isolations++;
      const pairs: Array<[SimNode, SimNode]> = [];
      for (const b of this.nodes) if (b !== n) pairs.push([n, b], [b, n]);
      const heal = this.cut(pairs, `${n.id} from every node, right after it committed a write`);
      this.agenda.add(this.now + isolate, heal);
    }
    const ms = this.pauseAfterWrite.get(n.region)?.shift();
    if (ms === undefined) return;
    this.note(() => `stall ${n.id} right after it committed a write`);
    this.pause(n, ms);
  }

  // ---- clients -----------------------------------------------------------------------

  addClient(region: string, script: readonly ClientRequest[], startMs: number): void {
    const c = new SimClient(this, region, script, this.clients.length);
    this.clients.push(c);
    this.agenda.add(startMs, () => c.next());
  }

  clientsDone(): boolean {
    return this.clients.every((c) => c.done);
  }

  /** Sends `req` to node `n`; `reply` runs when (if) the answer gets back. */
  /**
   * Sends `req` to node `n`. `reply` runs when the answer gets back; `lost`
   * when the connection fails instead: refused (the process is down, nothing
   * was taken) or reset (it died with the request in hand: maybe taken).
   */
  request(n: SimNode, req: WriteRequest, reply: (r: WriteReply) => void, lost: (mayHaveApplied: boolean) => void): void {
    const gen = n.gen;
    const back = (f: () => void): void => this.agenda.add(this.now + 0.2 + this.rng(), f);
    this.agenda.add(this.now + 0.2 + this.rng(), () => {
      if (n.gen !== gen || !n.up) return back(() => lost(false));
      let pending = this.inHand.get(n);
      if (pending === undefined) this.inHand.set(n, (pending = new Set()));
      const reset = (): void => back(() => lost(true));
      pending.add(reset);
      const handle = (): void => {
        if (n.gen !== gen || !n.up) return;
        n.write(req, (r) => {
          if (n.gen !== gen) return; // the answer died with the process
          pending.delete(reset);
          back(() => reply(r));
        });
      };
      if (n.paused) n.backlog.push({ kind: "io", fn: handle });
      else handle();
    });
  }
}

/** A region-local client running a script of writes, one at a time, retrying with its Idempotency-Key. */
export class SimClient {
  done = false;
  private i = -1;
  private attempt = 0;
  private tries = 0;
  private maybeApplied = false;
  private prefer: NodeId | null = null;

  constructor(
    private readonly w: World,
    readonly region: string,
    private readonly script: readonly ClientRequest[],
    readonly index: number,
  ) {}

  next(): void {
    this.i++;
    const r = this.script[this.i];
    if (r === undefined) {
      this.done = true;
      return;
    }
    this.tries = 0;
    this.maybeApplied = false;
    this.w.agenda.add(this.w.now + r.thinkMs, () => this.send());
  }

  private get req(): ClientRequest {
    return this.script[this.i] as ClientRequest;
  }

  private send(): void {
    const nodes = this.w.regionNodes(this.region);
    const target = (this.prefer !== null ? this.w.byId.get(this.prefer) : undefined) ?? (nodes[Math.floor(this.w.rng() * nodes.length)] as SimNode);
    const id = ++this.attempt;
    this.tries++;
    this.w.request(
      target,
      this.req.write,
      (r) => {
        if (id === this.attempt) this.onReply(target, r);
      },
      (mayHaveApplied) => {
        if (id !== this.attempt) return;
        this.attempt++;
        if (mayHaveApplied) this.maybeApplied = true;
        this.prefer = null;
        this.retryOrGiveUp(mayHaveApplied);
      },
    );
    this.w.agenda.add(this.w.now + this.w.cfg.settings.writeWaitMs + CLIENT_ATTEMPT_TIMEOUT_EXTRA_MS, () => {
      if (id !== this.attempt) return;
      this.attempt++;
      // No answer: the write may have been taken.
      this.maybeApplied = true;
      this.prefer = null;
      this.retryOrGiveUp(true);
    });
  }

  private onReply(target: SimNode, r: WriteReply): void {
    this.attempt++;
    switch (r.kind) {
      case "ok": {
        const dot = parseToken(r.token);
        this.prefer = target.id;
        this.finish("acked", dot);
        return;
      }
      case "refused":
        if (r.code === "mismatch" || r.code === "bad_request") throw new InvariantViolation(`client ${this.index}: ${r.code} for a well-formed retry of ${this.req.write.ns} ${this.req.write.key}`);
        this.prefer = r.leader;
        this.retryOrGiveUp(false);
        return;
      case "unacked":
        this.maybeApplied = true;
        this.retryOrGiveUp(true);
        return;
    }
  }

  /** Retries while that cannot write twice: always after a refusal, and with an Idempotency-Key after an unknown outcome. */
  private retryOrGiveUp(unknown: boolean): void {
    if ((unknown && this.req.write.idem === null) || this.tries >= CLIENT_ATTEMPTS_MAX) {
      this.finish(this.maybeApplied ? "unknown" : "none", null);
      return;
    }
    this.w.agenda.add(this.w.now + 20 + this.w.rng() * 200, () => this.send());
  }

  private finish(status: RequestOutcome["status"], dot: { origin: string; seq: number } | null): void {
    const r = this.req;
    this.w.outcomes.push({ region: this.region, ns: r.write.ns, key: r.write.key, delta: r.delta, update: r.update, status, dot });
    this.next();
  }
}

/** A Yjs update that inserts `text` into the doc's text "t", from a client id of its own. */
export function docInsert(clientId: number, text: string): Uint8Array {
  const doc = new Y.Doc({ gc: false });
  doc.clientID = clientId;
  doc.getText("t").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}
