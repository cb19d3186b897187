// What the whole-cluster simulator checks (DESIGN.md "Tests and benchmarks").
// After every event, as it happens:
// - at most one leader per (region, epoch), and only with a majority of
//   durable votes of its region; no node votes twice in an epoch; a node's
//   epoch never goes back, also across restarts;
// - a new leader holds every write its region acknowledged (ack=region)
//   under an earlier epoch before it took office;
// - a deposed leader stops taking writes within its lease of its successor
//   taking office;
// - nothing is accepted under a stale fencing token;
// - nothing is applied twice; the HLC never goes back, and every own op is
//   stamped after everything the node had seen.
// At the end, after a quiet period (final(), called by the world): every
// replica identical, no acknowledged write lost, counters equal to the
// acknowledged deltas plus a subset of the unknown outcomes, and no conflict
// won by a clock skewed beyond maxClockSkewMs.

import type { ApplyOutcome } from "../../../src/core/apply/apply.js";
import { majority } from "../../../src/core/cluster-view.js";
import { counterValue } from "../../../src/core/crdt/pn-counter.js";
import { setMembers } from "../../../src/core/crdt/or-set.js";
import { applyDoc, docStateVector } from "../../../src/core/crdt/ydoc.js";
import { epochOf, isActiveLeader, type ElectionOutput } from "../../../src/core/election.js";
import { parseFencingToken } from "../../../src/core/fence.js";
import { compareHlc, type Hlc } from "../../../src/core/hlc.js";
import type { NodeId } from "../../../src/core/ids.js";
import type { Op } from "../../../src/core/op.js";
import type { ReplOutput } from "../../../src/core/replication/types.js";
import type { KvRegister } from "../../../src/core/op.js";
import { decodeKvState } from "../../../src/core/codec/kv-state.js";
import type { SnapshotHeader, SnapshotRow } from "../../../src/core/snapshot.js";
import { normalizeVv, vvGet, type VersionVector } from "../../../src/core/version-vector.js";
import type { KvRow } from "../../../src/storage/port.js";
import { InvariantViolation } from "../invariants.js";
import type { NodeMonitor, SimNode } from "./node.js";

/** A client request as the checks see its outcome. */
export interface RequestOutcome {
  readonly region: string;
  readonly ns: Op["ns"];
  readonly key: string;
  /** Counter delta (counters only). */
  readonly delta: number;
  /** The Yjs update (docs only). */
  readonly update: Uint8Array | null;
  /** acked: the dot that answered; unknown: may or may not have been applied; none: definitely not applied. */
  readonly status: "acked" | "unknown" | "none";
  readonly dot: { readonly origin: string; readonly seq: number } | null;
}

interface Activation {
  readonly region: string;
  readonly epoch: number;
  readonly node: NodeId;
  readonly at: number;
}

const versionKey = (node: string, hlc: Hlc): string => `${node}@${hlc.wallMs}.${hlc.logical}`;

export class Checks implements NodeMonitor {
  private readonly maxEpoch = new Map<NodeId, number>();
  /** `${region}/${epoch}` -> voter -> candidate. */
  private readonly votes = new Map<string, Map<NodeId, NodeId>>();
  private readonly leaderOfEpoch = new Map<string, NodeId>();
  readonly activations: Activation[] = [];
  /** Writes acknowledged at ack=region or all: region, dot, epoch it was taken in, when. */
  private readonly regionAckedWrites: Array<{ region: string; origin: NodeId; seq: number; epoch: number; at: number }> = [];
  /** Epoch each own op was taken in, and the true time it was taken at. */
  private readonly taken = new Map<string, { epoch: number; at: number }>();
  /** Version (node, hlc) -> true time the write was taken. */
  private readonly trueTimeOf = new Map<string, number>();
  /** Per node, how many times its disk was lost: its votes and epochs before belong to an earlier incarnation. */
  private readonly incarnation = new Map<NodeId, number>();
  /** Per node, the durable vector it held when its disk was lost: its peers counted on it, so compaction may have. */
  private readonly heldBeforeWipe = new Map<NodeId, VersionVector>();
  /** Dots no node held durably when the last node holding them lost its disk: those may be gone (per origin, seq ranges). */
  private readonly lost: Array<{ origin: string; from: number; to: number }> = [];
  /** ack=region writes a lost disk held: their majority may be gone, so a new leader may lack them. */
  private readonly weakened = new Set<string>();
  /** `node>member`: members a node forgot while it compacted, until they hold its persisted frontier. */
  private readonly excused = new Set<string>();
  /** Own ops a node kept beyond a snapshot it installed: every node must end with them. */
  readonly keptBeyond: Array<{ node: NodeId; from: number; to: number }> = [];

  constructor(
    private readonly now: () => number,
    private readonly regionNodes: (region: string) => readonly SimNode[],
    private readonly leaseBoundMs: number,
    private readonly maxClockSkewMs: number,
    private readonly allNodes: () => readonly SimNode[] = () => [],
  ) {}

  compacting(node: SimNode, target: VersionVector): void {
    const persisted = node.storage.getMeta("stableVv") ?? {};
    for (const n of this.allNodes()) {
      const held = this.heldOrLost(n);
      // A member the compacting node forgot (silent past memberForgetMs) is not waited for: it bootstraps from a snapshot.
      // The frontier persisted meanwhile stays (compaction.ts): the member is excused until it holds that frontier.
      const excuse = `${node.id}>${n.id}`;
      if (n !== node && node.repl.peers.get(n.id)?.forgotten === true) this.excused.add(excuse);
      if (this.excused.has(excuse)) {
        if (Object.entries(persisted).some(([origin, seq]) => vvGet(held, origin) < seq)) continue;
        this.excused.delete(excuse);
      }
      // Nor one already below this node's floor (it was forgotten, or lost its disk, when that was checked): only a snapshot restores it now.
      if (Object.entries(node.storage.opLogFloor()).some(([origin, seq]) => vvGet(held, origin) < seq)) continue;
      for (const [origin, seq] of Object.entries(target)) {
        if (vvGet(held, origin) < seq) {
          throw new InvariantViolation(`${node.id} compacted ${origin} up to ${seq} while ${n.id} holds only up to ${vvGet(held, origin)} durably`);
        }
      }
    }
  }

  /** What `n` holds durably, or held when it lost its disk (the loss is the fault's, not compaction's). */
  private heldOrLost(n: SimNode): VersionVector {
    const now = n.wiped ? {} : n.disk.durableVv();
    const before = this.heldBeforeWipe.get(n.id);
    if (before === undefined) return now;
    const out: Record<string, number> = { ...before };
    for (const [o, s] of Object.entries(now)) out[o] = Math.max(s, out[o] ?? 0);
    return out;
  }

  /** True when `n` holds `origin:seq` (durably when down; a node whose disk is lost holds nothing). */
  private holds(n: SimNode, origin: string, seq: number): boolean {
    if (n.wiped) return false;
    if (n.up) return n.storage.hasOp(origin as NodeId, seq) || vvGet(n.disk.durableVv(), origin) >= seq;
    return vvGet(n.disk.durableVv(), origin) >= seq;
  }

  /** `n` is about to lose its disk: what only it held may be gone, and its next life starts from nothing. */
  wiping(n: SimNode): void {
    const mine = n.disk.durableVv();
    const others = this.allNodes().filter((m) => m !== n);
    for (const [origin, seq] of Object.entries(mine)) {
      let elsewhere = 0;
      for (const m of others) {
        if (m.wiped) continue;
        elsewhere = Math.max(elsewhere, vvGet(m.disk.durableVv(), origin), m.up ? vvGet(m.storage.appliedVv(), origin) : 0);
      }
      if (seq > elsewhere) this.lost.push({ origin, from: elsewhere + 1, to: seq });
    }
    for (const w of this.regionAckedWrites) if (w.region === n.region && vvGet(mine, w.origin) >= w.seq) this.weakened.add(`${w.origin}:${w.seq}`);
    const before = this.heldBeforeWipe.get(n.id) ?? {};
    const held: Record<string, number> = { ...before };
    for (const [o, s] of Object.entries(mine)) held[o] = Math.max(s, held[o] ?? 0);
    this.heldBeforeWipe.set(n.id, held);
    this.incarnation.set(n.id, (this.incarnation.get(n.id) ?? 0) + 1);
    this.maxEpoch.delete(n.id);
  }

  private isLost(origin: string, seq: number): boolean {
    return this.lost.some((l) => l.origin === origin && seq >= l.from && seq <= l.to);
  }

  /** After an install: no kv version the snapshot's vector covers survives unless the snapshot has it; none beyond it is gone. */
  installed(node: SimNode, header: SnapshotHeader, rows: readonly SnapshotRow[], localKv: readonly KvRow[]): void {
    const snap = new Map<string, KvRegister>();
    const text = new TextDecoder();
    for (const r of rows) if (r.ns === "kv") snap.set(r.key, decodeKvState(text.decode(r.data)));
    const dot = (v: { origin: string; seq: number }): string => `${v.origin}:${v.seq}`;
    for (const r of node.storage.listKv({ limit: 10_000, includeDeleted: true })) {
      const theirs = new Set((snap.get(r.key)?.siblings ?? []).map(dot));
      for (const v of r.reg.siblings) {
        if (v.seq <= vvGet(header.vv, v.origin) && !theirs.has(dot(v))) {
          this.fail(`${node.id} resurrected kv ${r.key} in a snapshot install: it kept version ${dot(v)}, which the snapshot's vector covers and its state does not hold (deleted, or superseded, at the sender)`);
        }
      }
    }
    const after = new Map(node.storage.listKv({ limit: 10_000, includeDeleted: true }).map((r) => [r.key, r.reg]));
    for (const r of localKv) {
      for (const v of r.reg.siblings) {
        if (v.seq <= vvGet(header.vv, v.origin)) continue;
        const now = after.get(r.key)?.siblings ?? [];
        if (!now.some((x) => dot(x) === dot(v) || vvGet(x.vv, v.origin) >= v.seq)) {
          this.fail(`${node.id} lost kv ${r.key} version ${dot(v)} in a snapshot install: the snapshot's vector does not cover it, so it must be kept`);
        }
      }
    }
  }

  keptBeyondSnapshot(node: SimNode, fromSeq: number, toSeq: number): void {
    this.keptBeyond.push({ node: node.id, from: fromSeq, to: toSeq });
  }

  // ---- after every event -------------------------------------------------------

  electionStepped(node: SimNode, wasActive: boolean, out: ElectionOutput): void {
    const epoch = epochOf(out.state);
    const before = this.maxEpoch.get(node.id) ?? 0;
    if (epoch < before) this.fail(`${node.id}: epoch went back from ${before} to ${epoch}`);
    this.maxEpoch.set(node.id, epoch);
    const vote = out.persist?.vote;
    if (vote) {
      const k = `${node.region}/${vote.epoch}`;
      let voters = this.votes.get(k);
      if (voters === undefined) this.votes.set(k, (voters = new Map()));
      // A node that lost its disk lost its votes with it: its next life's votes are its own (two leaders of one epoch are still caught).
      const voter = `${node.id}#${this.incarnation.get(node.id) ?? 0}` as NodeId;
      const earlier = voters.get(voter);
      if (earlier !== undefined && earlier !== vote.node) this.fail(`${node.id} voted twice in epoch ${vote.epoch} of ${node.region}: ${earlier}, then ${vote.node}`);
      voters.set(voter, vote.node);
    }
    if (!wasActive && isActiveLeader(out.state)) this.tookOffice(node, epoch, out);
  }

  private tookOffice(node: SimNode, epoch: number, out: ElectionOutput): void {
    const k = `${node.region}/${epoch}`;
    const other = this.leaderOfEpoch.get(k);
    if (other !== undefined && other !== node.id) this.fail(`two leaders of ${node.region} in epoch ${epoch}: ${other} and ${node.id}`);
    const voters = new Set<string>();
    for (const [voter, candidate] of this.votes.get(k) ?? []) if (candidate === node.id) voters.add(voter.split("#")[0] as string);
    const votes = voters.size;
    const size = this.regionNodes(node.region).length;
    if (votes < majority(size)) this.fail(`${node.id} took office in epoch ${epoch} of ${node.region} with ${votes} durable votes of ${size}`);
    this.leaderOfEpoch.set(k, node.id);
    this.activations.push({ region: node.region, epoch, node: node.id, at: this.now() });
    const vv = out.state.localVv;
    for (const w of this.regionAckedWrites) {
      if (w.region === node.region && w.epoch < epoch && vvGet(vv, w.origin) < w.seq && !this.majorityLost(w)) {
        this.fail(`${node.id} took office in epoch ${epoch} without ${w.origin}:${w.seq}, acknowledged by a majority of ${w.region} in epoch ${w.epoch}`);
      }
    }
  }

  /** An ack=region write whose durable majority a lost disk broke (it may be held by fewer than a majority now). */
  private majorityLost(w: { region: string; origin: NodeId; seq: number }): boolean {
    if (!this.weakened.has(`${w.origin}:${w.seq}`)) return false;
    const region = this.regionNodes(w.region);
    const holders = region.filter((n) => !n.wiped && vvGet(n.disk.durableVv(), w.origin) >= w.seq).length;
    return holders < majority(region.length);
  }

  batchJudged(node: SimNode, from: SimNode | undefined, fence: string, knownEpochBefore: number, verdict: ReplOutput["batch"]): void {
    if (verdict !== "apply" || fence === "") return;
    const f = parseFencingToken(fence);
    if (f !== null && f.epoch < knownEpochBefore) {
      this.fail(`${node.id} accepted a batch from ${from?.id ?? "?"} under the stale fence ${fence} (it knew epoch ${knownEpochBefore})`);
    }
  }

  applying(node: SimNode, outcome: ApplyOutcome, hlcBefore: Hlc, fromPeer: boolean): void {
    if (compareHlc(outcome.hlc, hlcBefore) < 0) this.fail(`${node.id}: HLC went back`);
    for (const op of outcome.ops) {
      if (node.storage.hasOp(op.origin, op.seq)) this.fail(`${node.id} applied ${op.origin}:${op.seq} twice`);
      if (op.origin === node.id && !fromPeer && compareHlc(op.hlc, hlcBefore) <= 0) {
        this.fail(`${node.id} stamped its op ${op.seq} with ${JSON.stringify(op.hlc)}, not after its clock ${JSON.stringify(hlcBefore)}: the HLC went back`);
      }
    }
  }

  writeTaken(node: SimNode, epoch: number, op: Op): void {
    const at = this.now();
    // A dot is one op: a node that lost its data must not stamp a new op with a seq of its origin that a peer holds.
    if (this.taken.has(`${op.origin}:${op.seq}`)) {
      const holder = this.allNodes().find((n) => n !== node && this.holds(n, op.origin, op.seq));
      if (holder !== undefined) this.fail(`${node.id} reused the dot ${op.origin}:${op.seq} for a new op while ${holder.id} holds the earlier op of that dot`);
    }
    this.taken.set(`${op.origin}:${op.seq}`, { epoch, at });
    this.trueTimeOf.set(versionKey(op.origin, op.hlc), at);
    for (const a of this.activations) {
      if (a.region === node.region && a.epoch > epoch && at - a.at > this.leaseBoundMs) {
        this.fail(`${node.id} took a write as leader of epoch ${epoch} of ${node.region}, ${at - a.at} ms after ${a.node} took office in epoch ${a.epoch} (lease bound ${this.leaseBoundMs} ms)`);
      }
    }
  }

  regionAcked(node: SimNode, origin: NodeId, seq: number): void {
    // ack=region promises a majority of the region holds the write durably (a crash of any minority keeps it).
    const region = this.regionNodes(node.region);
    const holders = region.filter((n) => vvGet(n.disk.durableVv(), origin) >= seq).length;
    if (holders < majority(region.length)) {
      this.fail(`${node.id} acknowledged ${origin}:${seq} at ack=region while only ${holders} of ${region.length} nodes of ${node.region} held it durably`);
    }
    const t = this.taken.get(`${origin}:${seq}`);
    this.regionAckedWrites.push({ region: node.region, origin, seq, epoch: t?.epoch ?? node.epoch(), at: this.now() });
  }

  // ---- at the end ----------------------------------------------------------------

  /** The checks after the quiet period; `nodes` all running. */
  final(nodes: readonly SimNode[], outcomesIn: readonly RequestOutcome[], keys: { counters: string[]; sets: string[]; docs: string[] }): void {
    let outcomes = outcomesIn;
    const [first, ...rest] = nodes.map((n) => ({ node: n, print: fingerprint(n, keys) }));
    if (first === undefined) return;
    for (const r of rest) {
      if (r.print !== first.print) this.fail(`replicas differ after the quiet period:\n${first.node.id}: ${first.print}\n${r.node.id}: ${r.print}`);
    }
    // An acknowledged write only disks that were then lost held may be gone: it counts as an unknown outcome.
    outcomes = outcomes.map((o) => (o.status === "acked" && o.dot !== null && this.isLost(o.dot.origin, o.dot.seq) ? { ...o, status: "unknown" as const } : o));
    for (const k of this.keptBeyond) {
      for (let seq = k.from; seq <= k.to; seq++) {
        if (this.isLost(k.node, seq)) continue;
        for (const n of nodes) {
          if (!n.storage.hasOp(k.node, seq) || vvGet(n.storage.appliedVv(), k.node) < seq) this.fail(`${k.node}:${seq}, kept beyond a snapshot ${k.node} installed, is missing on ${n.id}`);
        }
      }
    }
    for (const o of outcomes) {
      if (o.status !== "acked" || o.dot === null) continue;
      for (const n of nodes) {
        if (!n.storage.hasOp(o.dot.origin as NodeId, o.dot.seq) || vvGet(n.storage.appliedVv(), o.dot.origin) < o.dot.seq) {
          this.fail(`acknowledged write ${o.dot.origin}:${o.dot.seq} (${o.ns} ${o.key}) is missing on ${n.id}`);
        }
      }
      if (o.update !== null) {
        for (const n of nodes) {
          const doc = n.storage.getDoc(o.key);
          const sv = doc === undefined ? null : docStateVector(doc);
          if (doc === undefined || !equalBytes(docStateVector(applyDoc(doc, o.update)), sv as Uint8Array)) {
            this.fail(`acknowledged doc update ${o.dot.origin}:${o.dot.seq} to ${o.key} is not in ${n.id}'s document`);
          }
        }
      }
    }
    const node = first.node;
    for (const key of keys.counters) {
      const mine = outcomes.filter((o) => o.ns === "counters" && o.key === key);
      const acked = mine.filter((o) => o.status === "acked").reduce((s, o) => s + o.delta, 0);
      const extra = counterValue(node.storage.getCounter(key)) - acked;
      const unknown = mine.filter((o) => o.status === "unknown").map((o) => o.delta);
      if (!subsetSums(unknown).has(extra)) {
        this.fail(`counter ${key} is ${acked + extra}: acknowledged deltas sum to ${acked}, and ${extra} is no sum of a subset of the unknown outcomes [${unknown.join(", ")}] (a write counted twice or lost)`);
      }
    }
    for (const n of nodes) this.checkConflicts(n);
  }

  /** No conflict was won by a version whose clock ran ahead by more than the skew bound. */
  private checkConflicts(n: SimNode): void {
    for (const c of n.storage.conflicts(10_000)) {
      const w = this.trueTimeOf.get(versionKey(c.winner.node, c.winner.hlc));
      const l = this.trueTimeOf.get(versionKey(c.loser.node, c.loser.hlc));
      if (w === undefined || l === undefined) continue;
      // Both clocks may be off by the bound (a node refuses writes beyond it), plus the estimate's error.
      const slackMs = 2 * this.maxClockSkewMs + 100;
      if (l - w > slackMs) {
        this.fail(`${c.key}: ${c.winner.node}'s write won over ${c.loser.node}'s, written ${l - w} ms later in true time (more than ${slackMs} ms): a skewed clock won`);
      }
    }
  }

  fail(message: string): never {
    throw new InvariantViolation(message);
  }
}

/** Everything a reader could see of a replica, as one string. */
function fingerprint(n: SimNode, keys: { counters: string[]; sets: string[]; docs: string[] }): string {
  const s = n.storage;
  // A register of deletes only reads as no key: a replica may have dropped it already (compaction.ts) and another not.
  // Its versions are compared by dot, clock and value, not by vector: a replica may have folded a stable
  // version's vector to its dot and another not yet (compaction.ts); the versions kept are what reads and
  // later writes depend on, and a write carries the swept vector where a fold took the rest.
  const kv = s
    .listKv({ limit: 10_000, includeDeleted: true })
    .filter((r) => r.reg.siblings.some((v) => v.valueJson !== null))
    .map((r) => [r.key, r.deleted, r.reg.siblings.map((v) => [v.origin, v.seq, v.hlc, v.valueJson])]);
  const counters = keys.counters.map((k) => [k, counterValue(s.getCounter(k)), s.getCounter(k) ?? null]);
  const sets = keys.sets.map((k) => [k, setMembers(s.getSet(k))]);
  const docs = keys.docs.map((k) => {
    const d = s.getDoc(k);
    return [k, d === undefined ? null : Buffer.from(docStateVector(d)).toString("base64")];
  });
  return JSON.stringify({ vv: normalizeVv(s.appliedVv()), kv, counters, sets, docs });
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Every sum of a subset of `xs` (small lists: at most a few dozen unknown outcomes). */
function subsetSums(xs: readonly number[]): Set<number> {
  let sums = new Set<number>([0]);
  for (const x of xs) {
    const next = new Set(sums);
    for (const s of sums) next.add(s + x);
    sums = next;
  }
  return sums;
}
