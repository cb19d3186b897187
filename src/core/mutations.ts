// Test-only switches, each of which breaks one safety guard of the real code,
// so the whole-cluster simulator (test/sim) can show that its checks catch
// the break: a checker that never fails proves nothing. Nothing in the node
// sets them; a guard reads its switch with one lookup in an empty set.

/** The guards that can be switched off, one at a time. */
export const MUTATIONS = [
  /** A coordinator takes office without a majority of acceptances (election/transitions.ts). */
  "no-majority-acceptance",
  /** Ops are stamped with the raw wall clock instead of the hybrid logical clock (hlc.ts). */
  "lww-by-wall-clock",
  /** The apply path takes an op again that the node vector already covers (apply/apply.ts). */
  "no-vv-dedupe",
  /** Batches under a stale fencing token are applied (fence.ts). */
  "no-fence-check",
  /** A follower acknowledges a batch, and reports it held, when it arrives, before it is durable (replication/machine.ts). */
  "ack-before-durable",
  /** Compaction takes this node's own vector for the stability frontier, ignoring what the other members hold (compaction.ts). */
  "compact-unstable",
  /** A snapshot install keeps local kv versions its vector covers, so a key deleted and swept at the sender comes back (snapshot.ts). */
  "install-keeps-covered",
  /** A kv write to a key with a folded version claims only the key's context, not the swept vector, so it races with the unfolded copy elsewhere (write.ts). */
  "fold-without-context",
] as const;

export type Mutation = (typeof MUTATIONS)[number];

const active = new Set<Mutation>();

/** True when the guard `m` is switched off. */
export function mutated(m: Mutation): boolean {
  return active.size > 0 && active.has(m);
}

/** Switches off the guard `m` (null: every guard on again). One at a time. */
export function setMutation(m: Mutation | null): void {
  active.clear();
  if (m !== null) active.add(m);
}

/** Parses a mutation name from untrusted text (the simulator's command line). */
export function parseMutation(text: string): Mutation | null {
  return (MUTATIONS as readonly string[]).includes(text) ? (text as Mutation) : null;
}
