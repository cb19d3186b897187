// The observed-remove set of strings. Every add creates a fresh tag (its dot
// plus the member's index); a remove names only the tags its writer had seen.
// A concurrent add has a tag the remove never saw, so it survives: add wins.
// Removed tags are remembered, so a remove that arrives before the add it
// removes still removes it, and delivery order does not matter.
//
// A tag names exactly one add of one member, so a remove is applied by its
// tags alone; the member it carries is for readers of the op log.
//
// Member names are untrusted strings ("__proto__" included), so entries are
// built with Object.fromEntries and read with Object.hasOwn only.

import { addTag, type OrSetState, type SetOp } from "../op.js";

/** The state of a set nobody has written: no members. */
export const EMPTY_SET: OrSetState = { entries: {}, removed: [] };

/** JS string order (UTF-16 code units): the same on every node. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Union of two sorted, duplicate-free arrays, in linear time. */
function sortedUnion(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x < y)) {
      out.push(x as string);
      i++;
    } else if (x === undefined || y < x) {
      out.push(y);
      j++;
    } else {
      out.push(x);
      i++;
      j++;
    }
  }
  return out;
}

/** Binary search: `removed` grows with every remove, so lookups must not scan it. */
function sortedHas(sorted: readonly string[], x: string): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = sorted[mid] as string;
    if (m === x) return true;
    if (m < x) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

function tagsOf(entries: OrSetState["entries"], member: string): readonly string[] {
  return Object.hasOwn(entries, member) ? (entries[member] as readonly string[]) : [];
}

/**
 * The state-based join: removed tags are the union, live tags the union minus
 * every removed tag. Also how an op is applied (as a one-op state), so apply
 * and merge cannot disagree.
 */
export function mergeSet(a: OrSetState, b: OrSetState): OrSetState {
  const removed = a.removed.length === 0 ? [...b.removed] : b.removed.length === 0 ? [...a.removed] : sortedUnion(a.removed, b.removed);
  const live = new Map<string, readonly string[]>();
  for (const [member, tags] of Object.entries(a.entries)) {
    // a's tags are already free of a's removals; only b's can kill them.
    const alive = b.removed.length === 0 ? tags : tags.filter((t) => !sortedHas(b.removed, t));
    if (alive.length > 0) live.set(member, alive);
  }
  for (const [member, tags] of Object.entries(b.entries)) {
    const alive = a.removed.length === 0 ? tags : tags.filter((t) => !sortedHas(a.removed, t));
    if (alive.length === 0) continue;
    const mine = live.get(member);
    live.set(member, mine === undefined ? alive : sortedUnion(mine, alive));
  }
  const members = [...live.keys()].sort(cmp);
  return { entries: Object.fromEntries(members.map((m) => [m, live.get(m) as readonly string[]])), removed };
}

/** The op as a state of its own: its fresh add-tags and the tags it removes. */
export function setOpState(op: SetOp): OrSetState {
  const adds = new Map<string, string[]>();
  op.add.forEach((member, i) => {
    const tags = adds.get(member) ?? [];
    tags.push(addTag(op.origin, op.seq, i));
    adds.set(member, tags);
  });
  const removed = [...new Set(op.remove.flatMap((r) => r.tags))].sort(cmp);
  const entries = [...adds.entries()]
    .map(([m, tags]): [string, readonly string[]] => [m, tags.filter((t) => !sortedHas(removed, t)).sort(cmp)])
    .filter(([, tags]) => tags.length > 0);
  return { entries: Object.fromEntries(entries), removed };
}

/** Applies one set op: its adds (unless already removed) and its observed removes. */
export function applySet(state: OrSetState | undefined, op: SetOp): OrSetState {
  return mergeSet(state ?? EMPTY_SET, setOpState(op));
}

/** The members, sorted by JS string order (UTF-16 code units), as the API returns them. */
export function setMembers(state: OrSetState | undefined): string[] {
  return Object.keys(state?.entries ?? {}).sort(cmp);
}

/** The live add-tags of a member: what a remove of it must name. */
export function liveTags(state: OrSetState | undefined, member: string): readonly string[] {
  return tagsOf(state?.entries ?? {}, member);
}

/** True when the member is in the set. */
export function hasMember(state: OrSetState | undefined, member: string): boolean {
  return liveTags(state, member).length > 0;
}
