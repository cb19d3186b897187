// The one apply path: every op a node applies, its own client writes and the
// ops its peers send, goes through applyOps, and the property tests prove this
// same function. Given a read port on the node's current state and a list of
// ops, it returns what changed: the ops that were new, the keys' new states
// and their rows, conflicts, idempotency records, and the node's new vector,
// clock and seq. It decides; the caller persists what it returns.
//
// Admission: only the next seq of each origin is taken. An op past a gap is
// dropped (the sender sees it in our ack and resends from the gap), and an op
// at or below the vector is a duplicate, so the node vector is always exact
// and nothing is applied twice or out of order.

import { compareHlc, type Hlc } from "../hlc.js";
import type { NodeId } from "../ids.js";
import { mutated } from "../mutations.js";
import type { Conflict, Dot, Namespace, Op } from "../op.js";
import { vvGet, vvWith, type VersionVector } from "../version-vector.js";
import { firstAnswerRecord } from "./idempotency.js";
import { answerOf, mergeOp, stateRows } from "./table.js";
import type { AnyState, IdempotencyRecord, KeyStateRows, StateOf } from "./types.js";

/** What the apply path reads of the node: its counters and the current state of keys and records. */
export interface ApplyView {
  /** This node. */
  readonly self: NodeId;
  /** The node vector: per origin, the highest contiguous seq applied. */
  readonly vv: VersionVector;
  /** The node's HLC. */
  readonly hlc: Hlc;
  /** The seq of this node's last own op. */
  readonly seq: number;
  /** The key's current state: committed, or from a batch still committing. */
  state<N extends Namespace>(ns: N, key: string): StateOf<N> | undefined;
  /** The first answer recorded for an Idempotency-Key, committed or committing. */
  idempotencyRecord(key: string): IdempotencyRecord | undefined;
  /** True when a client write under way on this node holds the key (its answer will be the first). */
  idempotencyKeyHeld(key: string): boolean;
  /**
   * This node's wall clock plus maxClockSkewMs: a peer's op stamped past it
   * is stored (every node stores every op) but does not pull this node's HLC
   * along, so one wrong clock cannot drag the others' stamps into the future.
   * Absent: no ceiling.
   */
  readonly hlcCeilingWallMs?: number;
}

/** A key whose state the ops changed, with its final state. */
export interface KeyChange {
  readonly ns: Namespace;
  readonly key: string;
  readonly state: AnyState;
}

/** What applying a list of ops changed. */
export interface ApplyOutcome {
  /** The ops applied, in order: the new ones given. */
  readonly ops: readonly Op[];
  /** Each touched key once, with its state after all the ops. */
  readonly changes: readonly KeyChange[];
  /** The touched keys' states as rows to persist. */
  readonly rows: KeyStateRows;
  readonly conflicts: readonly Conflict[];
  /** First answers recorded by these ops' Idempotency-Keys. */
  readonly idempotency: readonly IdempotencyRecord[];
  /** The node vector after. */
  readonly vv: VersionVector;
  /** Only the origins these ops advanced, with their new seqs (what to persist). */
  readonly vvChanged: VersionVector;
  readonly hlc: Hlc;
  /** The seq of this node's last own op after. */
  readonly seq: number;
}

/** How an op stands against the node vector. */
export type Admission = "next" | "duplicate" | "gap";

/** Whether the op named `dot` is the next of its origin, already applied, or past a gap. */
export function admit(vv: VersionVector, dot: Dot): Admission {
  if (!Number.isSafeInteger(dot.seq) || dot.seq < 1) throw new Error(`op seq must be a positive integer, got ${dot.seq}`);
  const have = vvGet(vv, dot.origin);
  if (dot.seq <= have && !mutated("no-vv-dedupe")) return "duplicate";
  if (dot.seq <= have) return "next";
  return dot.seq === have + 1 ? "next" : "gap";
}

const keyId = (ns: Namespace, key: string): string => `${ns}\0${key}`;

/**
 * Whether the node's HLC moves up to `op`'s: always for its own ops (its HLC
 * orders them), for a peer's only within the ceiling. Not adopting is safe:
 * a later local write that saw the op dominates it by version vector, which
 * is what orders a causal overwrite; the HLC only breaks true conflicts.
 */
function adoptsHlc(view: ApplyView, op: Op): boolean {
  return op.origin === view.self || view.hlcCeilingWallMs === undefined || op.hlc.wallMs <= view.hlcCeilingWallMs;
}

/** Applies `ops` to the node seen through `view`; see the file comment. Pure: `view` is only read. */
export function applyOps(view: ApplyView, ops: readonly Op[]): ApplyOutcome {
  const fresh: Op[] = [];
  const conflicts: Conflict[] = [];
  const records = new Map<string, IdempotencyRecord>();
  const states = new Map<string, KeyChange>();
  let vv = view.vv;
  let vvChanged: VersionVector = {};
  let hlc = view.hlc;
  let seq = view.seq;

  const stateOf = (ns: Namespace, key: string): AnyState | undefined => states.get(keyId(ns, key))?.state ?? view.state(ns, key);
  for (const op of ops) {
    if (admit(vv, op) !== "next") continue;
    const merged = mergeOp(stateOf(op.ns, op.key), op);
    states.set(keyId(op.ns, op.key), { ns: op.ns, key: op.key, state: merged.state });
    conflicts.push(...merged.conflicts);
    fresh.push(op);
    vv = vvWith(vv, op.origin, op.seq);
    vvChanged = vvWith(vvChanged, op.origin, op.seq);
    if (op.origin === view.self && op.seq > seq) seq = op.seq;
    if (compareHlc(op.hlc, hlc) > 0 && adoptsHlc(view, op)) hlc = op.hlc;
    if (op.idem !== undefined) {
      // A second copy of a keyed write needs nothing here: its namespace's
      // merge already leaves it out (a counter's copies, counter-copies.ts).
      const idemKey = op.idem.key;
      const known = records.has(idemKey) || view.idempotencyKeyHeld(idemKey) || view.idempotencyRecord(idemKey) !== undefined;
      const rec = firstAnswerRecord(op, answerOf(op, merged.state), known);
      if (rec !== undefined) records.set(rec.key, rec);
    }
  }

  const rows = stateRows(states.values());
  return { ops: fresh, changes: [...states.values()], rows, conflicts, idempotency: [...records.values()], vv, vvChanged, hlc, seq };
}

/** The state of one key after an outcome, when the outcome touched it. */
export function stateAfter(outcome: ApplyOutcome, ns: Namespace, key: string): AnyState | undefined {
  return outcome.changes.find((c) => c.ns === ns && c.key === key)?.state;
}
