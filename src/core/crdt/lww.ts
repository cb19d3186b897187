// The kv register: a multi-value register with a deterministic read. It keeps
// every version that no other version causally covers (the siblings), so the
// state is the same whatever order ops arrive in; reads pick one winner by
// (hlc, node, seq), which is what "last writer wins" shows to clients. Version
// vectors, not clocks, decide overwrites: a write that saw another replaces it
// even if its HLC is smaller, and only truly concurrent versions are a
// conflict (recorded, then won by the higher HLC).

import { compareHlc } from "../hlc.js";
import type { Conflict, KvOp, KvRegister, KvVersion, Version } from "../op.js";
import { compareVv, mergeVv, type VersionVector } from "../version-vector.js";

/** The result of applying one op to a register. */
export interface KvApplyResult {
  readonly reg: KvRegister;
  /** One entry per sibling the op was concurrent with (empty when it overwrote or was stale). */
  readonly conflicts: Conflict[];
  /** False when the op was already covered by the register (stale or duplicate). */
  readonly changed: boolean;
}

/** Total order for reads and conflicts: positive when `a` wins over `b`. */
export function compareKvVersions(a: KvVersion, b: KvVersion): number {
  const byHlc = compareHlc(a.hlc, b.hlc);
  if (byHlc !== 0) return byHlc;
  // Plain string compare (code units), the same on every node and runtime.
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  return a.seq - b.seq;
}

/**
 * True when `a` makes `b` obsolete: it saw everything `b` saw. Equal vectors
 * with different dots only come from malformed ops; the total order breaks
 * that tie so that the result still does not depend on arrival order.
 */
function supersedes(a: KvVersion, b: KvVersion): boolean {
  const order = compareVv(a.vv, b.vv);
  if (order === "after") return true;
  if (order === "equal") return compareKvVersions(a, b) >= 0;
  return false;
}

function sameDot(a: KvVersion, b: KvVersion): boolean {
  return a.origin === b.origin && a.seq === b.seq;
}

/** Winner first, so readKv is siblings[0] and equal sets give deep-equal arrays. */
function sortSiblings(siblings: KvVersion[]): KvVersion[] {
  return siblings.sort((a, b) => compareKvVersions(b, a));
}

/** The client-facing version of a kv version. */
export function versionOf(v: KvVersion): Version {
  return { hlc: v.hlc, node: v.origin };
}

/** The register version an op carries. */
export function kvVersionOf(op: KvOp): KvVersion {
  return { valueJson: op.valueJson, hlc: op.hlc, origin: op.origin, seq: op.seq, vv: op.vv };
}

/** Applies one kv op: drops what it overwrites, keeps what it races with, records those races. */
export function applyKv(reg: KvRegister | undefined, op: KvOp): KvApplyResult {
  const incoming = kvVersionOf(op);
  const siblings = reg?.siblings ?? [];
  for (const s of siblings) {
    if (sameDot(s, incoming) || supersedes(s, incoming)) {
      return { reg: reg ?? { siblings: [] }, conflicts: [], changed: false };
    }
  }
  const kept: KvVersion[] = [];
  const conflicts: Conflict[] = [];
  for (const s of siblings) {
    if (supersedes(incoming, s)) continue; // causal overwrite: not a conflict
    kept.push(s);
    const incomingWins = compareKvVersions(incoming, s) > 0;
    conflicts.push({
      key: op.key,
      winner: versionOf(incomingWins ? incoming : s),
      loser: versionOf(incomingWins ? s : incoming),
      at: op.hlc,
    });
  }
  kept.push(incoming);
  return { reg: { siblings: sortSiblings(kept) }, conflicts, changed: true };
}

/** The state-based join: the maximal versions of both registers together. */
export function mergeKv(a: KvRegister, b: KvRegister): KvRegister {
  // A dot names one op, so versions with the same dot are the same version.
  const all: KvVersion[] = [];
  for (const v of [...a.siblings, ...b.siblings]) {
    if (!all.some((w) => sameDot(w, v))) all.push(v);
  }
  const maximal = all.filter((v) => !all.some((w) => w !== v && supersedes(w, v)));
  return { siblings: sortSiblings(maximal) };
}

/** The version reads show: the highest (hlc, node, seq); valueJson null means deleted. */
export function readKv(reg: KvRegister | undefined): KvVersion | undefined {
  return reg?.siblings[0];
}

/** Everything the register has seen: the context a new local write must cover to overwrite it. */
export function kvContext(reg: KvRegister | undefined): VersionVector {
  let vv: VersionVector = {};
  for (const s of reg?.siblings ?? []) vv = mergeVv(vv, s.vv);
  return vv;
}
